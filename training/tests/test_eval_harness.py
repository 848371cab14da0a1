"""The evaluation harness (hypert5.evaluation): metrics against hand-computed values, input fitting, the
offline harness on real sample data with the tiny random model, and the HTTP backend against the real
service on the same model (test/fixtures/tiny is ``random_models("tiny", 0)`` exported), which must give
identical per-task numbers and predictions."""

from __future__ import annotations

import hashlib
import http.server
import json
import shutil
import threading
import time
from pathlib import Path

import pytest
from service import ROOT, TINY_BUNDLE, running_service

from hypert5 import checkpoint
from hypert5.data import read_p3, read_sni
from hypert5.evaluation import (
    HttpBackend,
    Limits,
    ServiceError,
    TorchBackend,
    limits_from_path,
    main,
    metrics,
    p3_tasks,
    run,
    sni_examples,
    sni_tasks,
)
from hypert5.examples import HyperInputFormat
from hypert5.golden import run_case
from hypert5.presets import random_models
from hypert5.tokenizer import ByteTokenizer

SHARED = ROOT.parent / "shared" / "data"
FIXTURES = Path(__file__).parent / "fixtures" / "data"
P3_NAMES = ["glue_mrpc_equivalent", "common_gen_Given_concepts_type_1"]  # classification, generation
SNI_NAME = "task664_mmmlu_answer_generation_abstract_algebra"
KEY = "eval-key"


def p3_files() -> list[Path]:
    folder = SHARED / "p3-t0-sample" if SHARED.exists() else FIXTURES / "p3"
    return [folder / f"{name}.jsonl" for name in P3_NAMES]


def sni_file() -> Path:
    return (SHARED / "sni-sample" if SHARED.exists() else FIXTURES / "sni") / f"{SNI_NAME}.json"


# ---- metrics -----------------------------------------------------------------------------------------


def test_rouge_l_hand_computed():
    # LCS 3 of 6 prediction tokens and 3 reference tokens: P 1/2, R 1, F 2/3.
    assert metrics.rouge_l("the cat sat on the mat", "the cat sat") == pytest.approx(2 / 3)
    # LCS "a c" = 2: P 2/4, R 2/3, F = 2 PR / (P + R) = 4/7.
    assert metrics.rouge_l("a b c d", "a c e") == pytest.approx(4 / 7)
    # Porter stemming (as SNI's scorer): cats/cat, running/runs -> run; case and punctuation ignored.
    assert metrics.rouge_l("Cats, running!", "cat runs") == pytest.approx(1.0)
    assert metrics.rouge_l("B", ["A", "b"]) == pytest.approx(1.0)  # max over the acceptable outputs
    assert metrics.rouge_l("xyz", ["A", "b"]) == 0.0
    assert metrics.rouge_l("", "a") == 0.0


def test_exact_match_and_mean():
    assert metrics.exact_match("The  Cat!", "the cat") == 1.0
    assert metrics.exact_match("a cat", ["dog", "A cat."]) == 1.0
    assert metrics.exact_match("cats", "cat") == 0.0
    assert metrics.mean_percent([1.0, 0.0, 0.5, 0.5]) == 50.0
    assert metrics.mean_percent([]) is None


def test_choice_mapping():
    choices = ["equivalent", "not equivalent"]
    assert metrics.map_to_choice("  NOT   Equivalent ", choices) == "not equivalent"  # case/whitespace
    # No exact match: ROUGE-L F of "equivalent" is 0.4 (P 1/4, R 1), of "not equivalent" 2/3 (P 2/4, R 1).
    assert metrics.map_to_choice("not equivalent at all", choices) == "not equivalent"
    assert metrics.map_to_choice("yes no", ["no", "yes"]) == "no"  # tie (2/3 each): the earlier choice
    assert metrics.map_to_choice("\x17\x03", ["no", "yes"]) is None  # names no choice
    assert metrics.choice_accuracy("Equivalent.", "equivalent", choices) == 1.0
    assert metrics.choice_accuracy("\x17\x03", "no", ["no", "yes"]) == 0.0
    assert metrics.rank_choice([-3.0, -1.0, -1.0], ["a", "b", "c"]) == "b"


