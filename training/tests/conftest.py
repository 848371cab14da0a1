import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypert5.adapters import lora_specs, prefix_specs  # noqa: E402
from hypert5.config import LoraSpec, PrefixSpec, T5Dims  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def dims() -> T5Dims:
    return T5Dims(vocab_size=100, d_model=32, d_kv=8, num_heads=4, d_ff=64, num_layers=2, num_decoder_layers=3)


def random_adapter(
    kind: str, dims: T5Dims, seed: int, scale: float = 0.2, attention: str = "gated"
) -> dict[str, torch.Tensor]:
    """One non-trivial adapter (no batch dim); prefixes of ``attention`` "gated" or "peft" (mask: the
    first position off, so masking is exercised too)."""
    g = torch.Generator().manual_seed(seed)
    specs = (
        lora_specs(dims, LoraSpec(rank=4))
        if kind == "lora"
        else prefix_specs(dims, PrefixSpec(num_positions=3, attention=attention))
    )
    out = {s.name: torch.randn(s.shape, generator=g) * scale + (0.5 if s.name.endswith("gate") else 0.0) for s in specs}
    for name in out:
        if name.endswith(".mask"):
            out[name] = torch.tensor([0.0, 1.0, 1.0])
    return out
