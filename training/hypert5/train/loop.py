"""The training loop shared by every stage: AdamW, warmup + linear decay, checkpoints, resume, logs.

Batches are a pure function of (seed, step), so a resumed run sees exactly the data it would have
seen without the interruption; the checkpoint holds the trained module, the optimizer and the step.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from tqdm import tqdm


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * max(0.05, 1.0 - (step - warmup) / max(1, total - warmup))


def train(module: nn.Module, loss_fn: Callable[[int], torch.Tensor], steps: int, state_dir: Path, *,
          lr: float, warmup: int = 200, checkpoint_every: int = 250, desc: str = "train",
          weight_decay: float = 0.01) -> None:
    """Run ``loss_fn(step)`` for steps [resume point, steps) and keep ``state_dir/state.pt`` current."""
    state_dir.mkdir(parents=True, exist_ok=True)
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    start = 0
    state_path = state_dir / "state.pt"
    if state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        module.load_state_dict(state["module"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["step"]
    log = (state_dir / "log.jsonl").open("a")
    module.train()
    bar = tqdm(range(start, steps), desc=desc, initial=start, total=steps, mininterval=10, smoothing=0.05)
    ema, t0 = None, time.time()
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup)
        loss = loss_fn(step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        bar.set_postfix(loss=f"{ema:.3f}", refresh=False)
        if (step + 1) % 50 == 0:
            log.write(json.dumps({"step": step + 1, "loss": round(ema, 4), "lr": lr_at(step, steps, lr, warmup),
                                  "elapsed_s": round(time.time() - t0, 1)}) + "\n")
            log.flush()
        if (step + 1) % checkpoint_every == 0 or step + 1 == steps:
            tmp = state_dir / "state.pt.tmp"
            torch.save({"module": module.state_dict(), "optimizer": optimizer.state_dict(), "step": step + 1}, tmp)
            os.replace(tmp, state_path)  # atomic: a kill never leaves a torn checkpoint
    module.eval()


def finished(state_dir: Path, steps: int) -> bool:
    path = state_dir / "state.pt"
    return path.exists() and torch.load(path, map_location="cpu", weights_only=False)["step"] >= steps
