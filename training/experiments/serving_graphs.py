"""Serving variants of a bundle's decoder graph, built beside the bundle and never into it.

The shipped decoder runs both adapter kinds in one graph (a LoRA row computes the gated prefix branch on
zeros, and the other way round), slices every adapter tensor and the past keys/values per layer inside the
graph, and spells attention out as MatMul/Softmax/MatMul with the head split and merge around it. Each
variant removes one of those costs, from the same frozen T5 (``models/README.md``, "decoder"):

- ``current``: the bundle's own ``decoder.onnx``;
- ``transformers-opt``: ``onnxruntime.transformers.optimizer`` (``model_type="t5"``, ``opt_level`` 1) on it,
  which fuses only the RMS norms and the GELU (no attention fusion matches this graph's attention);
- ``ort-extended``: ONNX Runtime's own offline optimisation (``optimized_model_filepath``, EXTENDED);
- ``lora`` / ``prefix``: one kind only, re-exported from PyTorch with the other kind's inputs left out
  (``DecoderGraph`` with one kind's specs: the other branch is statically absent);
- ``+layers``: every adapter tensor fed as one input per layer (``<name>.<layer>``, no batch-layer
  slicing inside the graph); outputs unchanged;
- ``+kv``: ``+layers``, and the past and cross keys/values per layer too (``past_key.<layer>``
  `[batch, heads, past_len, d_kv]`, ...); outputs unchanged;
- ``+mha``: attention exported as ONNX Runtime's ``com.microsoft.MultiHeadAttention`` (``scale`` 1, the
  position bias and masks as ``attention_bias``, keys/values in BNSH), the gated prefix as a second one.

Then, in one run: every variant's outputs against ``current`` on the same feeds (hypermodel adapters of
held-out tasks), greedy decodes of held-out prompts compared token by token, interleaved timings (one
intra-op thread, the service's session settings) at batch 1 and 16 with 16 and 32 past tokens, and ONNX
Runtime's profiler's kernel time by operator type for ``current``, the fastest variant and ``<kind>+kv+mha``.

    python -m experiments.serving_graphs --bundle ../models/default --work /tmp/graphs-exp [--out result.json]
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import statistics
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from safetensors.torch import load_file
from torch import Tensor
from torch.onnx import symbolic_helper

from hypert5.adapters import DECODER_PREFIXES, for_graph, lora_specs, prefix_specs
from hypert5.bundle import DOWNSTREAM_FILE
from hypert5.onnx_graphs import DecoderGraph, export_graph
from hypert5.ort_runtime import Adapter, OrtBundle
from hypert5.t5 import T5, T5Attention, load_hf_state_dict
from hypert5.tasks import list_families, sample_episode_for_family
from hypert5.unbundle import settings_from_manifest

SHAPE_OPS = ("Split", "Squeeze", "Unsqueeze", "Concat", "Reshape", "Transpose", "Gather", "Slice", "Expand", "Shape")
MATMUL_OPS = ("MatMul", "FusedMatMul", "Gemm")
# Re-exported variants: <kinds>[+layers: adapters per layer][+kv: keys/values per layer too][+mha: fused attention]
VARIANTS = (
    "both",  # the shipped graph re-exported: an A/A control for the timings
    "both+mha",
    "both+layers",
    "both+kv",
    "lora",
    "lora+layers",
    "lora+kv",
    "lora+kv+mha",
    "prefix",
    "prefix+layers",
    "prefix+kv",
    "prefix+kv+mha",
)


# ---- variants ------------------------------------------------------------------------------------


def downstream(bundle: Path, manifest: dict) -> T5:
    """The bundle's frozen T5 from its PEFT weights (what ``hypert5.unbundle.rebuild`` does, without the
    hypermodels, which the decoder does not need)."""
    settings = settings_from_manifest(manifest, head_hidden=1)
    t5 = T5(settings.dims, lora_scale=settings.lora.scaling)
    load_hf_state_dict(t5, load_file(str(bundle / DOWNSTREAM_FILE)))
    return t5.eval()


class _Layers:
    """One adapter tensor given as per-layer tensors: ``t5.py`` reads layer ``l`` as ``tensor[:, l]``."""

    def __init__(self, layers: list[Tensor]):
        self.layers = layers

    def __getitem__(self, index: tuple) -> Tensor:
        rows, layer = index
        assert rows == slice(None), index
        return self.layers[layer]


class PerLayerDecoderGraph(DecoderGraph):
    """``DecoderGraph`` whose adapter inputs are ``<name>.<layer>`` `[batch, *shape[1:]]`, one per layer; with
    ``kv`` the past and cross keys/values too (``past_key.<layer>`` `[batch, heads, past_len, d_kv]`, ...).
    Outputs unchanged."""

    KV = ("past_key", "past_value", "cross_key", "cross_value")

    def __init__(self, t5: T5, adapter_specs, kv: bool = False):
        super().__init__(t5, adapter_specs)
        layers = t5.dims.num_decoder_layers
        # A "peft" prefix's mask [P] has no layer dimension: it stays one input.
        self.split = [(s.name, None if s.name.endswith(".mask") else s.shape[0]) for s in adapter_specs]
        inputs = []
        for name, dtype, shape in self.inputs:
            if name in self.KV and kv:
                inputs += [(f"{name}.{layer}", dtype, [shape[0], *shape[2:]]) for layer in range(layers)]
            elif name.startswith(("lora.", "prefix.")) and not name.endswith(".mask"):
                inputs += [(f"{name}.{layer}", dtype, [shape[0], *shape[2:]]) for layer in range(shape[1])]
            else:
                inputs.append((name, dtype, shape))
        self.kv = [(name, layers) for name in self.KV] if kv else []
        self.inputs = inputs

    def forward(self, *args: Tensor):
        rest = list(args)
        fixed = rest[:3] + ([] if self.kv else rest[3:7])
        rest = rest[3:] if self.kv else rest[7:]
        grouped = {}
        for name, layers in self.kv + self.split:
            if layers is None:
                grouped[name], rest = rest[0], rest[1:]
            else:
                grouped[name], rest = _Layers(rest[:layers]), rest[layers:]
        if self.kv:
            fixed += [grouped.pop(name) for name in self.KV]
        return self.t5.decoder_step(*fixed, grouped)


class _MultiHeadAttention(torch.autograd.Function):
    """Unscaled attention of q (B, Tq, H*d) over k, v (B, H, T, d) with an additive bias (B|1, H|1, Tq, T);
    exported as ONNX Runtime's MultiHeadAttention (BNSH keys/values, ``scale`` 1)."""

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None, heads: int) -> Tensor:
        qh = q.view(q.shape[0], q.shape[1], heads, -1).transpose(1, 2)  # (B, H, Tq, d)
        scores = torch.matmul(qh, k.transpose(-1, -2))  # (B, H, Tq, T)
        if bias is not None:
            scores = scores + bias
        out = torch.matmul(torch.softmax(scores, dim=-1), v)  # (B, H, Tq, d)
        return out.transpose(1, 2).reshape(q.shape)  # (B, Tq, H*d)

    @staticmethod
    def symbolic(g, q, k, v, bias, heads):
        absent = symbolic_helper._optional_input_placeholder_tensor(g)
        inputs = [q, k, v, absent, absent] + ([bias] if bias is not None and not symbolic_helper._is_none(bias) else [])
        return g.op("com.microsoft::MultiHeadAttention", *inputs, num_heads_i=heads, scale_f=1.0)


