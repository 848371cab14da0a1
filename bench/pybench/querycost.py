"""Sections 2 and 6 in ONNX Runtime (the service's runtime, without HTTP, through hypert5.ort_runtime.OrtBundle):
per-query latency and FLOPs.

Every query is encoded once and then decoded for a fixed number of steps (no early stop), so the curves
show cost, not how long the model happens to talk. The in-context baseline is the same frozen T5 reading
the demonstrations prepended to the query (T5-MTF-Few-shot's format); its weights do not change its cost.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hypert5.examples import HyperInputFormat
from hypert5.ort_runtime import Adapter, OrtBundle

from . import flops
from .common import log, timed


def forced_query(rt: OrtBundle, src: list[int], steps: int, adapter: Adapter | None) -> None:
    """Encode one input, then exactly ``steps`` greedy decode steps (no early stop: a fixed output length)."""
    rt.greedy_ids([src], [adapter], steps, stop_at_eos=False)


def _fit(xs: list[float], ys: list[float]) -> dict[str, float]:
    slope, intercept = np.polyfit(np.array(xs, float), np.array(ys, float), 1)
    return {"slope": float(slope), "intercept": float(intercept), "max_over_min": float(max(ys) / max(min(ys), 1e-9))}


def per_query_vs_k(
    rt: OrtBundle, dims: flops.Dims, episodes: list[dict[str, Any]], ks: list[int], steps: int, reps: int, kind: str
) -> dict[str, Any]:
    """Per-query time against k. The cells are interleaved: each of ``reps`` rounds times every (k, episode)
    once, hyper and in-context in turn, starting at a different k each round, so that the machine's drift
    during the section falls on every k alike instead of reading as growth with k (a cell's time is the
    median over rounds; a row's the median over its episodes)."""
    fmt = HyperInputFormat(**rt.manifest["hyper_input"])
    cases = []
    for k in ks:
        for ep in episodes:
            demos = [tuple(d) for d in ep["demos"][:k]]
            x = ep["queries"][0][0]
            prompt = fmt.serialize(demos) + fmt.example_separator + fmt.input_prefix + x + fmt.output_prefix
            cases.append(
                {
                    "k": k,
                    "adapter": rt.hyper_ids(kind, rt.token_ids(fmt.serialize(demos))),
                    "query": rt.token_ids(x),
                    "prompt": rt.token_ids(prompt),
                    "hyper_ms": [],
                    "ctx_ms": [],
                }
            )
    for case in cases:  # warm-up: every input length once
        forced_query(rt, case["query"], steps, case["adapter"])
        forced_query(rt, case["prompt"], steps, None)
    for r in range(reps):
        shift = (r * len(episodes)) % len(cases)
        for case in cases[shift:] + cases[:shift]:
            case["hyper_ms"].append(
                timed(lambda: forced_query(rt, case["query"], steps, case["adapter"]), 1, 0)["p50_ms"]
            )
            case["ctx_ms"].append(timed(lambda: forced_query(rt, case["prompt"], steps, None), 1, 0)["p50_ms"])
    rows = []
    for k in ks:
        mine = [c for c in cases if c["k"] == k]
        src_h = round(float(np.mean([len(c["query"]) for c in mine])))
        src_c = round(float(np.mean([len(c["prompt"]) for c in mine])))
        rows.append(
            {
                "k": k,
                "hyper_ms": float(np.median([np.median(c["hyper_ms"]) for c in mine])),
                "in_context_ms": float(np.median([np.median(c["ctx_ms"]) for c in mine])),
                "hyper_src_tokens": src_h,
                "in_context_src_tokens": src_c,
                "hyper_mflops": flops.query(dims, src_h, steps, kind) / 1e6,
                "in_context_mflops": flops.query(dims, src_c, steps) / 1e6,
            }
        )
        log(f"per-query k={k}: hyper {rows[-1]['hyper_ms']:.2f} ms, in-context {rows[-1]['in_context_ms']:.2f} ms")
    ks_f = [float(r["k"]) for r in rows]
    return {
        "kind": kind,
        "output_tokens": steps,
        "episodes": len(episodes),
        "rows": rows,
        "fit_ms_per_k": {
            "hyper": _fit(ks_f, [r["hyper_ms"] for r in rows]),
            "in_context": _fit(ks_f, [r["in_context_ms"] for r in rows]),
        },
        "fit_mflops_per_k": {
            "hyper": _fit(ks_f, [r["hyper_mflops"] for r in rows]),
            "in_context": _fit(ks_f, [r["in_context_mflops"] for r in rows]),
        },
    }


def growth(
    rt: OrtBundle,
    dims: flops.Dims,
    src_lens: list[int],
    out_lens: list[int],
    base_src: int,
    base_out: int,
    reps: int,
    kind: str,
) -> dict[str, Any]:
    """Query latency vs input length (at base_out steps) and vs output length (at base_src tokens)."""
    adapter = rt.hyper_ids(kind, rt.token_ids("in: a out: b"))
    text = "0123456789 abcdefghijklmnopqrstuvwxyz | " * 32

    def src(n: int) -> list[int]:
        return rt.token_ids(text)[: n - 1] + [rt.special["eos"]]

    by_in = [
        {
            "src_tokens": n,
            "ms": timed(lambda: forced_query(rt, src(n), base_out, adapter), reps)["p50_ms"],
            "mflops": flops.query(dims, n, base_out, kind) / 1e6,
        }
        for n in src_lens
    ]
    by_out = [
        {
            "new_tokens": n,
            "ms": timed(lambda: forced_query(rt, src(base_src), n, adapter), reps)["p50_ms"],
            "mflops": flops.query(dims, base_src, n, kind) / 1e6,
        }
        for n in out_lens
    ]
    log("growth: input and output length done")
    return {
        "kind": kind,
        "by_input_length": by_in,
        "by_output_length": by_out,
        "fit_ms_per_input_token": _fit([float(r["src_tokens"]) for r in by_in], [r["ms"] for r in by_in]),
        "fit_ms_per_output_token": _fit([float(r["new_tokens"]) for r in by_out], [r["ms"] for r in by_out]),
    }


def decode_batch_adapters(rt: OrtBundle, batch: int, reps: int, kind: str) -> dict[str, Any]:
    """One decode step at ``batch`` rows with 1 adapter repeated vs ``batch`` distinct adapters (live adapters)."""
    dims = rt.manifest["dims"]
    rng = np.random.default_rng(0)
    adapters = [rt.hyper_ids(kind, rt.token_ids(f"in: {j} out: {rng.integers(1000)}")) for j in range(batch)]
    src = 24
    layers, heads, d_kv = dims["num_decoder_layers"], dims["num_heads"], dims["d_kv"]
    ck = rng.standard_normal((batch, heads, src, d_kv)).astype(np.float32)
    past = rng.standard_normal((batch, heads, 8, d_kv)).astype(np.float32)
    base = {
        "input_ids": np.full((batch, 1), 5, np.int64),
        "self_attention_mask": np.ones((batch, 9), np.int64),
        "encoder_attention_mask": np.ones((batch, src), np.int64),
        **{f"{name}.{i}": past for name in ("past_key", "past_value") for i in range(layers)},
        **{f"{name}.{i}": ck for name in ("cross_key", "cross_value") for i in range(layers)},
    }

    def feeds(distinct: bool) -> dict[str, np.ndarray]:
        return {**base, **rt.adapter_feeds("decoder", [adapters[j if distinct else 0] for j in range(batch)])}

    same, distinct = feeds(False), feeds(True)
    sess = rt.sessions["decoder"]
    return {
        "batch": batch,
        "same_adapter_ms": timed(lambda: sess.run(None, same), reps)["p50_ms"],
        "distinct_adapters_ms": timed(lambda: sess.run(None, distinct), reps)["p50_ms"],
    }
