"""The everyday requests (``test/fixtures/everyday.json``, hand-written) on a training run, in PyTorch:
the gate a candidate model passes before it is exported to ``models/default``, where
``test/everyday.test.ts`` sends the same requests through the service.

Usage: python -m hypert5.train.everyday --run runs/mine [--kind lora]
Prints each wrong answer and how many were right; exits 1 unless all were.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .evaluate import predictions, repeat
from .settings import load_downstream, load_hyper, read_settings
from .text import hyper_context

EVERYDAY = Path(__file__).resolve().parents[3] / "test" / "fixtures" / "everyday.json"


@dataclass(frozen=True)
class Answer:
    task: str
    query: str
    want: str
    got: str


def answers(run: Path, kind: str, tasks_file: Path = EVERYDAY) -> list[Answer]:
    """One answer per query: the run's hypermodel reads the task's examples once, the frozen
    downstream decodes every query greedily with that adapter (as the service does)."""
    settings, downstream = read_settings(run), load_downstream(run)
    hyper = load_hyper(run, kind, downstream).eval()
    out = []
    with torch.no_grad():
        for task in json.loads(tasks_file.read_text()):
            examples = [tuple(pair) for pair in task["examples"]]
            queries = [q for q, _ in task["queries"]]
            adapter = hyper(*hyper_context(settings.hyper_input, examples))
            got = predictions(downstream, queries, repeat(adapter, len(queries)))
            out += [Answer(task["name"], q, want, g) for (q, want), g in zip(task["queries"], got)]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--kind", choices=("lora", "prefix"), default="lora")
    ap.add_argument("--tasks", type=Path, default=EVERYDAY, help="the requests (JSON)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = answers(args.run, args.kind, args.tasks)
    for a in result:
        if a.got != a.want:
            print(f"{a.task}: {a.query!r} -> {a.got!r}, want {a.want!r}")
    right = sum(a.got == a.want for a in result)
    print(f"{args.run} ({args.kind}): {right}/{len(result)} right")
    return 0 if right == len(result) else 1


if __name__ == "__main__":
    raise SystemExit(main())
