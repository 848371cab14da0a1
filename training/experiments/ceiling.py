"""The capacity ceiling: how much of each task family one adapter on the frozen downstream can do at all.

The hypermodel writes its adapter into a fixed space (LoRA of rank r on q and v, or gated prefixes) over a
downstream that never changes. Evaluation's (c) and (d) tune in that space on the k demonstrations only.
Here the same space is tuned on many examples of each task (the k demonstrations plus ``--extra``), in
minibatches, for ``--steps``, from random initialization and from the hypermodel's adapter, and tested on
the same queries as the hypermodel alone. The reading, per family:

- the ceiling reaches it and the hypermodel does not: the task fits the adapter space, and what fails is
  reading it off k examples in one pass (induction);
- the ceiling misses it too: tuning on many examples finds no adapter in this space that does the task
  (capacity, or at least beyond what gradient tuning reaches in it).

Usage: python -m experiments.ceiling --run runs/default [--kind lora] [--split val] [--tasks-per-family 3]
       [--extra 64] [--steps 300] [--batch 16]
Writes <run>/ceiling_<kind>.json (``--split train``: ceiling_<kind>_train.json; overall and per-family exact
match %) and the summary into the provenance.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from hypert5.tasks import list_families, sample_episode_for_family
from hypert5.train.evaluate import TUNE_LR, Scores, predictions, random_init, repeat, save_result, tune
from hypert5.train.settings import load_downstream, load_hyper, read_settings
from hypert5.train.text import hyper_context


def count(minimum: int):
    """argparse type: an integer of at least ``minimum``, refused with the limit named."""

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below the minimum of {minimum}")
        return value

    parse.__name__ = "integer"  # argparse's message for a non-number: "invalid integer value: 'x'"
    return parse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("runs/default"))
    parser.add_argument("--kind", choices=sorted(TUNE_LR), default="lora")
    parser.add_argument("--split", choices=["val", "train"], default="val")
    parser.add_argument("--tasks-per-family", type=count(1), default=3)
    parser.add_argument("--shots", type=count(1), default=3, help="k: the demonstrations the hypermodel reads")
    parser.add_argument("--extra", type=count(0), default=64, help="more examples of the task the ceiling tunes on")
    parser.add_argument("--queries", type=count(1), default=8)
    parser.add_argument("--steps", type=count(0), default=300)
    parser.add_argument("--batch", type=count(1), default=16)
    parser.add_argument("--lr", type=float, default=None, help="Adam lr (default: evaluation's for the kind)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    lr = args.lr if args.lr is not None else TUNE_LR[args.kind]
    settings = read_settings(args.run)
    downstream = load_downstream(args.run)
    hyper = load_hyper(args.run, args.kind, downstream).eval()
    fmt = settings.hyper_input
    rng = random.Random(args.seed)
    batches = random.Random(args.seed + 1)  # its own stream: the tasks drawn do not depend on --steps
    generator = torch.Generator().manual_seed(args.seed)
    scores = Scores()
    families = list_families(args.split)
    t0 = time.time()
    bar = tqdm(total=len(families) * args.tasks_per_family, desc=f"ceiling {args.kind}", unit="task", file=sys.stderr)
    for family in families:
        for _ in range(args.tasks_per_family):
            episode = sample_episode_for_family(rng, family, args.shots + args.extra, args.queries)
            demos, pool = episode.demos[: args.shots], episode.demos
            xs, ys = [q for q, _ in episode.queries], [a for _, a in episode.queries]
            with torch.no_grad():
                start = hyper(*hyper_context(fmt, demos))
                scores.add("hyper", family, predictions(downstream, xs, repeat(start, len(xs))), ys)
            for init, adapter in (("random_init", random_init(args.kind, settings, generator)), ("hyper_init", start)):
                trained = tune(downstream, adapter, pool, args.steps, lr, args.batch, batches)
                with torch.no_grad():
                    scores.add(f"ceiling_{init}", family, predictions(downstream, xs, repeat(trained, len(xs))), ys)
            bar.update()
        cells = "  ".join(f"{name} {v['exact']:g}" for name, v in scores.per_family()[family].items())
        bar.write(f"{family:24s} {cells}", file=sys.stderr)
    bar.close()
    result = {
        "kind": args.kind,
        "split": args.split,
        "families": families,
        "tasks_per_family": args.tasks_per_family,
        "shots": args.shots,
        "extra": args.extra,
        "queries_per_task": args.queries,
        "steps": args.steps,
        "batch": args.batch,
        "lr": lr,
        "seed": args.seed,
        "exact_match_percent": scores.exact(),
        "per_family": scores.per_family(),
        "seconds": round(time.time() - t0),
    }
    suffix = "" if args.split == "val" else f"_{args.split}"
    save_result(args.run, f"ceiling_{args.kind}{suffix}", f"ceiling_{args.kind}{suffix}", result)


if __name__ == "__main__":
    main()
