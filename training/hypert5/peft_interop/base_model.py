"""The bundle's frozen downstream T5 as a transformers ``T5ForConditionalGeneration``.

The config comes from the manifest (``dims`` and ``special_ids``, as ``T5Dims.to_hf``), the weights
from ``downstream.safetensors`` (models/README.md), checked against the manifest's sha256 so that a
PEFT adapter is never tuned on another model's weights.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import torch

from ..bundle import DOWNSTREAM_FILE, dims_from_manifest, sha256_file
from .convert import InteropError

# Aliases of `shared.weight` that save_pretrained (and the exporter) leave out.
_TIED = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")


@contextlib.contextmanager
def _quiet_transformers():
    from transformers.utils import logging as hf_logging

    verbosity, bar = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar:
            hf_logging.enable_progress_bar()


def read_manifest(bundle_dir: Path) -> dict[str, Any]:
    path = Path(bundle_dir) / "manifest.json"
    if not path.exists():
        raise InteropError(f"{path}: missing (--bundle must be a bundle folder, see models/README.md)")
    return json.loads(path.read_text())


def load_base_model(bundle_dir: Path, verify: bool = True):
    """``T5ForConditionalGeneration`` in eval mode, F32, with the bundle's downstream weights."""
    from safetensors.torch import load_file
    from transformers import GenerationConfig, T5ForConditionalGeneration

    bundle_dir = Path(bundle_dir)
    manifest = read_manifest(bundle_dir)
    path = bundle_dir / DOWNSTREAM_FILE
    if DOWNSTREAM_FILE not in manifest["files"] or not path.exists():
        raise InteropError(
            f"{path}: missing. Bundles exported before PEFT interop lack the downstream T5; "
            f"re-export the bundle (python -m hypert5.export) to get it"
        )
    if verify and sha256_file(path) != manifest["files"][DOWNSTREAM_FILE]:
        raise InteropError(f"{path}: sha256 does not match manifest.files[{DOWNSTREAM_FILE!r}]")
    dims = dims_from_manifest(manifest)
    config = dims.to_hf()
    config.name_or_path = manifest["name"]
    state = load_file(str(path))
    # from_pretrained (not load_state_dict): transformers 5 always declares lm_head tied to shared and
    # unties it only while loading a checkpoint that holds both with different values (T5 v1.1, Flan).
    with _quiet_transformers():  # no progress bar, no "will NOT tie" warning for an untied lm_head
        model, info = T5ForConditionalGeneration.from_pretrained(
            None, config=config, state_dict=state, dtype=torch.float32, output_loading_info=True
        )
    allowed = set(_TIED) | ({"lm_head.weight"} if dims.tie_word_embeddings else set())
    missing = sorted(set(info["missing_keys"]) - allowed)
    unexpected = sorted(info["unexpected_keys"])
    if missing or unexpected or info.get("mismatched_keys"):
        raise InteropError(
            f"{path}: does not match manifest.dims: missing {missing[:5]}, unexpected {unexpected[:5]}, "
            f"mismatched {list(info.get('mismatched_keys') or [])[:5]}"
        )
    own = model.state_dict()
    for name, tensor in state.items():  # every weight arrived, none was overwritten by a tie
        if not torch.equal(own[name], tensor):
            raise InteropError(f"{path}: {name} did not load as stored (weight tying in this transformers version?)")
    for alias in _TIED + (("lm_head.weight",) if dims.tie_word_embeddings else ()):
        if not torch.equal(own[alias], model.shared.weight):
            raise InteropError(f"{path}: {alias} is not tied to shared.weight in this transformers version")
    model.generation_config = GenerationConfig(
        decoder_start_token_id=dims.decoder_start_token_id,
        eos_token_id=dims.eos_token_id,
        pad_token_id=dims.pad_token_id,
        do_sample=False,
        num_beams=1,
        max_new_tokens=manifest["generation"]["max_new_tokens"],
    )
    return model.float().eval()


@torch.no_grad()
def greedy_ids(model, manifest: dict[str, Any], input_ids: list[int], max_new_tokens: int) -> list[int]:
    """Greedy decode of one encoder input (ids with eos appended) as the service does at temperature 0:
    start from ``decoder_start``, stop at ``eos`` (not returned) or after ``max_new_tokens``. ``model`` is
    the base model or a ``PeftModel`` on it, called as such every step (teacher-forced, no cache) so that
    PEFT adds a prefix-tuning prefix the way it does in training."""
    special = manifest["special_ids"]
    ids = torch.tensor([input_ids])
    mask = torch.ones_like(ids)
    decoded, out = [special["decoder_start"]], []
    for _ in range(max_new_tokens):
        logits = model(input_ids=ids, attention_mask=mask, decoder_input_ids=torch.tensor([decoded])).logits[0, -1]
        token = int(torch.argmax(logits))
        if token == special["eos"]:
            break
        out.append(token)
        decoded.append(token)
    return out
