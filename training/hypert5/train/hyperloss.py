"""The loss both hypermodel stages optimize: the hypermodel reads a context, the frozen downstream
reads each of that context's sources through the generated parameters and predicts the targets."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..hypermodel import HyperT5
from ..t5 import T5
from ..generate import pad_batch
from .text import TextCodec, targets


def hyper_loss(hyper: HyperT5, downstream: T5, contexts: list[str], pairs: list[list[tuple[str, str]]],
               codec: TextCodec) -> torch.Tensor:
    """contexts[i] conditions every (source, target) in pairs[i]; one hypermodel pass per context."""
    return hyper_batch_loss(hyper, downstream, hyper_text_batch(contexts, pairs, codec))


def hyper_text_batch(contexts: list[str], pairs: list[list[tuple[str, str]]], codec: TextCodec) -> dict[str, Tensor]:
    return hyper_batch([codec.context(c) for c in contexts],
                       [[(codec.source(s), codec.target(t)) for s, t in group] for group in pairs])


def hyper_loss_ids(hyper: HyperT5, downstream: T5, contexts: list[list[int]],
                   pairs: list[list[tuple[list[int], list[int]]]]) -> torch.Tensor:
    """The same on token ids already cut to the run's limits (eos included)."""
    return hyper_batch_loss(hyper, downstream, hyper_batch(contexts, pairs))


def hyper_batch(contexts: list[list[int]], pairs: list[list[tuple[list[int], list[int]]]]) -> dict[str, Tensor]:
    """The CPU tensors of one step (built ahead in prefetch workers on a GPU run)."""
    ctx_ids, ctx_mask = pad_batch(contexts)
    flat = [pair for group in pairs for pair in group]
    ids, mask = pad_batch([src for src, _ in flat])
    decoder_in, labels = targets([tgt for _, tgt in flat])
    return {"ctx_ids": ctx_ids, "ctx_mask": ctx_mask, "counts": torch.tensor([len(p) for p in pairs]),
            "ids": ids, "mask": mask, "decoder_in": decoder_in, "labels": labels}


def hyper_batch_loss(hyper: HyperT5, downstream: T5, batch: dict[str, Tensor]) -> torch.Tensor:
    dev = hyper.queries.device  # batches are built on the CPU; GPU runs move them next to the weights
    b = {k: v.to(dev, non_blocking=True) for k, v in batch.items()}
    adapters = hyper(b["ctx_ids"], b["ctx_mask"])  # (E, ...)
    adapters = {k: v.repeat_interleave(b["counts"], 0) for k, v in adapters.items()}  # (sum Q, ...)
    logits = downstream(b["ids"], b["mask"], b["decoder_in"], adapters)  # (sum Q, T, V)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), b["labels"].reshape(-1), ignore_index=-100)
