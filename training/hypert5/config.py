"""Configs of the downstream T5 and of the hypermodel, as validated dataclasses.

Every field is documented and checked in ``__post_init__``; an invalid value raises ``ValueError``
naming the field and the value (pattern of peft's ``PeftConfig``). Checkpoints carry these configs
and the exporter copies them into the bundle manifest (see models/README.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

FEED_FORWARD_KINDS = ("relu", "gated-gelu")
ADAPTER_KINDS = ("lora", "prefix")
SITES = ("encoder.self", "decoder.self", "decoder.cross")
PREFIX_ATTENTIONS = ("gated", "peft")


def _require(cond: bool, name: str, value: Any, why: str) -> None:
    if not cond:
        raise ValueError(f"invalid config: {name}={value!r}: {why}")


def _positive(obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        _require(
            isinstance(value, int) and not isinstance(value, bool) and value > 0,
            name,
            value,
            "must be a positive integer",
        )


@dataclass
class T5Dims:
    """Shape of the downstream T5; same names and meaning as HF ``T5Config``."""

    vocab_size: int = 259  # ByT5-style bytes: 256 + pad/eos/unk
    d_model: int = 64
    d_kv: int = 16
    num_heads: int = 4
    d_ff: int = 128
    num_layers: int = 2  # encoder layers
    num_decoder_layers: int = 2
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    feed_forward_proj: str = "gated-gelu"  # "relu" (T5 v1.0) or "gated-gelu" (v1.1, Flan, ByT5)
    tie_word_embeddings: bool = False  # True for T5 v1.0: lm_head = shared, output scaled by d_model**-0.5
    layer_norm_epsilon: float = 1e-6
    pad_token_id: int = 0
    eos_token_id: int = 1
    decoder_start_token_id: int = 0

    def __post_init__(self) -> None:
        _positive(
            self,
            "vocab_size",
            "d_model",
            "d_kv",
            "num_heads",
            "d_ff",
            "num_layers",
            "num_decoder_layers",
            "relative_attention_num_buckets",
            "relative_attention_max_distance",
        )
        _require(
            self.feed_forward_proj in FEED_FORWARD_KINDS,
            "feed_forward_proj",
            self.feed_forward_proj,
            f"must be one of {FEED_FORWARD_KINDS}",
        )
        _require(self.layer_norm_epsilon > 0, "layer_norm_epsilon", self.layer_norm_epsilon, "must be > 0")
        for name in ("pad_token_id", "eos_token_id", "decoder_start_token_id"):
            value = getattr(self, name)
            _require(0 <= value < self.vocab_size, name, value, f"must be in [0, vocab_size={self.vocab_size})")

    @property
    def inner_dim(self) -> int:
        return self.num_heads * self.d_kv

    def layers(self, site: str) -> int:
        """Number of layers that carry attention ``site``."""
        return self.num_layers if site.startswith("encoder") else self.num_decoder_layers

    @classmethod
    def from_hf(cls, hf: Any) -> "T5Dims":
        """From a transformers ``T5Config`` (or anything with its attributes)."""
        proj = getattr(hf, "feed_forward_proj", "relu")
        proj = "gated-gelu" if proj in ("gated-gelu", "gated-gelu_new") else proj
        return cls(
            vocab_size=hf.vocab_size,
            d_model=hf.d_model,
            d_kv=hf.d_kv,
            num_heads=hf.num_heads,
            d_ff=hf.d_ff,
            num_layers=hf.num_layers,
            num_decoder_layers=hf.num_decoder_layers or hf.num_layers,
            relative_attention_num_buckets=hf.relative_attention_num_buckets,
            relative_attention_max_distance=getattr(hf, "relative_attention_max_distance", 128),
            feed_forward_proj=proj,
            tie_word_embeddings=bool(hf.tie_word_embeddings),
            layer_norm_epsilon=hf.layer_norm_epsilon,
            pad_token_id=hf.pad_token_id,
            eos_token_id=hf.eos_token_id,
            decoder_start_token_id=hf.decoder_start_token_id,
        )

    def to_hf(self) -> Any:
        from transformers import T5Config

        return T5Config(
            vocab_size=self.vocab_size,
            d_model=self.d_model,
            d_kv=self.d_kv,
            num_heads=self.num_heads,
            d_ff=self.d_ff,
            num_layers=self.num_layers,
            num_decoder_layers=self.num_decoder_layers,
            relative_attention_num_buckets=self.relative_attention_num_buckets,
            relative_attention_max_distance=self.relative_attention_max_distance,
            feed_forward_proj=self.feed_forward_proj,
            tie_word_embeddings=self.tie_word_embeddings,
            layer_norm_epsilon=self.layer_norm_epsilon,
            pad_token_id=self.pad_token_id,
            eos_token_id=self.eos_token_id,
            decoder_start_token_id=self.decoder_start_token_id,
            dropout_rate=0.0,
            is_encoder_decoder=True,
        )


@dataclass
class LoraSpec:
    """LoRA on the q and v projections of every attention site (HyperT5-LoRA)."""

    rank: int = 8  # r: related work uses 8-32
    alpha: float = 16.0  # the update is scaled by alpha / rank

    def __post_init__(self) -> None:
        _positive(self, "rank")
        _require(self.alpha > 0, "alpha", self.alpha, "must be > 0")

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank


@dataclass
class PrefixSpec:
    """Key/value prefixes of ``num_positions`` positions (HyperT5-Prefix), in one of two attentions.

    ``"gated"``: at every attention site, output + gate * a separate softmax over the prefix (no
    position bias), so a zero gate is an exact no-op. ``"peft"``: what HF PEFT prefix tuning computes
    on a T5 (peft >= 0.15 with transformers >= 4.56): the prefix enters the decoder self-attention
    only, in the same softmax as the sequence, at positions 0..P-1 before the target tokens (which
    shifts the query-to-prefix relative positions); a per-position mask makes a zero adapter a no-op
    and lets shorter PEFT prefixes fit (models/README.md, "Adapter kinds").
    """

    num_positions: int = 8  # P
    attention: str = "gated"

    def __post_init__(self) -> None:
        _positive(self, "num_positions")
        _require(
            self.attention in PREFIX_ATTENTIONS, "attention", self.attention, f"must be one of {PREFIX_ATTENTIONS}"
        )

    @property
    def sites(self) -> tuple[str, ...]:
        """Attention sites that carry a prefix."""
        return SITES if self.attention == "gated" else ("decoder.self",)


@dataclass
class HyperConfig:
    """The hypermodel: a T5 of the downstream's shape plus learned queries and MLP heads.

    Queries: LoRA uses one query per (site, layer); prefix one per (site, layer, prefix position).
    Each decoder output state goes through LayerNorm -> Linear(d_model, head_hidden) -> GELU ->
    Linear(head_hidden, out), one head per site and kind.
    """

    kind: str = "lora"
    head_hidden: int = 128
    lora: LoraSpec = field(default_factory=LoraSpec)
    prefix: PrefixSpec = field(default_factory=PrefixSpec)

    def __post_init__(self) -> None:
        if isinstance(self.lora, dict):
            self.lora = LoraSpec(**self.lora)
        if isinstance(self.prefix, dict):
            self.prefix = PrefixSpec(**self.prefix)
        _require(self.kind in ADAPTER_KINDS, "kind", self.kind, f"must be one of {ADAPTER_KINDS}")
        _positive(self, "head_hidden")


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)
