"""Text -> tensors for training: the run's tokenizer and limits, padding, span corruption, episodes.

The default model is byte-level (``TOKENIZER``, ``encode``); a run made from another checkpoint
(init_run.py) names its tokenizer in hypert5.json and the hypermodel stages read it through
``TextCodec.for_run``. Ids follow T5: pad = 0 (also the decoder start), eos = 1.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..checkpoint import BundleSettings
from ..examples import HyperInputFormat
from ..generate import pad_batch
from ..tokenizer import ByteTokenizer, Tokenizer, from_spec

PAD, EOS = 0, 1
TOKENIZER = ByteTokenizer(3)


def encode(text: str, limit: int, tokenizer: Tokenizer = TOKENIZER) -> list[int]:
    """Tokens + eos, truncated to ``limit`` tokens (eos kept); bytes unless ``tokenizer`` is given."""
    return tokenizer.encode(text)[: limit - 1] + [EOS]


@dataclass(frozen=True)
class TextCodec:
    """A run's tokenizer and the three sequence limits of the hypermodel stages (each counts the eos)."""

    tokenizer: Tokenizer
    context_limit: int  # hypermodel input: hyper_input.max_tokens
    source_limit: int  # downstream encoder input: encoder_max_tokens
    target_limit: int  # downstream labels: generation.max_new_tokens

    @classmethod
    def for_run(cls, run: Path, settings: BundleSettings) -> "TextCodec":
        """The default model gives (bytes, 1024, 256, 64), the values these stages always used."""
        return cls(
            from_spec(settings.tokenizer, run),
            settings.hyper_input.max_tokens,
            settings.encoder_max_tokens,
            int(settings.generation.get("max_new_tokens", 64)),
        )

    def context(self, text: str) -> list[int]:
        return encode(text, self.context_limit, self.tokenizer)

    def source(self, text: str) -> list[int]:
        return encode(text, self.source_limit, self.tokenizer)

    def target(self, text: str) -> list[int]:
        return encode(text, self.target_limit, self.tokenizer)


def targets(rows: list[list[int]]) -> tuple[Tensor, Tensor]:
    """Teacher forcing: decoder inputs start with decoder_start (= pad); labels use -100 for padding."""
    labels, _ = pad_batch(rows, -100)
    decoder_in = torch.cat([torch.zeros((len(rows), 1), dtype=torch.long), labels[:, :-1].clamp(min=0)], 1)
    return decoder_in, labels


def span_corrupt(
    text: str, rng: random.Random, vocab_size: int, noise: float = 0.15, mean_span: int = 4, limit: int = 256
) -> tuple[list[int], list[int]]:
    """T5 span corruption on bytes; sentinels count down from the last vocabulary id (as in ByT5)."""
    ids = TOKENIZER.encode(text)[: limit - 1]
    n = len(ids)
    budget = max(1, round(n * noise))
    masked = [False] * n
    while budget > 0:
        length = min(budget, rng.randint(1, 2 * mean_span - 1))
        start = rng.randrange(0, max(1, n - length))
        if any(masked[max(0, start - 1) : start + length + 1]):
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


def hyper_context(fmt: HyperInputFormat, demos: list[tuple[str, str]]) -> tuple[Tensor, Tensor]:
    """The hypermodel's input for one task: its demonstrations serialized, as a batch of one."""
    return pad_batch([encode(fmt.serialize(demos), fmt.max_tokens)])


def in_context_prompt(fmt: HyperInputFormat, demos: list[tuple[str, str]], query: str) -> str:
    """The T5-MTF-Few-shot input: the demonstrations, then the query in the same format."""
    return fmt.serialize(demos) + fmt.example_separator + fmt.input_prefix + query + fmt.output_prefix
