"""Stage 1: hyperpretraining with context-augmented conditional language modelling (the paper's
objective). A document is cut into consecutive segments A, B, C, D; the hypermodel reads A and D,
the frozen downstream reads B and must predict C through the generated parameters.

Documents are runs of lines from the domain corpus. Usage:
    python -m hypert5.train.hyperpretrain --run runs/default --kind prefix [--steps N]
"""

from __future__ import annotations

import random
import time

import torch

from ..tasks import sample_corpus_text
from .hyperloss import hyper_loss
from .loop import train
from .settings import load_downstream, load_hyper, read_settings, record, save_module, stage_parser, step_rng


def abcd(rng: random.Random) -> tuple[str, str, str, str]:
    """One document of 160-400 characters, cut at three random points into A, B, C, D."""
    doc = ""
    while len(doc) < 160:
        doc += sample_corpus_text(rng) + "\n"
    doc = doc[:400]
    b_len, c_len = rng.randint(16, 64), rng.randint(8, 48)
    b_start = rng.randint(16, len(doc) - b_len - c_len - 16)
    c_start = b_start + b_len
    d_start = c_start + c_len
    return doc[:b_start], doc[b_start:c_start], doc[c_start:d_start], doc[d_start:]


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, steps=100, lr=5e-4)
    parser.add_argument("--kind", choices=["lora", "prefix"], required=True)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = read_settings(args.run)
    downstream = load_downstream(args.run)
    torch.manual_seed(args.seed)
    hyper = load_hyper(args.run, args.kind, downstream)
    separator = settings.hyper_input.example_separator

    def loss(step: int) -> torch.Tensor:
        rng = step_rng(args.seed, f"stage1-{args.kind}", step)
        docs = [abcd(rng) for _ in range(args.batch)]
        return hyper_loss(hyper, downstream, [a + separator + d for a, _, _, d in docs],
                          [[(b, c)] for _, b, c, _ in docs], settings.hyper_input.max_tokens)

    t0 = time.time()
    train(hyper, loss, args.steps, args.run / f"stage1_{args.kind}", lr=args.lr, warmup=100,
          desc=f"stage1 hyperpretrain {args.kind}")
    save_module(hyper, args.run / f"hyper_{args.kind}.safetensors")
    record(args.run, f"stage1_hyperpretrain_{args.kind}", {"steps": args.steps, "batch": args.batch, "lr": args.lr,
                                                           "cpu_seconds_last_session": round(time.time() - t0)})
    print(f"stage 1 ({args.kind}) done")


if __name__ == "__main__":
    main()
