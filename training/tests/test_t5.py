"""The downstream T5: transformers parity, adapters as per-row inputs, KV-cache steps."""

import pytest
import torch
from conftest import random_adapter
from transformers import T5ForConditionalGeneration

from hypert5.adapters import lora_specs, prefix_specs, stack, zeros
from hypert5.config import LoraSpec, PrefixSpec, T5Dims
from hypert5.t5 import T5, load_hf_state_dict


def _pair(dims: T5Dims, seed: int = 0) -> tuple[T5ForConditionalGeneration, T5]:
    torch.manual_seed(seed)
    hf = T5ForConditionalGeneration(dims.to_hf()).eval()
    ours = T5(dims).eval()
    load_hf_state_dict(ours, hf.state_dict())
    return hf, ours


def _batch(vocab: int, batch: int = 3, src: int = 7, tgt: int = 5):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, vocab, (batch, src), generator=g)
    mask = torch.ones_like(ids)
    mask[1, src - 2 :] = 0  # right padding on one row
    return ids, mask, torch.randint(3, vocab, (batch, tgt), generator=g)


@pytest.mark.parametrize("proj,tie", [("gated-gelu", False), ("relu", True)])
def test_logits_match_transformers(proj: str, tie: bool) -> None:
    dims = T5Dims(
        vocab_size=100,
        d_model=32,
        d_kv=8,
        num_heads=4,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=3,
        feed_forward_proj=proj,
        tie_word_embeddings=tie,
    )
    hf, ours = _pair(dims)
    ids, mask, dec = _batch(dims.vocab_size)
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
        got = ours(ids, mask, dec)
    assert torch.allclose(expected, got, atol=1e-4), (expected - got).abs().max()


def test_checkpoint_mismatch_names_tensor(dims: T5Dims) -> None:
    hf, _ = _pair(dims)
    other = T5(T5Dims(**{**dims.__dict__, "d_ff": 32}))
    with pytest.raises(ValueError, match="DenseReluDense"):
        load_hf_state_dict(other, hf.state_dict())


@pytest.mark.parametrize("attention", ["gated", "peft"])
def test_zero_adapters_reproduce_frozen_model(dims: T5Dims, attention: str) -> None:
    """Bit for bit with a gated prefix (a zero gate adds exact zeros). A "peft" prefix joins the
    softmax: its masked keys weigh exactly 0, but the sum now runs over T + P entries, and how the
    CPU kernel splits that reduction changes the last bits (seen: 6e-6 on one machine, 0 on another)."""
    _, model = _pair(dims)
    ids, mask, dec = _batch(dims.vocab_size)
    adapters = {
        **zeros(lora_specs(dims, LoraSpec(rank=4)), 3),
        **zeros(prefix_specs(dims, PrefixSpec(3, attention=attention)), 3),
    }
    with torch.no_grad():
        plain, adapted = model(ids, mask, dec), model(ids, mask, dec, adapters)
    if attention == "gated":
        assert torch.equal(plain, adapted)
    else:
        assert torch.allclose(plain, adapted, rtol=0, atol=1e-4), (plain - adapted).abs().max()


@pytest.mark.parametrize("attention", ["gated", "peft"])
def test_mixed_adapter_batch_rows_equal_rows_alone(dims: T5Dims, attention: str) -> None:
    _, model = _pair(dims)
    ids, mask, dec = _batch(dims.vocab_size)
    lora = [random_adapter("lora", dims, 1), None, random_adapter("lora", dims, 2)]
    prefix = [
        None,
        random_adapter("prefix", dims, 3, attention=attention),
        random_adapter("prefix", dims, 4, attention=attention),
    ]
    l_specs, p_specs = lora_specs(dims, LoraSpec(rank=4)), prefix_specs(dims, PrefixSpec(3, attention=attention))
    with torch.no_grad():
        mixed = model(ids, mask, dec, {**stack(lora, l_specs), **stack(prefix, p_specs)})
        plain = model(ids, mask, dec)
        for row in range(3):
            n = int(mask[row].sum())  # each row alone, without its padding
            alone = model(
                ids[row : row + 1, :n],
                mask[row : row + 1, :n],
                dec[row : row + 1],
                {**stack(lora[row : row + 1], l_specs), **stack(prefix[row : row + 1], p_specs)},
            )
            assert torch.allclose(mixed[row], alone[0], atol=1e-5)
        assert not torch.allclose(mixed[0], plain[0], atol=1e-3)  # the adapters do something
        assert not torch.allclose(mixed[1], plain[1], atol=1e-3)


