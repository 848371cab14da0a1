"""Schemathesis against openapi.yaml over a real socket: the service on the tiny bundle, every operation
fuzzed (examples, coverage, fuzzing and stateful phases, positive and negative data) with a fixed seed and
example count. Passes only with zero failures of every check: no 5xx, and every response's status code,
content type, headers and body as the spec documents them. Bounded: about 20-60 s on two cores.

`positive_data_acceptance` is the one check left out: a request can be valid for the schema and still be
refused (422) by a limit the schema cannot express (tokens after tokenization, configured MAX_*), or by an
OpenAI field documented with OpenAI's type whose non-neutral values this server refuses.

An end-to-end suite of the TypeScript service written in Python because schemathesis is: pytest in the
training venv runs it within `npm run test:training` (training/run-tests.sh); it needs node and the npm
dependencies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The service as a process: the helper the Python-vs-service parity tests in training/tests use too.
sys.path.insert(0, str(ROOT / "training" / "tests"))
from service import ready, running_service  # noqa: E402

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
KEY = "fuzz-key"
# The conformance checks this run exists for: each must have run, and none may have failed.
REQUIRED_CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)


def check_results(ndjson: Path) -> Counter:
    """(check name, status) -> count, from schemathesis' NDJSON event report."""
    counts: Counter = Counter()

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("checks"), dict):
                for results in node["checks"].values():
                    for r in results:
                        counts[(r["name"], r["status"])] += 1
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for line in ndjson.read_text().splitlines():
        walk(json.loads(line))
    return counts


# Small limits keep each fuzzed generation cheap; the limits themselves get fuzzed too.
LIMITS = {"MAX_TOKENS": "8", "MAX_N": "2", "MAX_BEAMS": "2", "MAX_PROMPTS": "4", "API_KEYS": KEY}


def test_openapi_fuzz_no_5xx_no_spec_violation():
    with running_service(env=LIMITS) as service:
        fuzz(service.url)
        # The server is still serving after everything it was sent, and stops cleanly.
        assert service.proc.poll() is None and ready(service.url)
        service.proc.terminate()
        assert service.proc.wait(timeout=30) == 0, "SIGTERM after fuzzing must exit 0"
        errors = [line for line in service.log().splitlines() if '"level":50' in line or '"level":60' in line]
        assert not errors, "the server logged errors during fuzzing:\n" + "\n".join(errors[:5])


def fuzz(url: str) -> None:
    cmd = [
        str(SCHEMATHESIS),
        "run",
        str(ROOT / "openapi.yaml"),
        "--url",
        url,
        "-H",
        f"Authorization: Bearer {KEY}",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        os.environ.get("FUZZ_MAX_EXAMPLES", "100"),
        "--seed",
        os.environ.get("FUZZ_SEED", "20240307"),
        "--workers",
        "1",
        "--generation-database",
        "none",
    ]
    # Run outside the repository: schemathesis keeps a cache folder in its working directory.
    with tempfile.TemporaryDirectory(prefix="hypert5-schemathesis-") as cwd:
        events = Path(cwd) / "events.ndjson"
        cmd += ["--report", "ndjson", "--report-ndjson-path", str(events)]
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
        counts = check_results(events) if events.exists() else Counter()
    summary = out.stdout[out.stdout.find("SUMMARY") :] if "SUMMARY" in out.stdout else out.stdout[-4000:]
    print(summary)
    print("\n".join(f"{name}: {status} {n}" for (name, status), n in sorted(counts.items())))
    assert out.returncode == 0, f"schemathesis found problems:\n{out.stdout[-12000:]}\n{out.stderr[-2000:]}"
    for check in REQUIRED_CHECKS:
        assert counts[(check, "success")] > 0, f"{check} did not run: {dict(counts)}"
    failed = {k: n for k, n in counts.items() if k[1] != "success"}
    assert not failed, f"checks that did not pass: {failed}"
