"""PEFT prefix tuning to and from the service, on a bundle with PEFT prefixes (preset ``tiny-peft``).

The bundle is exported into a temporary folder (random weights; prefixes with ``attention: "peft"``)
and served by the real service. The PEFT side is transformers' T5 from the bundle's
downstream.safetensors with peft's ``PrefixTuningConfig``, run through the PeftModel's forward (what
peft trains with). Greedy decodes must agree token for token: a hypermodel prefix exported to PEFT, the
same after fine-tuning with peft and importing back, and a PEFT adapter in peft's own default layout
(``num_layers`` = L, so layers l and l + L/2 share a prefix) with fewer virtual tokens than the bundle.
Not ``PeftModel.generate``: with peft 0.21.2 and transformers 5.24 it drops the prefix (transformers
passes its own ``cache`` and ignores peft's ``past_key_values``; measured, its decodes equal the base
model's), see training/README.md "Adapters and HF PEFT". About 30-50 s on two cores.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from service import running_service
from test_peft_roundtrip import EXAMPLES, KEY, MAX_TOKENS, PROMPTS, call, parameters, run_cli

peft = pytest.importorskip("peft")

from hypert5.export import export_bundle  # noqa: E402
from hypert5.ort_runtime import OrtBundle  # noqa: E402
from hypert5.peft_interop import convert  # noqa: E402
from hypert5.peft_interop.base_model import greedy_ids, load_base_model, read_manifest  # noqa: E402
from hypert5.presets import random_models  # noqa: E402
from hypert5.tokenizer import from_spec  # noqa: E402


class Bundle:
    def __init__(self, path: Path):
        self.path = path
        self.manifest = read_manifest(path)
        self.tokenizer = from_spec(self.manifest["tokenizer"], path)
        self.ort = OrtBundle(path)

    def peft_ids(self, model) -> list[list[int]]:
        eos = self.manifest["special_ids"]["eos"]
        return [greedy_ids(model, self.manifest, self.tokenizer.encode(p) + [eos], MAX_TOKENS) for p in PROMPTS]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Bundle:
    out = tmp_path_factory.mktemp("tiny-peft") / "bundle"
    export_bundle(random_models("tiny-peft"), out, log=lambda _: None)
    return Bundle(out)


@pytest.fixture(scope="module")
def service(bundle):
    with running_service(bundle.path, env={"API_KEYS": KEY}) as s:
        yield s


def completion(service, model: str, prompt: str) -> tuple[str, int, str]:
    res = call(
        service,
        "POST",
        "/v1/completions",
        {"model": model, "prompt": prompt, "max_tokens": MAX_TOKENS, "temperature": 0},
    )
    return res["choices"][0]["text"], res["usage"]["completion_tokens"], res["choices"][0]["finish_reason"]


def assert_same_decodes(bundle: Bundle, service, model_id: str, peft_model) -> list[list[int]]:
    ids = bundle.peft_ids(peft_model)
    adapter = {k: v.numpy() for k, v in parameters(service, model_id).items()}
    assert bundle.ort.greedy(PROMPTS, [adapter] * len(PROMPTS), MAX_TOKENS) == ids
    want = [(bundle.tokenizer.decode(r), len(r), "length" if len(r) == MAX_TOKENS else "stop") for r in ids]
    assert [completion(service, model_id, p) for p in PROMPTS] == want
    return ids


@pytest.fixture(scope="module")
def prefix_id(service) -> str:
    return call(service, "POST", "/v1/adapters", {"examples": EXAMPLES, "kind": "prefix"})["id"]


@pytest.fixture(scope="module")
def exported(bundle, service, prefix_id, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("peft-prefix") / "exported"
    from hypert5.peft_interop import cli

    assert (
        cli.main(
            [
                "export",
                "--url",
                service.url,
                "--api-key",
                KEY,
                "--adapter",
                prefix_id,
                "--bundle",
                str(bundle.path),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return out


def test_bundle_declares_peft_prefixes_on_the_decoder_self_attention(bundle) -> None:
    kind = bundle.manifest["adapters"]["kinds"]["prefix"]
    assert kind["attention"] == "peft"
    assert [t["name"] for t in kind["tensors"]] == [
        "prefix.decoder.self.key",
        "prefix.decoder.self.value",
        "prefix.decoder.self.mask",
    ]


def test_exported_prefix_loads_in_peft_and_decodes_like_the_service(bundle, service, prefix_id, exported) -> None:
    config = json.loads((exported / "adapter_config.json").read_text())
    dims, positions = bundle.manifest["dims"], bundle.manifest["adapters"]["kinds"]["prefix"]["num_positions"]
    assert (config["peft_type"], config["task_type"], config["num_virtual_tokens"]) == (
        "PREFIX_TUNING",
        "SEQ_2_SEQ_LM",
        positions,
    )
    assert config["num_layers"] == 2 * dims["num_decoder_layers"]  # every layer its own prefix (convert's docstring)
    state, _ = convert.load_peft(exported)
    native = parameters(service, prefix_id)
    back = convert.peft_to_native(state, config, bundle.manifest)
    assert back.keys() == native.keys() and all(torch.equal(back[k], native[k]) for k in native)

    model = peft.PeftModel.from_pretrained(load_base_model(bundle.path), str(exported)).eval()
    ids = assert_same_decodes(bundle, service, prefix_id, model)
    assert ids != bundle.peft_ids(load_base_model(bundle.path))  # the prefix changes the decodes


def test_tune_prefix_with_peft_then_import(bundle, service, exported, tmp_path, capsys) -> None:
    examples = tmp_path / "examples.jsonl"
    examples.write_text("".join(json.dumps(e) + "\n" for e in EXAMPLES))
    tuned = tmp_path / "tuned"
    code, _, err = run_cli(
        capsys,
        "tune",
        "--bundle",
        bundle.path,
        "--adapter",
        exported,
        "--examples",
        examples,
        "--steps",
        6,
        "--lr",
        3e-2,
        "--batch-size",
        3,
        "--out",
        tuned,
    )
    assert code == 0, err
    before, _ = convert.load_peft(exported)
    after, _ = convert.load_peft(tuned)
    assert not torch.equal(after[convert.PROMPT_EMBEDDINGS], before[convert.PROMPT_EMBEDDINGS])

    code, out, err = run_cli(
        capsys, "import", "--url", service.url, "--api-key", KEY, "--adapter", tuned, "--bundle", bundle.path
    )
    assert code == 0, err
    new_id = out.strip()
    assert call(service, "GET", f"/v1/adapters/{new_id}")["kind"] == "prefix"
    model = peft.PeftModel.from_pretrained(load_base_model(bundle.path), str(tuned)).eval()
    ids = assert_same_decodes(bundle, service, new_id, model)
    assert ids != bundle.peft_ids(peft.PeftModel.from_pretrained(load_base_model(bundle.path), str(exported)))


def test_peft_default_layout_with_fewer_virtual_tokens_imports_exactly(bundle, service, tmp_path, capsys) -> None:
    torch.manual_seed(5)
    config = peft.PrefixTuningConfig(task_type="SEQ_2_SEQ_LM", num_virtual_tokens=3)  # peft's defaults otherwise
    model = peft.get_peft_model(load_base_model(bundle.path), config)
    with torch.no_grad():
        model.prompt_encoder["default"].embedding.weight.normal_(0.0, 1.0)
    model.save_pretrained(str(tmp_path / "p3"))
    state, saved = convert.load_peft(tmp_path / "p3")
    assert saved["num_layers"] == bundle.manifest["dims"]["num_decoder_layers"]  # the shared-layer layout
    native = convert.peft_to_native(state, saved, bundle.manifest)
    assert native["prefix.decoder.self.mask"].tolist() == [0.0, 1.0, 1.0, 1.0]

    code, out, err = run_cli(
        capsys, "import", "--url", service.url, "--api-key", KEY, "--adapter", tmp_path / "p3", "--bundle", bundle.path
    )
    assert code == 0, err
    model.eval()
    ids = assert_same_decodes(bundle, service, out.strip(), model)
    assert ids != bundle.peft_ids(load_base_model(bundle.path))


def test_concurrent_prefix_requests_decode_as_alone(bundle, service, prefix_id) -> None:
    """Rows join the service's batch at different steps; each row's prefix positions follow its own length."""
    jobs = [(m, p) for p in PROMPTS for m in (prefix_id, bundle.manifest["name"])]
    alone = [completion(service, m, p) for m, p in jobs]
    with ThreadPoolExecutor(len(jobs)) as pool:
        together = list(pool.map(lambda job: completion(service, *job), jobs))
    assert together == alone


@pytest.mark.parametrize(
    "change, message",
    [
        ({"num_virtual_tokens": 5}, "1 to 4 positions"),
        ({"token_dim": 32}, "token_dim"),
        ({"num_layers": 1}, "at least 2 are needed"),
        ({"task_type": "CAUSAL_LM"}, "task_type"),
    ],
)
def test_mismatched_prefix_config_is_refused(bundle, exported, tmp_path, capsys, change, message) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "adapter_model.safetensors").write_bytes((exported / "adapter_model.safetensors").read_bytes())
    (bad / "adapter_config.json").write_text(
        json.dumps({**json.loads((exported / "adapter_config.json").read_text()), **change})
    )
    code, out, err = run_cli(capsys, "import", "--url", "http://127.0.0.1:9", "--adapter", bad, "--bundle", bundle.path)
    assert code == 1 and out == "" and message in err


def test_prefix_mask_with_holes_does_not_convert(bundle, service, prefix_id) -> None:
    native = parameters(service, prefix_id)
    native["prefix.decoder.self.mask"] = torch.tensor([1.0, 0.0, 1.0, 1.0])
    with pytest.raises(convert.InteropError, match="only masks that drop leading positions convert"):
        convert.native_to_peft(native, bundle.manifest)