def _fused_attend(self: T5Attention, x, k, v, bias, lora_q, prefix):
    """``T5Attention.attend`` with both softmaxes as MultiHeadAttention (same math)."""
    q = self.q(x)
    if lora_q is not None:
        a, b, scale = lora_q
        q = q + scale * torch.matmul(torch.matmul(x, a), b)  # (B, Tq, H*d)
    out = _MultiHeadAttention.apply(q, k, v, bias, self.heads)
    if prefix is not None:
        pk, pv, gate = prefix  # (B, H, P, d), (B, H, P, d), (B, H)
        p_out = _MultiHeadAttention.apply(q, pk, pv, None, self.heads).unflatten(-1, (self.heads, self.d_kv))
        out = out + (p_out * gate[:, None, :, None]).flatten(-2)  # (B, Tq, H*d)
    return self.o(out)


@contextmanager
def fused_attention():
    """Swap T5Attention.attend for the MultiHeadAttention version while exporting (and only then)."""
    original = T5Attention.attend
    T5Attention.attend = _fused_attend
    try:
        yield
    finally:
        T5Attention.attend = original


def build_variants(bundle: Path, manifest: dict, work: Path) -> dict[str, Path]:
    work.mkdir(parents=True, exist_ok=True)
    current = bundle / manifest["graphs"]["decoder"]["file"]
    t5 = downstream(bundle, manifest)
    s = settings_from_manifest(manifest, head_hidden=1)
    kinds = {
        "both": for_graph(lora_specs(s.dims, s.lora) + prefix_specs(s.dims, s.prefix), DECODER_PREFIXES),
        "lora": for_graph(lora_specs(s.dims, s.lora), DECODER_PREFIXES),
        "prefix": for_graph(prefix_specs(s.dims, s.prefix), DECODER_PREFIXES),
    }
    out = {"current": current}
    for name in VARIANTS:
        kind, *changes = name.split("+")
        path = work / f"decoder_{name.replace('+', '_')}.onnx"
        if "layers" in changes or "kv" in changes:
            graph = PerLayerDecoderGraph(t5, kinds[kind], kv="kv" in changes)
        else:
            graph = DecoderGraph(t5, kinds[kind])
        with fused_attention() if "mha" in changes else nullcontext():
            export_graph(graph, path)
        out[name] = path
    from onnxruntime.transformers.optimizer import optimize_model

    hidden = manifest["dims"]["num_heads"] * manifest["dims"]["d_kv"]
    optimized = optimize_model(
        str(current), model_type="t5", num_heads=manifest["dims"]["num_heads"], hidden_size=hidden, opt_level=1
    )
    out["transformers-opt"] = work / "decoder_transformers_opt.onnx"
    optimized.save_model_to_file(str(out["transformers-opt"]))
    options = service_options()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(work / "decoder_ort_extended.onnx")
    ort.InferenceSession(str(current), options, providers=["CPUExecutionProvider"])
    out["ort-extended"] = work / "decoder_ort_extended.onnx"
    return out


