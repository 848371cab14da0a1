"""Randomly initialized models of fixed shapes: test fixtures for both sides of the bundle format."""

from __future__ import annotations

import dataclasses

import torch

from .checkpoint import BundleSettings, Models
from .config import LoraSpec, PrefixSpec, T5Dims
from .examples import HyperInputFormat
from .hypermodel import HyperT5
from .t5 import T5

TINY = BundleSettings(
    dims=T5Dims(vocab_size=259, d_model=64, d_kv=16, num_heads=4, d_ff=128, num_layers=2, num_decoder_layers=2),
    lora=LoraSpec(rank=4, alpha=8.0),
    prefix=PrefixSpec(num_positions=4),
    head_hidden=64,
    hyper_input=HyperInputFormat(max_tokens=1024, max_examples=16),
    encoder_max_tokens=256,
    generation={"max_new_tokens": 32, "num_beams": 1},
    default_kind="prefix",
    name="hypert5-tiny-random",
)

PRESETS = {
    "tiny": TINY,
    # tiny with PEFT-compatible prefixes (PrefixSpec.attention "peft"): both kinds convert to HF PEFT.
    "tiny-peft": dataclasses.replace(
        TINY, prefix=PrefixSpec(num_positions=4, attention="peft"), name="hypert5-tiny-peft-random"
    ),
    # The shape of t5-small (about 60M parameters), relu and tied embeddings as in T5 v1.0.
    "t5-small": BundleSettings(
        dims=T5Dims(
            vocab_size=32128,
            d_model=512,
            d_kv=64,
            num_heads=8,
            d_ff=2048,
            num_layers=6,
            num_decoder_layers=6,
            feed_forward_proj="relu",
            tie_word_embeddings=True,
        ),
        lora=LoraSpec(rank=8, alpha=16.0),
        prefix=PrefixSpec(num_positions=8),
        head_hidden=128,
        default_kind="prefix",
        name="hypert5-t5-small-random",
    ),
}


def random_models(preset: str, seed: int = 0) -> Models:
    """Random weights everywhere, the hypermodels' zero-initialized outputs included, so that the
    generated adapters change the outputs and parity tests exercise every adapter path."""
    if preset not in PRESETS:
        raise ValueError(f"invalid preset={preset!r}: must be one of {sorted(PRESETS)}")
    settings = PRESETS[preset]
    settings.provenance = {"preset": preset, "seed": seed, "trained": False}
    torch.manual_seed(seed)
    downstream = T5(settings.dims, lora_scale=settings.lora.scaling).eval()
    hyper = {}
    for kind in ("lora", "prefix"):
        model = HyperT5.from_downstream(downstream, settings.hyper_config(kind))
        with torch.no_grad():
            for head in model.heads.values():
                head.down.weight.normal_(0.0, 0.05)
                head.down.bias.normal_(0.0, 0.05)
                if (
                    kind == "prefix" and settings.prefix.attention == "gated"
                ):  # open the gates wide enough that prefixes visibly change decodes
                    head.down.bias[-settings.dims.num_heads :] += 1.0
        hyper[kind] = model.eval()
    return Models(settings, downstream, hyper)