@pytest.mark.parametrize("attention", ["gated", "peft"])
def test_cached_steps_equal_full_forward_with_left_padding(dims: T5Dims, attention: str) -> None:
    """Two rows whose caches are left-padded by different amounts decode as if each were alone (a "peft"
    prefix's relative positions follow each row's own length)."""
    _, model = _pair(dims)
    ids, mask, dec = _batch(dims.vocab_size, batch=2)
    adapters = stack([random_adapter("lora", dims, 5), None], lora_specs(dims, LoraSpec(rank=4)))
    adapters.update(
        stack(
            [None, random_adapter("prefix", dims, 6, attention=attention)],
            prefix_specs(dims, PrefixSpec(3, attention=attention)),
        )
    )
    with torch.no_grad():
        full = model(ids, mask, dec, adapters)  # (2, T, V)
        cross_key, cross_value = model.cross_kv(model.encode(ids, mask, adapters), adapters)
        L, H, dkv = dims.num_decoder_layers, dims.num_heads, dims.d_kv
        past_key = past_value = torch.zeros(2, L, H, 0, dkv)
        slots = torch.zeros(2, 0, dtype=torch.long)
        delay = 2  # row 1 joins two steps late: its first slots are padding
        for step in range(dec.shape[1] + delay):
            row1_pos = step - delay
            token = torch.stack([dec[0, min(step, dec.shape[1] - 1)], dec[1, max(row1_pos, 0)]])[:, None]
            live = torch.tensor([[1], [1 if row1_pos >= 0 else 0]])
            self_mask = torch.cat([slots, torch.ones(2, 1, dtype=torch.long)], 1)
            logits, nk, nv = model.decoder_step(
                token, self_mask, mask, past_key, past_value, cross_key, cross_value, adapters
            )
            if step < dec.shape[1]:
                assert torch.allclose(logits[0], full[0, step], atol=1e-5)
            if row1_pos >= 0:
                assert torch.allclose(logits[1], full[1, row1_pos], atol=1e-5)
            past_key, past_value = torch.cat([past_key, nk], 3), torch.cat([past_value, nv], 3)
            slots = torch.cat([slots, live], 1)


@pytest.mark.parametrize("num_layers, virtual_tokens", [(6, 3), (3, 2)])
def test_peft_prefix_matches_hf_peft_prefix_tuning(dims: T5Dims, num_layers: int, virtual_tokens: int) -> None:
    """A "peft" prefix computes what peft's PrefixTuningConfig computes on transformers' T5: joint softmax in
    the decoder self-attention, shifted positions (a long target reaches the log-spaced buckets), PEFT's
    layer layout (convert.peft_prefix_to_native; num_layers = L shares layers) and a shorter prefix (masked)."""
    peft = pytest.importorskip("peft")
    from hypert5.peft_interop import convert

    dims = T5Dims(**{**dims.__dict__, "relative_attention_num_buckets": 8, "relative_attention_max_distance": 20})
    hf, ours = _pair(dims)
    config = peft.PrefixTuningConfig(task_type="SEQ_2_SEQ_LM", num_virtual_tokens=virtual_tokens, num_layers=num_layers)
    model = peft.get_peft_model(hf, config).eval()
    with torch.no_grad():
        model.prompt_encoder["default"].embedding.weight.normal_(0.0, 1.0)
    manifest = {"dims": dims.__dict__, "adapters": {"kinds": {"prefix": {"attention": "peft", "num_positions": 3}}}}
    native = convert.peft_prefix_to_native(
        {convert.PROMPT_EMBEDDINGS: model.prompt_encoder["default"].embedding.weight},
        {**config.to_dict(), "peft_type": "PREFIX_TUNING"},
        manifest,
    )
    ids, mask, dec = _batch(dims.vocab_size, tgt=30)
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
        got = ours(ids, mask, dec, {k: v.expand(3, *v.shape) for k, v in native.items()})
        plain = ours(ids, mask, dec)
    assert torch.allclose(expected, got, atol=1e-4), (expected - got).abs().max()
    assert (got - plain).abs().max() > 0.1  # the prefix matters
