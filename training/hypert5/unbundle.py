"""Rebuild a checkpoint folder (checkpoint.py) from a bundle, so training can go on from a shipped model.

    python -m hypert5.unbundle --bundle ../models/default --out runs/from-default

Run folders are not committed; the bundle is. It keeps the downstream as safetensors under the
checkpoint's own names, but each hypermodel only as an ONNX graph, where constant folding renamed
most weights and stored equal ones once (a Linear's weight becomes a transposed ``onnx::MatMul_<n>``,
the query embeddings an ``onnx::Expand_<n>``). To undo that, a copy of the same architecture with
distinct random weights is exported the same way and each initializer slot (node, input) is matched
to the parameter it holds; the bundle's graph, the same ops in the same order, holds that parameter
in the same slot. The body's ``lm_head``, which the hypermodel never runs, is not in the graph and
keeps the downstream's, as a fresh HyperT5 does.

The check is export's own: the rebuilt PyTorch models against the bundle's graphs in ONNX Runtime
(every output within 1e-4) and the bundle's golden decodes, token for token.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from safetensors.torch import load_file

from . import checkpoint
from .bundle import DOWNSTREAM_FILE, FORMAT_VERSION, GRAPH_FILES, BundleError, dims_from_manifest, validate
from .checkpoint import BundleSettings, Models
from .config import LoraSpec, PrefixSpec
from .examples import HyperInputFormat
from .export import check_bundle, check_graphs
from .hypermodel import HyperT5
from .onnx_graphs import HyperGraph, export_graph
from .t5 import T5, load_hf_state_dict

KINDS = ("lora", "prefix")


def settings_from_manifest(manifest: dict, head_hidden: int) -> BundleSettings:
    kinds = manifest["adapters"]["kinds"]
    return BundleSettings(
        dims=dims_from_manifest(manifest),
        lora=LoraSpec(rank=kinds["lora"]["rank"], alpha=kinds["lora"]["alpha"]),
        prefix=PrefixSpec(num_positions=kinds["prefix"]["num_positions"], attention=kinds["prefix"]["attention"]),
        head_hidden=head_hidden,
        tokenizer=manifest["tokenizer"],
        hyper_input=HyperInputFormat(**manifest["hyper_input"]),
        encoder_max_tokens=manifest["encoder_input"]["max_tokens"],
        generation=manifest["generation"],
        default_kind=manifest["adapters"]["default_kind"],
        name=manifest["name"],
        provenance={**manifest["provenance"], "rebuilt_from_bundle": manifest["fingerprint"]},
    )


def initializers(path: Path) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}


def initializer_slots(path: Path) -> tuple[list[str], dict[tuple[int, int], np.ndarray]]:
    """The graph's op sequence and the initializer at each (node, input) slot that takes one.

    Slots, not names: the exporter stores equal tensors once (a trained model's layer norms can
    coincide, a fresh one's are all ones) and names the copies with Identity nodes, which are
    resolved here and left out of the op sequence."""
    graph = onnx.load(str(path)).graph
    arrays = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    nodes = []
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in arrays:
            arrays[node.output[0]] = arrays[node.input[0]]
        else:
            nodes.append(node)
    ops = [node.op_type for node in nodes]
    slots = {
        (n, i): arrays[name] for n, node in enumerate(nodes) for i, name in enumerate(node.input) if name in arrays
    }
    return ops, slots


def head_hidden_of(graph: dict[str, np.ndarray]) -> int:
    ups = [a for name, a in graph.items() if name.startswith("hyper.heads.") and name.endswith(".up.bias")]
    if not ups:
        raise ValueError("the hypermodel graph has no hyper.heads.*.up.bias initializer to read head_hidden from")
    return int(ups[0].shape[0])


def parameter_slots(hyper: HyperT5, workdir: Path) -> tuple[list[str], dict[str, tuple[tuple[int, int], bool]]]:
    """The marker export's op sequence and, per parameter, a slot holding it and whether transposed."""
    with torch.no_grad():
        for p in hyper.parameters():
            p.copy_(torch.randn_like(p))  # distinct values: every initializer is one parameter
    path = workdir / "marker.onnx"
    export_graph(HyperGraph(hyper.eval()), path)
    ops, slots = initializer_slots(path)
    params = {k: v.detach().numpy() for k, v in hyper.state_dict().items()}
    found: dict[str, tuple[tuple[int, int], bool]] = {}
    for slot, array in slots.items():
        for name, value in params.items():
            if value.size != array.size:
                continue
            if np.array_equal(value, array.reshape(value.shape)):
                found.setdefault(name, (slot, False))
                break
            if value.ndim == 2 and array.shape == value.T.shape and np.array_equal(value.T, array):
                found.setdefault(name, (slot, True))
                break
        else:
            raise ValueError(
                f"initializer at node {slot[0]} input {slot[1]} {array.shape} of the marker export matches no parameter"
            )
    return ops, found


def rebuild_hyper(downstream: T5, settings: BundleSettings, kind: str, graph_path: Path) -> HyperT5:
    with tempfile.TemporaryDirectory() as tmp:
        marker_ops, sources = parameter_slots(
            HyperT5.from_downstream(downstream, settings.hyper_config(kind)), Path(tmp)
        )
    ops, slots = initializer_slots(graph_path)
    if ops != marker_ops:
        raise ValueError(f"{graph_path}: its graph is not the one this code exports for these settings")
    hyper = HyperT5.from_downstream(downstream, settings.hyper_config(kind))
    state = hyper.state_dict()
    for name, (slot, transposed) in sources.items():
        array = slots[slot].T if transposed else slots[slot]
        state[name] = torch.from_numpy(np.array(array)).reshape(state[name].shape)
    hyper.load_state_dict(state)
    return hyper.eval()


def rebuild(bundle: Path, log=print) -> Models:
    """The bundle's PyTorch models, checked against its graphs and golden decodes. A version 1 bundle is read
    too (to re-export it): its decoder's layout is not this runtime's, so only the graphs both versions share
    are checked here, and ``hypert5.export`` checks the re-exported decoder and golden decodes."""
    manifest = validate(bundle, versions=(1, FORMAT_VERSION))
    graphs = {kind: bundle / GRAPH_FILES[f"hyper_{kind}"] for kind in KINDS}
    settings = settings_from_manifest(manifest, head_hidden_of(initializers(graphs["lora"])))
    downstream = T5(settings.dims, lora_scale=settings.lora.scaling)
    load_hf_state_dict(downstream, load_file(str(bundle / DOWNSTREAM_FILE)))
    downstream.eval()
    hyper = {}
    for kind in KINDS:
        log(f"rebuilding hyper_{kind} from {graphs[kind].name}")
        hyper[kind] = rebuild_hyper(downstream, settings, kind, graphs[kind])
    models = Models(settings, downstream, hyper)
    if manifest["format_version"] == FORMAT_VERSION:
        check_bundle(models, bundle, log=log)
    else:
        check_graphs(models, bundle, log, names=("encoder", "hyper_lora", "hyper_prefix"))
    return models


def unbundle(bundle: Path, out: Path, log=print) -> Models:
    """``rebuild``, then written as a checkpoint folder (with the tokenizer file, if any)."""
    models = rebuild(bundle, log)
    checkpoint.save(out, models)
    tok = models.settings.tokenizer
    if tok["type"] == "tokenizers":
        shutil.copyfile(bundle / tok["file"], out / tok["file"])
    return models


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True, help="bundle folder (models/README.md)")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint folder to write (must not exist)")
    args = parser.parse_args(argv)
    if args.out.exists():
        parser.error(f"{args.out} exists: choose a new folder (a checkpoint is not overwritten)")
    try:
        models = unbundle(args.bundle, args.out)
    except (BundleError, FileNotFoundError, ValueError) as e:
        parser.error(str(e))
    print(
        f"wrote {args.out} ({', '.join(sorted(p.name for p in args.out.iterdir()))}), "
        f"rebuilt_from_bundle {models.settings.provenance['rebuilt_from_bundle']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
