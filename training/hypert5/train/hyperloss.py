"""The loss both hypermodel stages optimize: the hypermodel reads a context, the frozen downstream
reads each of that context's sources through the generated parameters and predicts the targets.

A step is built in two halves so that the first can run ahead in worker processes (prefetch.py):
``hyper_batch`` / ``hyper_text_batch`` make the step's CPU tensors, ``hyper_batch_loss`` runs the
models on them wherever the weights are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..generate import pad_batch
from ..hypermodel import HyperT5
from ..t5 import T5
from .text import TextCodec, targets

Ids = list[int]


def hyper_text_batch(contexts: list[str], pairs: list[list[tuple[str, str]]], codec: TextCodec) -> dict[str, Tensor]:
    """contexts[i] conditions every (source, target) in pairs[i]; texts cut to the run's limits."""
    return hyper_batch(
        [codec.context(c) for c in contexts],
        [[(codec.source(s), codec.target(t)) for s, t in group] for group in pairs],
    )


def hyper_batch(contexts: list[Ids], pairs: list[list[tuple[Ids, Ids]]]) -> dict[str, Tensor]:
    """The same on token ids already cut to the run's limits (eos included)."""
    ctx_ids, ctx_mask = pad_batch(contexts)
    flat = [pair for group in pairs for pair in group]
    ids, mask = pad_batch([src for src, _ in flat])
    decoder_in, labels = targets([tgt for _, tgt in flat])
    return {
        "ctx_ids": ctx_ids,
        "ctx_mask": ctx_mask,
        "counts": torch.tensor([len(p) for p in pairs]),
        "ids": ids,
        "mask": mask,
        "decoder_in": decoder_in,
        "labels": labels,
    }


def hyper_batch_loss(hyper: HyperT5, downstream: T5, batch: dict[str, Tensor]) -> torch.Tensor:
    """One hypermodel pass per context, its adapter applied to each of the context's sources."""
    dev = hyper.queries.device  # batches are built on the CPU; GPU runs move them next to the weights
    b = {k: v.to(dev, non_blocking=True) for k, v in batch.items()}
    adapters = hyper(b["ctx_ids"], b["ctx_mask"])  # (E, ...)
    adapters = {k: v.repeat_interleave(b["counts"], 0) for k, v in adapters.items()}  # (sum Q, ...)
    logits = downstream(b["ids"], b["mask"], b["decoder_in"], adapters)  # (sum Q, T, V)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), b["labels"].reshape(-1), ignore_index=-100)
