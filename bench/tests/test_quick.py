"""`npm run bench` end to end in its quick mode on the tiny bundle: every section runs and reports.

Asserts the shape of bench/results.json and that the load saw only 2xx, never any time or ratio (the
timings of a smoke test on a shared machine mean nothing). About 15-25 s on two cores.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_quick_mode_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    env = {
        **os.environ,
        "BENCH_QUICK": "1",
        "BENCH_NO_BUILD": "1",
        "BENCH_THREADS": "1",
        "BENCH_MODEL_DIR": str(ROOT / "test/fixtures/tiny"),
        "BENCH_OUT": str(out),
    }
    proc = subprocess.run(
        ["node", "--import", "tsx", "bench/run.ts"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = json.loads(out.read_text())
    assert res["meta"]["quick"] is True
    http, py = res["http"], res["python"]
    assert {r["kind"] for r in http["creation"]} == {"lora", "prefix"}
    assert all(r["cache_hits"] == 0 for r in http["creation"])
    assert http["load"] and all(c["completions"] > 0 and c["non_2xx"] == 0 and c["errors"] == 0 for c in http["load"])
    assert http["memory"]["lru_bytes_per_adapter"] == py["flops"]["adapter_bytes"][http["memory"]["kind"]]
    for section in ("matmul", "per_query", "growth", "decode_adapters", "eager", "tuning"):
        assert section in py, section
    rows = py["per_query"]["rows"]
    assert len({r["hyper_mflops"] for r in rows}) == 1  # analytic: a hyper adapter's query cost ignores k
    assert rows[-1]["in_context_mflops"] > rows[0]["in_context_mflops"]
    assert {t["name"] for t in res["targets"]} >= {"HTTP service vs PyTorch eager, concurrency 1"}
    assert "**Targets**" in proc.stdout
