"""Batches built ahead of the training step, in worker processes (``--workers``).

Every stage's batch is a pure function of the step (settings.step_rng), so batches can be built in
any process, in advance, without changing what the model sees. On a GPU the Python that samples
episodes and pads them costs more than the step itself (a stage-0 batch of 256 took 80 ms to build
on this machine's CPU), so building them in parallel is what keeps the accelerator busy. With no
workers, a batch is built in the calling process when asked for, exactly as before.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset


class _StepBatches(Dataset):
    """Item i is the batch of step start + i."""

    def __init__(self, make: Callable[[int], Any], start: int, stop: int):
        self.make, self.start, self.stop = make, start, stop

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __getitem__(self, i: int) -> Any:
        return self.make(self.start + i)


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)  # workers build data; torch ops there are tiny (padding)


class Prefetcher:
    """``batches(step)`` returns ``make(step)``; with workers, built ahead for the following steps.

    Steps are expected in order from the first one asked for (the training loop's order, resumes
    included); any other step restarts the workers from there. ``make`` must return CPU tensors (or
    containers of them) and must not touch CUDA: the workers are forked from a process that has.
    """

    def __init__(self, make: Callable[[int], Any], stop: int, workers: int = 0, ahead: int = 4):
        if workers < 0:
            raise ValueError(f"invalid workers={workers}: must be >= 0")
        self.make, self.stop, self.workers, self.ahead = make, stop, workers, ahead
        self._batches: Iterator[Any] | None = None
        self._next = -1

    def __call__(self, step: int) -> Any:
        if self.workers == 0 or step >= self.stop:
            return self.make(step)
        if self._batches is None or step != self._next:
            loader = DataLoader(
                _StepBatches(self.make, step, self.stop),
                batch_size=None,
                shuffle=False,
                num_workers=self.workers,
                prefetch_factor=self.ahead,
                worker_init_fn=_one_thread,
                multiprocessing_context="fork",  # the stages' make are closures: not picklable
                pin_memory=torch.cuda.is_available(),
            )
            self._batches = iter(loader)
        self._next = step + 1
        return next(self._batches)