def fused_ops(path: Path) -> dict[str, int]:
    counts = collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)
    return {
        op: counts[op] for op in ("MultiHeadAttention", "SkipSimplifiedLayerNormalization", "FastGelu") if counts[op]
    }


# ---- sessions and feeds --------------------------------------------------------------------------


def service_options() -> ort.SessionOptions:
    """One intra-op thread and the service's settings (src/inference/onnx.ts SESSION_SETTINGS)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return options


class Variant:
    """A decoder session that takes the bundle decoder's feeds: per-layer inputs are sliced from the stacked
    ones, inputs the variant lacks (the other kind's adapter) are dropped."""

    def __init__(self, path: Path, profile: str | None = None):
        options = service_options()
        if profile:
            options.enable_profiling = True
            options.profile_file_prefix = profile
        t0 = time.perf_counter()
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.load_ms = 1000 * (time.perf_counter() - t0)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def feeds(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for name in self.input_names:
            if name in feeds:
                out[name] = feeds[name]
            else:
                base, _, layer = name.rpartition(".")
                out[name] = np.ascontiguousarray(feeds[base][:, int(layer)])
        return out

    def run(self, fetches, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(fetches, self.feeds(feeds))

    def kinds(self) -> set[str]:
        return {k for k in ("lora", "prefix") if any(n.startswith(k + ".") for n in self.input_names)}


def rows_slice(feeds: dict[str, np.ndarray], rows: slice) -> dict[str, np.ndarray]:
    return {k: np.ascontiguousarray(v[rows]) for k, v in feeds.items()}


# ---- parity --------------------------------------------------------------------------------------


def max_diffs(reference: Variant, variant: Variant, feeds: dict) -> dict[str, float]:
    want, got = reference.run(None, feeds), variant.run(None, feeds)
    return {o.name: float(np.abs(w - g).max()) for o, w, g in zip(reference.session.get_outputs(), want, got)}


def greedy_with(runtime: OrtBundle, decoder: Variant, queries: list[str], adapters: list[Adapter]) -> list[list[int]]:
    shipped = runtime.sessions["decoder"]
    runtime.sessions["decoder"] = decoder
    try:
        return runtime.greedy(queries, adapters, runtime.manifest["generation"]["max_new_tokens"])
    finally:
        runtime.sessions["decoder"] = shipped


# ---- timing and profiles -------------------------------------------------------------------------


def spread(xs: list[float], digits: int = 3) -> dict[str, float]:
    qs = statistics.quantiles(xs, n=10)  # deciles: qs[0] is the 10th percentile, qs[-1] the 90th
    return {"p50": round(statistics.median(xs), digits), "p10": round(qs[0], digits), "p90": round(qs[-1], digits)}


def interleaved(contenders: dict[str, list], rounds: int, sample_ms: float) -> dict[str, dict]:
    """``contenders``: name -> [(Variant, feeds), ...] run one after the other (a split batch runs two graphs).
    Each round takes one sample of every contender (back-to-back runs), in an order that rotates from round
    to round; ratios to the first contender are taken per round. ``cpu_ms`` is this thread's CPU time per
    run (with one intra-op thread ONNX Runtime computes on the calling thread), which leaves out the time
    other processes hold the core: on a loaded machine it is the steadier measure. ``wall_ms`` beside it."""
    prepared = {n: [(v.session, v.feeds(f)) for v, f in parts] for n, parts in contenders.items()}

    def sample(parts, k: int) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.thread_time()
        for _ in range(k):
            for session, feeds in parts:
                session.run(None, feeds)
        return 1000 * (time.thread_time() - cpu) / k, 1000 * (time.perf_counter() - wall) / k

    names = list(prepared)
    for n in names:
        sample(prepared[n], 3)
    k = max(1, round(sample_ms / sample(prepared[names[0]], 10)[0]))
    cpu, wall = {n: [] for n in names}, {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names) :] + names[: r % len(names)]:
            c, w = sample(prepared[n], k)
            cpu[n].append(c)
            wall[n].append(w)
    base = cpu[names[0]]
    return {
        n: {
            "cpu_ms": spread(cpu[n]),
            "wall_ms": spread(wall[n]),
            "over_current": spread([x / y for x, y in zip(cpu[n], base)]),
        }
        for n in names
    }


def kernel_profile(path: Path, feeds: dict, runs: int, prefix: str) -> dict:
    """Kernel time by operator type from ONNX Runtime's profiler: each kernel's median over ``runs`` runs
    (a median, because a run that another process preempts inflates whichever kernel it was in)."""
    variant = Variant(path, profile=prefix)
    feeds = variant.feeds(feeds)
    for _ in range(runs):
        variant.session.run(None, feeds)
    events = json.loads(Path(variant.session.end_profiling()).read_text())
    per_node: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_node[(e["name"], e["args"]["op_name"])].append(e["dur"])  # microseconds
    by_op: dict[str, float] = collections.defaultdict(float)
    for (_, op), durations in per_node.items():
        by_op[op] += statistics.median(durations)
    total = sum(by_op.values())
    group = {
        "matmul": sum(v for k, v in by_op.items() if k in MATMUL_OPS),
        "shape": sum(v for k, v in by_op.items() if k in SHAPE_OPS),
        "attention": by_op.get("MultiHeadAttention", 0.0),
    }
    group["other"] = total - sum(group.values())
    return {
        "kernels_per_run": len(per_node),
        "kernel_us_per_run": round(total, 1),
        "share_percent": {k: round(100 * v / total, 1) for k, v in group.items()},
        "top_ops_us": {k: round(v, 1) for k, v in sorted(by_op.items(), key=lambda kv: -kv[1])[:10]},
    }


# ---- the run -------------------------------------------------------------------------------------


def held_out(seed: int, tasks: int, shots: int) -> list[tuple[list, list]]:
    rng = random.Random(seed)
    families = list_families("val")
    out = []
    for j in range(tasks):
        ep = sample_episode_for_family(rng, families[j % len(families)], shots, 4)
        out.append(([tuple(d) for d in ep.demos], ep.queries))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, default=Path("../models/default"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/graphs-exp"), help="where the variants are written")
    ap.add_argument("--rounds", type=int, default=25, help="interleaved rounds per timed case")
    ap.add_argument("--sample-ms", type=float, default=25.0, help="back-to-back runs per sample, in ms")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--out", type=Path, default=None, help="also write the result here (JSON)")
    args = ap.parse_args(argv)

    runtime = OrtBundle(args.bundle)
    paths = build_variants(args.bundle, runtime.manifest, args.work)
    variants = {n: Variant(p) for n, p in paths.items()}
    result: dict = {
        "bundle": runtime.manifest["fingerprint"],
        "onnxruntime": ort.__version__,
        "fused_ops": {n: fused_ops(p) for n, p in paths.items()},
        "load_ms": {n: round(v.load_ms, 1) for n, v in variants.items()},
    }
    tasks = held_out(args.seed, 16, 3)
    queries = [qs[0][0] for _, qs in tasks]
    adapters = {k: [runtime.hyper(k, demos) for demos, _ in tasks] for k in ("lora", "prefix")}

    # Parity: every variant against the shipped decoder on the rows of the kinds it serves.
    result["max_abs_diff"], result["greedy"] = {}, {}
    current = variants["current"]
    prompts = [q for _, qs in tasks[:8] for q, _ in qs[:2]]
    for kind in ("lora", "prefix"):
        feeds = runtime.step_feeds(queries, adapters[kind], 16)["decoder"]
        rows = [adapters[kind][i // 2] for i in range(len(prompts))]
        want = greedy_with(runtime, current, prompts, rows)
        for name, v in variants.items():
            if kind in v.kinds() and name != "current":
                result["max_abs_diff"][f"{name} ({kind} rows)"] = max_diffs(current, v, feeds)
                got = greedy_with(runtime, v, prompts, rows)
                result["greedy"][f"{name} ({kind} rows)"] = {
                    "prompts": len(prompts),
                    "identical": sum(a == b for a, b in zip(want, got)),
                    "tokens": sum(map(len, want)),
                }
        print(json.dumps({k: v for k, v in result["greedy"].items() if kind in k}), flush=True)

    # Speed: interleaved, per (rows' kind, batch, past).
    result["loadavg_before_timing"] = Path("/proc/loadavg").read_text().strip()
    result["timing"] = {}
    for kind in ("lora", "prefix"):
        names = [n for n, v in variants.items() if kind in v.kinds()]
        for past in (16, 32):
            full = runtime.step_feeds(queries, adapters[kind], past)["decoder"]
            for batch in (1, 16):
                feeds = rows_slice(full, slice(0, batch))
                cell = interleaved({n: [(variants[n], feeds)] for n in names}, args.rounds, args.sample_ms)
                result["timing"][f"{kind} rows, batch {batch}, past {past}"] = cell
                print(
                    f"{kind} B={batch} P={past}: " + json.dumps({n: c["over_current"]["p50"] for n, c in cell.items()}),
                    flush=True,
                )
    # A mixed batch: 8 LoRA rows and 8 prefix rows, one graph for both against one graph per kind.
    mixed = [adapters["lora"][i] if i < 8 else adapters["prefix"][i] for i in range(16)]
    for past in (16, 32):
        feeds = runtime.step_feeds(queries, mixed, past)["decoder"]
        lo, pre = rows_slice(feeds, slice(0, 8)), rows_slice(feeds, slice(8, 16))
        cell = interleaved(
            {
                "current": [(current, feeds)],
                "lora + prefix": [(variants["lora"], lo), (variants["prefix"], pre)],
                "lora+layers + prefix+layers": [(variants["lora+layers"], lo), (variants["prefix+layers"], pre)],
                "lora+kv + prefix+kv": [(variants["lora+kv"], lo), (variants["prefix+kv"], pre)],
                "lora+kv+mha + prefix+kv+mha": [(variants["lora+kv+mha"], lo), (variants["prefix+kv+mha"], pre)],
            },
            args.rounds,
            args.sample_ms,
        )
        result["timing"][f"mixed 8 lora + 8 prefix rows, past {past}"] = cell
        print(f"mixed P={past}: " + json.dumps({n: c["over_current"]["p50"] for n, c in cell.items()}), flush=True)
    result["loadavg_after_timing"] = Path("/proc/loadavg").read_text().strip()

    # Profiles: current against each kind's fastest variant at batch 16, past 32.
    result["profile"] = {}
    for kind in ("lora", "prefix"):
        cell = result["timing"][f"{kind} rows, batch 16, past 32"]
        best = min(cell, key=lambda n: cell[n]["cpu_ms"]["p50"])
        feeds = runtime.step_feeds(queries, adapters[kind], 32)["decoder"]
        for name in dict.fromkeys(["current", best, f"{kind}+kv+mha"]):
            prefix = str(args.work / f"profile_{kind}_{name.replace('+', '_')}")
            result["profile"][f"{name} ({kind} rows, batch 16, past 32)"] = kernel_profile(
                paths[name], feeds, 200, prefix
            )
    print(json.dumps(result["profile"], indent=1), flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
