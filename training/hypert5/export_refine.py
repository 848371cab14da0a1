"""Add the training-step graphs (models/README.md, "Refinement graphs") to a bundle, leaving its other
files byte for byte as they are.

    python -m hypert5.export_refine --bundle ../models/default
    python -m hypert5.export_refine --bundle ../test/fixtures/tiny

The frozen downstream comes from the bundle's own ``downstream.safetensors``. Each graph is checked
against PyTorch (``refine_check``) before anything in the bundle is touched, after the rewrites of
``refine_simplify`` (the same values from fewer nodes; ``--as-traced`` leaves them out); then the graphs, their
shared weights file, ``graphs.train_step_<kind>`` and ``refine`` are written and the manifest's
``files`` and ``fingerprint`` updated. Tracing and export take a few minutes per kind on two cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import onnxruntime as ort
from safetensors.torch import load_file

from .adapters import TensorSpec
from .bundle import (
    DOWNSTREAM_FILE,
    REFINE_DEFAULTS,
    REFINE_GRAPH_FILES,
    REFINE_WEIGHTS_FILE,
    BundleError,
    dims_from_manifest,
    fingerprint,
    sha256_file,
    validate,
)
from .refine import ADAM_BETA1, ADAM_BETA2, ADAM_EPS
from .refine_check import check_step_graph
from .refine_graph import TrainStep, export_step, share_weights
from .t5 import T5, load_hf_state_dict


def load_frozen(bundle_dir: Path, manifest: dict) -> T5:
    """The bundle's downstream T5, frozen, with the LoRA scale of its manifest."""
    lora = manifest["adapters"]["kinds"]["lora"]
    t5 = T5(dims_from_manifest(manifest), lora_scale=lora["alpha"] / lora["rank"])
    load_hf_state_dict(t5, load_file(str(bundle_dir / DOWNSTREAM_FILE)))
    return t5.eval()


def kind_specs(manifest: dict, kind: str) -> list[TensorSpec]:
    return [TensorSpec(t["name"], tuple(t["shape"])) for t in manifest["adapters"]["kinds"][kind]["tensors"]]


def _io(entries) -> list[dict]:
    return [{"name": n, "dtype": t, "shape": s} for n, t, s in entries]


def refine_manifest(manifest: dict, steps: dict[str, TrainStep]) -> dict:
    """The manifest with the step graphs' entries and the ``refine`` defaults (files not yet updated)."""
    graphs = {name: g for name, g in manifest["graphs"].items() if name not in REFINE_GRAPH_FILES}
    for kind, step in steps.items():
        name = f"train_step_{kind}"
        graphs[name] = {"file": REFINE_GRAPH_FILES[name], "inputs": _io(step.inputs), "outputs": _io(step.outputs)}
    refine = {
        "optimizer": {"name": "adam", "beta1": ADAM_BETA1, "beta2": ADAM_BETA2, "eps": ADAM_EPS},
        "weights_file": REFINE_WEIGHTS_FILE,
        "kinds": {kind: {"graph": f"train_step_{kind}", **REFINE_DEFAULTS[kind]} for kind in steps},
    }
    out = {}
    for key, value in manifest.items():  # keep the manifest's key order; refine goes before provenance
        if key == "refine":
            continue
        if key == "provenance":
            out["refine"] = refine
        out[key] = graphs if key == "graphs" else value
    out.setdefault("refine", refine)
    return out


def add_refine_graphs(bundle_dir: Path, log=print, check: bool = True, simplified: bool = True) -> dict:
    """Export, check and add the step graphs of every adapter kind (simplified by ``refine_simplify``
    unless ``simplified`` is False); returns the validated manifest."""
    manifest = validate(bundle_dir)
    t5 = load_frozen(bundle_dir, manifest)
    kinds = [k for k in ("lora", "prefix") if k in manifest["adapters"]["kinds"]]
    steps = {kind: TrainStep(t5, kind_specs(manifest, kind)) for kind in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        raw, ready = Path(tmp) / "raw", Path(tmp) / "ready"
        raw.mkdir()
        ready.mkdir()
        for kind, step in steps.items():
            log(f"tracing and exporting train_step_{kind}")
            rewrites = export_step(step, raw / REFINE_GRAPH_FILES[f"train_step_{kind}"], simplified)
            if rewrites:
                log(f"train_step_{kind} simplified: " + ", ".join(f"{k} {v}" for k, v in rewrites.items()))
        sizes = share_weights({p.name: p for p in raw.iterdir()}, ready, REFINE_WEIGHTS_FILE)
        log("sizes: " + ", ".join(f"{name} {size / 1e6:.2f} MB" for name, size in sizes.items()))
        if check:
            for kind, step in steps.items():
                session = ort.InferenceSession(
                    str(ready / REFINE_GRAPH_FILES[f"train_step_{kind}"]), providers=["CPUExecutionProvider"]
                )
                worst = check_step_graph(session, step, kind)
                log(f"train_step_{kind} vs PyTorch: " + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))
        for f in ready.iterdir():
            shutil.copyfile(f, bundle_dir / f.name)
            (bundle_dir / f.name).chmod(0o644)
    # Read again: the export takes minutes, and the manifest is the one file other tools edit in place.
    updated = refine_manifest(json.loads((bundle_dir / "manifest.json").read_text()), steps)
    files = dict(updated["files"])
    for name in [*[REFINE_GRAPH_FILES[f"train_step_{k}"] for k in steps], REFINE_WEIGHTS_FILE]:
        files[name] = sha256_file(bundle_dir / name)
    updated["files"] = {name: files[name] for name in sorted(files)}
    updated["fingerprint"] = fingerprint(updated["files"])
    (bundle_dir / "manifest.json").write_text(json.dumps(updated, indent=2) + "\n")
    return validate(bundle_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--no-check", action="store_true", help="skip the PyTorch/ONNX Runtime parity check")
    parser.add_argument(
        "--as-traced", action="store_true", help="write the graphs as exported, without hypert5.refine_simplify"
    )
    args = parser.parse_args(argv)
    try:
        manifest = add_refine_graphs(args.bundle, check=not args.no_check, simplified=not args.as_traced)
    except BundleError as e:
        parser.error(str(e))
    size = sum(p.stat().st_size for p in args.bundle.iterdir()) / 1e6
    print(f"wrote {args.bundle} ({size:.1f} MB), fingerprint {manifest['fingerprint']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