# ---- fitting inputs (both backends) ------------------------------------------------------------------


def limits(hyper_max: int = 40, encoder_max: int = 6, chars: int | None = 4096) -> Limits:
    return Limits(
        ByteTokenizer(), HyperInputFormat(max_tokens=hyper_max, max_examples=4), encoder_max, 8, max_example_chars=chars
    )


def test_fit_text_keeps_whole_characters():
    lim = limits()
    assert lim.fit_text("abc") == "abc"
    assert lim.fit_text("héllo wörld") == "héll"  # 5 bytes + eos = 6 tokens; é is 2 bytes
    assert lim.fit_text("ééé") == "éé"  # 4 bytes; a third é would need 6 + eos


def test_fit_examples():
    lim = limits()
    # "in: " + a*L + " out: x" + "\n" + "in: bb out: y" + eos = 26 + L tokens <= 40 -> L = 14.
    assert lim.fit_examples([("a" * 30, "x"), ("bb", "y")]) == [("a" * 14, "x"), ("bb", "y")]
    assert lim.fit_examples([("short", "x")]) == [("short", "x")]
    # Even empty inputs do not fit: outputs are cut, "in:  out: " + y*M + eos <= 20 -> M = 9.
    assert limits(hyper_max=20).fit_examples([("abc", "y" * 50)]) == [("", "y" * 9)]
    assert limits(chars=3).fit_examples([("abcdef", "uvwxyz")]) == [("abc", "uvw")]  # MAX_EXAMPLE_CHARS
    with pytest.raises(ValueError, match="max_examples"):
        lim.fit_examples([("a", "b")] * 5)


def test_sni_def_2pos_as_examples():
    task = read_sni(sni_file())[0]
    (x1, y1), (x2, y2) = task.positives[:2]
    fmt = HyperInputFormat()
    assert fmt.serialize(sni_examples(task)) == (
        f"in: Definition: {task.definition}\n\n{x1} out: {y1}\nin: {x2} out: {y2}"
    )


# ---- the offline harness -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A private copy of test/fixtures/tiny, checked against its manifest's sha256s (so that a concurrent
    re-export of the fixture cannot hand the service or the test a half-written bundle)."""
    dest = tmp_path_factory.mktemp("bundle") / "tiny"
    for _ in range(30):
        try:
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(TINY_BUNDLE, dest)
            files = json.loads((dest / "manifest.json").read_text())["files"]
            if all(hashlib.sha256((dest / f).read_bytes()).hexdigest() == h for f, h in files.items()):
                return dest
        except (OSError, ValueError):
            pass
        time.sleep(1)
    pytest.fail(f"{TINY_BUNDLE} does not match its manifest")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, bundle) -> Path:
    """A run folder of the tiny random model: the same weights as the service's test/fixtures/tiny."""
    models = random_models("tiny", 0)
    golden = json.loads((bundle / "golden.json").read_text())["cases"]
    assert [run_case(models, c, ByteTokenizer(3)) for c in golden] == [c["token_ids"] for c in golden], (
        "test/fixtures/tiny is no longer random_models('tiny', 0)"
    )
    folder = tmp_path_factory.mktemp("tiny-run")
    checkpoint.save(folder, models)
    return folder


@pytest.fixture(scope="module")
def torch_backend(run_dir) -> TorchBackend:
    return TorchBackend(run_dir, batch_size=4)


def tasks(backend, k: int = 3, max_instances: int = 4, seed: int = 0):
    templates = [t for f in p3_files() for t in read_p3(f)]
    return p3_tasks(templates, k, max_instances, seed, backend.limits.hyper_input) + sni_tasks(
        read_sni(sni_file()), max_instances
    )


