"""The refinement bench's PyTorch eager side (bench/pybench/refine_steps.py) runs the step the bundle's graph
runs: on the tiny fixture, from the hypermodel's adapter, its losses and trained tensors follow ONNX Runtime's
(hypert5.refine_runtime, the evaluation's refiner) within the exporter's tolerances, for both kinds. A bench
whose eager loop trained on another loss, batch or optimizer would compare speeds of different work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pybench.refine_steps import BATCH_KEYS, load_step, torch_steps

from hypert5.ort_runtime import OrtBundle
from hypert5.refine_check import LOSS_TOLERANCE, PARAM_TOLERANCE
from hypert5.refine_runtime import OrtRefiner

TINY = Path(__file__).resolve().parents[2] / "test/fixtures/tiny"
DEMOS = [("Ada Lovelace", "A. Lovelace"), ("Alan Turing", "A. Turing"), ("Grace Hopper", "G. Hopper")]
STEPS = 4


@pytest.fixture(scope="module")
def refiner() -> OrtRefiner:
    return OrtRefiner(OrtBundle(TINY))


@pytest.mark.parametrize("kind", ["lora", "prefix"])
def test_eager_steps_follow_the_step_graph(refiner: OrtRefiner, kind: str) -> None:
    torch.set_num_threads(1)
    lr = refiner.settings[kind]["learning_rate"]
    start = refiner.runtime.hyper(kind, DEMOS)
    batch = refiner.batch(DEMOS, "none")
    ort_first = next(refiner.run(kind, start, batch, [1])).loss
    ort_last = next(refiner.run(kind, start, batch, [STEPS]))
    eager = torch_steps(load_step(TINY, kind), {k: torch.from_numpy(batch[k]) for k in BATCH_KEYS}, start, STEPS, lr)
    assert len(eager["ms"]) == STEPS
    assert abs(eager["loss_first"] - ort_first) <= LOSS_TOLERANCE
    assert abs(eager["loss_last"] - ort_last.loss) <= LOSS_TOLERANCE
    moved = sum(float(((ort_last.adapter[n] - start[n]) ** 2).sum()) for n in eager["params"]) ** 0.5
    apart = sum(float(((ort_last.adapter[n] - eager["params"][n]) ** 2).sum()) for n in eager["params"]) ** 0.5
    assert moved > 0 and apart / moved <= PARAM_TOLERANCE, (apart, moved)
    assert all(np.isfinite(p).all() for p in eager["params"].values())
