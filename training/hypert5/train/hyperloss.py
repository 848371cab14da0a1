"""The loss both hypermodel stages optimize: the hypermodel reads a context, the frozen downstream
reads each of that context's sources through the generated parameters and predicts the targets."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..hypermodel import HyperT5
from ..t5 import T5
from ..generate import pad_batch
from .text import TextCodec, targets


def hyper_loss(hyper: HyperT5, downstream: T5, contexts: list[str], pairs: list[list[tuple[str, str]]],
               codec: TextCodec) -> torch.Tensor:
    """contexts[i] conditions every (source, target) in pairs[i]; one hypermodel pass per context."""
    return hyper_loss_ids(hyper, downstream, [codec.context(c) for c in contexts],
                          [[(codec.source(s), codec.target(t)) for s, t in group] for group in pairs])


def hyper_loss_ids(hyper: HyperT5, downstream: T5, contexts: list[list[int]],
                   pairs: list[list[tuple[list[int], list[int]]]]) -> torch.Tensor:
    """The same on token ids already cut to the run's limits (eos included)."""
    dev = hyper.queries.device  # batches are built on the CPU; GPU runs move them next to the weights
    ctx_ids, ctx_mask = (t.to(dev) for t in pad_batch(contexts))
    adapters = hyper(ctx_ids, ctx_mask)  # (E, ...)
    counts = torch.tensor([len(p) for p in pairs], device=dev)
    adapters = {k: v.repeat_interleave(counts, 0) for k, v in adapters.items()}  # (sum Q, ...)
    flat = [pair for group in pairs for pair in group]
    ids, mask = (t.to(dev) for t in pad_batch([src for src, _ in flat]))
    decoder_in, labels = (t.to(dev) for t in targets([tgt for _, tgt in flat]))
    logits = downstream(ids, mask, decoder_in, adapters)  # (sum Q, T, V)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
