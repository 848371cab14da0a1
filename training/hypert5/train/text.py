"""Byte-level text -> tensors for training: padding, span corruption, episode formatting."""

from __future__ import annotations

import random

import torch
from torch import Tensor

from ..examples import HyperInputFormat
from ..generate import pad_batch
from ..tokenizer import ByteTokenizer

PAD, EOS = 0, 1
TOKENIZER = ByteTokenizer(3)


def encode(text: str, limit: int) -> list[int]:
    """Bytes + eos, truncated to ``limit`` tokens (eos kept)."""
    return TOKENIZER.encode(text)[: limit - 1] + [EOS]


def targets(rows: list[list[int]]) -> tuple[Tensor, Tensor]:
    """Teacher forcing: decoder inputs start with decoder_start (= pad); labels use -100 for padding."""
    labels, _ = pad_batch(rows, -100)
    decoder_in = torch.cat([torch.zeros((len(rows), 1), dtype=torch.long), labels[:, :-1].clamp(min=0)], 1)
    return decoder_in, labels


def span_corrupt(text: str, rng: random.Random, vocab_size: int, noise: float = 0.15,
                 mean_span: int = 4, limit: int = 256) -> tuple[list[int], list[int]]:
    """T5 span corruption on bytes; sentinels count down from the last vocabulary id (as in ByT5)."""
    ids = TOKENIZER.encode(text)[: limit - 1]
    n = len(ids)
    budget = max(1, round(n * noise))
    masked = [False] * n
    while budget > 0:
        length = min(budget, rng.randint(1, 2 * mean_span - 1))
        start = rng.randrange(0, max(1, n - length))
        if any(masked[max(0, start - 1): start + length + 1]):
            budget -= 1  # collision: give up this span rather than loop forever on short texts
            continue
        for i in range(start, min(n, start + length)):
            masked[i] = True
        budget -= length
    inputs, outputs, sentinel, i = [], [], vocab_size - 1, 0
    while i < n:
        if masked[i]:
            inputs.append(sentinel)
            outputs.append(sentinel)
            while i < n and masked[i]:
                outputs.append(ids[i])
                i += 1
            sentinel -= 1
        else:
            inputs.append(ids[i])
            i += 1
    return inputs + [EOS], outputs + [EOS]


def in_context_prompt(fmt: HyperInputFormat, demos: list[tuple[str, str]], query: str) -> str:
    """The T5-MTF-Few-shot input: the demonstrations, then the query in the same format."""
    return fmt.serialize(demos) + fmt.example_separator + fmt.input_prefix + query + fmt.output_prefix
