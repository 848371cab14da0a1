"""Rebuilding a checkpoint from a bundle gives back the exported weights, exactly."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from hypert5 import checkpoint
from hypert5.bundle import FORMAT_VERSION, BundleError, validate
from hypert5.export import export_bundle
from hypert5.presets import random_models
from hypert5.unbundle import main, unbundle

FIXTURE = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "tiny"


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


def test_a_version_1_bundle_is_refused_by_validate_and_upgraded_by_unbundle_then_export(tmp_path):
    """Version 1 differed only in the decoder's stacked inputs: ``validate`` names the upgrade, ``unbundle``
    reads it (checking the graphs both versions share, not the decoder), and exporting its checkpoint gives
    the version 2 bundle of the same model. The tiny fixture relabelled as version 1 stands in for one: the
    decoder is the one graph unbundle must not check or read."""
    old = tmp_path / "old"
    shutil.copytree(FIXTURE, old)
    manifest = json.loads((old / "manifest.json").read_text())
    (old / "manifest.json").write_text(json.dumps({**manifest, "format_version": 1}))
    with pytest.raises(BundleError, match="version 1 bundle .* hypert5.unbundle"):
        validate(old)
    lines: list[str] = []
    unbundle(old, tmp_path / "checkpoint", log=lines.append)
    checked = next(line for line in lines if line.startswith("max |torch - onnxruntime|"))
    assert "encoder" in checked and "hyper_lora" in checked and "decoder" not in checked
    upgraded = export_bundle(checkpoint.load(tmp_path / "checkpoint"), tmp_path / "new", log=lambda *_: None)
    assert upgraded["format_version"] == FORMAT_VERSION == 2
    assert upgraded["fingerprint"] == manifest["fingerprint"]
