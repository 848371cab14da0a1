"""Schemathesis against openapi.yaml over a real socket: the service on the tiny bundle, every operation
fuzzed (examples, coverage, fuzzing and stateful phases, positive and negative data). Passes only with
zero 5xx and zero responses that violate the spec. Bounded: about 10-40 s on two cores.

`positive_data_acceptance` is the one check left out: a request can be valid for the schema and still be
refused (422) by a limit the schema cannot express (tokens after tokenization, configured MAX_*).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from service import free_port, ready

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
KEY = "fuzz-key"


@pytest.fixture(scope="module")
def server():
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "tsx").exists():
        pytest.skip("node and the npm dependencies are needed (npm install)")
    port = free_port()
    store = tempfile.mkdtemp(prefix="hypert5-fuzz-")
    env = {
        **os.environ,
        "MODEL_DIR": str(ROOT / "test" / "fixtures" / "tiny"),
        "ADAPTER_STORE_DIR": store,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "INTRA_OP_THREADS": "1",
        "LOG_LEVEL": "warn",
        # Small limits keep each fuzzed generation cheap; the limits themselves get fuzzed too.
        "MAX_TOKENS": "8",
        "MAX_N": "2",
        "MAX_BEAMS": "2",
        "MAX_PROMPTS": "4",
        "API_KEYS": KEY,
    }
    log = open(Path(store) / "server.log", "w+")
    proc = subprocess.Popen([node, "--import", "tsx", "src/server.ts"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while not ready(url):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            log.seek(0)
            pytest.fail(f"server did not start:\n{log.read()}")
        time.sleep(0.1)
    yield url, proc, log
    proc.terminate()
    assert proc.wait(timeout=30) == 0, "SIGTERM after fuzzing must exit 0"
    log.close()
    shutil.rmtree(store, ignore_errors=True)


def test_openapi_fuzz_no_5xx_no_spec_violation(server):
    url, proc, log = server
    cmd = [
        str(SCHEMATHESIS), "run", str(ROOT / "openapi.yaml"),
        "--url", url,
        "-H", f"Authorization: Bearer {KEY}",
        "--checks", "all",
        "--exclude-checks", "positive_data_acceptance",
        "--max-examples", os.environ.get("FUZZ_MAX_EXAMPLES", "100"),
        "--seed", os.environ.get("FUZZ_SEED", "20240307"),
        "--workers", "1",
        "--generation-database", "none",
    ]
    # Run outside the repository: schemathesis keeps a cache folder in its working directory.
    with tempfile.TemporaryDirectory(prefix="hypert5-schemathesis-") as cwd:
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    summary = out.stdout[out.stdout.find("SUMMARY"):] if "SUMMARY" in out.stdout else out.stdout[-4000:]
    print(summary)
    assert out.returncode == 0, f"schemathesis found problems:\n{out.stdout[-12000:]}\n{out.stderr[-2000:]}"
    # The server is still serving after everything it was sent.
    assert proc.poll() is None and ready(url)
    log.flush()
    log.seek(0)
    errors = [line for line in log if '"level":50' in line or '"level":60' in line]
    assert not errors, "the server logged errors during fuzzing:\n" + "".join(errors[:5])
