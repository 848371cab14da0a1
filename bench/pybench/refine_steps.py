"""PyTorch eager's side of the refinement bench (bench/refine.ts): the same Adam step as the bundle's
training-step graph, on the batch and starting adapter the TypeScript side sends, timed step by step.

  python bench/pybench/refine_steps.py --bundle DIR --kind lora --threads 1

One JSON command per line on stdin, one JSON answer per line on stdout (bench/children.ts startLineChild);
between commands it waits on stdin and uses no CPU, so its steps interleave one by one with the ONNX Runtime ones.

  {"cmd": "begin", "batch": {"rows", "src_len", "tgt_len", "input_ids", "attention_mask", "target_ids",
   "target_mask"}, "start": {name: base64 float32}, "learning_rate": x}
      a refinement from ``start`` with zero moments: ``{"ok": true}``
  {"cmd": "step"}
      its next eager step, timed here (the line protocol is not in the time): ``{"ms", "loss"}``
  {"cmd": "exit"}

The step is the one the graph was traced from (hypert5.refine_graph.TrainStep.loss: teacher forcing, the
masked mean cross-entropy, one adapter expanded over the rows), then ``loss.backward()`` and
``torch.optim.Adam.step()`` as the exporter's parity check runs it (hypert5.refine_check.torch_reference).
The frozen T5 is the bundle's own ``downstream.safetensors``, loaded as the exporter loads it.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "training") not in sys.path:
    sys.path.insert(0, str(ROOT / "training"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from hypert5.bundle import validate  # noqa: E402
from hypert5.export_refine import kind_specs, load_frozen  # noqa: E402
from hypert5.refine_graph import TrainStep  # noqa: E402

BATCH_KEYS = ("input_ids", "attention_mask", "target_ids", "target_mask")


def load_step(bundle: Path, kind: str) -> TrainStep:
    manifest = validate(bundle)
    return TrainStep(load_frozen(bundle, manifest), kind_specs(manifest, kind))


def batch_tensors(batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The TypeScript side's row-major batch as (rows, len) int64 tensors."""
    rows = batch["rows"]
    return {k: torch.tensor(batch[k], dtype=torch.int64).reshape(rows, -1) for k in BATCH_KEYS}


class EagerRefiner:
    """Adam from ``start`` (zero moments) on ``batch``, one eager step per ``step()`` call."""

    def __init__(self, step: TrainStep, batch: dict[str, torch.Tensor], start: dict[str, np.ndarray], lr: float):
        self.step_fn = step
        self.params = {s.name: torch.from_numpy(start[s.name].copy()).requires_grad_(True) for s in step.trained}
        self.fixed = {s.name: torch.from_numpy(start[s.name].copy()) for s in step.fixed}
        self.optimizer = torch.optim.Adam(self.params.values(), lr=lr)
        self.args = tuple(batch[k] for k in BATCH_KEYS)

    def step(self) -> tuple[float, float]:
        """One step: its wall time (ms) and its loss (measured before the update, as the graph reports it)."""
        t = time.perf_counter()
        loss = self.step_fn.loss(*self.args, {**self.params, **self.fixed})
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return 1000 * (time.perf_counter() - t), float(loss.detach())


def torch_steps(
    step: TrainStep, batch: dict[str, torch.Tensor], start: dict[str, np.ndarray], steps: int, lr: float
) -> dict[str, Any]:
    """``steps`` steps from ``start``: per-step times, the first and last losses, the trained tensors."""
    refiner = EagerRefiner(step, batch, start, lr)
    times, losses = zip(*(refiner.step() for _ in range(steps)))
    return {
        "ms": list(times),
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "params": {k: p.detach().numpy() for k, p in refiner.params.items()},
    }


def _f32(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype=np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--kind", default="lora")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (the service runs the graph on 1)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    step = load_step(args.bundle, args.kind)
    shapes = {s.name: s.shape for s in step.trained + step.fixed}

    def answer(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    answer({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()})
    refiner: EagerRefiner | None = None
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            if cmd["cmd"] == "exit":
                break
            if cmd["cmd"] == "begin":
                start = {k: _f32(v).reshape(shapes[k]) for k, v in cmd["start"].items()}
                refiner = EagerRefiner(step, batch_tensors(cmd["batch"]), start, cmd["learning_rate"])
                answer({"ok": True})
            elif cmd["cmd"] == "step":
                if refiner is None:
                    raise ValueError("step before begin")
                ms, loss = refiner.step()
                answer({"ms": ms, "loss": loss})
            else:
                raise ValueError(f"unknown cmd {cmd['cmd']!r}")
        except Exception as e:  # the driver reports it and stops the bench
            answer({"error": f"{type(e).__name__}: {e}"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
