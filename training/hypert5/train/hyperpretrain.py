"""Stage 1: hyperpretraining with context-augmented conditional language modelling (the paper's
objective). A document is cut into consecutive segments A, B, C, D; the hypermodel reads A and D,
the frozen downstream reads B and must predict C through the generated parameters.

Documents are runs of lines from the domain corpus, or documents of your own corpus with ``--corpus``
(a .txt file of blank-line-separated documents, a .jsonl file with a "text" field per line, or a
folder or glob of them), then cut on the run's tokens (sources.py). Usage:
    python -m hypert5.train.hyperpretrain --run runs/default --kind prefix [--steps N] [--corpus PATH]
"""

from __future__ import annotations

import random
import time

import torch

from ..t5 import enable_gradient_checkpointing
from ..tasks import sample_corpus_text
from . import distributed
from .hyperloss import hyper_batch, hyper_batch_loss, hyper_text_batch
from .loop import LoopOptions, train
from .prefetch import Prefetcher
from .settings import load_downstream, load_hyper, read_settings, record, save_module, stage_parser, step_rng
from .sources import CorpusDocuments
from .text import TextCodec


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
    parser.add_argument(
        "--corpus",
        help="documents to cut into A, B, C, D: a .txt/.jsonl file, folder or glob "
        "(default: the generated domain corpus)",
    )
    args = parser.parse_args(argv)
    distributed.init()
    torch.set_num_threads(args.threads)
    settings = read_settings(args.run)
    codec = TextCodec.for_run(args.run, settings)
    separator = settings.hyper_input.example_separator
    corpus = CorpusDocuments(args.corpus, codec, separator) if args.corpus else None
    downstream = load_downstream(args.run).to(distributed.device())
    torch.manual_seed(args.seed)
    hyper = load_hyper(args.run, args.kind, downstream)
    hyper.to(distributed.device())
    if args.grad_checkpointing:
        enable_gradient_checkpointing(downstream)  # the frozen downstream holds most activations

    def make_batch(step: int) -> dict[str, torch.Tensor]:
        rng = step_rng(args.seed, f"stage1-{args.kind}", step)
        if corpus is not None:
            cuts = [corpus.sample(rng) for _ in range(args.batch)]
            return hyper_batch([ctx for ctx, _, _ in cuts], [[(b, c)] for _, b, c in cuts])
        docs = [abcd(rng) for _ in range(args.batch)]
        return hyper_text_batch([a + separator + d for a, _, _, d in docs], [[(b, c)] for _, b, c, _ in docs], codec)

    batches = Prefetcher(make_batch, args.steps, args.workers)
    t0 = time.time()
    steps = train(
        hyper,
        lambda step: hyper_batch_loss(hyper, downstream, batches(step)),
        args.steps,
        args.run / f"stage1_{args.kind}",
        lr=args.lr,
        warmup=100,
        desc=f"stage1 hyperpretrain {args.kind}",
        options=LoopOptions.from_args(args),
        time_budget=args.time_budget,
    )
    if distributed.is_main():  # one writer: every rank holds the same weights
        save_module(hyper, args.run / f"hyper_{args.kind}.safetensors")
        record(
            args.run,
            f"stage1_hyperpretrain_{args.kind}",
            {
                "steps": steps,
                "batch": args.batch,
                "lr": args.lr,
                **({"corpus": args.corpus} if args.corpus else {}),
                "device": distributed.device().type,
                "seconds_last_session": round(time.time() - t0),
            },
        )
        print(f"stage 1 ({args.kind}) done")
    distributed.cleanup()  # explicitly: a group torn down at interpreter exit can make gloo abort


if __name__ == "__main__":
    main()
