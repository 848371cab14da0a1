"""The bench's analytic FLOPs (bench/pybench/flops.py) equal PyTorch's FLOP counter on the tiny presets
(gated and PEFT prefixes): encoder + cross keys/values, one decode step, and the hypermodels, with and
without adapters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from pybench import flops
from torch.utils.flop_counter import FlopCounterMode

from hypert5.presets import random_models

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", params=["tiny", "tiny-peft"])
def setup(request):
    models = random_models(request.param, 0)
    for p in [*models.downstream.parameters(), *(q for h in models.hyper.values() for q in h.parameters())]:
        p.requires_grad_(False)
    manifest = json.loads((ROOT / "test/fixtures/tiny/manifest.json").read_text())
    # The fixture bundle is the "tiny" preset; "tiny-peft" differs only in the prefix attention.
    manifest["adapters"]["kinds"]["prefix"]["attention"] = models.settings.prefix.attention
    return models, flops.Dims.from_manifest(manifest, models.settings.head_hidden)


def counted(fn) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


@pytest.mark.parametrize("kind", [None, "lora", "prefix"])
def test_query_flops_match_the_counter(setup, kind):
    models, dims = setup
    t5, src, seen = models.downstream, 32, 16
    ids = torch.randint(3, 250, (1, src))
    mask = torch.ones_like(ids)
    adapter = models.hyper[kind](torch.randint(3, 250, (1, 40)), torch.ones(1, 40, dtype=torch.long)) if kind else None
    assert counted(lambda: t5.cross_kv(t5.encode(ids, mask, adapter), adapter)) == flops.encoder(dims, src, kind)
    ck, cv = t5.cross_kv(t5.encode(ids, mask, adapter), adapter)
    past = torch.zeros(1, dims.dec_layers, dims.heads, seen - 1, dims.i // dims.heads)

    def step():
        return t5.decoder_step(
            torch.tensor([[5]]), torch.ones(1, seen, dtype=torch.long), mask, past, past, ck, cv, adapter
        )

    assert counted(step) == flops.decoder_step(dims, seen, src, kind)


@pytest.mark.parametrize("kind", ["lora", "prefix"])
def test_hypermodel_flops_match_the_counter(setup, kind):
    models, dims = setup
    ctx = torch.randint(3, 250, (1, 64))
    assert counted(lambda: models.hyper[kind](ctx, torch.ones_like(ctx))) == flops.hypermodel(dims, 64, kind)
