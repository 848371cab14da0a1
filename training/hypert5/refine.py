"""Test-time refinement of one adapter on its own demonstrations: the batch, the loss and one Adam step.

This module is the PyTorch definition that ``refine_graph`` traces into the bundle's
``train_step_<kind>.onnx`` graphs, and the reference those graphs are checked against. The batch is
built exactly as the per-task tuning of ``hypert5.train.evaluate`` builds it: sources and targets
with eos appended (truncated to the encoder and target limits), right-padded; the decoder reads the
targets shifted right behind ``decoder_start``; the loss is the mean cross-entropy over target tokens.

Leave-one-out augmentation (``augment="leave-one-out"``), after test-time training for few-shot
induction: from k demonstrations the batch holds the k plain pairs and the k leave-one-out tasks, row i
being the other k - 1 demonstrations in context and demonstration i as the query,
``"in: x1 out: y1\\nin: x3 out: y3\\nin: x2 out: "`` -> y2 (the in-context prompt format of the
evaluation, the hypermodel's own serialization). 2k rows; for k = 1 it is the plain batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .examples import HyperInputFormat

ADAM_BETA1, ADAM_BETA2, ADAM_EPS = 0.9, 0.999, 1e-8  # torch.optim.Adam's defaults
AUGMENTS = ("none", "leave-one-out")
IGNORE = -100


@dataclass(frozen=True)
class TextLimits:
    """How the service turns text into ids: byte/other tokenizer, eos appended, the two token limits
    (each counts the eos)."""

    eos: int
    pad: int
    source_max_tokens: int
    target_max_tokens: int


def augment_pairs(demos: list[tuple[str, str]], augment: str, fmt: HyperInputFormat) -> list[tuple[str, str]]:
    """The (source, target) rows refinement trains on (module docstring)."""
    if augment not in AUGMENTS:
        raise ValueError(f"invalid augment={augment!r}: must be one of {list(AUGMENTS)}")
    rows = list(demos)
    if augment == "leave-one-out" and len(demos) > 1:
        for i, (x, y) in enumerate(demos):
            others = demos[:i] + demos[i + 1 :]
            rows.append((fmt.serialize(others) + fmt.example_separator + fmt.input_prefix + x + fmt.output_prefix, y))
    return rows


def encode_batch(pairs: list[tuple[str, str]], encode, limits: TextLimits) -> dict[str, np.ndarray]:
    """Right-padded int64 arrays: input_ids / attention_mask (rows, src_len), target_ids / target_mask
    (rows, tgt_len). ``encode`` maps text to token ids (no eos)."""
    sources = [encode(x)[: limits.source_max_tokens - 1] + [limits.eos] for x, _ in pairs]
    targets = [encode(y)[: limits.target_max_tokens - 1] + [limits.eos] for _, y in pairs]
    out = {}
    for ids_name, mask_name, rows in (("input_ids", "attention_mask", sources), ("target_ids", "target_mask", targets)):
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), limits.pad, np.int64)
        mask = np.zeros((len(rows), width), np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)], mask[i, : len(r)] = r, 1
        out[ids_name], out[mask_name] = ids, mask
    return out


def teacher_forcing(target_ids: Tensor, target_mask: Tensor, decoder_start: int, pad: int) -> tuple[Tensor, Tensor]:
    """(decoder inputs, labels), both (rows, tgt_len): the targets shifted right behind
    ``decoder_start`` (padding read as ``pad``), and the targets with padding as -100."""
    targets = torch.where(target_mask > 0, target_ids, torch.full_like(target_ids, pad))
    start = torch.full_like(targets[:, :1], decoder_start)
    decoder_in = torch.cat([start, targets[:, :-1]], 1)
    labels = torch.where(target_mask > 0, target_ids, torch.full_like(target_ids, IGNORE))
    return decoder_in, labels


def masked_mean_nll(logits: Tensor, target_ids: Tensor, target_mask: Tensor) -> Tensor:
    """Mean negative log-likelihood over the target tokens: cross-entropy with padding ignored, written
    out so that the traced graph holds the division by the token count explicitly."""
    logp = torch.log_softmax(logits, -1)  # (rows, T, V)
    picked = torch.gather(logp, -1, target_ids.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (rows, T)
    weight = target_mask.to(logp.dtype)
    return -(picked * weight).sum() / weight.sum()


def adam_update(
    param: Tensor, grad: Tensor, m: Tensor, v: Tensor, step: Tensor, lr: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """torch.optim.Adam's update (no weight decay, no amsgrad); ``step`` counts the updates already done.

    eps is added as a tensor of its own: the dynamo ONNX exporter (torch 2.13, onnxscript 0.7) drops a
    scalar ``+ 1e-8``, and a zero gradient (LoRA ``a`` while ``b`` is zero, a prefix behind a closed
    gate) then updates to 0 / 0 = NaN."""
    t = step + 1.0
    m = ADAM_BETA1 * m + (1.0 - ADAM_BETA1) * grad
    v = ADAM_BETA2 * v + (1.0 - ADAM_BETA2) * grad * grad
    denom = torch.sqrt(v) / torch.sqrt(1.0 - ADAM_BETA2**t) + torch.full_like(v, ADAM_EPS)
    return param - (lr / (1.0 - ADAM_BETA1**t)) * m / denom, m, v
