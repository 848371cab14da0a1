"""The capacity ceiling experiment (experiments/ceiling.py) runs end to end on a tiny random run, scores
every held-out family in every setting, records a summary in the provenance and refuses a zero limit."""

import json

import pytest

from experiments import ceiling
from hypert5 import checkpoint
from hypert5.presets import random_models
from hypert5.train import evaluate
from hypert5.train.settings import record


@pytest.fixture
def run(tmp_path):
    """A run folder with random tiny models: the experiment needs a downstream and a LoRA hypermodel."""
    run = tmp_path / "run"
    checkpoint.save(run, random_models("tiny", seed=3))
    record(run, "stage2_finetune_lora", {"steps": 1})
    return run


def test_capacity_ceiling_reports_every_family(run) -> None:
    limits = ["--tasks-per-family", "1", "--extra", "3", "--queries", "1", "--steps", "1", "--batch", "2"]
    ceiling.main(["--run", str(run), *limits, "--threads", "1"])
    result = json.loads((run / "ceiling_lora.json").read_text())
    assert result["split"] == "val" and result["shots"] == 3 and result["extra"] == 3
    assert set(result["exact_match_percent"]) == {"hyper", "ceiling_random_init", "ceiling_hyper_init"}
    assert set(result["per_family"]) == set(result["families"]) == set(evaluate.split_families("val", "tokens"))
    stages = json.loads((run / "hypert5.json").read_text())["provenance"]["stages"]
    assert stages["ceiling_lora"]["steps"] == 1 and "per_family" not in stages["ceiling_lora"]
    for flag in ("--batch", "--queries"):
        with pytest.raises(SystemExit):  # argparse names the limit: "0 is below the minimum of 1"
            ceiling.main(["--run", str(run), flag, "0"])
