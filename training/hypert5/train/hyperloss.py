"""The loss both hypermodel stages optimize: the hypermodel reads a context, the frozen downstream
reads each of that context's sources through the generated parameters and predicts the targets."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..hypermodel import HyperT5
from ..t5 import T5
from ..generate import pad_batch
from .text import encode, targets


def hyper_loss(hyper: HyperT5, downstream: T5, contexts: list[str], pairs: list[list[tuple[str, str]]],
               context_limit: int) -> torch.Tensor:
    """contexts[i] conditions every (source, target) in pairs[i]; one hypermodel pass per context."""
    ctx_ids, ctx_mask = pad_batch([encode(c, context_limit) for c in contexts])
    adapters = hyper(ctx_ids, ctx_mask)  # (E, ...)
    counts = torch.tensor([len(p) for p in pairs])
    adapters = {k: v.repeat_interleave(counts, 0) for k, v in adapters.items()}  # (sum Q, ...)
    flat = [pair for group in pairs for pair in group]
    ids, mask = pad_batch([encode(src, 256) for src, _ in flat])
    decoder_in, labels = targets([encode(tgt, 64) for _, tgt in flat])
    logits = downstream(ids, mask, decoder_in, adapters)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
