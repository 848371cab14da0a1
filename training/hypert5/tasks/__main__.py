"""CLI: print sample episodes, list families, or print corpus lines.

python -m hypert5.tasks --split val --n 5 --k 3 --seed 0
python -m hypert5.tasks --list
python -m hypert5.tasks --family date_iso_to_dmy --n 2
python -m hypert5.tasks --corpus 10
"""

from __future__ import annotations

import argparse
import random

from . import get_family, list_families, sample_corpus_text, sample_episode, sample_episode_for_family


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m hypert5.tasks", description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=("train", "val"), default="train")
    ap.add_argument("--n", type=int, default=5, help="episodes to print")
    ap.add_argument("--k", type=int, default=3, help="demonstrations per episode")
    ap.add_argument("--q", type=int, default=2, help="queries per episode")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--family", help="sample only this family")
    ap.add_argument("--list", action="store_true", help="list families per split")
    ap.add_argument("--corpus", type=int, metavar="N", help="print N pretraining corpus lines instead")
    a = ap.parse_args(argv)
    rng = random.Random(a.seed)
    if a.list:
        for split in ("train", "val"):
            names = list_families(split)
            print(f"{split} ({len(names)}):")
            for name in names:
                print(f"  {name:<24} {get_family(name).doc.splitlines()[0]}")
        return
    if a.corpus:
        for _ in range(a.corpus):
            print(sample_corpus_text(rng))
        return
    for i in range(a.n):
        ep = sample_episode_for_family(rng, a.family, a.k, a.q) if a.family else sample_episode(rng, a.split, a.k, a.q)
        print(f"#{i} {ep.task}")
        for x, y in ep.demos:
            print(f"   demo   {x!r:<50} -> {y!r}")
        for x, y in ep.queries:
            print(f"   query  {x!r:<50} -> {y!r}")


if __name__ == "__main__":
    main()
