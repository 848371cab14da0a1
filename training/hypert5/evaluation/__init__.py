"""Held-out evaluation in the paper's metrics (P3 accuracy with answer choices / ROUGE-L, SNI ROUGE-L),
offline in PyTorch or against a running service over HTTP, with the same numbers on both.
``python -m hypert5.evaluation --help``."""

from .backends import Backend, HttpBackend, Limits, ServiceError, TorchBackend, limits_from_path
from .harness import EvalTask, averages, evaluate_task, main, p3_tasks, run, sni_examples, sni_tasks, table

__all__ = [
    "Backend",
    "EvalTask",
    "HttpBackend",
    "Limits",
    "ServiceError",
    "TorchBackend",
    "averages",
    "evaluate_task",
    "limits_from_path",
    "main",
    "p3_tasks",
    "run",
    "sni_examples",
    "sni_tasks",
    "table",
]
