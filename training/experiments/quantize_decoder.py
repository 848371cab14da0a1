"""An int8 decoder (and optionally encoder): ONNX Runtime's dynamic quantization of a bundle's graphs, kept
only if it is faster and no answer changes.

The bundle is copied into a temporary folder, the graphs are quantized there (weights int8, activations
quantized per run: ``onnxruntime.quantization.quantize_dynamic``), and its manifest's hashes are rewritten
so that the copy validates; the bundle itself is never written. Then, in one run:

- speed: each quantized graph against its float32 original, one intra-op thread and the service's session
  settings, on the same feeds (held-out tasks' LoRA adapters; the decoder at ``--past`` past tokens, the
  encoder on the queries), at batch 1 and 16; samples alternate between the two sessions and the ratio is
  taken per pair; medians and the 10th-90th percentiles;
- accuracy: greedy exact match of HyperT5-LoRA on the held-out families at k = 3 (the model card's
  sampling: seed 1234, 4 tasks per family, 8 queries, demonstrations the first k of a pool of 5), and on
  the everyday requests (``test/fixtures/everyday.json``), float32 and int8 bundles side by side, with
  how many answers differ.

    python -m experiments.quantize_decoder --bundle ../models/default [--graphs decoder encoder]
        [--per-channel] [--out runs/quantize_decoder.json]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic

from hypert5.bundle import fingerprint, sha256_file
from hypert5.ort_runtime import OrtBundle
from hypert5.tasks import list_families, sample_episode_for_family
from hypert5.train.everyday import EVERYDAY


def quantized_copy(bundle: Path, into: Path, graphs: list[str], per_channel: bool) -> Path:
    """A copy of ``bundle`` in ``into`` with ``graphs`` quantized and the manifest's hashes rewritten."""
    out = into / bundle.name
    shutil.copytree(bundle, out)
    manifest = json.loads((out / "manifest.json").read_text())
    for graph in graphs:
        name = manifest["graphs"][graph]["file"]
        quantize_dynamic(bundle / name, out / name, weight_type=QuantType.QInt8, per_channel=per_channel)
        manifest["files"][name] = sha256_file(out / name)
    manifest["fingerprint"] = fingerprint(manifest["files"])
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out


def service_session(file: Path) -> ort.InferenceSession:
    """One intra-op thread and the service's settings (src/inference/onnx.ts SESSION_SETTINGS)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])


def spread(xs: list[float], digits: int = 3) -> dict[str, float]:
    qs = statistics.quantiles(xs, n=10)  # deciles: qs[0] is the 10th percentile, qs[-1] the 90th
    return {"p50": round(statistics.median(xs), digits), "p10": round(qs[0], digits), "p90": round(qs[-1], digits)}


def speed(fp32: ort.InferenceSession, int8: ort.InferenceSession, feeds: dict, pairs: int, sample_ms: float) -> dict:
    """Interleaved samples of back-to-back runs (ms per run) and the per-pair ratio int8 / float32."""

    def sample(session: ort.InferenceSession, k: int) -> float:
        t0 = time.perf_counter()
        for _ in range(k):
            session.run(None, feeds)
        return (time.perf_counter() - t0) * 1000 / k

    for s in (fp32, int8):
        sample(s, 5)
    k = max(1, round(sample_ms / sample(fp32, 10)))
    a, b = [], []
    for p in range(pairs):
        # Which side goes first alternates, so that a trend in the machine's load does not favour one.
        if p % 2:
            b.append(sample(int8, k))
            a.append(sample(fp32, k))
        else:
            a.append(sample(fp32, k))
            b.append(sample(int8, k))
    diff = max(float(np.abs(x - y).max()) for x, y in zip(fp32.run(None, feeds), int8.run(None, feeds)))
    return {
        "float32_ms": spread(a),
        "int8_ms": spread(b),
        "int8_over_float32": spread([y / x for x, y in zip(a, b)]),
        "max_abs_diff": diff,
    }


def answers(runtime: OrtBundle, tasks: list[tuple[list, list]]) -> list[str]:
    """Greedy answers of HyperT5-LoRA to every task's queries, in order."""
    budget = runtime.manifest["generation"]["max_new_tokens"]
    out = []
    for demos, queries in tasks:
        adapter = runtime.hyper("lora", [tuple(d) for d in demos])
        ids = runtime.greedy([q for q, _ in queries], [adapter] * len(queries), budget)
        out += [runtime.tokenizer.decode(i) for i in ids]
    return out


