"""The refine-aware training probe (experiments/refine_aware.py) on a tiny random checkpoint: its batched
refinement is the per-task refinement, a training step changes the hypermodel, and the comparison runs."""

import json

import torch

from experiments import refine_aware
from hypert5 import checkpoint
from hypert5.presets import random_models
from hypert5.train.evaluate import tune

DEMOS = [
    [("Ada Lovelace", "Lovelace, A."), ("Grace Hopper", "Hopper, G.")],
    [("2024-01-05", "05/01/2024"), ("1999-12-31", "31/12/1999"), ("2001-07-04", "04/07/2001")],
]


def test_batched_refinement_is_each_tasks_own() -> None:
    models = random_models("tiny")
    with torch.no_grad():
        start = models.hyper["lora"](*refine_aware.contexts(models, DEMOS))
    batched = refine_aware.refine(models, start, DEMOS, 3)
    for i, demos in enumerate(DEMOS):
        alone = tune(models.downstream, {k: v[i : i + 1] for k, v in start.items()}, demos, 3, refine_aware.REFINE_LR)
        for name in alone:
            assert torch.allclose(batched[name][i : i + 1], alone[name], atol=1e-6), (i, name)


def test_training_changes_the_hypermodel_and_the_comparison_runs(tmp_path, capsys) -> None:
    start = tmp_path / "start"
    checkpoint.save(start, random_models("tiny"))
    out = tmp_path / "trained"
    small = ["--episodes", "2", "--queries", "1", "--inner", "2", "--threads", "1"]
    refine_aware.main(["--checkpoint", str(start), "--out", str(out), "--steps", "2", *small])
    before, after = checkpoint.load(start).hyper["lora"], checkpoint.load(out).hyper["lora"]
    changed = [
        n for (n, a), (_, b) in zip(before.state_dict().items(), after.state_dict().items()) if not torch.equal(a, b)
    ]
    assert changed, "two training steps left the hypermodel unchanged"
    assert json.loads((out / "refine_aware.json").read_text())["steps_done"] == 2
    capsys.readouterr()
    refine_aware.main(
        ["--eval", str(start), str(out), "--eval-steps", "1", "--eval-tasks-per-family", "1", "--threads", "1"]
    )
    result = json.loads(capsys.readouterr().out.split("\n", 2)[-1])
    assert set(result) == {str(start), str(out)}
    assert all(0 <= v <= 100 for r in result.values() for v in r.values())
