"""Levers on refinement's generalization: what, beyond plain Adam on the k demonstrations, makes the refined
adapter right on more new inputs of the task.

Refinement fits its k demonstrations completely (the model card's ``refined_fit_mean``: demos_exact 1.0) while
the held-out queries stay far lower, so the levers here regularise rather than optimise harder. Each runs the
bundle's own training-step graph in ONNX Runtime (``hypert5.refine_runtime``'s loop), from the hypermodel's
adapter, with one change applied between steps:

- ``lr``: another learning rate;
- ``anchor``: after each step the tensors are pulled a fraction ``c`` of the way back to the hypermodel's
  adapter (decoupled weight decay toward the start rather than toward zero);
- ``freeze``: some tensors keep the hypermodel's values (the encoder's LoRA, or every ``a``);
- readouts of one plain run: weight-space interpolation between the start and the refined adapter
  (``wise``: start + alpha * (refined - start), as WiSE-FT), and the mean of the adapters at a quarter, half,
  three quarters and all of the steps (``tail_mean``).

``--set starts`` tries the start instead: the hypermodel reads the demonstrations in another order (reversed,
rotated; its adapter depends on the order), or the mean of its adapters over the three orders, each refined as
plain refinement is; and a majority vote, per query, over the answers of the three orders' refined adapters.

The levers are compared on tasks of the training families (to choose) and of the held-out families (to
confirm), with the same sampling as ``hypert5.train.refine_eval`` (seed, tasks per family, 8 queries).

Usage: python -m experiments.refine_levers --bundle ../models/default --split train --tasks-per-family 1
       --out runs/levers_train.json [--k 3] [--kind lora] [--steps 100]
Prints exact match % per lever and writes per-task results.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

import numpy as np

from hypert5.ort_runtime import Adapter, OrtBundle
from hypert5.refine_graph import UPDATED
from hypert5.refine_runtime import OrtRefiner
from hypert5.tasks import list_families, sample_episode_for_family


def predict(runtime: OrtBundle, adapter: Adapter, pairs: list[tuple[str, str]]) -> list[str]:
    """Greedy answers to the queries, as ``refine_eval.exact`` decodes them."""
    budget = runtime.manifest["generation"]["max_new_tokens"]
    out = runtime.greedy([x for x, _ in pairs], [adapter] * len(pairs), budget)
    return [runtime.tokenizer.decode(o) for o in out]


Hook = Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], dict[str, np.ndarray]]


def run_steps(
    refiner: OrtRefiner,
    kind: str,
    start: Adapter,
    batch: dict[str, np.ndarray],
    readouts: list[int],
    learning_rate: float,
    hook: Hook | None = None,
) -> dict[int, Adapter]:
    """The refiner's Adam loop with ``hook(params, start)`` applied after every update."""
    session, trained = refiner._graph(kind)
    outputs = [o.name for o in session.get_outputs()]
    lr = np.array(learning_rate, np.float32)
    initial = {n: np.ascontiguousarray(start[n], np.float32) for n in trained}
    params = dict(initial)
    fixed = {n: start[n] for n in start if n not in params}
    moments = {f"{m}.{n}": np.zeros_like(params[n]) for m in ("adam_m", "adam_v") for n in trained}
    out = {}
    for done in range(max(readouts)):
        feeds = {**batch, **params, **moments, **fixed, "learning_rate": lr, "step": np.array(float(done), np.float32)}
        got = dict(zip(outputs, session.run(None, feeds)))
        params = {n: got[f"{UPDATED}.{n}"] for n in trained}
        moments = {k: got[f"{UPDATED}.{k}"] for k in moments}
        if hook is not None:
            params = hook(params, initial)
        if done + 1 in readouts:
            out[done + 1] = {**params, **fixed}
    return out


def anchor(c: float) -> Hook:
    return lambda p, s: {n: (p[n] - np.float32(c) * (p[n] - s[n])).astype(np.float32) for n in p}


def freeze(keep: Callable[[str], bool]) -> Hook:
    return lambda p, s: {n: (s[n] if keep(n) else p[n]) for n in p}


def mix(start: Adapter, refined: Adapter, alpha: float) -> Adapter:
    return {n: (start[n] + np.float32(alpha) * (refined[n] - start[n])).astype(np.float32) for n in refined}


