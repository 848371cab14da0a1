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
    parser.add_argument("--grad-checkpointing", action="store_true",
                        help="recompute T5 blocks in the backward pass to save activation memory")


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * max(0.05, 1.0 - (step - warmup) / max(1, total - warmup))


def train(module: nn.Module, loss_fn: Callable[[int], torch.Tensor], steps: int, state_dir: Path, *,
          lr: float, warmup: int = 200, checkpoint_every: int = 250, desc: str = "train",
          weight_decay: float = 0.01, log_every: int = 50, options: LoopOptions = LoopOptions()) -> None:
    """Run ``loss_fn(step)`` for steps [resume point, steps) and keep ``state_dir/state.pt`` current.

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
    start = 0
    state_path = state_dir / "state.pt"
    if state_path.exists():  # every rank reads the same file (written by rank 0 before a barrier)
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        module.load_state_dict(state["module"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["step"]
    distributed.check_in_sync([torch.tensor(float(start))], "resume step (is the run folder shared by every node?)")
    autocast = (torch.autocast(params[0].device.type, dtype=torch.bfloat16) if options.bf16 and params
                else nullcontext())
    log = (state_dir / "log.jsonl").open("a") if main else None
    module.train()
    bar = tqdm(range(start, steps), desc=desc, initial=start, total=steps, mininterval=10, smoothing=0.05,
               disable=not main)
    ema, t0 = None, time.time()
    with distributed.data_parallel(module):
        for step in bar:
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, steps, lr, warmup)
            with autocast:
                loss = loss_fn(step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
            bar.set_postfix(loss=f"{ema:.3f}", refresh=False)
            if step == start:
                distributed.check_in_sync(params, "parameters after the first step")
            if (step + 1) % log_every == 0:
                logged = distributed.mean(ema)  # the EMA is linear, so this is the EMA of the global loss
                if log is not None:
                    log.write(json.dumps({"step": step + 1, "loss": round(logged, 4),
                                          "lr": lr_at(step, steps, lr, warmup),
                                          "elapsed_s": round(time.time() - t0, 1)}) + "\n")
                    log.flush()
            if (step + 1) % checkpoint_every == 0 or step + 1 == steps:
                distributed.check_in_sync(params, "parameters at a checkpoint")
                if main:
                    tmp = state_dir / "state.pt.tmp"
                    torch.save({"module": module.state_dict(), "optimizer": optimizer.state_dict(),
                                "step": step + 1}, tmp)
                    os.replace(tmp, state_path)  # atomic: a kill never leaves a torn checkpoint
                distributed.barrier()  # no rank runs ahead of (or exits before) the checkpoint on disk
    if log is not None:
        log.close()
    module.eval()


def finished(state_dir: Path, steps: int) -> bool:
    path = state_dir / "state.pt"
    return path.exists() and torch.load(path, map_location="cpu", weights_only=False)["step"] >= steps
