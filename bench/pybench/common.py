"""What every Python section shares: the bundle's model in PyTorch, held-out episodes, timers."""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

from hypert5 import checkpoint
from hypert5.checkpoint import Models
from hypert5.presets import random_models
from hypert5.tasks import list_families, sample_episode_for_family
from hypert5.unbundle import rebuild


def log(msg: str) -> None:
    print(f"[bench.py] {msg}", file=sys.stderr, flush=True)


def load_torch(bundle: Path, manifest: dict[str, Any]) -> tuple[Models, str]:
    """The PyTorch model the bundle was exported from: a random preset (fixtures), the checkpoint folder
    BENCH_CHECKPOINT names, or else rebuilt from the bundle itself (hypert5.unbundle: run folders are not
    committed)."""
    prov = manifest.get("provenance", {})
    if "preset" in prov and not prov.get("trained", True):
        return random_models(
            prov["preset"], prov.get("seed", 0)
        ), f"preset {prov['preset']} (seed {prov.get('seed', 0)})"
    if os.environ.get("BENCH_CHECKPOINT"):
        return checkpoint.load(Path(os.environ["BENCH_CHECKPOINT"])), os.environ["BENCH_CHECKPOINT"]
    return rebuild(bundle, log=log), f"rebuilt from {bundle} (hypert5.unbundle)"


def timed(fn: Callable[[], Any], reps: int, warmup: int = 1) -> dict[str, float]:
    """Median and p90 wall time of ``fn`` in milliseconds."""
    for _ in range(warmup):
        fn()
    xs = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        xs.append(1000 * (time.perf_counter() - t))
    xs.sort()
    return {
        "p50_ms": round(statistics.median(xs), 3),
        "p90_ms": round(xs[min(len(xs) - 1, int(0.9 * len(xs)))], 3),
        "reps": reps,
    }


def held_out_episodes(n: int, k: int, queries: int, seed: int) -> list[dict[str, Any]]:
    """``n`` episodes of held-out ('val') families, round robin over the families, fixed by ``seed``."""
    rng = random.Random(seed)
    fams = list_families("val")
    out = []
    for j in range(n):
        ep = sample_episode_for_family(rng, fams[j % len(fams)], k, queries)
        out.append(
            {
                "family": ep.family,
                "task": ep.task,
                "demos": [list(p) for p in ep.demos],
                "queries": [list(p) for p in ep.queries],
            }
        )
    return out