def levers(
    refiner: OrtRefiner, kind: str, hyper: Adapter, batch: dict[str, np.ndarray], lr: float, steps: int = 100
) -> dict[str, Adapter]:
    """Every lever's adapter for one task, by name; ``steps`` is the plain default the levers are run at."""
    quarter = max(1, steps // 4)
    tail = [quarter, 2 * quarter, 3 * quarter, steps]
    out: dict[str, Adapter] = {"one_pass": hyper}
    plain = run_steps(refiner, kind, hyper, batch, sorted({*tail, 2 * steps}), lr)
    for s in (quarter, 2 * quarter, steps, 2 * steps):
        out[f"plain/{s}"] = plain[s]
    for alpha in (0.5, 0.75):
        out[f"wise{alpha}/{steps}"] = mix(hyper, plain[steps], alpha)
    out[f"tail_mean/{quarter}-{steps}"] = {n: np.mean([plain[s][n] for s in tail], 0) for n in plain[steps]}

    def one(learning_rate: float, hook: Hook | None = None) -> Adapter:
        return run_steps(refiner, kind, hyper, batch, [steps], learning_rate, hook)[steps]

    for factor in (0.3, 3.0):
        out[f"lr{lr * factor:g}/{steps}"] = one(lr * factor)
    for c in (0.02, 0.1):
        out[f"anchor{c}/{steps}"] = one(lr, anchor(c))
    out[f"freeze_encoder/{steps}"] = one(lr, freeze(lambda n: ".encoder." in n))
    out[f"freeze_a/{steps}"] = one(lr, freeze(lambda n: n.endswith(".a")))
    return out


def orders(demos: list) -> list[list]:
    """The demonstrations as given, reversed, and rotated by one: three readings for the hypermodel."""
    return [list(demos), list(reversed(demos)), list(demos[1:]) + list(demos[:1])]


def starts(
    runtime: OrtBundle, refiner: OrtRefiner, kind: str, demos: list, batch: dict[str, np.ndarray], lr: float, steps: int
) -> dict[str, Adapter]:
    """Levers on the start: the hypermodel reads the demonstrations in another order (it is order-sensitive), or
    the mean of its adapters over the three orders; each refined as plain refinement is."""
    hypers = [runtime.hyper(kind, o) for o in orders(demos)]
    mean = {n: np.mean([h[n] for h in hypers], 0).astype(np.float32) for n in hypers[0]}
    out: dict[str, Adapter] = {"one_pass": hypers[0], "one_pass/order_mean": mean}
    for name, start in (("plain", hypers[0]), ("reversed", hypers[1]), ("rotated", hypers[2]), ("order_mean", mean)):
        out[f"{name}/{steps}"] = run_steps(refiner, kind, start, batch, [steps], lr)[steps]
    return out


def vote(answers: list[list[str]]) -> list[str]:
    """Per query, the answer most of the adapters give; a tie goes to the earliest adapter's answer."""
    out = []
    for per_query in zip(*answers):
        counts = {a: per_query.count(a) for a in per_query}
        out.append(max(per_query, key=lambda a: counts[a]))  # max keeps the first of equal counts
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=Path("../models/default"))
    parser.add_argument("--split", choices=["train", "val"], required=True)
    parser.add_argument("--kind", choices=["lora", "prefix"], default="lora")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100, help="the plain step count the levers are run at")
    parser.add_argument("--tasks-per-family", type=int, default=1)
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument(
        "--set",
        choices=["regularise", "starts"],
        default="regularise",
        help="regularise: learning rate, anchor, freezing, interpolation; starts: other hypermodel readings and a vote",
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    runtime = OrtBundle(args.bundle, threads=1)
    refiner = OrtRefiner(runtime)
    lr = refiner.settings[args.kind]["learning_rate"]
    rng = random.Random(args.seed)
    scores: dict[str, list[float]] = defaultdict(list)
    per_task = []
    began = time.time()
    families = list_families(args.split)
    episodes = []
    for family in families:
        for _ in range(args.tasks_per_family):
            episodes.append((family, sample_episode_for_family(rng, family, args.k, args.queries)))
    for i, (family, ep) in enumerate(episodes):
        hyper = runtime.hyper(args.kind, ep.demos)
        batch = refiner.batch(ep.demos, "none")
        if args.set == "regularise":
            adapters = levers(refiner, args.kind, hyper, batch, lr, args.steps)
        else:
            adapters = starts(runtime, refiner, args.kind, ep.demos, batch, lr, args.steps)
        answers = {name: predict(runtime, a, ep.queries) for name, a in adapters.items()}
        if args.set == "starts":
            answers[f"vote3/{args.steps}"] = vote(
                [answers[f"{n}/{args.steps}"] for n in ("plain", "reversed", "rotated")]
            )
        task = {name: float(np.mean([p == y for p, (_, y) in zip(got, ep.queries)])) for name, got in answers.items()}
        for name, v in task.items():
            scores[name].append(v)
        per_task.append({"family": family, "exact": task})
        print(
            f"{i + 1}/{len(episodes)} {family} {time.time() - began:.0f}s "
            + " ".join(f"{n}={100 * np.mean(v):.1f}" for n, v in scores.items()),
            flush=True,
        )
    summary = {n: round(100 * float(np.mean(v)), 1) for n, v in scores.items()}
    result = {
        "bundle": runtime.manifest["fingerprint"],
        "split": args.split,
        "kind": args.kind,
        "k": args.k,
        "tasks": len(episodes),
        "queries_per_task": args.queries,
        "seed": args.seed,
        "learning_rate": lr,
        "steps": args.steps,
        "set": args.set,
        "exact_match_percent": summary,
        "seconds": round(time.time() - began),
        "per_task": per_task,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
