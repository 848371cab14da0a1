"""Baseline (b), T5-MTF-Few-shot: a copy of the downstream fully fine-tuned multi-task on training
episodes with the k demonstrations prepended to each query (k = 1-8). Costly per query at inference,
since every query carries its demonstrations. Writes <run>/mtf_fewshot.safetensors. Usage:
    python -m hypert5.train.mtf_fewshot --run runs/default [--steps N]
"""

from __future__ import annotations

import time

import torch
from safetensors.torch import load_file

from ..generate import pad_batch
from ..t5 import T5
from ..tasks.mixture import sample_training_episode
from . import distributed
from .loop import LoopOptions, train
from .prefetch import Prefetcher
from .pretrain import seq2seq_loss
from .settings import add_programs_argument, check_programs, read_settings, record, save_module, stage_parser, step_rng
from .text import encode, in_context_prompt, targets


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, steps=1000, lr=5e-4)
    parser.add_argument("--batch", type=int, default=32)
    add_programs_argument(parser, "the episodes (as stage 2 with the same option: the baseline sees its tasks)")
    args = parser.parse_args(argv)
    programs = check_programs(parser, args)
    distributed.init()
    torch.set_num_threads(args.threads)
    settings = read_settings(args.run)
    model = T5(settings.dims, lora_scale=settings.lora.scaling)
    model.load_state_dict(load_file(str(args.run / "downstream.safetensors")))
    model.to(distributed.device())
    fmt = settings.hyper_input

    def make_batch(step: int) -> tuple[torch.Tensor, ...]:
        rng = step_rng(args.seed, "mtf", step)
        sources, outputs = [], []
        for _ in range(args.batch):
            ep = sample_training_episode(rng, rng.randint(1, 8), 1, args.programs, args.program_language)
            query, answer = ep.queries[0]
            sources.append(encode(in_context_prompt(fmt, ep.demos, query), 1024))
            outputs.append(encode(answer, 64))
        return (*pad_batch(sources), *targets(outputs))

    batches = Prefetcher(make_batch, args.steps, args.workers)
    t0 = time.time()
    steps = train(
        model,
        lambda step: seq2seq_loss(model, batches(step)),
        args.steps,
        args.run / "mtf",
        lr=args.lr,
        desc="T5-MTF-Few-shot baseline",
        options=LoopOptions.from_args(args),
        time_budget=args.time_budget,
    )
    if distributed.is_main():  # one writer: every rank holds the same weights
        save_module(model, args.run / "mtf_fewshot.safetensors")
        record(
            args.run,
            "baseline_mtf_fewshot",
            {
                "steps": steps,
                "batch": args.batch,
                "lr": args.lr,
                "k": "1-8",
                **programs,
                "device": distributed.device().type,
                "seconds_last_session": round(time.time() - t0),
            },
        )
    distributed.cleanup()  # explicitly: a group torn down at interpreter exit can make gloo abort


if __name__ == "__main__":
    main()
