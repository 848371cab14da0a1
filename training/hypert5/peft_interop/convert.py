"""Native LoRA adapters (models/README.md, "Adapter kinds") <-> HF PEFT LoRA adapters.

Native: ``lora.<site>.<q|v>.a`` ``[L, d_model, r]`` and ``.b`` ``[L, r, inner]``, update
``(alpha / r) * (x a[l]) b[l]``. PEFT (``LoraConfig(target_modules=["q", "v"])`` on a T5):
``lora_A.weight`` ``[r, in]`` and ``lora_B.weight`` ``[out, r]`` per module, update
``(lora_alpha / r) * B A x``. So ``A = a[l].T`` and ``B = b[l].T`` with the same r and alpha, and the
conversion is exact both ways. The PEFT state-dict keys (peft 0.21, ``save_pretrained``) are
``base_model.model.<T5 module>.lora_<A|B>.weight`` with the T5 modules

    encoder.self   encoder.block.<l>.layer.0.SelfAttention.<q|v>
    decoder.self   decoder.block.<l>.layer.0.SelfAttention.<q|v>
    decoder.cross  decoder.block.<l>.layer.1.EncDecAttention.<q|v>

From PEFT, two differences are absorbed exactly (up to one float rounding of B for the second):
a smaller rank r' < r is zero-padded, and a different scaling (``lora_alpha`` / r', or
``lora_alpha / sqrt(r')`` with ``use_rslora``) is folded into B. Anything else that differs is refused
with a message naming it.

Prefix adapters convert when the bundle's prefixes are PEFT's ("attention": "peft"; gated ones have no
PEFT equivalent, ``PREFIX_REFUSAL``). PEFT's ``PrefixTuningConfig`` on a T5 saves one tensor,
``prompt_embeddings`` ``[P', 2 N token_dim]`` (N = ``num_layers``, the effective values even with
``prefix_projection``), viewed as ``[P', 2N, heads, d_kv]``. peft 0.21 duplicates the 2N entries
(encoder-decoder models), cuts the 4N into chunks of 4 (self key, self value, cross key, cross value)
per cache layer and then drops the cross part: decoder layer l attends to entries ``4l mod 2N`` (key)
and ``4l+1 mod 2N`` (value). With PEFT's default N = L, layers l and l + L/2 share a prefix; exports
write N = 2L so that every layer has its own. A shorter PEFT prefix (P' < P) fills the last P' native
positions, the first ones masked off: the same attention, position for position.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import torch

PEFT_PREFIX = "base_model.model."
TARGETS = ("q", "v")
TASK_TYPE = "SEQ_2_SEQ_LM"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
# native site -> (T5 stack, index of the attention layer in a block, attention module)
SITE_MODULES = {
    "encoder.self": ("encoder", 0, "SelfAttention"),
    "decoder.self": ("decoder", 0, "SelfAttention"),
    "decoder.cross": ("decoder", 1, "EncDecAttention"),
}

PREFIX_REFUSAL = (
    "this bundle's prefix adapters cannot be converted to or from PEFT: its prefixes are gated "
    '(manifest adapters.kinds.prefix.attention "gated": attention output + gate * a separate softmax over the '
    "prefix, no position bias, as in LLaMA-Adapter), while PEFT prefix tuning puts the prefix keys/values into the "
    "same softmax as the sequence, so no PEFT adapter computes what a gated prefix computes. Bundles trained with "
    'PEFT prefixes (attention "peft", models/README.md) convert both kinds; this one converts LoRA adapters only'
)
PROMPT_EMBEDDINGS = "prompt_embeddings"  # the one tensor of a saved PEFT prefix-tuning adapter

# PEFT LoRA options that change what the adapter computes (or train more than q/v LoRA): must be unset.
_UNSUPPORTED = (
    "use_dora",
    "lora_bias",
    "fan_in_fan_out",
    "modules_to_save",
    "layers_to_transform",
    "layers_pattern",
    "layer_replication",
    "rank_pattern",
    "alpha_pattern",
    "trainable_token_indices",
    "target_parameters",
    "alora_invocation_tokens",
    "use_bdlora",
    "use_qalora",
    "megatron_config",
)


class InteropError(ValueError):
    """An adapter or bundle that cannot be converted; the message says why."""


def lora_kind(manifest: dict[str, Any]) -> dict[str, Any]:
    kind = manifest.get("adapters", {}).get("kinds", {}).get("lora")
    if kind is None:
        raise InteropError(f"bundle {manifest.get('name')!r} has no LoRA adapter kind (manifest adapters.kinds.lora)")
    if sorted(kind.get("targets", TARGETS)) != sorted(TARGETS):
        raise InteropError(f"bundle LoRA targets are {kind['targets']}, this converter knows {list(TARGETS)}")
    return kind


def peft_module(site: str, layer: int, proj: str) -> str:
    stack, index, attention = SITE_MODULES[site]
    return f"{stack}.block.{layer}.layer.{index}.{attention}.{proj}"


def peft_key(site: str, layer: int, proj: str, part: str) -> str:
    """``part`` is ``"a"`` or ``"b"``."""
    return f"{PEFT_PREFIX}{peft_module(site, layer, proj)}.lora_{part.upper()}.weight"


def _split(name: str) -> tuple[str, str, str]:
    """``lora.<site>.<proj>.<a|b>`` -> (site, proj, part)."""
    parts = name.split(".")
    if len(parts) != 5 or parts[0] != "lora":
        raise InteropError(f"tensor {name!r} is not a LoRA tensor name lora.<site>.<q|v>.<a|b>")
    return f"{parts[1]}.{parts[2]}", parts[3], parts[4]


def _number(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


def adapter_config(manifest: dict[str, Any]) -> dict[str, Any]:
    """adapter_config.json for the bundle's LoRA (unset fields take PEFT's defaults)."""
    kind = lora_kind(manifest)
    return {
        "peft_type": "LORA",
        "task_type": TASK_TYPE,
        "base_model_name_or_path": manifest["name"],
        "r": int(kind["rank"]),
        "lora_alpha": _number(kind["alpha"]),
        "target_modules": list(TARGETS),
        "lora_dropout": 0.0,
        "bias": "none",
        "fan_in_fan_out": False,
        "use_rslora": False,
        "use_dora": False,
        "inference_mode": True,
        "modules_to_save": None,
    }


def _check_native(tensors: dict[str, torch.Tensor], kind: dict[str, Any], what: str) -> None:
    specs = {t["name"]: tuple(t["shape"]) for t in kind["tensors"]}
    missing = sorted(set(specs) - set(tensors))
    unexpected = sorted(set(tensors) - set(specs))
    if missing or unexpected:
        raise InteropError(
            f"adapter tensors do not match the bundle's {what}: missing {missing}, unexpected {unexpected}"
        )
    for name, shape in specs.items():
        if tuple(tensors[name].shape) != shape:
            raise InteropError(
                f"adapter tensor {name} has shape {list(tensors[name].shape)}, the bundle says {list(shape)}"
            )


def native_to_peft(
    tensors: dict[str, torch.Tensor], manifest: dict[str, Any]
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """One native LoRA adapter (no batch dimension) -> (PEFT state dict, adapter_config.json)."""
    if any(name.startswith("prefix.") for name in tensors):
        return native_prefix_to_peft(tensors, manifest)
    _check_native(tensors, lora_kind(manifest), "LoRA")
    state: dict[str, torch.Tensor] = {}
    for name in sorted(tensors):
        site, proj, part = _split(name)
        t = tensors[name].detach().to(torch.float32)
        for layer in range(t.shape[0]):
            state[peft_key(site, layer, proj, part)] = t[layer].T.contiguous()
    return state, adapter_config(manifest)


def check_peft_config(config: dict[str, Any], manifest: dict[str, Any]) -> float:
    """Refuse what cannot be represented; returns the PEFT adapter's scaling (1.0 for prefix tuning)."""
    peft_type = str(config.get("peft_type", "")).upper()
    if peft_type == "PREFIX_TUNING":
        check_prefix_config(config, manifest)
        return 1.0
    if peft_type != "LORA":
        raise InteropError(
            f"PEFT adapter has peft_type {config.get('peft_type')!r}; only LORA and PREFIX_TUNING convert"
        )
    if config.get("task_type") not in (TASK_TYPE, None):
        raise InteropError(f"PEFT adapter has task_type {config.get('task_type')!r}; expected {TASK_TYPE} (a T5)")
    targets = config.get("target_modules")
    if isinstance(targets, str) or sorted(set(targets or ())) != sorted(TARGETS):
        raise InteropError(
            f"PEFT adapter has target_modules {targets!r}; the bundle's LoRA targets exactly "
            f"{list(TARGETS)} (q and v of every attention)"
        )
    if config.get("bias", "none") != "none":
        raise InteropError(
            f"PEFT adapter has bias {config['bias']!r}; only 'none' converts (the bundle has no bias terms)"
        )
    for key in _UNSUPPORTED:
        if config.get(key):
            raise InteropError(f"PEFT adapter sets {key}={config[key]!r}; the bundle's LoRA cannot represent it")
    r, alpha = config.get("r"), config.get("lora_alpha")
    if not isinstance(r, int) or r <= 0 or not isinstance(alpha, (int, float)) or alpha <= 0:
        raise InteropError(f"PEFT adapter has r={r!r}, lora_alpha={alpha!r}; expected positive numbers")
    rank = int(lora_kind(manifest)["rank"])
    if r > rank:
        raise InteropError(
            f"PEFT adapter has rank r={r}, the bundle's LoRA rank is {rank}: a larger rank cannot be "
            f"represented (a smaller one is zero-padded)"
        )
    return alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r


