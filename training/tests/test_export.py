"""ONNX export and the bundle contract: parity with PyTorch, golden decodes, validation errors."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import REPO
from safetensors.torch import load_file

from hypert5.bundle import BundleError, validate
from hypert5.export import check_bundle, downstream_hf_diff, export_bundle, max_graph_diff
from hypert5.golden import run_case
from hypert5.ort_runtime import OrtBundle
from hypert5.presets import random_models
from hypert5.tokenizer import ByteTokenizer

FIXTURE = REPO / "test" / "fixtures" / "tiny"
SHIPPED = REPO / "models" / "default"


def assert_golden_decodes(bundle: Path) -> list[dict]:
    """ONNX Runtime decodes each golden case exactly as PyTorch did at export time."""
    runtime = OrtBundle(bundle)
    cases = json.loads((bundle / "golden.json").read_text())["cases"]
    for case in cases:
        adapter = None
        if case["adapter"]:
            adapter = runtime.hyper(
                case["adapter"]["kind"], [(e["input"], e["output"]) for e in case["adapter"]["examples"]]
            )
        assert runtime.greedy([case["input"]], [adapter], case["max_new_tokens"])[0] == case["token_ids"], case["name"]
    return cases


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory) -> tuple:
    models = random_models("tiny")
    out = tmp_path_factory.mktemp("bundle") / "tiny"
    export_bundle(models, out, log=lambda *_: None)
    return models, out


def test_every_graph_matches_pytorch_and_greedy_decodes_are_identical(tiny_bundle) -> None:
    models, out = tiny_bundle
    assert max(max_graph_diff(models, out).values()) <= 1e-4
    check_bundle(models, out, log=lambda *_: None)  # raises on any golden mismatch, alone or batched


def test_manifest_describes_the_graphs(tiny_bundle) -> None:
    _, out = tiny_bundle
    manifest = validate(out)
    assert set(manifest["graphs"]) == {
        "encoder",
        "decoder",
        "decoder_lora",
        "decoder_prefix",
        "hyper_lora",
        "hyper_prefix",
    }
    hyper_outputs = {io["name"] for io in manifest["graphs"]["hyper_prefix"]["outputs"]}
    assert hyper_outputs == {t["name"] for t in manifest["adapters"]["kinds"]["prefix"]["tensors"]}


def test_downstream_weights_are_a_listed_bundle_file_and_the_same_t5_in_transformers(tiny_bundle) -> None:
    """downstream.safetensors (PEFT interop): in `files` (so in the fingerprint), HF names, F32, same logits."""
    models, out = tiny_bundle
    manifest = validate(out)
    assert "downstream.safetensors" in manifest["files"]
    stored = load_file(str(out / "downstream.safetensors"))
    assert "lm_head.weight" in stored and "encoder.embed_tokens.weight" not in stored
    assert {t.dtype for t in stored.values()} == {torch.float32}
    assert downstream_hf_diff(models, out) <= 1e-4


def test_committed_fixture_is_valid_and_in_sync_with_the_code() -> None:
    """test/fixtures/tiny is what `python -m hypert5.export --random tiny` writes today."""
    models = random_models("tiny")
    for case in assert_golden_decodes(FIXTURE):
        assert run_case(models, case, ByteTokenizer(3)) == case["token_ids"], case["name"]
    stored = load_file(str(FIXTURE / "downstream.safetensors"))
    own = models.downstream.state_dict()
    assert stored.keys() == own.keys() and all(torch.equal(stored[k], own[k]) for k in own)


def test_shipped_model_is_valid_within_budget_and_decodes_its_goldens() -> None:
    """models/default: the service's default bundle (its PyTorch checkpoint is not in git; the goldens are)."""
    assert_golden_decodes(SHIPPED)
    assert sum(p.stat().st_size for p in SHIPPED.iterdir()) < 60e6
    assert json.loads((SHIPPED / "manifest.json").read_text())["provenance"]["stages"]


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(src, dst)
    return dst


def test_corrupt_graph_is_named(tiny_bundle, tmp_path) -> None:
    bundle = _copy(tiny_bundle[1], tmp_path)
    with (bundle / "decoder.onnx").open("r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02")
    with pytest.raises(BundleError, match="decoder.onnx: sha256"):
        validate(bundle)


def test_missing_graph_is_named(tiny_bundle, tmp_path) -> None:
    bundle = _copy(tiny_bundle[1], tmp_path)
    (bundle / "hyper_lora.onnx").unlink()
    with pytest.raises(BundleError, match="hyper_lora.onnx: listed in manifest.files but missing"):
        validate(bundle)


def test_manifest_that_lies_about_a_graph_is_refused(tiny_bundle, tmp_path) -> None:
    bundle = _copy(tiny_bundle[1], tmp_path)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["graphs"]["encoder"]["inputs"][0]["name"] = "tokens"
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="graphs.encoder.inputs"):
        validate(bundle)


def test_t5_small_shaped_random_config_exports(tmp_path) -> None:
    """About 60M parameters per T5; checks shapes and parity on the downstream graphs only (time)."""
    models = random_models("t5-small")
    out = tmp_path / "small"
    manifest = export_bundle(models, out, golden_inputs=[], log=lambda *_: None)
    assert manifest["dims"]["d_model"] == 512 and manifest["dims"]["num_layers"] == 6
    diffs = max_graph_diff(models, out)
    assert max(diffs.values()) <= 1e-4, diffs
    assert downstream_hf_diff(models, out) <= 1e-4  # tied embeddings and relu in transformers too


def test_transformers_checkpoint_with_its_tokenizer_exports(tmp_path) -> None:
    """A `save_pretrained` T5 folder with a tokenizer.json becomes a bundle that carries the tokenizer."""
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers import models as tok_models
    from transformers import T5ForConditionalGeneration

    from hypert5 import checkpoint
    from hypert5.config import T5Dims

    dims = T5Dims(vocab_size=64, d_model=32, d_kv=8, num_heads=4, d_ff=64, num_layers=1, num_decoder_layers=1)
    source = tmp_path / "hf-t5"
    T5ForConditionalGeneration(dims.to_hf()).save_pretrained(str(source))
    vocab = {
        "<pad>": 0,
        "</s>": 1,
        "<unk>": 2,
        **{w: i + 3 for i, w in enumerate("ada lovelace grace hopper , .".split())},
    }
    tokenizer = Tokenizer(tok_models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(source / "tokenizer.json"))
    models = checkpoint.load(source)
    out = tmp_path / "bundle"
    manifest = export_bundle(models, out, source=source, log=lambda *_: None)
    assert manifest["tokenizer"] == {"type": "tokenizers", "file": "tokenizer.json"}
    assert "tokenizer.json" in manifest["files"]
    check_bundle(models, out, log=lambda *_: None)


def test_export_into_a_bundle_folder_keeps_its_model_card_and_drops_stale_files(tiny_bundle, tmp_path) -> None:
    """A re-export replaces the model files, keeps the documents (*.md), and lists neither in manifest.files."""
    models, fresh = tiny_bundle
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "README.md").write_text("# the model card\n")
    (out / "tokenizer.json").write_text("{}")  # a byte-tokenizer model has none: left from another export
    (out / "old").mkdir()
    manifest = export_bundle(models, out, log=lambda *_: None)
    assert (out / "README.md").read_text() == "# the model card\n"
    assert not (out / "tokenizer.json").exists() and not (out / "old").exists()
    assert "README.md" not in manifest["files"]
    assert manifest["fingerprint"] == json.loads((fresh / "manifest.json").read_text())["fingerprint"]
