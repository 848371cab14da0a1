"""Export a bundle (models/README.md) from a checkpoint folder or a random preset, then check it.

    python -m hypert5.export --checkpoint runs/final --out ../models/default
    python -m hypert5.export --random tiny --out ../test/fixtures/tiny

The check: every graph in ONNX Runtime against PyTorch (max abs diff <= 1e-4) and ONNX Runtime
greedy decodes against the golden ones, alone and as one mixed-adapter batch. Then the training-step
graphs are added and checked (hypert5.export_refine; ``--no-refine`` leaves them out).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from . import checkpoint
from .bundle import DOWNSTREAM_FILE, GRAPH_FILES, build_manifest, is_document, validate, write_downstream
from .checkpoint import Models
from .export_refine import add_refine_graphs
from .golden import golden_cases, write_golden
from .onnx_graphs import build_graphs, example_inputs, export_graph
from .ort_runtime import OrtBundle
from .presets import PRESETS, random_models

TOLERANCE = 1e-4


def clear_for_export(out: Path, log=print) -> None:
    """An empty ``out`` but for the documents it held: a stale file of another export (an optional graph
    this one does not write) must not sit beside the new manifest, and the model card must survive."""
    out.mkdir(parents=True, exist_ok=True)
    for p in out.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif is_document(p.name):
            log(f"keeping {p.name}")
        else:
            p.unlink()


def export_bundle(
    models: Models, out: Path, golden_inputs: list[dict] | None = None, log=print, source: Path | None = None
) -> dict:
    """Write the bundle into ``out``, replacing every file there but its documents (the model card: ``*.md``,
    bundle.is_document); ``source`` is the checkpoint folder holding ``tokenizer.json`` when the tokenizer is
    not the byte one."""
    clear_for_export(out, log)
    graphs = build_graphs(models)
    for name, graph in graphs.items():
        log(f"exporting {name}")
        export_graph(graph, out / GRAPH_FILES[name])
    write_downstream(models, out / DOWNSTREAM_FILE)  # for PEFT interop (hypert5.peft_interop); the service ignores it
    tok = models.settings.tokenizer
    if tok["type"] == "tokenizers":
        if source is None or not (source / tok["file"]).exists():
            raise FileNotFoundError(
                f"the model's tokenizer is {tok['file']}, which is not in the checkpoint folder {source}"
            )
        shutil.copyfile(source / tok["file"], out / tok["file"])
    write_golden(models, out / "golden.json", golden_cases() if golden_inputs is None else golden_inputs)
    manifest = build_manifest(models, graphs, out)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return validate(out)


def max_graph_diff(models: Models, out: Path, names: tuple[str, ...] | None = None) -> dict[str, float]:
    """Largest |PyTorch - ONNX Runtime| over every output of every graph (or of ``names``), on example inputs."""
    diffs = {}
    for name, graph in build_graphs(models).items():
        if names is not None and name not in names:
            continue
        inputs = example_inputs(graph, batch=3, length=7, past=4)
        with torch.no_grad():
            expected = graph(*inputs)
        session = ort.InferenceSession(str(out / GRAPH_FILES[name]), providers=["CPUExecutionProvider"])
        got = session.run(None, {n: t.numpy() for (n, _, _), t in zip(graph.inputs, inputs)})
        diffs[name] = max(float(np.abs(e.numpy() - g).max()) for e, g in zip(expected, got))
    return diffs


def check_graphs(models: Models, out: Path, log=print, names: tuple[str, ...] | None = None) -> None:
    """Every graph (or those in ``names``) within TOLERANCE of PyTorch."""
    diffs = max_graph_diff(models, out, names)
    log("max |torch - onnxruntime| per graph: " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    bad = {k: v for k, v in diffs.items() if v > TOLERANCE}
    if bad:
        raise AssertionError(f"graphs differ from PyTorch by more than {TOLERANCE}: {bad}")


def check_bundle(models: Models, out: Path, log=print) -> None:
    check_graphs(models, out, log)
    runtime = OrtBundle(out)
    cases = json.loads((out / "golden.json").read_text())["cases"]
    adapters = [
        runtime.hyper(c["adapter"]["kind"], [(e["input"], e["output"]) for e in c["adapter"]["examples"]])
        if c["adapter"]
        else None
        for c in cases
    ]
    check_adapter_bounds(runtime.manifest, [(c["name"], c["adapter"]["kind"], a) for c, a in zip(cases, adapters) if a])
    budget = max(c["max_new_tokens"] for c in cases)
    alone = [runtime.greedy([c["input"]], [a], c["max_new_tokens"])[0] for c, a in zip(cases, adapters)]
    mixed = runtime.greedy([c["input"] for c in cases], adapters, budget)
    for case, one, many in zip(cases, alone, mixed):
        if one != case["token_ids"] or many[: case["max_new_tokens"]] != case["token_ids"]:
            raise AssertionError(
                f"golden case {case['name']}: onnxruntime decoded {one} alone and {many} in a "
                f"mixed batch, PyTorch {case['token_ids']}"
            )
    log(f"golden decodes: {len(cases)} cases identical in onnxruntime, alone and in one mixed batch")
    diff = downstream_hf_diff(models, out)
    log(f"{DOWNSTREAM_FILE} as transformers T5ForConditionalGeneration: max |logits - PyTorch| {diff:.2e}")
    if diff > TOLERANCE:
        raise AssertionError(f"{DOWNSTREAM_FILE} in transformers differs from PyTorch by {diff} > {TOLERANCE}")


def check_adapter_bounds(manifest: dict, adapters: list[tuple[str, str, dict]]) -> None:
    """The hypermodel's own adapters stay within the manifest's ``max_abs``: else the service would refuse
    to re-import the parameters it hands out. (A bundle older than ``max_abs`` has no bound to check.)"""
    bounds = {
        t["name"]: t.get("max_abs", float("inf")) for k in manifest["adapters"]["kinds"].values() for t in k["tensors"]
    }
    for case, kind, adapter in adapters:
        for name, value in adapter.items():
            top = float(np.abs(value).max())
            if top > bounds[name]:
                raise AssertionError(
                    f"golden case {case}: the {kind} hypermodel gives {name} values up to {top:.3g}, "
                    f"above its max_abs {bounds[name]} (hypert5.bundle.MAX_ABS)"
                )


def downstream_hf_diff(models: Models, out: Path) -> float:
    """Largest |transformers - our T5| over teacher-forced logits: the PEFT base model is this T5."""
    from .peft_interop.base_model import load_base_model

    hf = load_base_model(out)
    g = torch.Generator().manual_seed(0)
    vocab = models.settings.dims.vocab_size
    input_ids = torch.randint(3, vocab, (2, 9), generator=g)
    mask = torch.ones_like(input_ids)
    mask[1, 6:] = 0
    decoder_ids = torch.cat([torch.zeros(2, 1, dtype=torch.long), torch.randint(3, vocab, (2, 5), generator=g)], 1)
    with torch.no_grad():
        expected = models.downstream(input_ids, mask, decoder_ids)
        got = hf(input_ids=input_ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits
    return float((expected - got).abs().max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="checkpoint folder (hypert5.json or a transformers T5)")
    source.add_argument("--random", choices=sorted(PRESETS), help="random preset (test fixtures)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--no-check", action="store_true", help="skip the PyTorch/ONNX Runtime parity check")
    parser.add_argument(
        "--no-refine",
        action="store_true",
        help="leave out the training-step graphs (hypert5.export_refine adds them later)",
    )
    args = parser.parse_args(argv)
    models = random_models(args.random, args.seed) if args.random else checkpoint.load(args.checkpoint)
    manifest = export_bundle(models, args.out, source=args.checkpoint)
    if not args.no_check:
        check_bundle(models, args.out)
    if not args.no_refine:
        manifest = add_refine_graphs(args.out, check=not args.no_check)
    size = sum(p.stat().st_size for p in args.out.iterdir()) / 1e6
    print(f"wrote {args.out} ({size:.1f} MB), fingerprint {manifest['fingerprint']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
