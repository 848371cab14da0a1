"""A lean, export-friendly T5 with per-row adapters as explicit inputs.

Parameter names and numerics follow HF transformers' ``T5ForConditionalGeneration`` (so its
checkpoints load, see ``load_hf_state_dict``), but attention is our own so that LoRA and gated
prefixes can be applied per batch row at every site, the encoder included (transformers' encoder
self-attention takes no past keys). Prefixes come in two attentions (config.PrefixSpec): gated, at
every site, and "peft", PEFT prefix tuning's joint softmax in the decoder self-attention. Tensor
contracts use B = batch, T = target length, S = source length, H = heads, L = layers, r = LoRA
rank, P = prefix positions. ``relative_position_bucket`` is adapted from transformers'
``T5Attention._relative_position_bucket`` (Apache-2.0).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .config import T5Dims

Adapters = dict[str, Tensor]  # batched: every tensor has a leading B dimension


class T5LayerNorm(nn.Module):
    """RMS norm without mean subtraction or bias, as in T5."""

    def __init__(self, d: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.eps))


def relative_position_bucket(
    relative_position: Tensor, bidirectional: bool, num_buckets: int, max_distance: int
) -> Tensor:
    buckets = torch.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + (relative_position > 0).to(torch.long) * num_buckets
        relative_position = torch.abs(relative_position)
    else:
        relative_position = -torch.min(relative_position, torch.zeros_like(relative_position))
    max_exact = num_buckets // 2
    is_small = relative_position < max_exact
    # Clamp before log so no -inf reaches the integer cast (the value is discarded by is_small anyway).
    large = max_exact + (
        torch.log(relative_position.float().clamp(min=1.0) / max_exact)
        / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)
    ).to(torch.long)
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return buckets + torch.where(is_small, relative_position, large)


def additive_mask(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """(B, K) 1/0 mask -> (B, 1, 1, K) additive bias."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def split_heads(x: Tensor, heads: int, d_kv: int) -> Tensor:
    return x.view(x.shape[0], -1, heads, d_kv).transpose(1, 2)  # (B, H, T, d_kv)


def merge_heads(x: Tensor) -> Tensor:
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], -1)  # (B, T, H*d_kv)


def lora_project(linear: nn.Linear, x: Tensor, lora: tuple[Tensor, Tensor, float] | None) -> Tensor:
    """linear(x) + scale * (x a) b with per-row a (B, d_in, r), b (B, r, d_out)."""
    y = linear(x)
    if lora is not None:
        a, b, scale = lora
        y = y + scale * torch.matmul(torch.matmul(x, a), b)
    return y


class T5Attention(nn.Module):
    def __init__(self, dims: T5Dims, has_relative_attention_bias: bool):
        super().__init__()
        self.heads, self.d_kv = dims.num_heads, dims.d_kv
        self.q = nn.Linear(dims.d_model, dims.inner_dim, bias=False)
        self.k = nn.Linear(dims.d_model, dims.inner_dim, bias=False)
        self.v = nn.Linear(dims.d_model, dims.inner_dim, bias=False)
        self.o = nn.Linear(dims.inner_dim, dims.d_model, bias=False)
        if has_relative_attention_bias:
            self.relative_attention_bias = nn.Embedding(dims.relative_attention_num_buckets, dims.num_heads)

    def project_kv(self, x: Tensor, lora_v: tuple | None) -> tuple[Tensor, Tensor]:
        k = split_heads(self.k(x), self.heads, self.d_kv)
        v = split_heads(lora_project(self.v, x, lora_v), self.heads, self.d_kv)
        return k, v  # (B, H, T, d_kv) each

    def attend(
        self,
        x: Tensor,
        k: Tensor,
        v: Tensor,
        bias: Tensor,
        lora_q: tuple | None,
        prefix: tuple[Tensor, Tensor, Tensor] | None,
    ) -> Tensor:
        """Unscaled T5 attention of queries from x over (k, v), plus an optional gated prefix."""
        q = split_heads(lora_project(self.q, x, lora_q), self.heads, self.d_kv)  # (B, H, Tq, d_kv)
        scores = torch.matmul(q, k.transpose(-1, -2)) + bias  # (B, H, Tq, Tk)
        out = torch.matmul(F.softmax(scores.float(), dim=-1).type_as(q), v)
        if prefix is not None:
            pk, pv, gate = prefix  # (B, H, P, d_kv), (B, H, P, d_kv), (B, H)
            p_scores = torch.matmul(q, pk.transpose(-1, -2))  # (B, H, Tq, P): no position bias, no mask
            p_out = torch.matmul(F.softmax(p_scores.float(), dim=-1).type_as(q), pv)
            out = out + gate[:, :, None, None] * p_out
        return self.o(merge_heads(out))


