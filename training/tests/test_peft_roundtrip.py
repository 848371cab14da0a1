"""Adapters to HF PEFT and back, against the real service on the tiny bundle (hypert5.peft_interop).

The PEFT side runs transformers' T5ForConditionalGeneration built from the bundle's
downstream.safetensors; the service runs the ONNX graphs. Greedy decodes must agree token for token
(text, token count and finish reason of every completion at temperature 0): without an adapter, with a
hypermodel LoRA exported to PEFT, after fine-tuning it with peft and importing it back, and for a PEFT
adapter of a smaller rank and another alpha. Prefix adapters and mismatched PEFT configs are refused.
About 20-40 s on two cores.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
import torch
from service import TINY_BUNDLE, running_service

peft = pytest.importorskip("peft")

from hypert5.ort_runtime import OrtBundle  # noqa: E402
from hypert5.peft_interop import cli, convert  # noqa: E402
from hypert5.peft_interop.base_model import greedy_ids, load_base_model, read_manifest  # noqa: E402
from hypert5.tokenizer import from_spec  # noqa: E402

KEY = "peft-key"
MAX_TOKENS = 12
PROMPTS = ["Ada Lovelace", "grace hopper", "2024-03-07", "Émilie du Châtelet"]
EXAMPLES = [
    {"input": "Ada Lovelace", "output": "Lovelace, A."},
    {"input": "Alan Turing", "output": "Turing, A."},
    {"input": "Grace Hopper", "output": "Hopper, G."},
]
MANIFEST = read_manifest(TINY_BUNDLE)
TOKENIZER = from_spec(MANIFEST["tokenizer"], TINY_BUNDLE)
ORT = OrtBundle(TINY_BUNDLE)


@pytest.fixture(scope="module")
def service():
    with running_service(TINY_BUNDLE, env={"API_KEYS": KEY}) as s:
        yield s


def call(service, method: str, path: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(
        service.url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def service_decodes(service, model: str) -> list[tuple[str, int, str]]:
    """(text, completion_tokens, finish_reason) per prompt at temperature 0."""
    out = []
    for prompt in PROMPTS:
        res = call(
            service,
            "POST",
            "/v1/completions",
            {"model": model, "prompt": prompt, "max_tokens": MAX_TOKENS, "temperature": 0},
        )
        out.append((res["choices"][0]["text"], res["usage"]["completion_tokens"], res["choices"][0]["finish_reason"]))
    return out


def parameters(service, adapter_id: str) -> dict[str, torch.Tensor]:
    req = urllib.request.Request(
        f"{service.url}/v1/adapters/{adapter_id}/parameters", headers={"Authorization": f"Bearer {KEY}"}
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return convert.read_safetensors_bytes(r.read())[0]


def peft_ids(model) -> list[list[int]]:
    eos = MANIFEST["special_ids"]["eos"]
    return [greedy_ids(model, MANIFEST, TOKENIZER.encode(p) + [eos], MAX_TOKENS) for p in PROMPTS]


def as_completions(ids: list[list[int]]) -> list[tuple[str, int, str]]:
    return [(TOKENIZER.decode(row), len(row), "length" if len(row) == MAX_TOKENS else "stop") for row in ids]


def assert_same_decodes(service, model_id: str, peft_model) -> list[list[int]]:
    """Token for token: the PEFT model's greedy ids equal ONNX Runtime's on the service's own graphs with the
    service's own adapter tensors (the API returns text, not ids), and the service's completions are
    exactly those ids' text, count and finish reason."""
    ids = peft_ids(peft_model)
    adapter = None if model_id == MANIFEST["name"] else {k: v.numpy() for k, v in parameters(service, model_id).items()}
    assert ORT.greedy(PROMPTS, [adapter] * len(PROMPTS), MAX_TOKENS) == ids
    assert service_decodes(service, model_id) == as_completions(ids)
    return ids


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def lora_id(service) -> str:
    return call(service, "POST", "/v1/adapters", {"examples": EXAMPLES, "kind": "lora"})["id"]