def accuracy(fp32: OrtBundle, int8: OrtBundle, tasks: list[tuple[list, list]]) -> dict:
    want = [a for _, queries in tasks for _, a in queries]
    got = {"float32": answers(fp32, tasks), "int8": answers(int8, tasks)}
    return {
        "queries": len(want),
        **{
            f"{n}_exact_percent": round(100 * float(np.mean([g == w for g, w in zip(v, want)])), 1)
            for n, v in got.items()
        },
        "answers_changed": sum(x != y for x, y in zip(got["float32"], got["int8"])),
    }


def held_out_tasks(seed: int, tasks_per_family: int, queries: int, shots: int, pool: int) -> list[tuple[list, list]]:
    rng = random.Random(seed)
    out = []
    for family in list_families("val"):
        for _ in range(tasks_per_family):
            ep = sample_episode_for_family(rng, family, pool, queries)
            out.append((ep.demos[:shots], ep.queries))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, default=Path("../models/default"))
    ap.add_argument("--graphs", nargs="+", choices=("decoder", "encoder"), default=["decoder"])
    ap.add_argument("--per-channel", action="store_true", help="one weight scale per output channel")
    ap.add_argument("--past", type=int, default=16, help="past tokens at the timed decoder step")
    ap.add_argument("--pairs", type=int, default=30, help="interleaved sample pairs per timed case")
    ap.add_argument("--sample-ms", type=float, default=20.0, help="back-to-back runs per sample, in ms")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--tasks-per-family", type=int, default=4)
    ap.add_argument("--queries", type=int, default=8)
    ap.add_argument("--shots", type=int, default=3)
    ap.add_argument("--pool", type=int, default=5, help="demonstrations drawn per task (the first --shots are used)")
    ap.add_argument("--out", type=Path, default=None, help="also write the result here (JSON)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        copy = quantized_copy(args.bundle, Path(tmp), args.graphs, args.per_channel)
        # Every step on `decoder`, the graph quantized here (not on a kind decoder the copy keeps in float32).
        fp32, int8 = OrtBundle(args.bundle, kind_decoders=False), OrtBundle(copy, kind_decoders=False)
        held_out = held_out_tasks(args.seed, args.tasks_per_family, args.queries, args.shots, args.pool)
        result: dict = {
            "bundle": fp32.manifest["fingerprint"],
            "graphs": args.graphs,
            "per_channel": args.per_channel,
            "onnxruntime": ort.__version__,
            "bytes": {g: (copy / fp32.manifest["graphs"][g]["file"]).stat().st_size for g in args.graphs},
            "loadavg_before": Path("/proc/loadavg").read_text().strip(),
            "speed": {},
        }
        # Feeds from the first 16 held-out tasks: each row its own adapter and one of its queries.
        adapters = [fp32.hyper("lora", [tuple(d) for d in demos]) for demos, _ in held_out[:16]]
        queries = [qs[0][0] for _, qs in held_out[:16]]
        for batch in (1, 16):
            feeds = fp32.step_feeds(queries[:batch], adapters[:batch], args.past, graph="decoder")
            for graph in args.graphs:
                file = fp32.manifest["graphs"][graph]["file"]
                sessions = service_session(args.bundle / file), service_session(copy / file)
                cell = speed(*sessions, feeds[graph], args.pairs, args.sample_ms)
                result["speed"][f"{graph} batch {batch}"] = cell
                print(f"{graph} batch {batch}: {json.dumps(cell)}", flush=True)
        result["loadavg_after_speed"] = Path("/proc/loadavg").read_text().strip()
        everyday = [(t["examples"], t["queries"]) for t in json.loads(EVERYDAY.read_text())]
        result["held_out_k3"] = accuracy(fp32, int8, held_out)
        print(f"held-out: {json.dumps(result['held_out_k3'])}", flush=True)
        result["everyday"] = accuracy(fp32, int8, everyday)
        print(f"everyday: {json.dumps(result['everyday'])}", flush=True)
    faster = all(c["int8_over_float32"]["p90"] < 1 for c in result["speed"].values())
    same = result["held_out_k3"]["answers_changed"] == 0 and result["everyday"]["answers_changed"] == 0
    result["keep"] = faster and same
    print(f"faster beyond the spread in every case: {faster}; no answer changed: {same}; keep: {result['keep']}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
