"""The int8 experiment (experiments/quantize_decoder.py) runs end to end on the tiny bundle: it quantizes a
copy that still validates, never writes the bundle it reads, and times and scores both sides."""

import json
from pathlib import Path

from experiments import quantize_decoder
from hypert5.bundle import sha256_file

TINY = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "tiny"


def test_quantized_copy_validates_and_leaves_the_bundle_alone(tmp_path) -> None:
    before = {f.name: sha256_file(f) for f in TINY.iterdir()}
    copy = quantize_decoder.quantized_copy(TINY, tmp_path, ["decoder", "encoder"], per_channel=False)
    assert {f.name: sha256_file(f) for f in TINY.iterdir()} == before
    manifest = json.loads((copy / "manifest.json").read_text())
    original = json.loads((TINY / "manifest.json").read_text())
    assert manifest["fingerprint"] != original["fingerprint"]
    for name in ("decoder.onnx", "encoder.onnx"):
        assert manifest["files"][name] != original["files"][name]
        assert (copy / name).stat().st_size < (TINY / name).stat().st_size
    quantize_decoder.OrtBundle(copy)  # validates hashes, fingerprint and graph inputs as the service does


def test_experiment_reports_speed_and_accuracy(tmp_path) -> None:
    out = tmp_path / "result.json"
    small = ["--pairs", "3", "--sample-ms", "1", "--past", "2", "--tasks-per-family", "1", "--queries", "1"]
    quantize_decoder.main(["--bundle", str(TINY), *small, "--out", str(out)])
    result = json.loads(out.read_text())
    assert set(result["speed"]) == {"decoder batch 1", "decoder batch 16"}
    for cell in result["speed"].values():
        assert cell["int8_over_float32"]["p10"] <= cell["int8_over_float32"]["p50"] <= cell["int8_over_float32"]["p90"]
    assert result["held_out_k3"]["queries"] == 14  # one task of each held-out family, one query each
    everyday = json.loads(quantize_decoder.EVERYDAY.read_text())
    assert result["everyday"]["queries"] == sum(len(t["queries"]) for t in everyday)
    assert isinstance(result["keep"], bool)