def peft_to_native(
    state: dict[str, torch.Tensor], config: dict[str, Any], manifest: dict[str, Any]
) -> dict[str, torch.Tensor]:
    """(PEFT state dict, adapter_config.json) -> one native adapter: LoRA of the bundle's rank and alpha,
    or a prefix of the bundle's length."""
    if str(config.get("peft_type", "")).upper() == "PREFIX_TUNING":
        return peft_prefix_to_native(state, config, manifest)  # checks its config itself
    scaling = check_peft_config(config, manifest)
    kind = lora_kind(manifest)
    rank = int(kind["rank"])
    factor = scaling / (float(kind["alpha"]) / rank)  # folded into b
    r = int(config["r"])
    expected: dict[str, tuple[str, int, str, str]] = {}
    out: dict[str, torch.Tensor] = {}
    for spec in kind["tensors"]:
        site, proj, part = _split(spec["name"])
        out[spec["name"]] = torch.zeros(spec["shape"], dtype=torch.float32)
        for layer in range(spec["shape"][0]):
            expected[peft_key(site, layer, proj, part)] = (spec["name"], layer, part, proj)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise InteropError(
            f"PEFT adapter keys do not match the bundle's T5 (LoRA on q and v of every attention layer): "
            f"missing {missing[:4]}{' ...' if len(missing) > 4 else ''} ({len(missing)}), unexpected "
            f"{unexpected[:4]}{' ...' if len(unexpected) > 4 else ''} ({len(unexpected)})"
        )
    for key, (name, layer, part, _) in expected.items():
        t = state[key].detach().to(torch.float32)
        target = out[name][layer]  # a: [d_model, rank], b: [rank, inner]
        want = (r, target.shape[0]) if part == "a" else (target.shape[1], r)
        if tuple(t.shape) != want:
            raise InteropError(
                f"PEFT tensor {key} has shape {list(t.shape)}; with r={r} the bundle expects {list(want)}"
            )
        if not torch.isfinite(t).all():
            raise InteropError(f"PEFT tensor {key} holds non-finite values")
        if part == "a":
            target[:, :r] = t.T
        else:
            target[:r, :] = t.T if factor == 1.0 else t.T * factor
    return out


