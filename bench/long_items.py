"""The throughput load's tasks: held-out tasks whose answers are long enough to measure decoding.

  python bench/long_items.py --items N --out ITEMS.json [--min-bytes 16]

The service has no "ignore end of sequence" option, so a completion is as long as the model's answer. Most
held-out families answer in 2-10 bytes (one byte is one token), and cells of such completions measure
request overhead rather than decoding. Each task here is a fresh task of a held-out ('val') family with 3
demonstrations; of 64 sampled queries it keeps the 8 with the longest answers, and it keeps the task only if
those answers average at least ``--min-bytes``. Families take turns (round robin); one that gives no such
task in a few tries is dropped. Fixed seed: every run measures the same requests. Writes
``{"items": [{"family", "task", "examples", "prompts", "answer_bytes"}...]}`` in the shape of the
workload's ``load.items`` (bench/http.ts LoadItem).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))

from hypert5.tasks import list_families, sample_episode_for_family  # noqa: E402

DEMOS, KEEP, SAMPLED, TRIES = 3, 8, 64, 4


def long_items(n: int, min_bytes: float, seed: int = 11) -> list[dict]:
    rng = random.Random(seed)
    families = list_families("val")
    misses = dict.fromkeys(families, 0)
    items: list[dict] = []
    while len(items) < n:
        live = [f for f in families if misses[f] < TRIES]
        if not live:
            raise RuntimeError(f"no held-out family answers in {min_bytes} bytes on average")
        for family in live:
            if len(items) == n:
                break
            ep = sample_episode_for_family(rng, family, DEMOS, SAMPLED)
            queries = sorted(ep.queries, key=lambda q: len(q[1].encode()), reverse=True)[:KEEP]
            answer_bytes = sum(len(a.encode()) for _, a in queries) / KEEP
            if answer_bytes < min_bytes:
                misses[family] += 1
                continue
            items.append(
                {
                    "family": ep.family,
                    "task": ep.task,
                    "examples": [list(d) for d in ep.demos],
                    "prompts": [q for q, _ in queries],
                    "answer_bytes": answer_bytes,
                }
            )
    return items


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--min-bytes", type=float, default=16.0)
    args = p.parse_args()
    Path(args.out).write_text(json.dumps({"items": long_items(args.items, args.min_bytes)}, indent=1))


if __name__ == "__main__":
    main()
