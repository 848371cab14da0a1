"""Stage 0: pretrain the downstream T5 from scratch; it is frozen afterwards.

Mixture (the role LM-adapted T5 plays in the paper): span corruption on a corpus of the domain
(copying and editing skills), and few-shot episodes of the *training* task families with the
demonstrations in the input (so the model knows how tasks are shown; held-out families never
appear). Usage: python -m hypert5.train.pretrain --run runs/default [--steps N]
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..checkpoint import BundleSettings
from ..generate import pad_batch
from ..tasks import sample_corpus_text, sample_episode
from ..t5 import T5
from .loop import finished, train
from .settings import default_settings, record, save_module, stage_parser, step_rng, write_settings
from .text import encode, in_context_prompt, span_corrupt, targets


def batch_loss(model: T5, settings, seed: int, step: int, batch: int) -> torch.Tensor:
    rng = step_rng(seed, "stage0", step)
    fmt, vocab = settings.hyper_input, settings.dims.vocab_size
    sources, outputs = [], []
    for _ in range(batch):
        if rng.random() < 0.5:
            src, out = span_corrupt(sample_corpus_text(rng), rng, vocab)
        else:
            ep = sample_episode(rng, "train", rng.randint(1, 3), 1)
            query, answer = ep.queries[0]
            src, out = encode(in_context_prompt(fmt, ep.demos, query), 512), encode(answer, 64)
        sources.append(src)
        outputs.append(out)
    ids, mask = pad_batch(sources)
    decoder_in, labels = targets(outputs)
    logits = model(ids, mask, decoder_in)
    return F.cross_entropy(logits.reshape(-1, vocab), labels.reshape(-1), ignore_index=-100)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, steps=2000, lr=1.5e-3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--settings", type=Path, help="hypert5.json-style model settings (default: default_settings())")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = BundleSettings.from_json(json.loads(args.settings.read_text())) if args.settings else default_settings()
    args.run.mkdir(parents=True, exist_ok=True)
    state_dir = args.run / "stage0"
    if not (args.run / "hypert5.json").exists():
        write_settings(args.run, settings)
    torch.manual_seed(args.seed)
    model = T5(settings.dims, lora_scale=settings.lora.scaling)
    t0 = time.time()
    train(model, lambda step: batch_loss(model, settings, args.seed, step, args.batch), args.steps, state_dir,
          lr=args.lr, desc="stage0 pretrain")
    assert finished(state_dir, args.steps)
    save_module(model, args.run / "downstream.safetensors")
    record(args.run, "stage0_pretrain", {"steps": args.steps, "batch": args.batch, "lr": args.lr, "seed": args.seed,
                                         "mixture": "0.5 span corruption on the domain corpus + 0.5 in-context "
                                                    "episodes of training families (k=1-3)",
                                         "cpu_seconds_last_session": round(time.time() - t0)})
    print(f"stage 0 done: {args.run / 'downstream.safetensors'}")


if __name__ == "__main__":
    main()
