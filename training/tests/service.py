"""The service as a subprocess for Python tests: node + tsx on src/server.ts, on a free port, with its own
adapter store; waits for /readyz and stops it with SIGTERM. Skips the test when node or the npm
dependencies are missing. Used by the parity tests here and the end-to-end suite in test/e2e."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY_BUNDLE = ROOT / "test" / "fixtures" / "tiny"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


@dataclass
class Service:
    url: str
    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def running_service(
    model_dir: Path = TINY_BUNDLE, env: dict[str, str] | None = None, start_timeout_s: float = 60.0
) -> Iterator[Service]:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "tsx").exists():
        pytest.skip("node and the npm dependencies are needed (npm install)")
    port = free_port()
    store = Path(tempfile.mkdtemp(prefix="hypert5-service-"))
    full_env = {
        **os.environ,
        "MODEL_DIR": str(model_dir),
        "ADAPTER_STORE_DIR": str(store / "adapters"),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "INTRA_OP_THREADS": "1",
        "LOG_LEVEL": "warn",
        **(env or {}),
    }
    log_path = store / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [node, "--import", "tsx", "src/server.ts"], cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    service = Service(f"http://127.0.0.1:{port}", proc, log_path)
    try:
        deadline = time.time() + start_timeout_s
        while not ready(service.url):
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"the service did not start:\n{service.log()}")
            time.sleep(0.1)
        yield service
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(store, ignore_errors=True)