# ---- prefix tuning ----------------------------------------------------------------------------------
def prefix_kind(manifest: dict[str, Any]) -> dict[str, Any]:
    kind = manifest.get("adapters", {}).get("kinds", {}).get("prefix")
    if kind is None:
        raise InteropError(
            f"bundle {manifest.get('name')!r} has no prefix adapter kind (manifest adapters.kinds.prefix)"
        )
    if kind.get("attention", "gated") != "peft":
        raise InteropError(PREFIX_REFUSAL)
    return kind


def _prefix_dims(manifest: dict[str, Any]) -> tuple[int, int, int, int]:
    """(decoder layers L, heads H, positions P, d_kv) of the bundle's PEFT prefix."""
    kind, dims = prefix_kind(manifest), manifest["dims"]
    return dims["num_decoder_layers"], dims["num_heads"], int(kind["num_positions"]), dims["d_kv"]


def prefix_config(manifest: dict[str, Any], num_virtual_tokens: int) -> dict[str, Any]:
    """adapter_config.json of an exported prefix: ``num_layers`` 2L gives every decoder layer its own prefix."""
    layers, heads, _, d_kv = _prefix_dims(manifest)
    return {
        "peft_type": "PREFIX_TUNING",
        "task_type": TASK_TYPE,
        "base_model_name_or_path": manifest["name"],
        "num_virtual_tokens": num_virtual_tokens,
        "num_layers": 2 * layers,
        "token_dim": heads * d_kv,
        "num_attention_heads": heads,
        "num_transformer_submodules": 2,
        "encoder_hidden_size": heads * d_kv,
        "prefix_projection": False,
        "inference_mode": True,
        "modules_to_save": None,
    }


