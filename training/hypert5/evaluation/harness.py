"""Held-out evaluation in the paper's metrics, on either backend (PyTorch offline, or a running service).

    python -m hypert5.evaluation --p3 DIR_OR_GLOB [--sni DIR_OR_GLOB] (--checkpoint RUN_DIR | --url URL
        [--api-key K] [--manifest BUNDLE_DIR]) [--kind prefix|lora] [--k 3] [--max-instances 100] [--seed 0]
        [--out results.json]

P3 / T0 held-out templates: per template, a generator seeded with ``"{seed}:{template}"`` picks k
demonstrations (the hypermodel's examples) and, in random order, up to ``--max-instances`` of the other
examples as queries (``data.p3_episode``). Classification templates (``P3Template.is_classification``) score
accuracy with answer choices (``metrics.choice_accuracy``; offline also rank classification), the others
ROUGE-L.

Super-NaturalInstructions tasks: Def+2Pos -> the hypermodel, ``Instances[:max_instances]`` -> ROUGE-L (max
over the acceptable outputs), as in the SNI and HyperTuning papers.

Def+2Pos over HTTP. The service takes only ``examples`` (input/output pairs) and serializes them itself as
``input_prefix + input + output_prefix + output``, joined by ``example_separator`` (manifest
``hyper_input``); it has no way to take a raw context text. The SNI paper's Def+2Pos text
(``data.def_2pos``: "Definition: ...\\n\\nPositive Example 1 -\\nInput: ...\\nOutput: ...") therefore cannot be
sent as is: every serialization starts with the input prefix and puts the output prefix between an input
and its output. So both backends feed the hypermodel what the service builds from this mapping
(``sni_examples``): the two positive examples become the two examples, and the definition leads the first
input::

    examples = [("Definition: {definition}\\n\\n{pos1.input}", pos1.output), (pos2.input, pos2.output)]
    -> "in: Definition: {definition}\\n\\n{pos1.input} out: {pos1.output}\\nin: {pos2.input} out: {pos2.output}"

(the second line with the default format). The positive examples stay in the few-shot format the
hypermodel reads everywhere else (P3 demonstrations, the service's clients), and the offline backend
serializes them with the same ``HyperInputFormat.serialize`` as ``serializeExamples`` in the service, so
both backends feed identical token ids and give identical numbers. ``--sni-context raw`` (offline only)
feeds the raw ``def_2pos`` text instead (what ``data.sni_episode`` gives training), not comparable with the
service.

Output: one row per task (the metric, the score, ROUGE-L, exact match, accuracy and rank accuracy for
classification templates, the predictions) and per-collection task averages (x100), as JSON and a table.
Deterministic given the seed: the sampling is seeded, decoding greedy.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..data import P3Template, SniTask, p3_episode, read_p3, read_sni, sni_episode, sni_examples
from ..examples import HyperInputFormat
from . import metrics
from .backends import DEFAULT_MAX_EXAMPLE_CHARS, Backend, HttpBackend, TorchBackend


@dataclass
class EvalTask:
    collection: str  # "p3" | "sni"
    name: str
    examples: list[tuple[str, str]]  # what the hypermodel gets, as the service's examples
    queries: list[tuple[str, list[str]]]  # (source, acceptable targets; the first is the gold)
    choices: list[str] | None  # answer choices (classification) or None
    raw_context: str | None = None  # offline-only alternative hypermodel text (SNI: def_2pos)

    @property
    def metric(self) -> str:
        return "accuracy" if self.choices else "rougeL"


def p3_tasks(
    templates: Sequence[P3Template], k: int, max_instances: int, seed: int, fmt: HyperInputFormat | None = None
) -> list[EvalTask]:
    tasks = []
    for t in templates:
        queries = min(max_instances, len(t.examples) - k)
        if queries < 1:
            print(f"skipping {t.name}: {len(t.examples)} examples, k={k} leaves no query", file=sys.stderr)
            continue
        episode = p3_episode(t, random.Random(f"{seed}:{t.name}"), k, queries, fmt or HyperInputFormat())
        tasks.append(EvalTask("p3", t.name, list(episode.examples or []), episode.queries, episode.answer_choices))
    return tasks


def sni_tasks(tasks: Sequence[SniTask], max_instances: int) -> list[EvalTask]:
    out = []
    for t in tasks:
        episode = sni_episode(t, t.instances[:max_instances])
        out.append(EvalTask("sni", t.name, sni_examples(t), episode.queries, None, raw_context=episode.context))
    return out


def evaluate_task(
    backend: Backend, task: EvalTask, kind: str, max_new_tokens: int, *, rank: bool = True, raw_context: bool = False
) -> dict[str, Any]:
    context: Any = task.raw_context if raw_context and task.raw_context is not None else task.examples
    handle = backend.adapt(context, kind)
    sources = [s for s, _ in task.queries]
    predictions = backend.generate(handle, sources, max_new_tokens)
    limits = backend.limits
    row: dict[str, Any] = {
        "collection": task.collection,
        "task": task.name,
        "metric": task.metric,
        "n": len(sources),
        "rougeL": metrics.mean_percent([metrics.rouge_l(p, refs) for p, (_, refs) in zip(predictions, task.queries)]),
        "exact_match": metrics.mean_percent(
            [metrics.exact_match(p, refs) for p, (_, refs) in zip(predictions, task.queries)]
        ),
        "truncated": {
            "examples": (
                limits.fit_text(context, limits.hyper_input.max_tokens) != context
                if isinstance(context, str)
                else limits.fit_examples(context) != list(context)
            ),
            "queries": sum(limits.fit_text(s) != s for s in sources),
        },
    }
    if task.choices:
        golds = [refs[0] for _, refs in task.queries]
        mapped = [metrics.map_to_choice(p, task.choices) for p in predictions]
        row["choices"] = task.choices
        row["accuracy"] = metrics.mean_percent([float(metrics.same_choice(m, g)) for m, g in zip(mapped, golds)])
        row["mapped"] = mapped
        score = getattr(backend, "score", None)
        if rank and score is not None:
            ranked = [metrics.rank_choice(ll, task.choices) for ll in score(handle, sources, task.choices)]
            row["rank_accuracy"] = metrics.mean_percent(
                [float(metrics.same_choice(r, g)) for r, g in zip(ranked, golds)]
            )
            row["ranked"] = ranked
    row["score"] = row[task.metric]
    row["predictions"] = predictions
    return row


def averages(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per collection, the unweighted mean over tasks of each per-task percentage."""

    def mean(values: list[float]) -> float | None:
        return round(sum(values) / len(values), 2) if values else None

    out: dict[str, dict[str, Any]] = {}
    for collection in sorted({r["collection"] for r in rows}):
        mine = [r for r in rows if r["collection"] == collection]
        avg: dict[str, Any] = {"tasks": len(mine), "score": mean([r["score"] for r in mine])}
        classification = [r for r in mine if r["metric"] == "accuracy"]
        generation = [r for r in mine if r["metric"] == "rougeL"]
        if classification:
            avg["accuracy"] = mean([r["accuracy"] for r in classification])
            ranked = [r["rank_accuracy"] for r in classification if "rank_accuracy" in r]
            if ranked:
                avg["rank_accuracy"] = mean(ranked)
        if generation:
            avg["rougeL"] = mean([r["rougeL"] for r in generation])
        avg["exact_match"] = mean([r["exact_match"] for r in mine])
        out[collection] = avg
    return out