def test_offline_harness(torch_backend):
    ts = tasks(torch_backend)
    assert [t.metric for t in ts] == ["accuracy", "rougeL", "rougeL"]
    mrpc = ts[0]
    assert mrpc.choices == ["equivalent", "not equivalent"] and len(mrpc.queries) == 4 and len(mrpc.examples) == 3
    assert not {x for x, _ in mrpc.examples} & {x for x, _ in mrpc.queries}  # demonstrations are not queries
    assert tasks(torch_backend, seed=1)[0].examples != mrpc.examples  # seeded
    assert len(ts[2].queries) == 4 and ts[2].queries[0][0] == read_sni(sni_file())[0].instances[0][0]

    result = run(torch_backend, ts, "prefix", 8, progress=False)
    rows = result["tasks"]
    assert [r["task"] for r in rows] == P3_NAMES + [SNI_NAME]
    for r in rows:
        assert r["n"] == 4 and len(r["predictions"]) == 4 and r["score"] == r[r["metric"]]
        assert 0.0 <= r["rougeL"] <= 100.0
    assert "rank_accuracy" in rows[0] and len(rows[0]["ranked"]) == 4 and "rank_accuracy" not in rows[1]
    assert rows[0]["truncated"]["queries"] > 0  # mrpc prompts are longer than the tiny model's 256 tokens
    assert set(result["averages"]) == {"p3", "sni"}
    assert result["averages"]["p3"]["accuracy"] == rows[0]["accuracy"]
    # Deterministic: the same numbers and predictions again.
    assert run(torch_backend, tasks(torch_backend), "prefix", 8, progress=False)["tasks"] == rows
    # Rank classification agrees with the scores it ranks.
    handle = torch_backend.adapt(mrpc.examples, "prefix")
    scores = torch_backend.score(handle, [q for q, _ in mrpc.queries], mrpc.choices)
    assert [metrics.rank_choice(s, mrpc.choices) for s in scores] == rows[0]["ranked"]
    # The raw Def+2Pos text (offline only) is a different hypermodel input.
    raw = run(torch_backend, ts[2:], "prefix", 8, raw_context=True, progress=False)["tasks"][0]
    assert raw["n"] == 4


