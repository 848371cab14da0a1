"""Interpolating a hypermodel between a run and its continuation: exact endpoints, the midpoint, and
a refusal with a message for every pair of runs that are not one model."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from hypert5 import checkpoint
from hypert5.presets import random_models
from hypert5.train.interpolate import main
from hypert5.train.settings import record


@pytest.fixture
def runs(tmp_path):
    """A base run and a continuation of it whose LoRA hypermodel moved (a finetune phase's output)."""
    models = random_models("tiny", seed=5)
    base, tuned = tmp_path / "base", tmp_path / "tuned"
    checkpoint.save(base, models)
    record(base, "stage2_finetune_lora", {"steps": 10})
    record(base, "evaluation", {"exact_match_percent": {"k=3": {"hyper_lora": 1.0}}})
    checkpoint.save(tuned, models)
    for stage, figures in json.loads((base / "hypert5.json").read_text())["provenance"]["stages"].items():
        record(tuned, stage, figures)
    record(tuned, "stage2g_finetune_lora", {"steps": 20, "programs": 0.4, "program_language": "chains"})
    moved = {name: t + 0.5 for name, t in load_file(str(base / "hyper_lora.safetensors")).items()}
    save_file(moved, str(tuned / "hyper_lora.safetensors"))
    return base, tuned


def run(base, tuned, alpha, out, *extra):
    return main(["--base", str(base), "--tuned", str(tuned), "--alpha", str(alpha), "--out", str(out), *extra])


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_interpolation_is_the_weighted_average_of_the_two_hypermodels(runs, tmp_path, alpha):
    base, tuned = runs
    assert run(base, tuned, alpha, tmp_path / "out") == 0
    a, b = load_file(str(base / "hyper_lora.safetensors")), load_file(str(tuned / "hyper_lora.safetensors"))
    got = load_file(str(tmp_path / "out" / "hyper_lora.safetensors"))
    for name in a:
        want = b[name] if alpha == 1.0 else a[name] if alpha == 0.0 else (a[name] + b[name]) / 2
        assert torch.allclose(got[name], want, atol=1e-6), name
    # the other kind and the downstream are the base's, and the result loads as a checkpoint
    for file in ("hyper_prefix.safetensors", "downstream.safetensors"):
        want, copied = load_file(str(base / file)), load_file(str(tmp_path / "out" / file))
        assert want.keys() == copied.keys() and all(torch.equal(want[name], copied[name]) for name in want), file
    checkpoint.load(tmp_path / "out")


def test_provenance_names_both_runs_and_drops_the_bases_evaluations(runs, tmp_path):
    base, tuned = runs
    run(base, tuned, 0.5, tmp_path / "out")
    stages = json.loads((tmp_path / "out" / "hypert5.json").read_text())["provenance"]["stages"]
    assert "evaluation" not in stages and stages["stage2_finetune_lora"] == {"steps": 10}
    info = stages["interpolate_lora"]
    assert info["alpha"] == 0.5 and info["base"] == str(base) and info["tuned"] == str(tuned)
    assert list(info["tuned_stages"]) == ["stage2g_finetune_lora"]


def refusal(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        run(*args)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_refuses_an_alpha_outside_0_1(runs, tmp_path, capsys):
    assert "invalid alpha=1.5: a weight in [0, 1]" in refusal(capsys, *runs, 1.5, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_refuses_to_overwrite(runs, tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    assert "exists" in refusal(capsys, *runs, 0.5, tmp_path / "taken")


def test_refuses_runs_with_different_downstreams(runs, tmp_path, capsys):
    base, tuned = runs
    state = load_file(str(tuned / "downstream.safetensors"))
    save_file({name: t + 1 for name, t in state.items()}, str(tuned / "downstream.safetensors"))
    assert "different downstream weights" in refusal(capsys, base, tuned, 0.5, tmp_path / "out")


def test_refuses_a_tuned_run_that_does_not_continue_the_base(runs, tmp_path, capsys):
    base, tuned = runs
    # the base gained a stage the tuned run never had: they went separate ways
    record(base, "stage2x_finetune_lora", {"steps": 5})
    assert "does not continue" in refusal(capsys, base, tuned, 0.5, tmp_path / "out")


def test_refuses_runs_of_different_settings(runs, tmp_path, capsys):
    base, tuned = runs
    data = json.loads((tuned / "hypert5.json").read_text())
    data["lora"]["alpha"] = 99.0
    (tuned / "hypert5.json").write_text(json.dumps(data))
    assert "differ in hypert5.json" in refusal(capsys, base, tuned, 0.5, tmp_path / "out")
