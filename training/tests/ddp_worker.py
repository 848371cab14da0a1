"""One rank of test_distributed.py's smoke run: a tiny HyperT5 trained data-parallel under torchrun.

Usage (2 ranks on CPU, gloo):
    python -m torch.distributed.run --standalone --nproc_per_node 2 ddp_worker.py OUT STEPS STOP_AT [--grad-checkpointing]
Trains for STEPS (checkpoint every 2 steps under OUT/state); with STOP_AT > 0 the run is cut off
just before that step, as a kill would, and also checks that a loss bypassing DDP is caught.
--grad-checkpointing recomputes the blocks of the hypermodel body and of the frozen downstream
(same numbers, so a run may switch it on when resuming). Each rank writes OUT/rank<r>.json (what
it saw) and OUT/params<r>.pt (its final parameters).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypert5.config import HyperConfig, LoraSpec, PrefixSpec, T5Dims  # noqa: E402
from hypert5.hypermodel import HyperT5  # noqa: E402
from hypert5.t5 import T5, enable_gradient_checkpointing  # noqa: E402
from hypert5.train import distributed  # noqa: E402
from hypert5.train.loop import LoopOptions, train  # noqa: E402
from hypert5.train.settings import step_rng  # noqa: E402

# Untied embeddings: the HyperT5 body's lm_head never gets a gradient, which DDP must tolerate.
DIMS = T5Dims(vocab_size=384, d_model=32, d_kv=8, num_heads=4, d_ff=64, num_layers=1, num_decoder_layers=1)
CONFIG = HyperConfig(
    kind="prefix", head_hidden=16, lora=LoraSpec(rank=2, alpha=4.0), prefix=PrefixSpec(num_positions=2)
)
TRAIN = dict(lr=3e-3, warmup=1, checkpoint_every=2, log_every=1, desc="ddp smoke")


def build() -> tuple[HyperT5, T5]:
    """The same frozen downstream and initial hypermodel on every rank (and in the test's reference)."""
    torch.manual_seed(0)
    downstream = T5(DIMS, lora_scale=CONFIG.lora.scaling).eval()
    for p in downstream.parameters():
        p.requires_grad_(False)
    return HyperT5.from_downstream(downstream, CONFIG), downstream


def token_ids(rng: random.Random, rows: int, length: int) -> torch.Tensor:
    return torch.tensor([[rng.randrange(3, DIMS.vocab_size) for _ in range(length)] for _ in range(rows)])


def step_loss(hyper: HyperT5, downstream: T5, step: int) -> tuple[torch.Tensor, list[int]]:
    """This rank's loss at ``step`` (hyper_loss in miniature) and the first context row it drew."""
    rng = step_rng(0, "smoke", step)
    context, source, target = token_ids(rng, 2, 12), token_ids(rng, 2, 8), token_ids(rng, 2, 5)  # (B, len)
    adapters = hyper(context, torch.ones_like(context))  # the call DDP intercepts
    decoder_in = torch.cat([torch.zeros_like(target[:, :1]), target[:, :-1]], 1)  # (B, 5)
    logits = downstream(source, torch.ones_like(source), decoder_in, adapters)  # (B, 5, V)
    return F.cross_entropy(logits.reshape(-1, DIMS.vocab_size), target.reshape(-1)), context[0].tolist()


class Interrupted(Exception):
    pass


def bypass_error(out: Path) -> str:
    """Train one step with a loss that calls a method of the module instead of the module: DDP never
    sees the forward, gradients are not averaged, and train() must notice."""
    hyper, _ = build()

    def loss(step: int) -> torch.Tensor:
        ids = token_ids(step_rng(0, "bypass", step), 2, 12)
        return hyper.body.encode(ids, torch.ones_like(ids)).pow(2).mean()

    try:
        train(hyper, loss, 1, out / "bypass", **TRAIN)
    except RuntimeError as error:
        return str(error)
    return ""


def main() -> None:
    out, steps, stop_at = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(1)
    distributed.init()
    options = LoopOptions(grad_checkpointing="--grad-checkpointing" in sys.argv[4:])
    hyper, downstream = build()
    enable_gradient_checkpointing(downstream, options.grad_checkpointing)  # train() sets it on hyper
    seen: dict[int, list[int]] = {}

    def loss(step: int) -> torch.Tensor:
        if step == stop_at:
            raise Interrupted
        value, seen[step] = step_loss(hyper, downstream, step)
        return value

    try:
        train(hyper, loss, steps, out / "state", **TRAIN, options=options)
        status = "done"
    except Interrupted:
        status = "interrupted"
    rank = distributed.rank()
    report = {
        "status": status,
        "world_size": distributed.world_size(),
        "seen": seen,
        "checkpointing": [hyper.body.gradient_checkpointing, downstream.gradient_checkpointing],
        "bypass_error": bypass_error(out) if stop_at else None,
    }
    (out / f"rank{rank}.json").write_text(json.dumps(report))
    torch.save(hyper.state_dict(), out / f"params{rank}.pt")
    distributed.cleanup()


if __name__ == "__main__":
    main()