@pytest.fixture(scope="module")
def exported(service, lora_id, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("peft") / "exported"
    assert (
        cli.main(
            [
                "export",
                "--url",
                service.url,
                "--api-key",
                KEY,
                "--adapter",
                lora_id,
                "--bundle",
                str(TINY_BUNDLE),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return out


def test_base_model_from_the_bundle_decodes_like_the_service_without_adapter(service) -> None:
    ids = assert_same_decodes(service, MANIFEST["name"], load_base_model(TINY_BUNDLE))
    assert sum(map(len, ids)) > len(PROMPTS)  # the random model says something


def test_exported_lora_loads_in_peft_and_decodes_like_the_service(service, lora_id, exported) -> None:
    config = json.loads((exported / "adapter_config.json").read_text())
    kind = MANIFEST["adapters"]["kinds"]["lora"]
    assert config["peft_type"] == "LORA" and config["task_type"] == "SEQ_2_SEQ_LM"
    assert (config["r"], config["lora_alpha"], config["target_modules"]) == (kind["rank"], kind["alpha"], ["q", "v"])
    assert (config["lora_dropout"], config["bias"], config["base_model_name_or_path"]) == (
        0.0,
        "none",
        MANIFEST["name"],
    )
    state, _ = convert.load_peft(exported)
    assert "base_model.model.decoder.block.1.layer.1.EncDecAttention.v.lora_B.weight" in state
    assert len(state) == 2 * 2 * (MANIFEST["dims"]["num_layers"] + 2 * MANIFEST["dims"]["num_decoder_layers"])

    # The conversion is exact both ways: back to native gives the service's tensors bit for bit.
    native = parameters(service, lora_id)
    back = convert.peft_to_native(state, config, MANIFEST)
    assert back.keys() == native.keys() and all(torch.equal(back[k], native[k]) for k in native)

    model = peft.PeftModel.from_pretrained(load_base_model(TINY_BUNDLE), str(exported))
    ids = assert_same_decodes(service, lora_id, model)
    assert ids != peft_ids(load_base_model(TINY_BUNDLE))  # the adapter changes the decodes


def test_tune_with_peft_then_import_decodes_like_the_tuned_model(service, exported, tmp_path, capsys) -> None:
    examples = tmp_path / "examples.jsonl"
    examples.write_text(
        "".join(json.dumps(e) + "\n" for e in EXAMPLES + [{"input": "Marie Curie", "output": "Curie, M."}])
    )
    tuned = tmp_path / "tuned"
    code, _, err = run_cli(
        capsys,
        "tune",
        "--bundle",
        TINY_BUNDLE,
        "--adapter",
        exported,
        "--examples",
        examples,
        "--steps",
        6,
        "--lr",
        1e-2,
        "--batch-size",
        4,
        "--out",
        tuned,
    )
    assert code == 0, err
    before, config = convert.load_peft(exported)
    after, tuned_config = convert.load_peft(tuned)
    assert after.keys() == before.keys()
    assert all(not torch.equal(after[k], before[k]) for k in after if "lora_A" in k)  # every A moved
    assert (tuned_config["r"], tuned_config["lora_alpha"]) == (config["r"], config["lora_alpha"])

    code, out, err = run_cli(
        capsys, "import", "--url", service.url, "--api-key", KEY, "--adapter", tuned, "--bundle", TINY_BUNDLE
    )
    assert code == 0, err
    new_id = out.strip()
    assert new_id.startswith("ad-") and call(service, "GET", f"/v1/adapters/{new_id}")["kind"] == "lora"
    model = peft.PeftModel.from_pretrained(load_base_model(TINY_BUNDLE), str(tuned))
    ids = assert_same_decodes(service, new_id, model)
    assert ids != peft_ids(
        peft.PeftModel.from_pretrained(load_base_model(TINY_BUNDLE), str(exported))
    )  # tuning mattered


def test_smaller_rank_and_other_alpha_are_padded_and_folded_exactly(service, tmp_path, capsys) -> None:
    torch.manual_seed(3)
    config = peft.LoraConfig(
        task_type="SEQ_2_SEQ_LM",
        r=2,
        lora_alpha=5,
        target_modules=["q", "v"],
        lora_dropout=0.0,
        init_lora_weights=False,
    )  # random A and B: a visible, non-trivial adapter
    model = peft.get_peft_model(load_base_model(TINY_BUNDLE), config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.mul_(4.0)
    model.save_pretrained(str(tmp_path / "r2"), save_embedding_layers=False)
    state, saved = convert.load_peft(tmp_path / "r2")
    native = convert.peft_to_native(state, saved, MANIFEST)
    rank = MANIFEST["adapters"]["kinds"]["lora"]["rank"]
    assert native["lora.encoder.self.q.a"].shape[-1] == rank and not native["lora.encoder.self.q.a"][..., 2:].any()

    code, out, err = run_cli(
        capsys, "import", "--url", service.url, "--api-key", KEY, "--adapter", tmp_path / "r2", "--bundle", TINY_BUNDLE
    )
    assert code == 0, err
    model.eval()
    ids = assert_same_decodes(service, out.strip(), model)
    assert ids != peft_ids(load_base_model(TINY_BUNDLE))


def test_prefix_adapter_export_is_refused_with_the_reason(service, tmp_path, capsys) -> None:
    prefix_id = call(service, "POST", "/v1/adapters", {"examples": EXAMPLES, "kind": "prefix"})["id"]
    code, _, err = run_cli(
        capsys,
        "export",
        "--url",
        service.url,
        "--api-key",
        KEY,
        "--adapter",
        prefix_id,
        "--bundle",
        TINY_BUNDLE,
        "--out",
        tmp_path / "p",
    )
    assert code == 1 and convert.PREFIX_REFUSAL in err and "gated" in err
    assert not (tmp_path / "p").exists()
    prefix_tensors = {f"prefix.encoder.self.{p}": torch.zeros(1) for p in ("key", "value", "gate")}
    with pytest.raises(convert.InteropError, match="prefix adapters cannot be converted"):
        convert.native_to_peft(prefix_tensors, MANIFEST)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"target_modules": ["q", "k", "v"]}, "target_modules"),
        ({"r": 8}, "larger rank"),
        ({"use_dora": True}, "use_dora"),
        ({"bias": "all"}, "bias"),
        ({"peft_type": "PREFIX_TUNING"}, "gated"),
    ],
)
def test_mismatched_peft_config_is_refused(exported, tmp_path, capsys, change, message) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "adapter_model.safetensors").write_bytes((exported / "adapter_model.safetensors").read_bytes())
    config = {**json.loads((exported / "adapter_config.json").read_text()), **change}
    (bad / "adapter_config.json").write_text(json.dumps(config))
    code, out, err = run_cli(capsys, "import", "--url", "http://127.0.0.1:9", "--adapter", bad, "--bundle", TINY_BUNDLE)
    assert code == 1 and out == "" and message in err


def test_adapter_keys_of_another_model_are_refused(exported) -> None:
    state, config = convert.load_peft(exported)
    state.pop(next(k for k in state if ".block.1." in k))
    with pytest.raises(convert.InteropError, match="keys do not match"):
        convert.peft_to_native(state, config, MANIFEST)


def test_import_into_a_service_that_serves_another_bundle_is_refused(service, exported, tmp_path, capsys) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps({**MANIFEST, "fingerprint": "0123456789abcdef"}))
    code, out, err = run_cli(
        capsys, "import", "--url", service.url, "--api-key", KEY, "--adapter", exported, "--bundle", other
    )
    assert code == 1 and out == "" and "pass the bundle the service serves" in err
