"""HyperT5: few-shot examples -> adapter parameters for the frozen downstream T5, in one forward pass.

The body is a T5 encoder-decoder initialized from the downstream's weights. The encoder reads the
serialized examples; the decoder is fed learned query embeddings instead of tokens (attending to
each other without a causal mask, since nothing is generated autoregressively) and each output
state goes through an MLP head (LayerNorm -> Linear -> GELU -> Linear) that emits parameters.

Queries: LoRA has one per (site, layer), emitting that layer's q and v factors; prefix has one per
(site, layer, prefix position), emitting that position's key and value for every head plus, for
gated prefixes, a per-head gate (averaged over positions). The output side starts at zero (LoRA
``b`` and the prefix ``gate``), so an untrained hypermodel leaves the frozen model exactly unchanged
while the other outputs (LoRA ``a``, prefix keys/values) are random and give the zero side a
gradient. "peft" prefixes (joint softmax, decoder self-attention only) have no gate: their values
start at zero, so an untrained one only dilutes the attention, and their mask is all ones.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .adapters import TensorSpec, kind_specs
from .config import SITES, HyperConfig, T5Dims
from .t5 import T5, Adapters


class ParameterHead(nn.Module):
    """LayerNorm -> MLP; the output columns in ``zero_columns`` start at exactly zero."""

    def __init__(self, d_model: int, hidden: int, out: int, zero_columns: list[slice]):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.up = nn.Linear(d_model, hidden)
        self.act = nn.GELU()
        self.down = nn.Linear(hidden, out)
        with torch.no_grad():
            # Small non-zero outputs elsewhere keep the generated adapters well-conditioned at step 0.
            self.down.weight.mul_(0.1)
            for columns in zero_columns:
                self.down.weight[columns] = 0.0
            self.down.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        return self.down(self.act(self.up(self.norm(x))))


class HyperT5(nn.Module):
    def __init__(self, dims: T5Dims, config: HyperConfig):
        super().__init__()
        self.dims, self.config = dims, config
        self.body = T5(dims)
        self.specs: list[TensorSpec] = kind_specs(config.kind, dims, config.lora, config.prefix)
        d, r, inner, heads = dims.d_model, config.lora.rank, dims.inner_dim, dims.num_heads
        self.gated = config.kind == "prefix" and config.prefix.attention == "gated"
        self.sites = SITES if config.kind == "lora" else config.prefix.sites
        if config.kind == "lora":
            self.queries_per_site = {site: dims.layers(site) for site in SITES}
            # Columns: q.a, q.b, v.a, v.b, each flattened.
            self.out_layout = [("q.a", d * r), ("q.b", r * inner), ("v.a", d * r), ("v.b", r * inner)]
            a_width, b_width = d * r, r * inner
            out = 2 * (a_width + b_width)
            zero_slices = [slice(a_width, a_width + b_width), slice(2 * a_width + b_width, out)]  # q.b, v.b
        else:
            p = config.prefix.num_positions
            self.queries_per_site = {site: dims.layers(site) * p for site in self.sites}
            self.out_layout = [("key", inner), ("value", inner)] + ([("gate", heads)] if self.gated else [])
            out = 2 * inner + (heads if self.gated else 0)
            zero_slices = [slice(2 * inner, out) if self.gated else slice(inner, out)]  # the gate, else the values
        self.heads = nn.ModuleDict()
        for site in self.sites:
            self.heads[site.replace(".", "_")] = ParameterHead(d, config.head_hidden, out, zero_slices)
        total = sum(self.queries_per_site.values())
        # Same scale as T5 token embeddings so the initialized decoder sees familiar inputs.
        self.queries = nn.Parameter(torch.randn(total, d) * self.body.shared.weight.std().item())

    @classmethod
    def from_downstream(cls, downstream: T5, config: HyperConfig) -> "HyperT5":
        model = cls(downstream.dims, config)
        model.body.load_state_dict(downstream.state_dict())
        with torch.no_grad():
            model.queries.normal_(0.0, downstream.shared.weight.std().item())
        return model

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Adapters:
        """(B, C) ids and mask of the serialized examples -> batched adapter tensors of ``config.kind``."""
        batch = input_ids.shape[0]
        body = self.body
        states = body.encode(input_ids, attention_mask)  # (B, C, d)
        cross_key, cross_value = body.cross_kv(states)
        queries = self.queries[None].expand(batch, -1, -1)  # (B, Q, d)
        n = queries.shape[1]
        positions = torch.arange(n, device=input_ids.device)
        self_bias = body.decoder.position_bias(positions[None, :] - positions[:, None])  # no causal mask
        out, _, _ = body.decode(
            queries,
            self_bias,
            None,
            None,
            cross_key,
            cross_value,
            (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min,
            None,
        )  # (B, Q, d)
        adapters: Adapters = {}
        start = 0
        for site in self.sites:
            count = self.queries_per_site[site]
            flat = self.heads[site.replace(".", "_")](out[:, start : start + count])  # (B, count, out)
            start += count
            adapters.update(self._unflatten(site, flat))
        return adapters

    def _unflatten(self, site: str, flat: Tensor) -> Adapters:
        dims, batch = self.dims, flat.shape[0]
        layers = dims.layers(site)
        parts, offset = {}, 0
        for name, width in self.out_layout:
            parts[name] = flat[..., offset : offset + width]
            offset += width
        if self.config.kind == "lora":
            d, r, inner = dims.d_model, self.config.lora.rank, dims.inner_dim
            return {
                f"lora.{site}.q.a": parts["q.a"].reshape(batch, layers, d, r),
                f"lora.{site}.q.b": parts["q.b"].reshape(batch, layers, r, inner),
                f"lora.{site}.v.a": parts["v.a"].reshape(batch, layers, d, r),
                f"lora.{site}.v.b": parts["v.b"].reshape(batch, layers, r, inner),
            }
        p, heads, d_kv = self.config.prefix.num_positions, dims.num_heads, dims.d_kv

        def kv(t: Tensor) -> Tensor:  # (B, L*P, H*d_kv) -> (B, L, H, P, d_kv)
            return t.reshape(batch, layers, p, heads, d_kv).permute(0, 1, 3, 2, 4)

        out = {f"prefix.{site}.key": kv(parts["key"]), f"prefix.{site}.value": kv(parts["value"])}
        if self.gated:
            out[f"prefix.{site}.gate"] = parts["gate"].reshape(batch, layers, p, heads).mean(2)  # (B, L, H)
        else:  # every generated position is attended to
            # Built by broadcasting (B, 1) against (P,) so that the ONNX graph's output shape is [batch, P].
            out[f"prefix.{site}.mask"] = torch.zeros_like(flat[:, :1, 0]) + flat.new_ones(p)
        return out
