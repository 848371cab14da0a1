"""Section 3's reference points without HTTP: the same model generating greedily in PyTorch eager and in
ONNX Runtime's Python API (hypert5.ort_runtime.OrtBundle, the parity reference), on the same prompts and
adapters as the HTTP load, for a fixed time budget each."""

from __future__ import annotations

import time
from typing import Any, Callable

import torch

from hypert5.generate import greedy, pad_batch
from hypert5.ort_runtime import OrtBundle

from .common import log


def request_for(items: list[dict[str, Any]], n: int, adapters: int) -> tuple[int, str]:
    """Request n when ``adapters`` adapters share the load (as bench/http.ts requestFor)."""
    item = n % adapters
    prompts = items[item]["prompts"]
    return item, prompts[(n // adapters) % len(prompts)]


def request_loop(
    budget_s: float,
    batch: int,
    adapters: int,
    items: list[dict[str, Any]],
    generate: Callable[[list[tuple[int, str]]], list[int]],
) -> dict[str, Any]:
    """The HTTP load's request sequence for ``adapters`` adapters, ``batch`` requests at a time,
    ``generate(requests) -> token counts``, until the budget is spent; ``cores``: this process's CPU time
    over the wall time."""
    generate([request_for(items, n, adapters) for n in range(batch)])  # warm-up
    start, cpu0, done, tokens, j = time.perf_counter(), time.process_time(), 0, 0, 0
    while time.perf_counter() - start < budget_s:
        reqs = [request_for(items, j + r, adapters) for r in range(batch)]
        j += batch
        counts = generate(reqs)
        done += len(counts)
        tokens += sum(counts)
    secs = time.perf_counter() - start
    return {
        "batch": batch,
        "adapters": adapters,
        "seconds": round(secs, 3),
        "completions": done,
        "tokens": tokens,
        "completions_per_s": done / secs,
        "tokens_per_s": tokens / secs,
        "cores": (time.process_time() - cpu0) / secs,
    }


def run(
    models,
    ort_bundle: OrtBundle,
    workload: dict[str, Any],
    max_tokens: int,
    budget_s: float,
    batches: list[int],
    kind: str,
) -> dict[str, Any]:
    fmt = models.settings.hyper_input
    items = workload["items"]  # [{"examples": [[in, out]...], "prompts": [str...]}]
    pad_id, eos = ort_bundle.special["pad"], ort_bundle.special["eos"]
    with torch.no_grad():
        torch_adapters = []
        for it in items:
            ctx, mask = pad_batch(
                [ort_bundle.encode_text(fmt.serialize([tuple(e) for e in it["examples"]]), fmt.max_tokens)], pad_id
            )
            torch_adapters.append(models.hyper[kind](ctx, mask))
    ort_adapters = [ort_bundle.hyper(kind, [tuple(e) for e in it["examples"]]) for it in items]

    def torch_gen(reqs: list[tuple[int, str]]) -> list[int]:
        ids, mask = pad_batch([ort_bundle.encode_text(p) for _, p in reqs], pad_id)
        adapters = {n: torch.cat([torch_adapters[i][n] for i, _ in reqs]) for n in torch_adapters[0]}
        return [len(o) for o in greedy(models.downstream, ids, mask, adapters, max_tokens)]

    def ort_gen(reqs: list[tuple[int, str]]) -> list[int]:
        return [len(o) for o in ort_bundle.greedy([p for _, p in reqs], [ort_adapters[i] for i, _ in reqs], max_tokens)]

    out: dict[str, Any] = {"max_tokens": max_tokens, "kind": kind, "eos": eos, "torch": [], "ort_python": []}
    # Batch 1 over the single-adapter and the widest mix; batch b over b distinct adapters (HTTP's c = b cells).
    runs = [(1, 1)] + [(1, b) for b in batches if b > 1] + [(b, b) for b in batches if b > 1]
    for b, a in runs:
        out["torch"].append(request_loop(budget_s, b, a, items, torch_gen))
        log(f"eager torch batch {b}, {a} adapters: {out['torch'][-1]['tokens_per_s']:.1f} tokens/s")
    for b, a in runs[:2]:
        out["ort_python"].append(request_loop(budget_s, b, a, items, ort_gen))
        log(f"ort python batch {b}, {a} adapters: {out['ort_python'][-1]['tokens_per_s']:.1f} tokens/s")
    return out
