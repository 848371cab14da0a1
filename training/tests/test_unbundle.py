"""Rebuilding a checkpoint from a bundle gives back the exported weights, exactly."""

import pytest
import torch

from hypert5 import checkpoint
from hypert5.export import export_bundle
from hypert5.presets import random_models
from hypert5.unbundle import main, unbundle


@pytest.mark.parametrize("preset", ["tiny", "tiny-peft"])
def test_unbundle_returns_every_exported_weight(tmp_path, preset):
    original = random_models(preset, seed=3)
    export_bundle(original, tmp_path / "bundle", log=lambda *_: None)
    unbundle(tmp_path / "bundle", tmp_path / "checkpoint", log=lambda *_: None)
    rebuilt = checkpoint.load(tmp_path / "checkpoint")
    assert rebuilt.settings.to_json() | {"provenance": None} == original.settings.to_json() | {"provenance": None}
    assert rebuilt.settings.provenance["preset"] == preset
    pairs = [(original.downstream, rebuilt.downstream)]
    pairs += [(original.hyper[kind], rebuilt.hyper[kind]) for kind in ("lora", "prefix")]
    for want, got in pairs:
        got_state = got.state_dict()
        assert set(got_state) == set(want.state_dict())
        for name, tensor in want.state_dict().items():
            assert torch.equal(got_state[name], tensor), name


def test_unbundle_refuses_to_overwrite_a_checkpoint(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["--bundle", str(tmp_path), "--out", str(tmp_path / "taken")])
    assert exit_info.value.code == 2
    assert "exists" in capsys.readouterr().err


def test_unbundle_names_what_is_wrong_with_a_bundle(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--bundle", str(tmp_path), "--out", str(tmp_path / "checkpoint")])
    assert exit_info.value.code == 2
    assert "manifest.json: missing" in capsys.readouterr().err
    assert not (tmp_path / "checkpoint").exists()
