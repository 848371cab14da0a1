"""Greedy decoding in PyTorch through the same step function the ONNX decoder graph is built from."""

from __future__ import annotations

import torch
from torch import Tensor

from .t5 import T5, Adapters


def pad_batch(sequences: list[list[int]], pad: int = 0) -> tuple[Tensor, Tensor]:
    """Right-pad token lists with ``pad`` -> (B, S) ids and 1/0 mask."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


@torch.no_grad()
def greedy(
    model: T5, input_ids: Tensor, attention_mask: Tensor, adapters: Adapters | None, max_new_tokens: int
) -> list[list[int]]:
    """Token ids generated for each row, stopping at eos (not included) or after max_new_tokens."""
    dims = model.dims
    batch = input_ids.shape[0]
    cross_key, cross_value = model.cross_kv(model.encode(input_ids, attention_mask, adapters), adapters)
    shape = (batch, dims.num_decoder_layers, dims.num_heads, 0, dims.d_kv)
    past_key, past_value = torch.zeros(shape), torch.zeros(shape)
    token = torch.full((batch, 1), dims.decoder_start_token_id, dtype=torch.long)
    out: list[list[int]] = [[] for _ in range(batch)]
    done = [False] * batch
    for step in range(max_new_tokens):
        self_mask = torch.ones((batch, step + 1), dtype=torch.long)
        logits, new_key, new_value = model.decoder_step(
            token, self_mask, attention_mask, past_key, past_value, cross_key, cross_value, adapters
        )
        past_key = torch.cat([past_key, new_key], 3)
        past_value = torch.cat([past_value, new_value], 3)
        token = logits.argmax(-1, keepdim=True)
        for row in range(batch):
            if not done[row]:
                if token[row, 0].item() == dims.eos_token_id:
                    done[row] = True
                else:
                    out[row].append(int(token[row, 0].item()))
        if all(done):
            break
    return out