def run(
    backend: Backend,
    tasks: Sequence[EvalTask],
    kind: str | None = None,
    max_new_tokens: int | None = None,
    *,
    rank: bool = True,
    raw_context: bool = False,
    progress: bool = True,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    kind = kind or backend.default_kind
    if kind not in backend.kinds:
        raise ValueError(f"kind={kind!r}: {backend.model} has {list(backend.kinds)}")
    if raw_context and isinstance(backend, HttpBackend):
        raise ValueError("raw contexts are offline only: the service builds the hypermodel's input from examples")
    budget = max_new_tokens or backend.limits.max_new_tokens
    t0 = time.time()
    rows = []
    bar = tqdm(tasks, desc=f"{backend.name} {kind}", unit="task", disable=not progress, file=sys.stderr)
    for task in bar:
        bar.set_postfix_str(task.name[:40])
        rows.append(evaluate_task(backend, task, kind, budget, rank=rank, raw_context=raw_context))
    return {
        "config": {
            "backend": backend.name,
            "model": backend.model,
            "kind": kind,
            "max_new_tokens": budget,
            "fingerprint": backend.limits.fingerprint,
            **(config or {}),
        },
        "averages": averages(rows),
        "tasks": rows,
        "seconds": round(time.time() - t0, 1),
    }


def table(result: dict[str, Any]) -> str:
    """The per-task rows, then the per-collection averages, as aligned text."""

    def fmt(v: Any) -> str:
        return "-" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)

    head = ("collection", "task", "n", "metric", "score", "rougeL", "EM", "rank acc")
    lines = [head] + [
        (
            r["collection"],
            r["task"],
            str(r["n"]),
            r["metric"],
            fmt(r["score"]),
            fmt(r["rougeL"]),
            fmt(r["exact_match"]),
            fmt(r.get("rank_accuracy")),
        )
        for r in result["tasks"]
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = [
        "  ".join(c.ljust(w) if j < 4 else c.rjust(w) for j, (c, w) in enumerate(zip(line, widths))) for line in lines
    ]
    out.insert(1, "-" * len(out[0]))
    for collection, a in result["averages"].items():
        detail = ", ".join(f"{k} {fmt(v)}" for k, v in a.items() if k not in ("tasks", "score"))
        out.append(f"{collection} average over {a['tasks']} tasks: score {fmt(a['score'])} ({detail})")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hypert5.evaluation", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--p3", nargs="+", default=[], metavar="DIR_OR_GLOB", help="P3-style template files")
    parser.add_argument("--sni", nargs="+", default=[], metavar="DIR_OR_GLOB", help="SNI task files")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--checkpoint", type=Path, help="offline: a training run or checkpoint folder")
    where.add_argument("--url", help="a running service, e.g. http://localhost:8000")
    parser.add_argument(
        "--api-key", default=os.environ.get("HYPERT5_API_KEY"), help="the service's API key (default: $HYPERT5_API_KEY)"
    )
    parser.add_argument(
        "--manifest", type=Path, help="with --url: the served bundle folder (or its checkpoint), for exact input limits"
    )
    parser.add_argument("--kind", choices=["prefix", "lora"], help="adapter kind (default: the model's)")
    parser.add_argument("--k", type=int, default=3, help="P3 demonstrations per template")
    parser.add_argument("--max-instances", type=int, default=100, help="queries per task")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-new-tokens", type=int, help="default: the model's generation.max_new_tokens")
    parser.add_argument("--batch-size", type=int, default=16, help="queries per forward pass / per request")
    parser.add_argument(
        "--max-example-chars",
        type=int,
        default=DEFAULT_MAX_EXAMPLE_CHARS,
        help="cap on one example's input/output, as the service's MAX_EXAMPLE_CHARS",
    )
    parser.add_argument(
        "--sni-context",
        choices=["examples", "raw"],
        default="examples",
        help="raw: feed def_2pos text to the hypermodel (offline only, not comparable)",
    )
    parser.add_argument("--no-rank", action="store_true", help="skip rank classification (offline)")
    parser.add_argument("--threads", type=int, help="torch threads (offline)")
    parser.add_argument("--out", type=Path, help="write the results here (JSON)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if not args.p3 and not args.sni:
        parser.error("give --p3 and/or --sni")
    if args.k < 1 or args.max_instances < 1:
        parser.error("--k and --max-instances must be >= 1")
    if args.checkpoint:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        backend: Backend = TorchBackend(
            args.checkpoint, batch_size=args.batch_size, max_example_chars=args.max_example_chars
        )
    else:
        backend = HttpBackend(
            args.url,
            args.api_key,
            manifest=args.manifest,
            batch_size=args.batch_size,
            max_example_chars=args.max_example_chars,
        )
    if args.k > backend.limits.hyper_input.max_examples:
        parser.error(f"--k {args.k}: the model takes at most {backend.limits.hyper_input.max_examples} examples")
    tasks = p3_tasks(
        [t for spec in args.p3 for t in read_p3(spec)],
        args.k,
        args.max_instances,
        args.seed,
        backend.limits.hyper_input,
    )
    tasks += sni_tasks([t for spec in args.sni for t in read_sni(spec)], args.max_instances)
    config = {
        "p3": args.p3,
        "sni": args.sni,
        "k": args.k,
        "max_instances": args.max_instances,
        "seed": args.seed,
        "sni_context": args.sni_context,
        "source": str(args.checkpoint or args.url),
    }
    result = run(
        backend,
        tasks,
        args.kind,
        args.max_new_tokens,
        rank=not args.no_rank,
        raw_context=args.sni_context == "raw",
        progress=not args.quiet,
        config=config,
    )
    print(table(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {args.out}")
    return 0
