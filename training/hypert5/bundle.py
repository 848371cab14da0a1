"""Write and validate bundles (models/README.md is the format; this file is its Python side)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import torch

from .adapters import lora_specs, prefix_specs
from .checkpoint import Models
from .config import T5Dims, to_dict

# Version 2: the decoder takes keys/values and adapter tensors one input per layer (models/README.md, "Graphs").
FORMAT, FORMAT_VERSION = "hypert5-bundle", 2
GRAPH_FILES = {
    "encoder": "encoder.onnx",
    "decoder": "decoder.onnx",
    # Optional (models/README.md, "Graphs"): the decoder with one kind's branch only, for single-kind batches.
    "decoder_lora": "decoder_lora.onnx",
    "decoder_prefix": "decoder_prefix.onnx",
    "hyper_lora": "hyper_lora.onnx",
    "hyper_prefix": "hyper_prefix.onnx",
}
# The frozen downstream T5 as transformers' T5ForConditionalGeneration weights (F32, HF parameter names,
# tied aliases left out as save_pretrained does). For PEFT interop (hypert5.peft_interop); the service
# verifies its sha256 like every file but never reads it.
DOWNSTREAM_FILE = "downstream.safetensors"
# The largest |value| the service accepts in an imported adapter tensor (models/README.md, "Adapter kinds"),
# by the last part of the tensor's name. Measured on models/default (228 example sets through the
# hypermodels; adapters tuned 300 Adam steps from random and hypermodel initialisation): LoRA reaches
# 0.56, prefix keys/values 5.7 and gates 3.2, so these sit about 100 times above; activations only overflow
# float32 from about 1e18. A mask holds 0 or 1.
MAX_ABS = {"a": 100.0, "b": 100.0, "key": 1000.0, "value": 1000.0, "gate": 1000.0, "mask": 1.0}
# Optional (older bundles lack them): one Adam step of an adapter as a graph per kind, and the frozen
# weights both hold, stored once beside them (hypert5.export_refine; models/README.md, "Refinement graphs").
REFINE_GRAPH_FILES = {"train_step_lora": "train_step_lora.onnx", "train_step_prefix": "train_step_prefix.onnx"}
REFINE_WEIGHTS_FILE = "train_step_weights.bin"
# Documentation beside the model (the model card, README.md): not a model file, so not listed in
# manifest.files or the fingerprint, and kept when the bundle is exported again into its folder.
DOCUMENT_SUFFIX = ".md"


def is_document(name: str) -> bool:
    return name.endswith(DOCUMENT_SUFFIX)


UPGRADE_HINT = (
    "; a version 1 bundle (stacked decoder inputs) is re-exported by `python -m hypert5.unbundle --bundle <old> "
    "--out <dir>` then `python -m hypert5.export --checkpoint <dir> --out <new>` (models/README.md)"
)
# Per kind: the Adam learning rate (the sweep of hypert5.train.evaluate's TUNE_LR) and the steps and
# augmentation the evaluation's refine rows chose.
REFINE_DEFAULTS = {
    "lora": {"steps": 100, "learning_rate": 1e-3, "augment": "none"},
    "prefix": {"steps": 100, "learning_rate": 3e-2, "augment": "none"},
}


class BundleError(ValueError):
    """A bundle that does not match the format; the message names the file and the field."""


def adapter_input(name: str, shapes: dict[str, list[int]]) -> tuple[str, int | None] | None:
    """Which adapter tensor a graph input feeds: ``(tensor, None)`` for the whole tensor, ``(tensor, l)`` for
    its layer ``l`` (``<tensor>.<l>``), None for an input that is no adapter tensor."""
    if name in shapes:
        return name, None
    tensor, _, layer = name.rpartition(".")
    if tensor in shapes and layer.isdigit():
        return tensor, int(layer)
    return None


def adapter_input_shape(tensor: str, layer: int | None, shapes: dict[str, list[int]]) -> list:
    """The declared shape of an adapter input: a leading ``batch``, then the tensor's shape or one layer's."""
    return ["batch", *(shapes[tensor] if layer is None else shapes[tensor][1:])]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_downstream(models: Models, path: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().to(torch.float32).contiguous() for k, v in models.downstream.state_dict().items()}
    save_file(state, str(path), metadata={"format": "pt"})  # one entry: the header order of several varies
    path.chmod(0o644)  # safetensors creates it private; it is a bundle file like the others


REFINE_FILE_PREFIX = "train_step_"


# Optional files that change no one-pass adapter and no completion: left out of the fingerprint, so adding
# them keeps every stored adapter's id.
UNFINGERPRINTED = ("decoder_lora.onnx", "decoder_prefix.onnx")


def fingerprint(files: dict[str, str]) -> str:
    """The model's identity, from which adapter ids derive: every file but the optional refinement graphs and
    kind decoders, which change no one-pass adapter or completion."""
    served = sorted(name for name in files if not name.startswith(REFINE_FILE_PREFIX) and name not in UNFINGERPRINTED)
    lines = "".join(f"{name}:{files[name]}\n" for name in served)
    return hashlib.sha256(lines.encode()).hexdigest()[:16]


def _io(entries: list[tuple[str, str, list]]) -> list[dict[str, Any]]:
    return [{"name": n, "dtype": t, "shape": s} for n, t, s in entries]


def max_abs(name: str) -> float:
    """The import bound of an adapter tensor; a new tensor role must be given one here."""
    role = name.rsplit(".", 1)[-1]
    if role not in MAX_ABS:
        raise BundleError(f"adapter tensor {name}: no import bound for role {role!r} in bundle.MAX_ABS")
    return MAX_ABS[role]


def _tensors(specs) -> list[dict[str, Any]]:
    return [{"name": t.name, "dtype": "float32", "shape": list(t.shape), "max_abs": max_abs(t.name)} for t in specs]


def build_manifest(models: Models, graphs: dict[str, Any], bundle_dir: Path) -> dict[str, Any]:
    s = models.settings
    files = {
        p.name: sha256_file(p)
        for p in sorted(bundle_dir.iterdir())
        if p.name != "manifest.json" and not is_document(p.name)
    }
    d = s.dims
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": s.name,
        "fingerprint": fingerprint(files),
        "files": files,
        "dims": {
            k: v for k, v in to_dict(d).items() if k not in ("pad_token_id", "eos_token_id", "decoder_start_token_id")
        },
        "tokenizer": s.tokenizer,
        "special_ids": {
            "pad": d.pad_token_id,
            "eos": d.eos_token_id,
            "unk": 2,
            "decoder_start": d.decoder_start_token_id,
        },
        "encoder_input": {"append_eos": True, "max_tokens": s.encoder_max_tokens},
        "hyper_input": to_dict(s.hyper_input),
        "generation": s.generation,
        "adapters": {
            "default_kind": s.default_kind,
            "kinds": {
                "lora": {
                    "rank": s.lora.rank,
                    "alpha": s.lora.alpha,
                    "targets": ["q", "v"],
                    "tensors": _tensors(lora_specs(d, s.lora)),
                },
                "prefix": {
                    "num_positions": s.prefix.num_positions,
                    "attention": s.prefix.attention,
                    "tensors": _tensors(prefix_specs(d, s.prefix)),
                },
            },
        },
        "graphs": {
            name: {"file": GRAPH_FILES[name], "inputs": _io(g.inputs), "outputs": _io(g.outputs)}
            for name, g in graphs.items()
        },
        "provenance": s.provenance,
    }


def dims_from_manifest(manifest: dict[str, Any]) -> T5Dims:
    """The inverse of ``build_manifest``'s dims and special_ids."""
    special = manifest["special_ids"]
    return T5Dims(
        **manifest["dims"],
        pad_token_id=special["pad"],
        eos_token_id=special["eos"],
        decoder_start_token_id=special["decoder_start"],
    )