class T5LayerSelfAttention(nn.Module):
    def __init__(self, dims: T5Dims, has_bias: bool):
        super().__init__()
        self.SelfAttention = T5Attention(dims, has_bias)
        self.layer_norm = T5LayerNorm(dims.d_model, dims.layer_norm_epsilon)


class T5LayerCrossAttention(nn.Module):
    def __init__(self, dims: T5Dims):
        super().__init__()
        self.EncDecAttention = T5Attention(dims, False)
        self.layer_norm = T5LayerNorm(dims.d_model, dims.layer_norm_epsilon)


class T5DenseFF(nn.Module):
    def __init__(self, dims: T5Dims, dropout: float):
        super().__init__()
        self.gated = dims.feed_forward_proj == "gated-gelu"
        if self.gated:
            self.wi_0 = nn.Linear(dims.d_model, dims.d_ff, bias=False)
            self.wi_1 = nn.Linear(dims.d_model, dims.d_ff, bias=False)
        else:
            self.wi = nn.Linear(dims.d_model, dims.d_ff, bias=False)
        self.wo = nn.Linear(dims.d_ff, dims.d_model, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        if self.gated:  # transformers' "gated-gelu" is gelu_new, the tanh approximation
            h = F.gelu(self.wi_0(x), approximate="tanh") * self.wi_1(x)
        else:
            h = F.relu(self.wi(x))
        return self.wo(self.dropout(h))


class T5LayerFF(nn.Module):
    def __init__(self, dims: T5Dims, dropout: float):
        super().__init__()
        self.DenseReluDense = T5DenseFF(dims, dropout)
        self.layer_norm = T5LayerNorm(dims.d_model, dims.layer_norm_epsilon)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.dropout(self.DenseReluDense(self.layer_norm(x)))


class T5Block(nn.Module):
    def __init__(self, dims: T5Dims, is_decoder: bool, has_bias: bool, dropout: float):
        super().__init__()
        layers: list[nn.Module] = [T5LayerSelfAttention(dims, has_bias)]
        if is_decoder:
            layers.append(T5LayerCrossAttention(dims))
        layers.append(T5LayerFF(dims, dropout))
        self.layer = nn.ModuleList(layers)
        self.dropout = nn.Dropout(dropout)


class T5Stack(nn.Module):
    def __init__(self, dims: T5Dims, is_decoder: bool, dropout: float):
        super().__init__()
        self.dims, self.is_decoder = dims, is_decoder
        n = dims.num_decoder_layers if is_decoder else dims.num_layers
        self.block = nn.ModuleList([T5Block(dims, is_decoder, i == 0, dropout) for i in range(n)])
        self.final_layer_norm = T5LayerNorm(dims.d_model, dims.layer_norm_epsilon)
        self.dropout = nn.Dropout(dropout)

    def position_bias(self, relative_position: Tensor) -> Tensor:
        """(Tq, Tk) key-minus-query positions -> (1, H, Tq, Tk) bias from layer 0's table."""
        table = self.block[0].layer[0].SelfAttention.relative_attention_bias
        buckets = relative_position_bucket(
            relative_position,
            not self.is_decoder,
            self.dims.relative_attention_num_buckets,
            self.dims.relative_attention_max_distance,
        )
        return table(buckets).permute(2, 0, 1).unsqueeze(0)


def _lora(adapters: Adapters | None, site: str, proj: str, layer: int, scale: float) -> tuple | None:
    if adapters is None or f"lora.{site}.{proj}.a" not in adapters:
        return None
    return adapters[f"lora.{site}.{proj}.a"][:, layer], adapters[f"lora.{site}.{proj}.b"][:, layer], scale


def _prefix(adapters: Adapters | None, site: str, layer: int) -> tuple | None:
    """A gated prefix at ``site``: (key, value, gate) of ``layer``."""
    if adapters is None or f"prefix.{site}.gate" not in adapters:
        return None
    return tuple(adapters[f"prefix.{site}.{part}"][:, layer] for part in ("key", "value", "gate"))


PEFT_PREFIX_MASK = "prefix.decoder.self.mask"  # present iff the adapters hold a "peft" prefix


def _joint_prefix(adapters: Adapters | None, layer: int) -> tuple[Tensor, Tensor] | None:
    """A "peft" prefix of the decoder self-attention: (key, value) of ``layer``, (B, H, P, d_kv) each."""
    if adapters is None or PEFT_PREFIX_MASK not in adapters:
        return None
    return adapters["prefix.decoder.self.key"][:, layer], adapters["prefix.decoder.self.value"][:, layer]


class T5(nn.Module):
    """Frozen downstream T5 (also the body of the hypermodel).

    ``adapters`` everywhere is a dict of batched adapter tensors (adapters.py), any subset of the
    two kinds, or None. ``lora_scale`` is alpha / rank. With ``gradient_checkpointing`` set, each
    block keeps only its inputs for the backward pass and recomputes the rest (same outputs and
    gradients, less memory, about one more forward of compute).
    """

    def __init__(self, dims: T5Dims, dropout: float = 0.0, lora_scale: float = 1.0):
        super().__init__()
        self.dims, self.lora_scale = dims, lora_scale
        self.gradient_checkpointing = False
        self.shared = nn.Embedding(dims.vocab_size, dims.d_model)
        self.encoder = T5Stack(dims, False, dropout)
        self.decoder = T5Stack(dims, True, dropout)
        if not dims.tie_word_embeddings:
            self.lm_head = nn.Linear(dims.d_model, dims.vocab_size, bias=False)

    # ---- encoder -------------------------------------------------------------------------------
    def encode(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        adapters: Adapters | None = None,
        inputs_embeds: Tensor | None = None,
    ) -> Tensor:
        """(B, S) ids and 1/0 mask -> (B, S, d_model) final encoder states."""
        x = self.shared(input_ids) if inputs_embeds is None else inputs_embeds
        x = self.encoder.dropout(x)
        positions = torch.arange(x.shape[1], device=x.device)
        bias = self.encoder.position_bias(positions[None, :] - positions[:, None])  # (1, H, S, S)
        bias = bias + additive_mask(attention_mask, x.dtype)
        for i in range(len(self.encoder.block)):
            x = self._run_block(self._encoder_block, i, x, bias, adapters)
        return self.encoder.dropout(self.encoder.final_layer_norm(x))

    def _encoder_block(self, i: int, x: Tensor, bias: Tensor, adapters: Adapters | None) -> Tensor:
        """Encoder block i: (B, S, d) -> (B, S, d); ``bias`` is (B or 1, H, S, S)."""
        block = self.encoder.block[i]
        sa = block.layer[0]
        h = sa.layer_norm(x)
        k, v = sa.SelfAttention.project_kv(h, _lora(adapters, "encoder.self", "v", i, self.lora_scale))
        x = x + block.dropout(
            sa.SelfAttention.attend(
                h,
                k,
                v,
                bias,
                _lora(adapters, "encoder.self", "q", i, self.lora_scale),
                _prefix(adapters, "encoder.self", i),
            )
        )
        return block.layer[1](x)

    def _run_block(self, fn, *args):
        # Checkpoint whenever a backward may follow, not only in train mode: the frozen downstream
        # runs in eval mode inside the hypermodel stages, yet its activations (every query row x
        # source tokens) are most of the memory there. Non-reentrant checkpointing replays dropout's
        # RNG and the autocast state, and takes the adapters dict as an ordinary argument.
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return checkpoint(fn, *args, use_reentrant=False)
        return fn(*args)

    def cross_kv(self, encoder_states: Tensor, adapters: Adapters | None = None) -> tuple[Tensor, Tensor]:
        """Cross-attention keys/values of every decoder layer: 2 x (B, L, H, S, d_kv)."""
        keys, values = [], []
        for i, block in enumerate(self.decoder.block):
            k, v = block.layer[1].EncDecAttention.project_kv(
                encoder_states, _lora(adapters, "decoder.cross", "v", i, self.lora_scale)
            )
            keys.append(k)
            values.append(v)
        return torch.stack(keys, 1), torch.stack(values, 1)

    # ---- decoder -------------------------------------------------------------------------------
    def joint_prefix_bias(self, query_positions: Tensor, mask: Tensor) -> Tensor:
        """Bias of "peft" prefix keys: (B or 1, T) target positions and (B, P) mask -> (B, H, T, P).

        As in transformers with PEFT's prefix in the cache: the P prefix keys sit at positions
        0..P-1 and target token t at position P + t, so key p is (P + t - p) positions back.
        """
        p = mask.shape[-1]
        relative = torch.arange(p, device=mask.device)[None, None, :] - p - query_positions[..., None]
        buckets = relative_position_bucket(
            relative, False, self.dims.relative_attention_num_buckets, self.dims.relative_attention_max_distance
        )
        table = self.decoder.block[0].layer[0].SelfAttention.relative_attention_bias
        bias = table(buckets).permute(0, 3, 1, 2)  # (B or 1, H, T, P)
        return bias + additive_mask(mask, bias.dtype)

    def decode(
        self,
        x: Tensor,
        self_bias: Tensor,
        past_key: Tensor | None,
        past_value: Tensor | None,
        cross_key: Tensor,
        cross_value: Tensor,
        cross_bias: Tensor,
        adapters: Adapters | None,
        query_positions: Tensor | None = None,
        stack_new: bool = True,
    ) -> tuple[Tensor, Tensor | list[Tensor], Tensor | list[Tensor]]:
        """Decoder stack over new embeddings x (B, T, d).

        Self-attention sees the cache (B, L, H, Tp, d_kv) followed by the T new positions;
        ``self_bias`` is (B or 1, H, T, Tp + T). ``query_positions`` (B or 1, T), the new tokens'
        target positions, is needed only with a "peft" prefix. Returns final states (B, T, d) and the
        new positions' keys/values (B, L, H, T, d_kv), or with ``stack_new=False`` one (B, H, T, d_kv)
        per layer (the exported decoder's outputs: no stacking op in the graph).
        """
        x = self.decoder.dropout(x)
        prefix_bias = None
        if adapters is not None and PEFT_PREFIX_MASK in adapters:
            if query_positions is None:
                raise ValueError('a "peft" prefix needs the query positions')
            prefix_bias = self.joint_prefix_bias(query_positions, adapters[PEFT_PREFIX_MASK])
        new_keys, new_values = [], []
        for i in range(len(self.decoder.block)):
            x, k, v = self._run_block(
                self._decoder_block,
                i,
                x,
                self_bias,
                past_key,
                past_value,
                cross_key,
                cross_value,
                cross_bias,
                adapters,
                prefix_bias,
            )
            new_keys.append(k)
            new_values.append(v)
        x = self.decoder.dropout(self.decoder.final_layer_norm(x))
        if not stack_new:
            return x, new_keys, new_values
        return x, torch.stack(new_keys, 1), torch.stack(new_values, 1)

    def _decoder_block(
        self,
        i: int,
        x: Tensor,
        self_bias: Tensor,
        past_key: Tensor | None,
        past_value: Tensor | None,
        cross_key: Tensor,
        cross_value: Tensor,
        cross_bias: Tensor,
        adapters: Adapters | None,
        prefix_bias: Tensor | None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Decoder block i (shapes as in ``decode``) -> x (B, T, d) and the new keys/values (B, H, T, d_kv)."""
        block = self.decoder.block[i]
        sa = block.layer[0]
        h = sa.layer_norm(x)
        new_k, new_v = sa.SelfAttention.project_kv(h, _lora(adapters, "decoder.self", "v", i, self.lora_scale))
        k, v = new_k, new_v
        if past_key is not None:
            k = torch.cat([past_key[:, i], k], dim=2)  # (B, H, Tp + T, d_kv)
            v = torch.cat([past_value[:, i], v], dim=2)
        bias = self_bias
        joint = _joint_prefix(adapters, i)
        if joint is not None:  # prefix keys first, as in the cache transformers builds from PEFT's prefix
            k, v = torch.cat([joint[0], k], dim=2), torch.cat([joint[1], v], dim=2)
            batch = h.shape[0]
            bias = torch.cat([prefix_bias.expand(batch, -1, -1, -1), self_bias.expand(batch, -1, -1, -1)], dim=-1)
        x = x + block.dropout(
            sa.SelfAttention.attend(
                h,
                k,
                v,
                bias,
                _lora(adapters, "decoder.self", "q", i, self.lora_scale),
                _prefix(adapters, "decoder.self", i),
            )
        )
        ca = block.layer[1]
        x = x + block.dropout(
            ca.EncDecAttention.attend(
                ca.layer_norm(x),
                cross_key[:, i],
                cross_value[:, i],
                cross_bias,
                _lora(adapters, "decoder.cross", "q", i, self.lora_scale),
                _prefix(adapters, "decoder.cross", i),
            )
        )
        return block.layer[2](x), new_k, new_v

    def logits(self, states: Tensor) -> Tensor:
        if self.dims.tie_word_embeddings:
            return torch.matmul(states * self.dims.d_model**-0.5, self.shared.weight.t())
        return self.lm_head(states)

    def causal_bias(self, length: int, device: torch.device) -> Tensor:
        positions = torch.arange(length, device=device)
        bias = self.decoder.position_bias(positions[None, :] - positions[:, None])  # (1, H, T, T)
        causal = positions[None, :] <= positions[:, None]
        return bias + (~causal).float()[None, None] * torch.finfo(bias.dtype).min

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor, decoder_input_ids: Tensor, adapters: Adapters | None = None
    ) -> Tensor:
        """Teacher-forced logits (B, T, V), the training path."""
        states = self.encode(input_ids, attention_mask, adapters)
        cross_key, cross_value = self.cross_kv(states, adapters)
        x = self.shared(decoder_input_ids)
        out, _, _ = self.decode(
            x,
            self.causal_bias(x.shape[1], x.device),
            None,
            None,
            cross_key,
            cross_value,
            additive_mask(attention_mask, x.dtype),
            adapters,
            torch.arange(x.shape[1], device=x.device)[None, :],
        )
        return self.logits(out)

    def decoder_step(
        self,
        input_ids: Tensor,
        self_attention_mask: Tensor,
        encoder_attention_mask: Tensor,
        past_key: Tensor,
        past_value: Tensor,
        cross_key: Tensor,
        cross_value: Tensor,
        adapters: Adapters | None = None,
        stack_new: bool = True,
    ) -> tuple[Tensor, Tensor | list[Tensor], Tensor | list[Tensor]]:
        """One decode step over a left-padded cache (models/README.md, "decoder").

        input_ids (B, 1); self_attention_mask (B, Tp + 1); past (B, L, H, Tp, d_kv), or anything whose
        ``[:, l]`` is layer l's (B, H, Tp, d_kv). Returns logits (B, V) and this step's keys/values
        (B, L, H, 1, d_kv), or one (B, H, 1, d_kv) per layer with ``stack_new=False``.
        """
        total = self_attention_mask.shape[1]
        # The current token sits in the last slot, so key j is (total - 1 - j) positions back for every row.
        relative = torch.arange(total, device=input_ids.device)[None, :] - (total - 1)  # (1, Tp + 1)
        self_bias = self.decoder.position_bias(relative) + additive_mask(self_attention_mask, torch.float32)
        # The cache is left-padded, so a row's target position is its count of valid slots minus one.
        position = self_attention_mask.sum(-1, keepdim=True) - 1  # (B, 1)
        out, new_key, new_value = self.decode(
            self.shared(input_ids),
            self_bias,
            past_key,
            past_value,
            cross_key,
            cross_value,
            additive_mask(encoder_attention_mask, torch.float32),
            adapters,
            position,
            stack_new,
        )
        return self.logits(out[:, -1]), new_key, new_value


def enable_gradient_checkpointing(module: nn.Module, enabled: bool = True) -> int:
    """Set ``gradient_checkpointing`` on every T5 inside ``module`` (a HyperT5's body too); returns how many."""
    found = [m for m in module.modules() if isinstance(m, T5)]
    for model in found:
        model.gradient_checkpointing = enabled
    return len(found)


_HF_IGNORED = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")


def load_hf_state_dict(model: T5, state_dict: dict[str, Tensor]) -> None:
    """Load a transformers T5ForConditionalGeneration state dict (same names; tied aliases ignored)."""
    own = model.state_dict()
    wanted = {k: v for k, v in state_dict.items() if k not in _HF_IGNORED}
    if model.dims.tie_word_embeddings:
        wanted.pop("lm_head.weight", None)
    missing = sorted(set(own) - set(wanted))
    unexpected = sorted(set(wanted) - set(own))
    if missing or unexpected:
        raise ValueError(f"checkpoint does not match the T5 config: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for name, tensor in wanted.items():
        if tuple(tensor.shape) != tuple(own[name].shape):
            raise ValueError(
                f"checkpoint tensor {name} has shape {tuple(tensor.shape)}, config expects {tuple(own[name].shape)}"
            )
    model.load_state_dict(wanted)
