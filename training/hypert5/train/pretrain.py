"""Stage 0: pretrain the downstream T5 from scratch; it is frozen afterwards.

Mixture (the role LM-adapted T5 plays in the paper): span corruption on a corpus of the domain
(copying and editing skills), and few-shot episodes of the *training* task families with the
demonstrations in the input (so the model knows how tasks are shown; held-out families never
appear). Usage: python -m hypert5.train.pretrain --run runs/default [--steps N]
"""

from __future__ import annotations

import json
import random
import string
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from ..checkpoint import BundleSettings
from ..generate import pad_batch
from ..t5 import T5
from ..tasks import sample_corpus_text
from ..tasks.mixture import sample_training_episode
from . import distributed
from .loop import LoopOptions, finished, train
from .prefetch import Prefetcher
from .settings import (
    add_programs_argument,
    check_programs,
    default_settings,
    read_settings,
    record,
    save_module,
    stage_parser,
    step_rng,
    write_settings,
)
from .text import encode, in_context_prompt, span_corrupt, targets

COPY_ALPHABET = string.ascii_lowercase + string.digits


def random_string(rng: random.Random) -> str:
    """5-20 random characters: copying them can only be learned by copying (no language prior helps).
    Measured on this model's shape (models/default/README.md): at a constant lr of 1e-3, copying
    these clicks after about 1,000 steps; longer strings over a larger alphabet under the stage's
    decaying schedule had not clicked after 1,800."""
    return "".join(rng.choice(COPY_ALPHABET) for _ in range(rng.randint(5, 20)))


def make_batch(
    settings,
    seed: int,
    step: int,
    batch: int,
    in_context: float = 0.5,
    max_k: int = 3,
    phase: str = "stage0",
    copy: float = 0.0,
    copy_source: str = "corpus",
    programs: float = 0.0,
    language: str = "fields",
) -> tuple[torch.Tensor, ...]:
    """Step ``step``'s sequences as CPU tensors: (ids, mask, decoder inputs, labels)."""
    rng = step_rng(seed, phase, step)
    fmt, vocab = settings.hyper_input, settings.dims.vocab_size
    sources, outputs = [], []
    for _ in range(batch):
        draw = rng.random()
        if draw >= in_context + copy:
            src, out = span_corrupt(sample_corpus_text(rng), rng, vocab)
        elif draw >= in_context:
            # Copying the input: the skill every string task builds on, which span corruption never
            # asks for (its targets are absent from the input) and which in-context episodes alone
            # taught too slowly (models/default/README.md).
            src = out = encode(sample_corpus_text(rng) if copy_source == "corpus" else random_string(rng), 64)
        else:
            ep = sample_training_episode(rng, rng.randint(1, max_k), 1, programs, language)
            query, answer = ep.queries[0]
            # The hypermodel's limit: k = 8 prompts pass 512 bytes, and a cut prompt loses its query.
            src, out = encode(in_context_prompt(fmt, ep.demos, query), fmt.max_tokens), encode(answer, 64)
        sources.append(src)
        outputs.append(out)
    return (*pad_batch(sources), *targets(outputs))


def seq2seq_loss(model: T5, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Teacher-forced cross-entropy of a (ids, mask, decoder inputs, labels) batch."""
    ids, mask, decoder_in, labels = (t.to(model.shared.weight.device, non_blocking=True) for t in batch)
    logits = model(ids, mask, decoder_in)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, steps=2000, lr=1.5e-3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument(
        "--in-context",
        type=float,
        default=0.5,
        help="fraction of each batch that is in-context episodes (the rest is span corruption)",
    )
    parser.add_argument(
        "--copy", type=float, default=0.0, help="fraction of each batch that is copying a domain text (input = target)"
    )
    parser.add_argument(
        "--copy-source",
        choices=["corpus", "random"],
        default="corpus",
        help="what --copy items copy: domain texts or random strings",
    )
    add_programs_argument(parser, "the in-context episodes")
    parser.add_argument("--max-k", type=int, default=3, help="demonstrations per in-context episode: 1..max-k")
    parser.add_argument("--init", type=Path, help="start from this downstream.safetensors (e.g. a shorter run's)")
    parser.add_argument(
        "--phase",
        default="stage0",
        help="name of this pretraining phase: its checkpoint folder, data stream and provenance key",
    )
    parser.add_argument(
        "--settings",
        type=Path,
        help="model settings of a new run, hypert5.json-style (default: default_settings()); "
        "an existing run keeps its own",
    )
    args = parser.parse_args(argv)
    programs = check_programs(parser, args)
    distributed.init()
    torch.set_num_threads(args.threads)
    args.run.mkdir(parents=True, exist_ok=True)
    state_dir = args.run / args.phase
    if (args.run / "hypert5.json").exists():  # a resumed run or a later phase: the run's own shape
        settings = read_settings(args.run)
    else:
        settings = (
            BundleSettings.from_json(json.loads(args.settings.read_text())) if args.settings else default_settings()
        )
        if distributed.is_main():
            write_settings(args.run, settings)
    distributed.barrier()
    torch.manual_seed(args.seed)
    model = T5(settings.dims, lora_scale=settings.lora.scaling)
    if args.init:
        model.load_state_dict(load_file(str(args.init)))
    model.to(distributed.device())
    batches = Prefetcher(
        lambda step: make_batch(
            settings,
            args.seed,
            step,
            args.batch,
            args.in_context,
            args.max_k,
            args.phase,
            args.copy,
            args.copy_source,
            args.programs,
            args.program_language,
        ),
        args.steps,
        args.workers,
    )
    t0 = time.time()
    steps = train(
        model,
        lambda step: seq2seq_loss(model, batches(step)),
        args.steps,
        state_dir,
        lr=args.lr,
        desc="stage0 pretrain",
        options=LoopOptions.from_args(args),
        time_budget=args.time_budget,
    )
    assert finished(state_dir, steps)
    if not distributed.is_main():
        distributed.cleanup()  # explicitly: a group torn down at interpreter exit can make gloo abort
        return  # one writer: every rank holds the same weights
    save_module(model, args.run / "downstream.safetensors")
    copied = "domain texts" if args.copy_source == "corpus" else "random strings"
    record(
        args.run,
        f"{args.phase}_pretrain",
        {
            "steps": steps,
            "batch": args.batch,
            "lr": args.lr,
            "seed": args.seed,
            "mixture": f"{1 - args.in_context - args.copy:g} span corruption on the domain corpus + {args.copy:g} "
            f"copying {copied} + {args.in_context:g} in-context episodes of training families "
            f"(k=1-{args.max_k})"
            + (f", {args.programs:g} of them random {args.program_language} programs" if args.programs else ""),
            **programs,
            "initialized_from": str(args.init) if args.init else None,
            "device": distributed.device().type,
            "seconds_last_session": round(time.time() - t0),
        },
    )
    print(f"stage 0 done: {args.run / 'downstream.safetensors'}")
    distributed.cleanup()


if __name__ == "__main__":
    main()
