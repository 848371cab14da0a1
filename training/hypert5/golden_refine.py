"""Golden refinements: a fixed refine request on a bundle, run by the Python ONNX Runtime reference
(``refine_runtime.OrtRefiner``, the code the evaluation runs), for the service's cross-boundary parity test
(test/refine-parity.test.ts). Each tensor is recorded as the sha256 of its float32 little-endian bytes, so the
test asserts identical bytes, plus the losses of the first and last step.

    python -m hypert5.golden_refine ../test/fixtures/tiny ../test/fixtures/refine-golden-tiny.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from .ort_runtime import Adapter, OrtBundle
from .refine_runtime import OrtRefiner

_EXAMPLES = [
    {"input": "Ada Lovelace", "output": "Lovelace, A."},
    {"input": "Grace Hopper", "output": "Hopper, G."},
    {"input": "Alan Turing", "output": "Turing, A."},
]

# (kind, steps, learning_rate or None for the manifest's, augment): both kinds, both augmentations.
CASES = [("lora", 12, None, "none"), ("prefix", 12, None, "leave-one-out"), ("lora", 5, 0.01, "leave-one-out")]


def digests(adapter: Adapter) -> dict[str, str]:
    return {
        name: hashlib.sha256(np.ascontiguousarray(t, "<f4").tobytes()).hexdigest()
        for name, t in sorted(adapter.items())
    }


def golden(bundle_dir: Path) -> dict:
    runtime = OrtBundle(bundle_dir, threads=1)
    refiner = OrtRefiner(runtime)
    demos = [(e["input"], e["output"]) for e in _EXAMPLES]
    cases = []
    for kind, steps, lr, augment in CASES:
        parent = runtime.hyper(kind, demos)
        batch = refiner.batch(demos, augment)
        losses = []
        adapter = parent
        for checkpoint in refiner.run(kind, parent, batch, list(range(1, steps + 1)), learning_rate=lr):
            losses.append(checkpoint.loss)
            adapter = checkpoint.adapter
        refine = {"steps": steps, "augment": augment, **({"learning_rate": lr} if lr is not None else {})}
        cases.append(
            {
                "kind": kind,
                "examples": _EXAMPLES,
                "refine": refine,
                "parent_sha256": digests(parent),
                "refined_sha256": digests(adapter),
                "loss_first": losses[0],
                "loss_last": losses[-1],
            }
        )
    return {"bundle_fingerprint": runtime.manifest["fingerprint"], "cases": cases}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    args.out.write_text(json.dumps(golden(args.bundle), indent=1) + "\n")


if __name__ == "__main__":
    main()
