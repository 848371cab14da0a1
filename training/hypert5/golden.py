"""Golden decodes: fixed inputs and the greedy token ids PyTorch produces (models/README.md, golden.json)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .checkpoint import Models
from .generate import greedy, pad_batch
from .tokenizer import Tokenizer, from_spec

_EXAMPLES = [
    {"input": "Ada Lovelace", "output": "Lovelace, A."},
    {"input": "Grace Hopper", "output": "Hopper, G."},
    {"input": "Alan Turing", "output": "Turing, A."},
]


def golden_cases(max_new_tokens: int = 12) -> list[dict]:
    """Inputs only; write_golden fills in token_ids and text."""
    return [
        {"name": "plain", "input": "Katherine Johnson", "adapter": None, "max_new_tokens": max_new_tokens},
        {
            "name": "plain-unicode",
            "input": "Zoë Ångström | 2024-03-07",
            "adapter": None,
            "max_new_tokens": max_new_tokens,
        },
        {
            "name": "lora",
            "input": "Katherine Johnson",
            "adapter": {"kind": "lora", "examples": _EXAMPLES},
            "max_new_tokens": max_new_tokens,
        },
        {
            "name": "prefix",
            "input": "Katherine Johnson",
            "adapter": {"kind": "prefix", "examples": _EXAMPLES},
            "max_new_tokens": max_new_tokens,
        },
        {
            "name": "prefix-one-shot",
            "input": "2024-03-07",
            "adapter": {"kind": "prefix", "examples": [{"input": "2023-12-25", "output": "25/12/2023"}]},
            "max_new_tokens": max_new_tokens,
        },
    ]


@torch.no_grad()
def run_case(models: Models, case: dict, tokenizer: Tokenizer) -> list[int]:
    s = models.settings
    eos, pad = s.dims.eos_token_id, s.dims.pad_token_id
    adapters = None
    if case["adapter"]:
        text = s.hyper_input.serialize([(e["input"], e["output"]) for e in case["adapter"]["examples"]])
        ids, mask = pad_batch([tokenizer.encode(text) + [eos]], pad)
        adapters = models.hyper[case["adapter"]["kind"]](ids, mask)
    ids, mask = pad_batch([tokenizer.encode(case["input"]) + [eos]], pad)
    return greedy(models.downstream, ids, mask, adapters, case["max_new_tokens"])[0]


def write_golden(models: Models, path: Path, cases: list[dict]) -> None:
    """Writes path (inside the bundle, whose tokenizer file must already be in place)."""
    tokenizer = from_spec(models.settings.tokenizer, path.parent)
    out = []
    for case in cases:
        token_ids = run_case(models, case, tokenizer)
        out.append({**case, "token_ids": token_ids, "text": tokenizer.decode(token_ids)})
    path.write_text(json.dumps({"cases": out}, indent=2, ensure_ascii=False) + "\n")
