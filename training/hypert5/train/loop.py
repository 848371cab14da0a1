"""The training loop shared by every stage: AdamW, warmup + linear decay, checkpoints, resume, logs.

Batches are a pure function of (seed, step) (and of the rank under torchrun), so a resumed run sees
exactly the data it would have seen without the interruption; the checkpoint holds the trained
module, the optimizer and the step. Under torchrun the module trains data-parallel
(distributed.py): gradients are averaged over ranks, and rank 0 alone writes the checkpoint and log.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from tqdm import tqdm

from ..t5 import enable_gradient_checkpointing
from . import distributed


@dataclass(frozen=True)
class LoopOptions:
    """How the loop computes, not what it learns; the defaults are the single-process fp32 behaviour.

    bf16: run the loss (forward) under torch.autocast to bfloat16 on the module's device; weights,
        gradients and optimizer state stay fp32.
    grad_checkpointing: recompute each T5 block in the backward pass instead of keeping its
        activations (t5.py); applies to every T5 inside the trained module.
    """

    bf16: bool = False
    grad_checkpointing: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "LoopOptions":
        return cls(bf16=args.bf16, grad_checkpointing=args.grad_checkpointing)


def add_loop_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bf16", action="store_true", help="autocast the forward to bfloat16 (weights stay fp32)")
    parser.add_argument(
        "--grad-checkpointing",
        action="store_true",
        help="recompute T5 blocks in the backward pass to save activation memory",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes that build batches ahead of the step (prefetch.py); 0: in the training process",
    )
    parser.add_argument(
        "--time-budget",
        type=float,
        metavar="SECONDS",
        help="fit the run into this many seconds: after the first steps the loop measures its speed "
        "and sets the total (at most --steps), which the checkpoint keeps for resumes",
    )


# Steps [start + 10, start + 40) time the loop for --time-budget: the first ten carry one-off costs
# (CUDA kernels' first launches, workers starting), and all of them fall inside every stage's warmup,
# where the learning rate does not depend on the total yet.
CALIBRATION = (10, 40)


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * max(0.05, 1.0 - (step - warmup) / max(1, total - warmup))


def train(
    module: nn.Module,
    loss_fn: Callable[[int], torch.Tensor],
    steps: int,
    state_dir: Path,
    *,
    lr: float,
    warmup: int = 200,
    checkpoint_every: int = 250,
    desc: str = "train",
    weight_decay: float = 0.01,
    log_every: int = 50,
    options: LoopOptions = LoopOptions(),
    time_budget: float | None = None,
) -> int:
    """Run ``loss_fn(step)`` for steps [resume point, total) and keep ``state_dir/state.pt`` current;
    returns total: ``steps``, or with ``time_budget`` (seconds) as many as fit at the measured speed.

    ``loss_fn`` must reach the module as ``module(...)``: under torchrun that call is what DDP
    intercepts to average gradients (a divergence check at the first step and every checkpoint
    catches any other route).
    """
    distributed.init()  # no-op without torchrun
    main = distributed.is_main()
    if options.grad_checkpointing:
        enable_gradient_checkpointing(module)
    state_dir.mkdir(parents=True, exist_ok=True)
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    start, total, budgeted = 0, steps, False
    state_path = state_dir / "state.pt"
    if state_path.exists():  # every rank reads the same file (written by rank 0 before a barrier)
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        module.load_state_dict(state["module"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["step"]
        if time_budget is not None and "budgeted_total" in state:  # the schedule the budget chose
            total, budgeted = min(steps, state["budgeted_total"]), True
    distributed.check_in_sync([torch.tensor(float(start))], "resume step (is the run folder shared by every node?)")
    autocast = torch.autocast(params[0].device.type, dtype=torch.bfloat16) if options.bf16 and params else nullcontext()
    log = (state_dir / "log.jsonl").open("a") if main else None
    module.train()
    bar = tqdm(desc=desc, initial=start, total=total, mininterval=10, smoothing=0.05, disable=not main)
    ema, t0, t_mark = None, time.time(), 0.0
    step = start
    with distributed.data_parallel(module):
        while step < total:
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, total, lr, warmup)
            with autocast:
                loss = loss_fn(step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()  # .item() waits for the GPU
            bar.set_postfix(loss=f"{ema:.3f}", refresh=False)
            bar.update()
            if time_budget is not None and not budgeted:
                if step + 1 == start + CALIBRATION[0]:
                    t_mark = time.time()
                elif step + 1 == start + CALIBRATION[1]:
                    total, budgeted = (
                        _fit(
                            time_budget,
                            time.time() - t0,
                            (time.time() - t_mark) / (CALIBRATION[1] - CALIBRATION[0]),
                            step + 1,
                            total,
                        ),
                        True,
                    )
                    bar.total = total
            # Over budget anyway (steps slowed down, e.g. other stages sharing the GPU, or the budget
            # ran out before the speed was measured): stop here. The slowest rank's elapsed time
            # decides, so that every rank stops at the same step.
            if time_budget is not None and step + 1 < total and distributed.maximum(time.time() - t0) > time_budget:
                total, budgeted = step + 1, True
                bar.total = total
            if step == start:
                distributed.check_in_sync(params, "parameters after the first step")
            if (step + 1) % log_every == 0:
                logged = distributed.mean(ema)  # the EMA is linear, so this is the EMA of the global loss
                if log is not None:
                    log.write(
                        json.dumps(
                            {
                                "step": step + 1,
                                "loss": round(logged, 4),
                                "lr": lr_at(step, total, lr, warmup),
                                "elapsed_s": round(time.time() - t0, 1),
                            }
                        )
                        + "\n"
                    )
                    log.flush()
            if (step + 1) % checkpoint_every == 0 or step + 1 == total:
                distributed.check_in_sync(params, "parameters at a checkpoint")
                if main:
                    tmp = state_dir / "state.pt.tmp"
                    torch.save(
                        {
                            "module": module.state_dict(),
                            "optimizer": optimizer.state_dict(),
                            "step": step + 1,
                            **({"budgeted_total": total} if budgeted else {}),
                        },
                        tmp,
                    )
                    os.replace(tmp, state_path)  # atomic: a kill never leaves a torn checkpoint
                distributed.barrier()  # no rank runs ahead of (or exits before) the checkpoint on disk
            step += 1
    bar.close()
    if log is not None:
        log.close()
    module.eval()
    return total


def _fit(budget: float, elapsed: float, seconds_per_step: float, done: int, limit: int) -> int:
    """The total step count that ends within ``budget`` seconds, at most ``limit``; under torchrun
    every rank must agree, so the slowest rank's speed decides."""
    seconds_per_step = distributed.maximum(seconds_per_step)
    # 3 % of the budget is kept for checkpoints (one every 250 steps) and for steps that slow down.
    return max(done, min(limit, done + int((0.97 * budget - elapsed) / max(seconds_per_step, 1e-9))))


def finished(state_dir: Path, steps: int) -> bool:
    """True when the checkpoint reached ``steps``, or the smaller total a time budget chose."""
    path = state_dir / "state.pt"
    if not path.exists():
        return False
    state = torch.load(path, map_location="cpu", weights_only=False)
    return state["step"] >= min(steps, state.get("budgeted_total", steps))
