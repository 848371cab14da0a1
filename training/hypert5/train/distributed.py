"""Data-parallel training across processes launched by ``torchrun`` (one per GPU, or per CPU slot).

torchrun sets WORLD_SIZE, RANK and LOCAL_RANK. Without them (a plain ``python -m``) every helper
here is a no-op for a single process, so single-process training is exactly what it was.
"""

from __future__ import annotations

import atexit
import os
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel


def active() -> bool:
    """True once ``init()`` has joined a group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    # The environment answers before init() too, so data streams can depend on the rank early.
    return dist.get_world_size() if active() else int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    if active():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0")) if world_size() > 1 else 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """Rank 0 alone writes checkpoints and logs and shows progress."""
    return rank() == 0


def device() -> torch.device:
    return torch.device("cuda", local_rank()) if torch.cuda.is_available() else torch.device("cpu")


def init() -> None:
    """Join the process group torchrun describes; a no-op for one process or when already joined."""
    if world_size() <= 1 or (dist.is_available() and dist.is_initialized()):
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank())
        # NCCL for CUDA tensors (gradients); gloo for the few CPU tensors (checks on CPU-held values).
        backend = "cpu:gloo,cuda:nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend)
    atexit.register(cleanup)


def barrier() -> None:
    if active():
        dist.barrier()


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        # Leave together: rank 0 still writes the stage's outputs after the last collective, and a
        # peer tearing the group down meanwhile made gloo abort rank 0 (seen once in ten test runs).
        # torchrun stops every rank when one fails, so this barrier cannot wait on a dead peer.
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()


def mean(value: float) -> float:
    """The average of a float over ranks (every rank must call it at the same point)."""
    if not active():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(t)
    return t.item() / dist.get_world_size()


def maximum(value: float) -> float:
    """The largest value of a float over ranks (every rank must call it at the same point)."""
    if not active():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.item()


def check_in_sync(tensors: list[Tensor], what: str, tolerance: float = 1e-6) -> None:
    """Raise unless every rank holds the same values (compared through per-tensor sums).

    DDP keeps replicas identical only for forwards that ran through its wrapper; a loss that reaches
    the trained module another way (a method instead of ``module(...)``) would let them drift silently.
    """
    if not active() or not tensors:
        return
    sums = torch.stack([t.detach().double().sum() for t in tensors]).to(_collective_device())  # (N,)
    high, low = sums.clone(), sums.clone()
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    if ((high - low).abs() > tolerance * (1 + high.abs())).any():
        raise RuntimeError(
            f"ranks disagree on the {what}: the trained module must be called as module(...) "
            "inside the loss so that DistributedDataParallel averages its gradients"
        )


def _collective_device() -> torch.device:
    return device() if dist.get_backend() != "gloo" else torch.device("cpu")


class _ClassForward(nn.Module):
    """Holds the module for DDP and runs its class's forward (the instance's ``forward`` is rerouted)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.inner = module

    def forward(self, *args, **kwargs):
        return type(self.inner).forward(self.inner, *args, **kwargs)


@contextmanager
def data_parallel(module: nn.Module) -> Iterator[None]:
    """Inside the block, ``module(...)`` runs through DistributedDataParallel; a no-op for one process.

    The stages' loss closures call the plain module they built; DDP averages gradients only for a
    forward that went through its wrapper, so the instance's ``forward`` is pointed at the wrapper
    for the duration (and restored after), leaving every call site unchanged. ``static_graph``:
    each step uses the same parameters, and some never get a gradient (a HyperT5 body's lm_head),
    which static_graph tolerates without find_unused_parameters' per-step graph walk.
    """
    if not active():
        yield
        return
    where = next(module.parameters()).device
    ddp = DistributedDataParallel(
        _ClassForward(module), device_ids=[where.index] if where.type == "cuda" else None, static_graph=True
    )
    module.forward = lambda *args, **kwargs: ddp(*args, **kwargs)
    try:
        yield
    finally:
        del module.forward  # also breaks the module -> wrapper -> module cycle