_ORT_DTYPES = {"tensor(float)": "float32", "tensor(int64)": "int64"}


def _check_max_abs(path: Path, kind: str, tensor: dict[str, Any]) -> None:
    """``max_abs`` is optional (older bundles: the service's default); when present, a positive finite number,
    at least 1 on a mask (whose values are 0 and 1)."""
    if "max_abs" not in tensor:
        return
    bound = tensor["max_abs"]
    floor = 1.0 if tensor["name"].endswith(".mask") else 0.0
    ok = isinstance(bound, (int, float)) and not isinstance(bound, bool) and math.isfinite(bound)
    if not ok or bound < floor or bound <= 0:
        raise BundleError(
            f"{path}: adapters.kinds.{kind} tensor {tensor['name']}: max_abs is {bound!r}; expected a "
            f"finite number " + ("of at least 1 (a mask holds 1)" if floor else "above 0")
        )


def validate(bundle_dir: Path, versions: tuple[int, ...] = (FORMAT_VERSION,)) -> dict[str, Any]:
    """Check a bundle as the service does at boot; returns the manifest or raises BundleError. ``versions``:
    the format versions accepted (``hypert5.unbundle`` also reads version 1, to re-export it)."""
    import onnxruntime as ort

    path = bundle_dir / "manifest.json"
    if not path.exists():
        raise BundleError(f"{path}: missing")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT or manifest.get("format_version") not in versions:
        raise BundleError(
            f"{path}: format/format_version must be {FORMAT!r}/{' or '.join(map(str, versions))}, got "
            f"{manifest.get('format')!r}/{manifest.get('format_version')!r}"
            + (UPGRADE_HINT if manifest.get("format_version") == 1 and 1 not in versions else "")
        )
    for name, digest in manifest["files"].items():
        f = bundle_dir / name
        if not f.exists():
            raise BundleError(f"{f}: listed in manifest.files but missing")
        if sha256_file(f) != digest:
            raise BundleError(f"{f}: sha256 does not match manifest.files[{name!r}]")
    if fingerprint(manifest["files"]) != manifest["fingerprint"]:
        raise BundleError(f"{path}: fingerprint does not match manifest.files")
    kinds = manifest["adapters"]["kinds"]
    for kind, spec in kinds.items():
        for t in spec["tensors"]:
            _check_max_abs(path, kind, t)
    single = {t["name"]: t["shape"] for k in kinds.values() for t in k["tensors"]}
    for name, spec in manifest.get("refine", {}).get("kinds", {}).items():
        if name not in kinds or spec.get("graph") not in manifest["graphs"]:
            raise BundleError(
                f"{path}: refine.kinds.{name} names graph {spec.get('graph')!r}; graphs has "
                f"{sorted(manifest['graphs'])} and adapters.kinds {sorted(kinds)}"
            )
    fed: dict[str, set[int | None]] = {name: set() for name in single}
    for graph_name, graph in manifest["graphs"].items():
        f = bundle_dir / graph["file"]
        session = ort.InferenceSession(str(f), providers=["CPUExecutionProvider"])
        for side, declared, actual in (
            ("inputs", graph["inputs"], session.get_inputs()),
            ("outputs", graph["outputs"], session.get_outputs()),
        ):
            got = [{"name": a.name, "dtype": _ORT_DTYPES.get(a.type, a.type), "shape": list(a.shape)} for a in actual]
            if got != declared:
                raise BundleError(
                    f"{f}: graphs.{graph_name}.{side} in the manifest do not match the ONNX graph: "
                    f"declared {[d['name'] for d in declared]}, graph has {[g['name'] for g in got]} "
                    f"(or dtypes/shapes differ)"
                )
        if graph_name in REFINE_GRAPH_FILES:  # a step graph refines one adapter: no batch dimension, whole
            for io in graph["inputs"]:
                if io["name"] in single and io["shape"] != single[io["name"]]:
                    raise BundleError(
                        f"{f}: {io['name']} has shape {io['shape']}, adapters.kinds says {single[io['name']]}"
                    )
            continue
        for io in graph["outputs"]:  # a hypermodel's: one whole adapter tensor per row
            if io["name"] in single and io["shape"] != ["batch", *single[io["name"]]]:
                raise BundleError(
                    f"{f}: {io['name']} has shape {io['shape']}, adapters.kinds gives {single[io['name']]}"
                )
        for io in graph["inputs"]:
            found = adapter_input(io["name"], single)
            if found is None:
                continue
            want = adapter_input_shape(*found, single)
            if io["shape"] != want:
                raise BundleError(f"{f}: {io['name']} has shape {io['shape']}, adapters.kinds gives {want}")
            fed[found[0]].add(found[1])
    for name, parts in fed.items():
        # Every adapter tensor reaches the model once: whole, or every one of its layers.
        if parts != {None} and parts != set(range(single[name][0])):
            raise BundleError(
                f"{path}: adapter tensor {name} is fed as {sorted(parts, key=str)} (None = whole); expected "
                f"the whole tensor or each of its {single[name][0]} layers"
            )
    tok = manifest["tokenizer"]
    if tok["type"] == "tokenizers" and not (bundle_dir / tok["file"]).exists():
        raise BundleError(f"{bundle_dir / tok['file']}: required by manifest.tokenizer but missing")
    return manifest
