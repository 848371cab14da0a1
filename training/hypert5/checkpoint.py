"""Checkpoint folders: what training writes and the exporter reads.

```
<dir>/
  hypert5.json             {"dims", "lora", "prefix", "head_hidden", "tokenizer", "hyper_input",
                            "generation", "default_kind", "name", "provenance"}
  downstream.safetensors   the frozen T5, transformers' T5ForConditionalGeneration parameter names
  hyper_lora.safetensors   HyperT5-LoRA (optional: absent = initialized from the downstream)
  hyper_prefix.safetensors HyperT5-Prefix (optional, likewise)
```
A transformers ``save_pretrained`` folder of a T5 (config.json + model.safetensors) is accepted as
well: its T5 becomes the downstream and both hypermodels are initialized from it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .config import HyperConfig, LoraSpec, PrefixSpec, T5Dims
from .examples import HyperInputFormat
from .hypermodel import HyperT5
from .t5 import T5, load_hf_state_dict


@dataclass
class BundleSettings:
    """Everything about a model that is not a weight."""

    dims: T5Dims
    lora: LoraSpec = field(default_factory=LoraSpec)
    prefix: PrefixSpec = field(default_factory=PrefixSpec)
    head_hidden: int = 128
    tokenizer: dict[str, Any] = field(default_factory=lambda: {"type": "byte", "offset": 3})
    hyper_input: HyperInputFormat = field(default_factory=HyperInputFormat)
    encoder_max_tokens: int = 512
    generation: dict[str, int] = field(default_factory=lambda: {"max_new_tokens": 64, "num_beams": 1})
    default_kind: str = "prefix"
    name: str = "hypert5"
    provenance: dict[str, Any] = field(default_factory=dict)

    def hyper_config(self, kind: str) -> HyperConfig:
        return HyperConfig(kind=kind, head_hidden=self.head_hidden, lora=self.lora, prefix=self.prefix)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "BundleSettings":
        data = dict(data)
        data["dims"] = T5Dims(**data["dims"])
        data["lora"] = LoraSpec(**data.get("lora", {}))
        data["prefix"] = PrefixSpec(**data.get("prefix", {}))
        data["hyper_input"] = HyperInputFormat(**data.get("hyper_input", {}))
        return cls(**data)


@dataclass
class Models:
    settings: BundleSettings
    downstream: T5
    hyper: dict[str, HyperT5]  # by kind


def save(dirpath: Path, models: Models) -> None:
    dirpath.mkdir(parents=True, exist_ok=True)
    (dirpath / "hypert5.json").write_text(json.dumps(models.settings.to_json(), indent=2))
    save_file(models.downstream.state_dict(), str(dirpath / "downstream.safetensors"))
    for kind, hyper in models.hyper.items():
        save_file(hyper.state_dict(), str(dirpath / f"hyper_{kind}.safetensors"))


def load(dirpath: Path) -> Models:
    if (dirpath / "hypert5.json").exists():
        settings = BundleSettings.from_json(json.loads((dirpath / "hypert5.json").read_text()))
        state = load_file(str(dirpath / "downstream.safetensors"))
    elif (dirpath / "config.json").exists():
        state = load_hf_weights(dirpath)
        config = json.loads((dirpath / "config.json").read_text())
        settings = BundleSettings(
            dims=hf_dims(dirpath, config, state),
            name=dirpath.name,
            tokenizer={"type": "tokenizers", "file": "tokenizer.json"},
        )
        if settings.dims.vocab_size <= 384 and not (dirpath / "tokenizer.json").exists():
            settings.tokenizer = {"type": "byte", "offset": 3}  # ByT5
    else:
        raise FileNotFoundError(f"{dirpath}: neither hypert5.json nor a transformers config.json")
    downstream = T5(settings.dims, lora_scale=settings.lora.scaling)
    load_hf_state_dict(downstream, state)
    downstream.eval()
    hyper = {}
    for kind in ("lora", "prefix"):
        path = dirpath / f"hyper_{kind}.safetensors"
        model = HyperT5.from_downstream(downstream, settings.hyper_config(kind))
        if path.exists():
            model.load_state_dict(load_file(str(path)))
        hyper[kind] = model.eval()
    return Models(settings, downstream, hyper)


def load_hf_weights(dirpath: Path) -> dict[str, torch.Tensor]:
    files = sorted(dirpath.glob("*.safetensors"))
    if files:
        state: dict[str, torch.Tensor] = {}
        for f in files:
            state.update(load_file(str(f)))
        return state
    binary = dirpath / "pytorch_model.bin"
    if binary.exists():
        return torch.load(binary, map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"{dirpath}: no *.safetensors or pytorch_model.bin weights")


def hf_dims(folder: Path, config: dict, state: dict) -> T5Dims:
    """T5Dims of the checkpoint, its output layer as transformers >= 5 runs it.

    transformers 5 always reports tie_word_embeddings=True and keeps what the checkpoint meant in
    scale_decoder_outputs: T5 v1.0 (tied, outputs scaled by d_model**-0.5) vs v1.1 / Flan / ByT5
    (a separate lm_head, or for models saved by transformers 5 the shared embedding, unscaled).
    T5Dims' tie_word_embeddings means "shared head and scaled", so it is read from config.json.
    An untied checkpoint saved without ``lm_head.weight`` gets the shared embedding added to ``state``.
    """
    from transformers import T5Config

    scaled = bool(config.get("scale_decoder_outputs", config.get("tie_word_embeddings", True)))
    if not scaled and "lm_head.weight" not in state:
        state["lm_head.weight"] = state["shared.weight"]
    return dataclasses.replace(T5Dims.from_hf(T5Config.from_pretrained(str(folder))), tie_word_embeddings=scaled)
