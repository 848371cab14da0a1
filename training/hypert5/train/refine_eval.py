"""Refine rows of the evaluation: adapters refined on their own demonstrations through the bundle's
training-step graphs in ONNX Runtime (the graphs the service runs, not a PyTorch loop), then decoded
with the bundle's own graphs.

For every held-out task at each k: the one-pass adapter (hypermodel, step 0), and refinement along one
run of max(--steps) steps, read at each step count in --steps; with augment "none" (the k
demonstrations) and "leave-one-out" (hypert5.refine); from the hypermodel's adapter ("hyper") and from
a PEFT-style random start ("random", as evaluate.random_init). Each row carries its refinement time per
adapter. The fit report of each one-pass adapter: demos_exact (greedy exact match on its own
demonstrations), mean_logprob (mean token log-likelihood of the demonstrations) and, for k >= 2,
loo_exact (the hypermodel reads k - 1 demonstrations and the adapter it makes predicts the one left
out); with the Pearson correlation over tasks of each with the one-pass and refined query accuracy.
``refined_fit_mean``: demos_exact and mean_logprob of the adapters after max(--steps) hyper-init steps,
to read beside their query accuracy (a full fit with low query accuracy is a generalization gap).

    python -m hypert5.train.refine_eval --bundle ../models/default --out runs/default/eval_refine.json \\
        [--shots 1 3 5] [--steps 25 50 100 200] [--kinds lora prefix] [--tasks-per-family 4]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from ..ort_runtime import Adapter, OrtBundle
from ..refine import AUGMENTS
from ..refine_runtime import OrtRefiner
from ..tasks import list_families, sample_episode_for_family

INITS = ("hyper", "random")


def random_start(runtime: OrtBundle, kind: str, generator: torch.Generator) -> Adapter:
    """evaluate.random_init's rule on the manifest's shapes: LoRA a random, b zero; prefix keys/values
    small random, gate zero."""
    out = {}
    for t in runtime.manifest["adapters"]["kinds"][kind]["tensors"]:
        name, shape = t["name"], t["shape"]
        if name.endswith((".b", ".gate")):
            out[name] = np.zeros(shape, np.float32)
        elif name.endswith(".mask"):
            out[name] = np.ones(shape, np.float32)
        else:
            fan_in = shape[-2] if name.endswith(".a") else shape[-1]
            out[name] = (torch.randn(shape, generator=generator) / math.sqrt(fan_in)).numpy()
    return out


def exact(runtime: OrtBundle, adapter: Adapter, pairs: list[tuple[str, str]]) -> list[float]:
    budget = runtime.manifest["generation"]["max_new_tokens"]
    out = runtime.greedy([x for x, _ in pairs], [adapter] * len(pairs), budget)
    return [float(runtime.tokenizer.decode(o) == y) for o, (_, y) in zip(out, pairs)]


def fit_report(
    runtime: OrtBundle, refiner: OrtRefiner, kind: str, adapter: Adapter, demos: list[tuple[str, str]]
) -> dict[str, float | None]:
    """How well the adapter fits its own demonstrations (module docstring)."""
    demos_exact = float(np.mean(exact(runtime, adapter, demos)))
    mean_logprob = -refiner.loss(kind, adapter, refiner.batch(demos, "none"))
    loo = None
    if len(demos) >= 2:
        loo = float(
            np.mean(
                [
                    exact(runtime, runtime.hyper(kind, demos[:i] + demos[i + 1 :]), [demos[i]])[0]
                    for i in range(len(demos))
                ]
            )
        )
    return {"demos_exact": demos_exact, "mean_logprob": mean_logprob, "loo_exact": loo}


def pearson(xs: list[float], ys: list[float]) -> float | None:
    if len(xs) < 3 or np.std(xs) == 0 or np.std(ys) == 0:
        return None
    return round(float(np.corrcoef(xs, ys)[0, 1]), 3)


def evaluate_task(
    runtime: OrtBundle,
    refiner: OrtRefiner,
    kind: str,
    demos,
    queries,
    steps: list[int],
    augments: list[str],
    inits: list[str],
    generator: torch.Generator,
) -> dict:
    """Query exact match (a list per query) and seconds per row of one task; the one-pass fit report."""
    rows: dict[str, dict] = {}
    hyper = runtime.hyper(kind, demos)
    rows["one_pass"] = {"exact": exact(runtime, hyper, queries), "seconds": 0.0}
    fit = fit_report(runtime, refiner, kind, hyper, demos)
    for augment in augments:
        if augment == "leave-one-out" and len(demos) < 2:
            continue
        batch = refiner.batch(demos, augment)
        for init in inits:
            start = hyper if init == "hyper" else random_start(runtime, kind, generator)
            began = time.perf_counter()
            for point in refiner.run(kind, start, batch, steps):
                elapsed = time.perf_counter() - began
                rows[f"{init}_init/{augment}/{point.steps}"] = {
                    "exact": exact(runtime, point.adapter, queries),
                    "seconds": elapsed,
                    "loss": point.loss,
                }
                if init == "hyper" and augment == "none" and point.steps == max(steps):
                    rows[f"{init}_init/{augment}/{point.steps}"]["fit"] = fit_report(
                        runtime, refiner, kind, point.adapter, demos
                    )
                began = time.perf_counter() - elapsed  # time the steps only, not the decodes
    return {"rows": rows, "fit": fit}


def summarize(tasks: list[dict], steps: list[int]) -> dict:
    """Per row: exact match % over every query, mean refinement seconds per adapter; and the
    correlations of the one-pass fit report with query accuracy over tasks."""
    by_row: dict[str, list] = defaultdict(list)
    seconds: dict[str, list] = defaultdict(list)
    for task in tasks:
        for name, row in task["rows"].items():
            by_row[name] += row["exact"]
            seconds[name].append(row["seconds"])
    table = {
        name: {
            "exact_match_percent": round(100 * float(np.mean(v)), 1),
            "seconds_per_adapter": round(float(np.mean(seconds[name])), 2),
        }
        for name, v in by_row.items()
    }
    accuracy = {name: [float(np.mean(t["rows"][name]["exact"])) for t in tasks if name in t["rows"]] for name in by_row}
    best = f"hyper_init/none/{max(steps)}"
    correlations = {}
    for metric in ("demos_exact", "mean_logprob", "loo_exact"):
        values = [t["fit"][metric] for t in tasks]
        if any(v is None for v in values):
            continue
        correlations[metric] = {
            "one_pass": pearson(values, accuracy["one_pass"]),
            **({best: pearson(values, accuracy[best])} if best in accuracy else {}),
        }
    fit_means = {
        m: round(float(np.mean([t["fit"][m] for t in tasks])), 3)
        for m in ("demos_exact", "mean_logprob", "loo_exact")
        if all(t["fit"][m] is not None for t in tasks)
    }
    # How well the refined adapter fits the demonstrations it was tuned on, against its query accuracy:
    # a high fit with low query accuracy says the k demonstrations underdetermine the task (generalization),
    # not that the steps failed to fit them (optimisation).
    refined = [t["rows"][best]["fit"] for t in tasks if "fit" in t["rows"].get(best, {})]
    refined_fit = {
        m: round(float(np.mean([f[m] for f in refined])), 3) for m in ("demos_exact", "mean_logprob") if refined
    }
    return {
        "rows": table,
        "fit_mean": fit_means,
        "refined_fit_mean": {best: refined_fit} if refined_fit else {},
        "fit_correlation_with_query_exact": correlations,
    }


def run_grid(
    bundle: Path,
    shots: list[int],
    steps: list[int],
    kinds: list[str],
    augments: list[str],
    inits: list[str],
    tasks_per_family: int,
    queries: int,
    seed: int,
    threads: int,
    log=print,
) -> dict:
    torch.set_num_threads(threads)
    runtime = OrtBundle(bundle, threads=threads)
    refiner = OrtRefiner(runtime)
    rng = random.Random(seed)
    families = list_families("val")
    episodes = []
    for family in families:
        for _ in range(tasks_per_family):  # the same tasks at every k: demos are the first k of a pool
            ep = sample_episode_for_family(rng, family, max(shots), queries)
            episodes.append((family, ep.demos, ep.queries))
    result = {
        "bundle": runtime.manifest["fingerprint"],
        "split": "val",
        "families": families,
        "tasks_per_family": tasks_per_family,
        "queries_per_task": queries,
        "seed": seed,
        "steps": steps,
        "learning_rate": {k: refiner.settings[k]["learning_rate"] for k in kinds},
        "threads": threads,
        "results": {},
    }
    began = time.time()
    for k in shots:
        for kind in kinds:
            generator = torch.Generator().manual_seed(seed)
            tasks = []
            for i, (family, demos, qs) in enumerate(episodes):
                task = evaluate_task(runtime, refiner, kind, demos[:k], qs, steps, augments, inits, generator)
                task["family"] = family
                tasks.append(task)
                log(
                    f"k={k} {kind} task {i + 1}/{len(episodes)} {family}: "
                    + " ".join(
                        f"{n}={np.mean(r['exact']):.2f}"
                        for n, r in task["rows"].items()
                        if n.endswith(("pass", f"/{max(steps)}"))
                    )
                )
            result["results"][f"k={k}/{kind}"] = summarize(tasks, steps)
            result["results"][f"k={k}/{kind}"]["per_task"] = [
                {
                    "family": t["family"],
                    "fit": t["fit"],
                    "exact": {n: float(np.mean(r["exact"])) for n, r in t["rows"].items()},
                }
                for t in tasks
            ]
            log(
                json.dumps(
                    {k2: v for k2, v in result["results"][f"k={k}/{kind}"].items() if k2 != "per_task"}, indent=1
                )
            )
    result["seconds"] = round(time.time() - began)
    return result


def summary_for_provenance(result: dict) -> dict:
    """The result without the per-task detail."""
    return {
        **{k: v for k, v in result.items() if k != "results"},
        "results": {name: {k: v for k, v in r.items() if k != "per_task"} for name, r in result["results"].items()},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=Path("../models/default"))
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--steps", type=int, nargs="+", default=[25, 50, 100, 200])
    parser.add_argument("--kinds", nargs="+", choices=["lora", "prefix"], default=["lora", "prefix"])
    parser.add_argument("--augments", nargs="+", choices=list(AUGMENTS), default=list(AUGMENTS))
    parser.add_argument("--inits", nargs="+", choices=list(INITS), default=list(INITS))
    parser.add_argument("--tasks-per-family", type=int, default=4)
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if min(args.steps) < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    result = run_grid(
        args.bundle,
        args.shots,
        args.steps,
        args.kinds,
        args.augments,
        args.inits,
        args.tasks_per_family,
        args.queries,
        args.seed,
        args.threads,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out} in {result['seconds']} s")


if __name__ == "__main__":
    main()
