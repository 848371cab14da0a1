"""Section 1, the gradient side: per-task LoRA and prefix tuning of the frozen model on the same k examples,
until it matches the hypermodel's accuracy on the same held-out episodes (or a step budget runs out).

The step is hypert5.train.evaluate.tune()'s (Adam on the adapter tensors only, full batch of the k demos,
random PEFT-style init, the evaluation's learning rate for each kind: TUNE_LR). All tasks advance together
from checkpoint to checkpoint; at each one the mean accuracy over the tasks' held-out queries is compared
with the hyper adapters' mean, and tuning stops at the first checkpoint (at least one step) that reaches
it. Only the optimisation steps are timed.

Accuracy is token accuracy: the fraction of the queries' answer tokens (eos included) that the model
predicts, teacher forced. Exact match (greedy, whole answer) is recorded too, but a small model's exact
match is a few percent, i.e. one or two answers out of the queries here: too coarse to compare.
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F

from hypert5.generate import pad_batch
from hypert5.train.evaluate import TUNE_LR, exact_match, random_init, repeat
from hypert5.train.text import PAD, encode, targets

from .common import log


def pad(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    return pad_batch(rows, PAD)


class _Task:
    """One held-out task being tuned: its adapter tensors, optimiser and fixed batch."""

    def __init__(
        self,
        models,
        demos: list[tuple[str, str]],
        queries: list[tuple[str, str]],
        kind: str,
        lr: float,
        generator: torch.Generator,
    ):
        self.models, self.queries = models, queries
        self.params = {
            k: v.detach().clone().requires_grad_(True) for k, v in random_init(kind, models.settings, generator).items()
        }
        self.optimizer = torch.optim.Adam(self.params.values(), lr=lr)
        self.ids, self.mask = pad([encode(x, 256) for x, _ in demos])
        self.decoder_in, self.labels = targets([encode(y, 64) for _, y in demos])
        self.k, self.steps, self.seconds = len(demos), 0, 0.0

    def advance(self, to_step: int) -> None:
        t = time.perf_counter()
        for _ in range(to_step - self.steps):
            logits = self.models.downstream(self.ids, self.mask, self.decoder_in, repeat(self.params, self.k))
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), self.labels.reshape(-1), ignore_index=-100)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        self.seconds += time.perf_counter() - t
        self.steps = to_step

    def accuracy(self) -> tuple[float, float]:
        return accuracy(self.models, self.queries, {k: v.detach() for k, v in self.params.items()})


def accuracy(models, queries: list[tuple[str, str]], adapter) -> tuple[float, float]:
    """(token accuracy, exact match) of the frozen model with ``adapter`` (None: alone) on held-out queries."""
    xs, ys = [q for q, _ in queries], [a for _, a in queries]
    ids, mask = pad([encode(x, 256) for x in xs])
    decoder_in, labels = targets([encode(y, 64) for y in ys])
    batched = repeat(adapter, len(xs)) if adapter is not None else None
    with torch.no_grad():
        predicted = models.downstream(ids, mask, decoder_in, batched).argmax(-1)
        scored = labels != -100
        tokens = float(((predicted == labels) & scored).sum() / scored.sum())
        return tokens, exact_match(models.downstream, xs, ys, batched)


def compare(
    models,
    episodes: list[dict[str, Any]],
    k: int,
    kind: str,
    checkpoints: list[int],
    lr: float,
    seed: int,
    frozen_accuracy: float,
) -> dict[str, Any]:
    fmt = models.settings.hyper_input
    generator = torch.Generator().manual_seed(seed)
    hyper_acc, hyper_em, hyper_s, tasks = [], [], [], []
    for ep in episodes:
        demos = [tuple(d) for d in ep["demos"][:k]]
        queries = [tuple(q) for q in ep["queries"]]
        ctx_ids, ctx_mask = pad([encode(fmt.serialize(demos), fmt.max_tokens)])
        with torch.no_grad():
            t = time.perf_counter()
            adapter = models.hyper[kind](ctx_ids, ctx_mask)
            hyper_s.append(time.perf_counter() - t)
        tokens, em = accuracy(models, queries, adapter)
        hyper_acc.append(tokens)
        hyper_em.append(em)
        tasks.append(_Task(models, demos, queries, kind, lr, generator))
    target = sum(hyper_acc) / len(hyper_acc)
    curve, reached = [], None
    for stop in checkpoints:
        for task in tasks:
            task.advance(stop)
        scores = [t.accuracy() for t in tasks]
        point = {
            "steps": stop,
            "seconds_per_task": sum(t.seconds for t in tasks) / len(tasks),
            "accuracy": sum(a for a, _ in scores) / len(tasks),
            "exact_match": sum(e for _, e in scores) / len(tasks),
        }
        curve.append(point)
        # At 0 steps the random init is the frozen model for LoRA (b = 0) and gated prefixes (gate = 0), not
        # for "peft" prefixes (their random values are attended to), so at least one step is required.
        if stop > 0 and point["accuracy"] >= target - 1e-9:
            reached = point
            break
    log(
        f"tuning {kind} k={k}: hyper {100 * target:.1f}% tokens, tuning {100 * curve[-1]['accuracy']:.1f}% after {curve[-1]['steps']} steps"
    )
    return {
        "k": k,
        "kind": kind,
        "episodes": len(episodes),
        "lr": lr,
        "metric": "token accuracy on the held-out queries (teacher forced)",
        "hyper_accuracy": target,
        "hyper_exact_match": sum(hyper_em) / len(hyper_em),
        "hyper_torch_ms_p50": 1000 * sorted(hyper_s)[len(hyper_s) // 2],
        "frozen_accuracy": frozen_accuracy,
        "curve": curve,
        "reached": reached is not None,
        "steps": curve[-1]["steps"],
        "seconds_per_task": curve[-1]["seconds_per_task"],
        "accuracy": curve[-1]["accuracy"],
        "exact_match": curve[-1]["exact_match"],
    }


def run(models, episodes: list[dict[str, Any]], ks: list[int], checkpoints: list[int], seed: int) -> dict[str, Any]:
    for p in models.downstream.parameters():
        p.requires_grad_(False)
    # The frozen model's accuracy on the episodes' queries (the same for every k and kind), measured on its own.
    frozen = sum(accuracy(models, [tuple(q) for q in ep["queries"]], None)[0] for ep in episodes) / len(episodes)
    rows = [
        compare(models, episodes, k, kind, checkpoints, TUNE_LR[kind], seed, frozen)
        for k in ks
        for kind in ("lora", "prefix")
    ]
    return {"episodes": len(episodes), "ks": ks, "lr": TUNE_LR, "checkpoints": checkpoints, "rows": rows}
