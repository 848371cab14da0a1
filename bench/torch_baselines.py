"""The Python half of `npm run bench` (bench/run.ts calls it; run from the repository root).

  python bench/torch_baselines.py workload --bundle DIR --out W.json [--quick]
      the shared workload: synthetic example sets for creation latency, held-out episodes for the tuning
      comparison, the per-query curves and the HTTP load (so every side measures the same inputs)
  python bench/torch_baselines.py measure --bundle DIR --workload W.json --out R.json [--quick] [--threads N]
      PyTorch per-task tuning, PyTorch eager and ONNX Runtime generation, per-query cost vs k, growth
      curves and ONNX Runtime matmul throughput

The PyTorch model is the one the bundle was exported from: the random preset named in a fixture's
provenance, else the checkpoint folder BENCH_CHECKPOINT names, else the bundle's own weights rebuilt in
PyTorch (hypert5.unbundle, checked against the bundle's graphs and golden decodes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "training")]

# Full run vs BENCH_QUICK (seconds per section, for smoke tests on the tiny fixture).
FULL = {
    "creation_ks": [1, 3, 5, 8],
    "creation_lengths": [8, 48],
    "creation_n": 40,
    "tune_ks": [1, 3, 8],
    "tune_episodes": 8,
    "tune_checkpoints": [0, 5, 10, 20, 40, 80, 160, 320],
    "pq_ks": [1, 2, 4, 8, 12, 16],
    "pq_episodes": 4,
    "pq_steps": 16,
    "reps": 9,
    "src_lens": [16, 32, 64, 128, 256],
    "out_lens": [4, 8, 16, 32, 64],
    "load_items": 64,
    "max_tokens": 32,
    "eager_s": 6.0,
    "eager_batches": [1, 16],
    "matmul_s": 1.0,
}
QUICK = {
    "creation_ks": [1, 8],
    "creation_lengths": [8],
    "creation_n": 3,
    "tune_ks": [3],
    "tune_episodes": 1,
    "tune_checkpoints": [0, 2],
    "pq_ks": [1, 4, 16],
    "pq_episodes": 1,
    "pq_steps": 4,
    "reps": 2,
    "src_lens": [16, 64],
    "out_lens": [4, 16],
    "load_items": 16,
    "max_tokens": 8,
    "eager_s": 0.3,
    "eager_batches": [1, 4],
    "matmul_s": 0.02,
}


def synthetic(k: int, length: int, uid: int) -> list[list[str]]:
    """k examples whose input and output are ``length`` characters each; ``uid`` makes the set unique
    (its first example starts with it), so no creation request hits the adapter cache."""
    out = []
    for j in range(k):
        x = (f"{uid:x}-{j} " + "abcdefghij klmnop qrstuv wxyz 0123456789 " * 8)[:length]
        out.append([x, x[::-1].upper()])
    return out


def workload(args, cfg) -> dict:
    from pybench.common import held_out_episodes

    uid = iter(range(1, 10**6))
    creation = [
        {"k": k, "length": n, "examples": [synthetic(k, n, next(uid)) for _ in range(cfg["creation_n"])]}
        for k in cfg["creation_ks"]
        for n in cfg["creation_lengths"]
    ]
    load_eps = held_out_episodes(cfg["load_items"], 3, 8, seed=11)
    return {
        "config": cfg,
        "creation": creation,
        "tuning_episodes": held_out_episodes(cfg["tune_episodes"], max(cfg["tune_ks"]), 8, seed=1234),
        "per_query_episodes": held_out_episodes(cfg["pq_episodes"], max(cfg["pq_ks"]), 1, seed=7),
        # Request n with a adapters: item n % a, that item's prompt (n // a) % 8 (bench/http.ts, pybench/eager.py).
        "load": {
            "items": [{"examples": ep["demos"], "prompts": [q for q, _ in ep["queries"]]} for ep in load_eps],
            "max_tokens": cfg["max_tokens"],
        },
    }


def measure(args, cfg, work: dict) -> dict:
    import torch
    from pybench import eager, flops, matmul, querycost, tuning
    from pybench.common import load_torch, log

    from hypert5.ort_runtime import OrtBundle

    torch.set_num_threads(args.threads)
    bundle = Path(args.bundle)
    rt = OrtBundle(bundle, args.threads)
    models, source = load_torch(bundle, rt.manifest)
    dims = flops.Dims.from_manifest(rt.manifest, models.settings.head_hidden)
    kind = rt.manifest["adapters"]["default_kind"]
    out: dict = {"threads": args.threads, "torch_model": source, "torch_version": torch.__version__, "kind": kind}
    import onnxruntime

    out["ort_version"] = onnxruntime.__version__
    sections = [
        ("matmul", lambda: matmul.run(dims.d, dims.f, args.threads, cfg["matmul_s"])),
        (
            "per_query",
            lambda: querycost.per_query_vs_k(
                rt, dims, work["per_query_episodes"], cfg["pq_ks"], cfg["pq_steps"], cfg["reps"], kind
            ),
        ),
        (
            "growth",
            lambda: querycost.growth(
                rt, dims, cfg["src_lens"], cfg["out_lens"], 32, cfg["pq_steps"], cfg["reps"], kind
            ),
        ),
        ("decode_adapters", lambda: querycost.decode_batch_adapters(rt, 16, cfg["reps"] * 4, kind)),
        ("decode_b1", lambda: querycost.decode_batch_adapters(rt, 1, cfg["reps"] * 4, kind)),
        (
            "eager",
            lambda: eager.run(
                models, rt, work["load"], work["load"]["max_tokens"], cfg["eager_s"], cfg["eager_batches"], kind
            ),
        ),
        ("tuning", lambda: tuning.run(models, work["tuning_episodes"], cfg["tune_ks"], cfg["tune_checkpoints"], 1234)),
    ]
    for name, fn in sections:
        t = time.perf_counter()
        out[name] = fn()
        out[name]["section_seconds"] = round(time.perf_counter() - t, 1)
        log(f"{name} done in {out[name]['section_seconds']} s")
    out["flops"] = {
        "formula": flops.__doc__,
        "per_token_decode_b1": {str(s): flops.decoder_step(dims, 16, s, kind) for s in (16, 32, 64, 128)},
        "hypermodel_mflops": {
            str(c): {k: flops.hypermodel(dims, c, k) / 1e6 for k in ("lora", "prefix")} for c in (64, 256, 1024)
        },
        "adapter_bytes": {k: flops.adapter_bytes(rt.manifest, k) for k in ("lora", "prefix")},
    }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["workload", "measure"])
    p.add_argument("--bundle", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--workload")
    p.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")))
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = p.parse_args()
    cfg = QUICK if args.quick else FULL
    if args.command == "workload":
        result = workload(args, cfg)
    else:
        result = measure(args, cfg, json.loads(Path(args.workload).read_text()))
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
