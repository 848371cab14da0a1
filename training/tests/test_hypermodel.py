"""The hypermodel: an untrained one is an exact no-op, outputs follow the adapter tables, gradients flow."""

import pytest
import torch

from hypert5.adapters import kind_specs
from hypert5.config import HyperConfig, LoraSpec, PrefixSpec, T5Dims
from hypert5.hypermodel import HyperT5
from hypert5.t5 import T5


def _models(dims: T5Dims, kind: str, attention: str = "gated") -> tuple[T5, HyperT5]:
    torch.manual_seed(0)
    config = HyperConfig(
        kind=kind, head_hidden=16, lora=LoraSpec(rank=4), prefix=PrefixSpec(num_positions=3, attention=attention)
    )
    downstream = T5(dims, lora_scale=config.lora.scaling).eval()
    return downstream, HyperT5.from_downstream(downstream, config)


def _inputs(dims: T5Dims):
    g = torch.Generator().manual_seed(0)
    ctx = torch.randint(3, dims.vocab_size, (2, 11), generator=g)
    ctx_mask = torch.ones_like(ctx)
    ctx_mask[0, 8:] = 0
    ids = torch.randint(3, dims.vocab_size, (2, 6), generator=g)
    return ctx, ctx_mask, ids, torch.ones_like(ids), torch.randint(3, dims.vocab_size, (2, 4), generator=g)


@pytest.mark.parametrize("kind", ["lora", "prefix"])
def test_untrained_hypermodel_leaves_frozen_model_unchanged(dims: T5Dims, kind: str) -> None:
    downstream, hyper = _models(dims, kind)
    ctx, ctx_mask, ids, mask, dec = _inputs(dims)
    with torch.no_grad():
        adapters = hyper(ctx, ctx_mask)
        assert any(t.abs().sum() > 0 for t in adapters.values())  # random side is live
        assert torch.equal(downstream(ids, mask, dec, adapters), downstream(ids, mask, dec))


def test_untrained_peft_prefix_hypermodel_starts_with_zero_values_and_a_full_mask(dims: T5Dims) -> None:
    """A joint-softmax prefix cannot be an exact no-op: zero values only dilute the attention."""
    _, hyper = _models(dims, "prefix", "peft")
    ctx, ctx_mask, *_ = _inputs(dims)
    with torch.no_grad():
        adapters = hyper(ctx, ctx_mask)
    assert sorted(adapters) == ["prefix.decoder.self.key", "prefix.decoder.self.mask", "prefix.decoder.self.value"]
    assert adapters["prefix.decoder.self.key"].abs().sum() > 0
    assert not adapters["prefix.decoder.self.value"].any()
    assert torch.equal(adapters["prefix.decoder.self.mask"], torch.ones(2, 3))


@pytest.mark.parametrize("kind, attention", [("lora", "gated"), ("prefix", "gated"), ("prefix", "peft")])
def test_outputs_match_the_adapter_table_and_gradients_reach_the_zero_side(
    dims: T5Dims, kind: str, attention: str
) -> None:
    downstream, hyper = _models(dims, kind, attention)
    ctx, ctx_mask, ids, mask, dec = _inputs(dims)
    adapters = hyper(ctx, ctx_mask)
    specs = kind_specs(kind, dims, hyper.config.lora, hyper.config.prefix)
    assert {k: tuple(v.shape) for k, v in adapters.items()} == {s.name: (2, *s.shape) for s in specs}
    for p in downstream.parameters():
        p.requires_grad_(False)
    loss = downstream(ids, mask, dec, adapters).logsumexp(-1).mean()
    loss.backward()
    assert all(h.down.weight.grad.abs().sum() > 0 for h in hyper.heads.values())
    assert hyper.queries.grad is not None


def test_hypermodel_body_starts_as_the_downstream(dims: T5Dims) -> None:
    downstream, hyper = _models(dims, "lora")
    for name, tensor in downstream.state_dict().items():
        assert torch.equal(hyper.body.state_dict()[name], tensor)
