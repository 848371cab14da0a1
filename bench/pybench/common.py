"""What every Python section shares: the bundle's models in PyTorch and in ONNX Runtime, held-out episodes, timers."""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnxruntime as ort

from hypert5 import checkpoint
from hypert5.checkpoint import Models
from hypert5.presets import random_models
from hypert5.tasks import list_families, sample_episode_for_family
from hypert5.tokenizer import from_spec
from hypert5.unbundle import rebuild


def log(msg: str) -> None:
    print(f"[bench.py] {msg}", file=sys.stderr, flush=True)


def load_torch(bundle: Path, manifest: dict[str, Any]) -> tuple[Models, str]:
    """The PyTorch model the bundle was exported from: a random preset (fixtures), the checkpoint folder
    BENCH_CHECKPOINT names, or else rebuilt from the bundle itself (hypert5.unbundle: run folders are not
    committed)."""
    prov = manifest.get("provenance", {})
    if "preset" in prov and not prov.get("trained", True):
        return random_models(prov["preset"], prov.get("seed", 0)), f"preset {prov['preset']} (seed {prov.get('seed', 0)})"
    if os.environ.get("BENCH_CHECKPOINT"):
        return checkpoint.load(Path(os.environ["BENCH_CHECKPOINT"])), os.environ["BENCH_CHECKPOINT"]
    return rebuild(bundle, log=log), f"rebuilt from {bundle} (hypert5.unbundle)"


@dataclass
class Ort:
    """The bundle's four graphs in ONNX Runtime with the service's thread setting."""

    manifest: dict[str, Any]
    sessions: dict[str, ort.InferenceSession]
    tokenizer: Any

    @classmethod
    def open(cls, bundle: Path, threads: int) -> "Ort":
        manifest = json.loads((bundle / "manifest.json").read_text())
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        sessions = {name: ort.InferenceSession(str(bundle / g["file"]), opts, providers=["CPUExecutionProvider"])
                    for name, g in manifest["graphs"].items()}
        return cls(manifest, sessions, from_spec(manifest["tokenizer"], bundle))

    def ids(self, text: str) -> list[int]:
        return self.tokenizer.encode(text) + [self.manifest["special_ids"]["eos"]]

    def zeros(self, graph: str, batch: int) -> dict[str, np.ndarray]:
        """No-op adapter feeds of a graph (zeros are exact no-ops)."""
        out = {}
        for io in self.manifest["graphs"][graph]["inputs"]:
            if io["name"].startswith(("lora.", "prefix.")):
                out[io["name"]] = np.zeros([batch, *io["shape"][1:]], np.float32)
        return out

    def hyper(self, kind: str, ids: list[int]) -> dict[str, np.ndarray]:
        arr = np.array([ids], np.int64)
        sess = self.sessions[f"hyper_{kind}"]
        outs = sess.run(None, {"input_ids": arr, "attention_mask": np.ones_like(arr)})
        return {o.name: v for o, v in zip(sess.get_outputs(), outs)}

    def feeds(self, graph: str, adapter: dict[str, np.ndarray] | None, batch: int) -> dict[str, np.ndarray]:
        feeds = self.zeros(graph, batch)
        for name in feeds:
            if adapter is not None and name in adapter:
                feeds[name] = np.broadcast_to(adapter[name], feeds[name].shape).copy()
        return feeds

    def forced_query(self, src: list[int], steps: int, adapter: dict[str, np.ndarray] | None = None) -> None:
        """Encode one input, then exactly ``steps`` greedy decode steps (no early stop: a fixed output length)."""
        dims = self.manifest["dims"]
        ids = np.array([src], np.int64)
        mask = np.ones_like(ids)
        ck, cv = self.sessions["encoder"].run(["cross_key", "cross_value"],
                                              {"input_ids": ids, "attention_mask": mask, **self.feeds("encoder", adapter, 1)})
        shape = (1, dims["num_decoder_layers"], dims["num_heads"], 0, dims["d_kv"])
        pk, pv = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
        token = np.full((1, 1), self.manifest["special_ids"]["decoder_start"], np.int64)
        dec = self.feeds("decoder", adapter, 1)
        for step in range(steps):
            logits, nk, nv = self.sessions["decoder"].run(None, {
                "input_ids": token, "self_attention_mask": np.ones((1, step + 1), np.int64), "encoder_attention_mask": mask,
                "past_key": pk, "past_value": pv, "cross_key": ck, "cross_value": cv, **dec})
            pk, pv = np.concatenate([pk, nk], 3), np.concatenate([pv, nv], 3)
            token = logits.argmax(-1)[:, None].astype(np.int64)


def timed(fn: Callable[[], Any], reps: int, warmup: int = 1) -> dict[str, float]:
    """Median and p90 wall time of ``fn`` in milliseconds."""
    for _ in range(warmup):
        fn()
    xs = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        xs.append(1000 * (time.perf_counter() - t))
    xs.sort()
    return {"p50_ms": round(statistics.median(xs), 3), "p90_ms": round(xs[min(len(xs) - 1, int(0.9 * len(xs)))], 3),
            "reps": reps}


def held_out_episodes(n: int, k: int, queries: int, seed: int) -> list[dict[str, Any]]:
    """``n`` episodes of held-out ('val') families, round robin over the families, fixed by ``seed``."""
    rng = random.Random(seed)
    fams = list_families("val")
    out = []
    for j in range(n):
        ep = sample_episode_for_family(rng, fams[j % len(fams)], k, queries)
        out.append({"family": ep.family, "task": ep.task, "demos": [list(p) for p in ep.demos],
                    "queries": [list(p) for p in ep.queries]})
    return out
