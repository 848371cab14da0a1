"""Stage 2: multi-task fine-tuning of the hypermodel only (the downstream stays frozen) on k-shot
episodes of the training families, k drawn from 1-8 so that one model serves any k. Each episode's
adapter is generated once and applied to several queries of the same task. Usage:
    python -m hypert5.train.finetune --run runs/default --kind prefix [--steps N]
"""

from __future__ import annotations

import time

import torch

from ..tasks import sample_episode
from .hyperloss import hyper_loss
from .loop import train
from .settings import load_downstream, load_hyper, read_settings, record, save_module, stage_parser, step_rng


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, steps=1200, lr=5e-4)
    parser.add_argument("--kind", choices=["lora", "prefix"], required=True)
    parser.add_argument("--episodes", type=int, default=16, help="episodes (adapters) per step")
    parser.add_argument("--queries", type=int, default=4, help="queries per episode")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = read_settings(args.run)
    downstream = load_downstream(args.run)
    torch.manual_seed(args.seed)
    hyper = load_hyper(args.run, args.kind, downstream)  # continues from stage 1 when it ran

    def loss(step: int) -> torch.Tensor:
        rng = step_rng(args.seed, f"stage2-{args.kind}", step)
        episodes = [sample_episode(rng, "train", rng.randint(1, 8), args.queries) for _ in range(args.episodes)]
        return hyper_loss(hyper, downstream, [settings.hyper_input.serialize(ep.demos) for ep in episodes],
                          [ep.queries for ep in episodes], settings.hyper_input.max_tokens)

    t0 = time.time()
    train(hyper, loss, args.steps, args.run / f"stage2_{args.kind}", lr=args.lr, warmup=200,
          desc=f"stage2 finetune {args.kind}")
    save_module(hyper, args.run / f"hyper_{args.kind}.safetensors")
    record(args.run, f"stage2_finetune_{args.kind}", {"steps": args.steps, "episodes": args.episodes,
                                                      "queries": args.queries, "k": "1-8", "lr": args.lr,
                                                      "cpu_seconds_last_session": round(time.time() - t0)})
    print(f"stage 2 ({args.kind}) done")


if __name__ == "__main__":
    main()
