"""Adapter tensor tables: names and per-adapter shapes of each kind (models/README.md, "Adapter kinds").

An adapter is a ``dict[str, Tensor]`` keyed by these names. Batched adapters (one row per sequence)
add a leading batch dimension. Zeros are an exact no-op for both kinds (for "peft" prefixes through
their all-zero mask).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import SITES, LoraSpec, PrefixSpec, T5Dims


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]


def lora_specs(dims: T5Dims, spec: LoraSpec) -> list[TensorSpec]:
    out = []
    for site in SITES:
        layers = dims.layers(site)
        for proj in ("q", "v"):
            out.append(TensorSpec(f"lora.{site}.{proj}.a", (layers, dims.d_model, spec.rank)))
            out.append(TensorSpec(f"lora.{site}.{proj}.b", (layers, spec.rank, dims.inner_dim)))
    return out


def prefix_specs(dims: T5Dims, spec: PrefixSpec) -> list[TensorSpec]:
    out = []
    for site in spec.sites:
        layers = dims.layers(site)
        kv = (layers, dims.num_heads, spec.num_positions, dims.d_kv)
        out.append(TensorSpec(f"prefix.{site}.key", kv))
        out.append(TensorSpec(f"prefix.{site}.value", kv))
        if spec.attention == "gated":
            out.append(TensorSpec(f"prefix.{site}.gate", (layers, dims.num_heads)))
        else:  # 1 = attend to this prefix position; all zeros (a row without an adapter) = no prefix
            out.append(TensorSpec(f"prefix.{site}.mask", (spec.num_positions,)))
    return out


def kind_specs(kind: str, dims: T5Dims, lora: LoraSpec, prefix: PrefixSpec) -> list[TensorSpec]:
    return lora_specs(dims, lora) if kind == "lora" else prefix_specs(dims, prefix)


def zeros(specs: list[TensorSpec], batch: int) -> dict[str, torch.Tensor]:
    """A batch of no-op adapters."""
    return {s.name: torch.zeros((batch, *s.shape)) for s in specs}


def stack(adapters: list[dict[str, torch.Tensor] | None], specs: list[TensorSpec]) -> dict[str, torch.Tensor]:
    """Batch per-row adapters (``None`` = no adapter of this kind: zeros)."""
    return {
        s.name: torch.stack([a[s.name] if a is not None else torch.zeros(s.shape) for a in adapters]) for s in specs
    }


# Which adapter tensors each downstream graph consumes (models/README.md, "Graphs").
ENCODER_PREFIXES = ("lora.encoder.self.", "lora.decoder.cross.v.", "prefix.encoder.self.")
DECODER_PREFIXES = ("lora.decoder.self.", "lora.decoder.cross.q.", "prefix.decoder.self.", "prefix.decoder.cross.")


def for_graph(specs: list[TensorSpec], prefixes: tuple[str, ...]) -> list[TensorSpec]:
    return [s for s in specs if s.name.startswith(prefixes)]
