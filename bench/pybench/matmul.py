"""Section 5: the matrix-multiply throughput ONNX Runtime reaches on this CPU, from one-node MatMul graphs
(built with the onnx package) timed in onnxruntime with the service's thread setting."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def _graph(m: int, k: int, n: int) -> bytes:
    b = numpy_helper.from_array(np.random.default_rng(0).standard_normal((k, n)).astype(np.float32), "B")
    node = helper.make_node("MatMul", ["A", "B"], ["C"])
    graph = helper.make_graph(
        [node],
        "matmul",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("C", TensorProto.FLOAT, [m, n])],
        [b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def gflops(m: int, k: int, n: int, threads: int, min_s: float) -> dict[str, Any]:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(_graph(m, k, n), opts, providers=["CPUExecutionProvider"])
    a = np.random.default_rng(1).standard_normal((m, k)).astype(np.float32)
    for _ in range(3):
        sess.run(None, {"A": a})
    best, reps, start = float("inf"), 0, time.perf_counter()
    while time.perf_counter() - start < min_s or reps < 5:
        t = time.perf_counter()
        sess.run(None, {"A": a})
        best = min(best, time.perf_counter() - t)
        reps += 1
    return {"m": m, "k": k, "n": n, "gflops": 2 * m * k * n / best / 1e9, "best_us": best * 1e6, "reps": reps}


def run(d_model: int, d_ff: int, threads: int, min_s: float) -> dict[str, Any]:
    """Large square shapes (the peak) and the model's own FFN shapes, with the bench's threads; the peak
    again with every core, for reference."""
    import os

    shapes = {
        "peak_512": (512, 512, 512),
        "peak_1024": (1024, 1024, 1024),
        "decode_b1": (1, d_model, d_ff),
        "decode_b16": (16, d_model, d_ff),
        "encode_s64": (64, d_model, d_ff),
    }
    res: dict[str, Any] = {name: gflops(*s, threads, min_s) for name, s in shapes.items()}
    res["peak_gflops"] = max(res["peak_512"]["gflops"], res["peak_1024"]["gflops"])
    cores = os.cpu_count() or 1
    res["all_cores"] = {
        "threads": cores,
        "peak_gflops": max(gflops(*shapes[n], cores, min_s)["gflops"] for n in ("peak_512", "peak_1024")),
    }
    return res