def test_cli_offline(run_dir, tmp_path, capsys):
    out = tmp_path / "results.json"
    p3, sni = p3_files(), sni_file()
    assert (
        main(
            [
                "--p3",
                str(p3[0]),
                str(p3[1]),
                "--sni",
                str(sni),
                "--checkpoint",
                str(run_dir),
                "--kind",
                "lora",
                "--k",
                "3",
                "--max-instances",
                "2",
                "--seed",
                "0",
                "--max-new-tokens",
                "4",
                "--quiet",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert result["config"]["kind"] == "lora" and len(result["tasks"]) == 3
    assert SNI_NAME in capsys.readouterr().out


# ---- HTTP: identical to offline --------------------------------------------------------------------


def comparable(rows):
    """Rows without the offline-only rank classification."""
    return [{k: v for k, v in r.items() if k not in ("rank_accuracy", "ranked")} for r in rows]


def test_http_backend_matches_offline(torch_backend, bundle, run_dir, tmp_path):
    # MAX_PROMPTS=2 under batch_size 4: the first completion request is refused and the batch halves.
    with running_service(bundle, env={"API_KEYS": KEY, "MAX_PROMPTS": "2"}) as service:
        with pytest.raises(ServiceError) as refused:
            HttpBackend(service.url)  # no key
        assert refused.value.status == 401
        http = HttpBackend(service.url, KEY, manifest=bundle, batch_size=4)
        assert http.limits.hyper_input == torch_backend.limits.hyper_input
        assert http.limits.encoder_max_tokens == torch_backend.limits.encoder_max_tokens
        with pytest.raises(TypeError):
            http.adapt("raw context", "prefix")
        for kind, k in (("prefix", 5), ("lora", 3)):  # k=5: the mrpc examples are cut to fit 1024 tokens
            offline = run(torch_backend, tasks(torch_backend, k=k), kind, 12, progress=False)
            online = run(http, tasks(http, k=k), kind, 12, progress=False)
            assert comparable(online["tasks"]) == comparable(offline["tasks"]), kind
            assert {
                c: {m: v for m, v in a.items() if m != "rank_accuracy"} for c, a in offline["averages"].items()
            } == online["averages"]
            if kind == "prefix":
                assert online["tasks"][0]["truncated"]["examples"]
        assert http.batch_size == 2
        # Without the manifest: limits from GET /v1/models and the default hyper_input format (the tiny one's).
        with pytest.warns(UserWarning, match="manifest"):
            plain = HttpBackend(service.url, KEY)
        online = run(plain, tasks(plain), "prefix", 6, progress=False)
        assert comparable(online["tasks"]) == comparable(
            run(torch_backend, tasks(torch_backend), "prefix", 6, progress=False)["tasks"]
        )
        # The CLI, both ways.
        p3, sni = p3_files(), sni_file()
        common = ["--p3", str(p3[0]), "--sni", str(sni), "--max-instances", "3", "--max-new-tokens", "6", "--quiet"]
        assert (
            main(
                [
                    *common,
                    "--url",
                    service.url,
                    "--api-key",
                    KEY,
                    "--manifest",
                    str(bundle),
                    "--out",
                    str(tmp_path / "http.json"),
                ]
            )
            == 0
        )
        assert main([*common, "--checkpoint", str(run_dir), "--out", str(tmp_path / "torch.json")]) == 0
        http_rows, torch_rows = (json.loads((tmp_path / f"{b}.json").read_text())["tasks"] for b in ("http", "torch"))
        assert comparable(http_rows) == comparable(torch_rows) and len(http_rows) == 2
        assert service.proc.poll() is None


# ---- HTTP: backpressure ------------------------------------------------------------------------------


class _Fake(http.server.BaseHTTPRequestHandler):
    refusals = 0
    seen: list = []
    manifest: dict = {}

    def log_message(self, *args):
        pass

    def _send(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        manifest = type(self).manifest
        self._send(
            200,
            {
                "object": "list",
                "data": [
                    {
                        "id": "fake",
                        "object": "model",
                        "summary": {
                            "fingerprint": manifest["fingerprint"],
                            "tokenizer": "byte",
                            "adapter_kinds": ["lora", "prefix"],
                            "default_adapter_kind": "prefix",
                            "max_input_tokens": 256,
                            "max_examples": 16,
                            "max_new_tokens": 8,
                        },
                    }
                ],
            },
        )

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        type(self).seen.append((self.path, body, self.headers.get("authorization")))
        if type(self).refusals < 2:
            type(self).refusals += 1
            return self._send(429, {"error": {"code": "HT_ERR_QUEUE_FULL", "message": "full"}}, [("Retry-After", "0")])
        choices = [{"index": i, "text": p.upper()} for i, p in enumerate(body["prompt"])]
        self._send(200, {"choices": choices[::-1]})  # out of order: the client sorts by index


def test_http_retries_429_after_retry_after(bundle):
    _Fake.manifest = json.loads((bundle / "manifest.json").read_text())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Fake)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        slept: list[float] = []
        backend = HttpBackend(f"http://127.0.0.1:{server.server_address[1]}", "k", manifest=bundle, sleep=slept.append)
        assert backend.generate("ad-" + "0" * 32, ["a", "b", "c"], 4) == ["A", "B", "C"]  # in index order
        assert slept == [0.0, 0.0] and backend.retries == 2
        path, body, auth = _Fake.seen[-1]
        assert path == "/v1/completions" and auth == "Bearer k"
        assert body == {"model": "ad-" + "0" * 32, "prompt": ["a", "b", "c"], "temperature": 0, "max_tokens": 4}
        assert limits_from_path(bundle).fingerprint == backend.limits.fingerprint
    finally:
        server.shutdown()
        server.server_close()
