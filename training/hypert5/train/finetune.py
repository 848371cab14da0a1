"""Stage 2: multi-task fine-tuning of the hypermodel only (the downstream stays frozen) on k-shot
episodes of the training families, k drawn from 1-8 so that one model serves any k. Each episode's
adapter is generated once and applied to several queries of the same task.

``--data`` trains on real tasks instead (sources.py): ``p3:PATH`` (P3 prompt templates: k examples
of a template -> the hypermodel, other examples of it -> the downstream) or ``sni:PATH``
(Super-NaturalInstructions: the task's Definition + 2 positive examples -> the hypermodel, its
instances -> the downstream; ``--sni-context``); ``--exclude`` holds tasks out for evaluation. Usage:
    python -m hypert5.train.finetune --run runs/default --kind prefix [--steps N]
        [--data p3:PATH|sni:PATH [--exclude TASK ...]] [--k-min 1 --k-max 8] [--programs 0.5]
"""

from __future__ import annotations

import random
import time

import torch

from ..t5 import enable_gradient_checkpointing
from ..tasks import Episode
from ..tasks.mixture import sample_training_episode
from . import distributed
from .hyperloss import hyper_batch_loss, hyper_text_batch
from .loop import LoopOptions, train
from .prefetch import Prefetcher
from .settings import (
    add_programs_argument,
    check_programs,
    load_downstream,
    load_hyper,
    read_settings,
    record,
    save_module,
    stage_parser,
    step_rng,
)
from .sources import TaskEpisodes
from .text import TextCodec


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, steps=1200, lr=5e-4)
    parser.add_argument("--kind", choices=["lora", "prefix"], required=True)
    parser.add_argument("--episodes", type=int, default=16, help="episodes (adapters) per step")
    parser.add_argument("--queries", type=int, default=4, help="queries per episode")
    parser.add_argument(
        "--data", help="p3:PATH or sni:PATH, a file, folder or glob (default: the generated training families)"
    )
    parser.add_argument(
        "--exclude",
        nargs="+",
        action="extend",
        default=[],
        metavar="TASK",
        help="with --data: template or task names (file stems) held out for evaluation",
    )
    parser.add_argument(
        "--sni-context",
        choices=["examples", "raw"],
        default="examples",
        help="SNI Def+2Pos as the run's example format, as the service and the evaluation harness "
        "send it (default), or as the SNI paper's raw text",
    )
    parser.add_argument("--k-min", type=int, default=1, help="fewest examples the hypermodel reads (P3, generated)")
    parser.add_argument("--k-max", type=int, default=8, help="most examples the hypermodel reads (P3, generated)")
    parser.add_argument(
        "--phase",
        default="stage2",
        help="name of this fine-tuning phase: its checkpoint folder (<phase>_<kind>), data stream and "
        "provenance key; another name continues from the hypermodel a phase before it left",
    )
    add_programs_argument(parser, "the generated episodes")
    args = parser.parse_args(argv)
    distributed.init()
    if args.exclude and not args.data:
        parser.error("--exclude needs --data")
    programs = check_programs(parser, args)
    if args.programs and args.data:
        parser.error("--programs mixes into generated episodes: it does not apply with --data")
    torch.set_num_threads(args.threads)
    settings = read_settings(args.run)
    codec = TextCodec.for_run(args.run, settings)
    fmt = settings.hyper_input
    try:
        tasks = (
            TaskEpisodes(args.data, fmt, args.k_min, args.k_max, args.exclude, args.sni_context) if args.data else None
        )
    except (ValueError, FileNotFoundError) as e:
        parser.error(str(e))
    downstream = load_downstream(args.run).to(distributed.device())
    torch.manual_seed(args.seed)
    hyper = load_hyper(args.run, args.kind, downstream)  # continues from stage 1 when it ran
    hyper.to(distributed.device())
    if args.grad_checkpointing:
        enable_gradient_checkpointing(downstream)  # the frozen downstream holds most activations

    def generated_episode(rng: random.Random) -> Episode:
        return sample_training_episode(
            rng, rng.randint(args.k_min, args.k_max), args.queries, args.programs, args.program_language
        )

    def make_batch(step: int) -> dict[str, torch.Tensor]:
        rng = step_rng(args.seed, f"{args.phase}-{args.kind}", step)
        if tasks is not None:
            episodes = [tasks.sample(rng, args.queries) for _ in range(args.episodes)]
            return hyper_text_batch([context for context, _ in episodes], [pairs for _, pairs in episodes], codec)
        generated = [generated_episode(rng) for _ in range(args.episodes)]
        return hyper_text_batch([fmt.serialize(ep.demos) for ep in generated], [ep.queries for ep in generated], codec)

    batches = Prefetcher(make_batch, args.steps, args.workers)
    t0 = time.time()
    steps = train(
        hyper,
        lambda step: hyper_batch_loss(hyper, downstream, batches(step)),
        args.steps,
        args.run / f"{args.phase}_{args.kind}",
        lr=args.lr,
        warmup=200,
        desc=f"{args.phase} finetune {args.kind}",
        options=LoopOptions.from_args(args),
        time_budget=args.time_budget,
    )
    if distributed.is_main():  # one writer: every rank holds the same weights
        save_module(hyper, args.run / f"hyper_{args.kind}.safetensors")
        record(
            args.run,
            f"{args.phase}_finetune_{args.kind}",
            {
                "steps": steps,
                "episodes": args.episodes,
                "queries": args.queries,
                "k": f"{args.k_min}-{args.k_max}",
                "lr": args.lr,
                **({"data": args.data, **tasks.describe()} if tasks else {}),
                **programs,
                "device": distributed.device().type,
                "seconds_last_session": round(time.time() - t0),
            },
        )
        print(f"{'stage 2' if args.phase == 'stage2' else args.phase} ({args.kind}) done")
    distributed.cleanup()  # explicitly: a group torn down at interpreter exit can make gloo abort


if __name__ == "__main__":
    main()