def native_prefix_to_peft(
    tensors: dict[str, torch.Tensor], manifest: dict[str, Any]
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """One native "peft" prefix (key, value ``[L, H, P, d_kv]``, mask ``[P]``) -> (PEFT state dict, config).
    Masked positions must come first (PEFT prefixes have no holes); they are left out."""
    layers, heads, positions, d_kv = _prefix_dims(manifest)
    _check_native(tensors, prefix_kind(manifest), "PEFT prefix")
    mask = tensors["prefix.decoder.self.mask"].detach().to(torch.float32)
    used = int(mask.sum().item())
    if used == 0 or not torch.equal(mask, torch.cat([torch.zeros(positions - used), torch.ones(used)])):
        raise InteropError(
            f"prefix mask {mask.tolist()} is not some zeros then at least one 1: PEFT prefixes have no masked "
            f"positions, so only masks that drop leading positions convert"
        )
    key = tensors["prefix.decoder.self.key"].detach().to(torch.float32)[:, :, positions - used :]
    value = tensors["prefix.decoder.self.value"].detach().to(torch.float32)[:, :, positions - used :]
    entries = torch.zeros(used, 4 * layers, heads, d_kv)  # N = 2L: entry 4l is layer l's key, 4l+1 its value
    for layer in range(layers):
        entries[:, 4 * layer] = key[layer].transpose(0, 1)  # (H, P', d) -> (P', H, d)
        entries[:, 4 * layer + 1] = value[layer].transpose(0, 1)
    return {PROMPT_EMBEDDINGS: entries.reshape(used, -1).contiguous()}, prefix_config(manifest, used)


def check_prefix_config(config: dict[str, Any], manifest: dict[str, Any]) -> None:
    layers, heads, positions, d_kv = _prefix_dims(manifest)
    if config.get("task_type") not in (TASK_TYPE, None):
        raise InteropError(f"PEFT adapter has task_type {config.get('task_type')!r}; expected {TASK_TYPE} (a T5)")
    if config.get("num_transformer_submodules", 2) != 2:
        raise InteropError(
            f"PEFT adapter has num_transformer_submodules {config['num_transformer_submodules']!r}; "
            f"a T5 (encoder-decoder) has 2"
        )
    expected = {"token_dim": heads * d_kv, "num_attention_heads": heads}
    for key, want in expected.items():
        if config.get(key) != want:
            raise InteropError(f"PEFT adapter has {key}={config.get(key)!r}; the bundle's T5 needs {want}")
    n, p = config.get("num_layers"), config.get("num_virtual_tokens")
    if not isinstance(n, int) or n < layers:
        raise InteropError(
            f"PEFT adapter has num_layers={n!r}; the bundle's T5 has {layers} decoder layers, so at least "
            f"{layers} are needed (peft would leave the other layers without a prefix)"
        )
    if not isinstance(p, int) or not 1 <= p <= positions:
        raise InteropError(
            f"PEFT adapter has num_virtual_tokens={p!r}; the bundle's prefixes hold 1 to {positions} "
            f"positions (adapters.kinds.prefix.num_positions)"
        )


def peft_prefix_to_native(
    state: dict[str, torch.Tensor], config: dict[str, Any], manifest: dict[str, Any]
) -> dict[str, torch.Tensor]:
    layers, heads, positions, d_kv = _prefix_dims(manifest)
    check_prefix_config(config, manifest)
    n, used = config["num_layers"], config["num_virtual_tokens"]
    if set(state) != {PROMPT_EMBEDDINGS}:
        raise InteropError(f"PEFT prefix adapter holds {sorted(state)}; expected exactly [{PROMPT_EMBEDDINGS!r}]")
    flat = state[PROMPT_EMBEDDINGS].detach().to(torch.float32)
    if tuple(flat.shape) != (used, 2 * n * heads * d_kv):
        raise InteropError(
            f"PEFT tensor {PROMPT_EMBEDDINGS} has shape {list(flat.shape)}; with num_virtual_tokens={used} "
            f"and num_layers={n} the bundle expects {[used, 2 * n * heads * d_kv]}"
        )
    if not torch.isfinite(flat).all():
        raise InteropError(f"PEFT tensor {PROMPT_EMBEDDINGS} holds non-finite values")
    entries = flat.view(used, 2 * n, heads, d_kv)
    key = torch.zeros(layers, heads, positions, d_kv)
    value = torch.zeros(layers, heads, positions, d_kv)
    for layer in range(layers):
        key[layer, :, positions - used :] = entries[:, (4 * layer) % (2 * n)].transpose(0, 1)
        value[layer, :, positions - used :] = entries[:, (4 * layer + 1) % (2 * n)].transpose(0, 1)
    mask = torch.cat([torch.zeros(positions - used), torch.ones(used)])
    return {"prefix.decoder.self.key": key, "prefix.decoder.self.value": value, "prefix.decoder.self.mask": mask}


# ---- files ------------------------------------------------------------------------------------------
def save_peft(
    out_dir: Path, state: dict[str, torch.Tensor], config: dict[str, Any], metadata: dict[str, str] | None = None
) -> None:
    """Write a PEFT adapter folder (what ``PeftModel.from_pretrained`` reads)."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out_dir / ADAPTER_WEIGHTS), metadata={"format": "pt", **(metadata or {})})
    (out_dir / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2) + "\n")


def load_peft(adapter_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors.torch import load_file

    adapter_dir = Path(adapter_dir)
    config_path = adapter_dir / ADAPTER_CONFIG
    if not config_path.exists():
        raise InteropError(f"{config_path}: missing (expected a PEFT save_pretrained folder)")
    config = json.loads(config_path.read_text())
    if (adapter_dir / ADAPTER_WEIGHTS).exists():
        state = load_file(str(adapter_dir / ADAPTER_WEIGHTS))
    elif (adapter_dir / "adapter_model.bin").exists():
        state = torch.load(adapter_dir / "adapter_model.bin", map_location="cpu", weights_only=True)
    else:
        raise InteropError(f"{adapter_dir}: no {ADAPTER_WEIGHTS} (or adapter_model.bin)")
    return state, config


def read_safetensors_bytes(data: bytes) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A safetensors file in memory -> (tensors, ``__metadata__``)."""
    from safetensors.torch import load

    if len(data) < 8:
        raise InteropError("not a safetensors file (shorter than its header length)")
    (size,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8 : 8 + size])
    except ValueError as e:
        raise InteropError(f"not a safetensors file: {e}") from None
    return load(data), dict(header.get("__metadata__") or {})


def native_to_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """A native adapter as the safetensors body of POST /v1/adapters/import."""
    from safetensors.torch import save

    return save({k: v.detach().to(torch.float32).contiguous() for k, v in tensors.items()}, metadata=metadata)
