"""Write and validate bundles (models/README.md is the format; this file is its Python side)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from .adapters import lora_specs, prefix_specs
from .checkpoint import Models
from .config import T5Dims, to_dict

FORMAT, FORMAT_VERSION = "hypert5-bundle", 1
GRAPH_FILES = {"encoder": "encoder.onnx", "decoder": "decoder.onnx",
               "hyper_lora": "hyper_lora.onnx", "hyper_prefix": "hyper_prefix.onnx"}
# The frozen downstream T5 as transformers' T5ForConditionalGeneration weights (F32, HF parameter names,
# tied aliases left out as save_pretrained does). For PEFT interop (hypert5.peft_interop); the service
# verifies its sha256 like every file but never reads it.
DOWNSTREAM_FILE = "downstream.safetensors"


class BundleError(ValueError):
    """A bundle that does not match the format; the message names the file and the field."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_downstream(models: Models, path: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().to(torch.float32).contiguous() for k, v in models.downstream.state_dict().items()}
    save_file(state, str(path), metadata={"format": "pt"})  # one entry: the header order of several varies
    path.chmod(0o644)  # safetensors creates it private; it is a bundle file like the others


def fingerprint(files: dict[str, str]) -> str:
    lines = "".join(f"{name}:{files[name]}\n" for name in sorted(files))
    return hashlib.sha256(lines.encode()).hexdigest()[:16]


def _io(entries: list[tuple[str, str, list]]) -> list[dict[str, Any]]:
    return [{"name": n, "dtype": t, "shape": s} for n, t, s in entries]


def build_manifest(models: Models, graphs: dict[str, Any], bundle_dir: Path) -> dict[str, Any]:
    s = models.settings
    files = {p.name: sha256_file(p) for p in sorted(bundle_dir.iterdir()) if p.name != "manifest.json"}
    d = s.dims
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": s.name,
        "fingerprint": fingerprint(files),
        "files": files,
        "dims": {k: v for k, v in to_dict(d).items() if k not in ("pad_token_id", "eos_token_id", "decoder_start_token_id")},
        "tokenizer": s.tokenizer,
        "special_ids": {"pad": d.pad_token_id, "eos": d.eos_token_id, "unk": 2, "decoder_start": d.decoder_start_token_id},
        "encoder_input": {"append_eos": True, "max_tokens": s.encoder_max_tokens},
        "hyper_input": to_dict(s.hyper_input),
        "generation": s.generation,
        "adapters": {
            "default_kind": s.default_kind,
            "kinds": {
                "lora": {"rank": s.lora.rank, "alpha": s.lora.alpha, "targets": ["q", "v"],
                         "tensors": [{"name": t.name, "dtype": "float32", "shape": list(t.shape)} for t in lora_specs(d, s.lora)]},
                "prefix": {"num_positions": s.prefix.num_positions, "attention": s.prefix.attention,
                           "tensors": [{"name": t.name, "dtype": "float32", "shape": list(t.shape)} for t in prefix_specs(d, s.prefix)]},
            },
        },
        "graphs": {name: {"file": GRAPH_FILES[name], "inputs": _io(g.inputs), "outputs": _io(g.outputs)}
                   for name, g in graphs.items()},
        "provenance": s.provenance,
    }


def dims_from_manifest(manifest: dict[str, Any]) -> T5Dims:
    """The inverse of ``build_manifest``'s dims and special_ids."""
    special = manifest["special_ids"]
    return T5Dims(**manifest["dims"], pad_token_id=special["pad"], eos_token_id=special["eos"],
                  decoder_start_token_id=special["decoder_start"])


_ORT_DTYPES = {"tensor(float)": "float32", "tensor(int64)": "int64"}


def validate(bundle_dir: Path) -> dict[str, Any]:
    """Check a bundle as the service does at boot; returns the manifest or raises BundleError."""
    import onnxruntime as ort

    path = bundle_dir / "manifest.json"
    if not path.exists():
        raise BundleError(f"{path}: missing")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{path}: format/format_version must be {FORMAT!r}/{FORMAT_VERSION}, got "
                          f"{manifest.get('format')!r}/{manifest.get('format_version')!r}")
    for name, digest in manifest["files"].items():
        f = bundle_dir / name
        if not f.exists():
            raise BundleError(f"{f}: listed in manifest.files but missing")
        if sha256_file(f) != digest:
            raise BundleError(f"{f}: sha256 does not match manifest.files[{name!r}]")
    if fingerprint(manifest["files"]) != manifest["fingerprint"]:
        raise BundleError(f"{path}: fingerprint does not match manifest.files")
    kinds = manifest["adapters"]["kinds"]
    adapter_shapes = {t["name"]: ["batch", *t["shape"]] for k in kinds.values() for t in k["tensors"]}
    for graph_name, graph in manifest["graphs"].items():
        f = bundle_dir / graph["file"]
        session = ort.InferenceSession(str(f), providers=["CPUExecutionProvider"])
        for side, declared, actual in (("inputs", graph["inputs"], session.get_inputs()),
                                       ("outputs", graph["outputs"], session.get_outputs())):
            got = [{"name": a.name, "dtype": _ORT_DTYPES.get(a.type, a.type), "shape": list(a.shape)} for a in actual]
            if got != declared:
                raise BundleError(f"{f}: graphs.{graph_name}.{side} in the manifest do not match the ONNX graph: "
                                  f"declared {[d['name'] for d in declared]}, graph has {[g['name'] for g in got]} "
                                  f"(or dtypes/shapes differ)")
            for io in declared:
                if io["name"] in adapter_shapes and io["shape"] != adapter_shapes[io["name"]]:
                    raise BundleError(f"{f}: {io['name']} has shape {io['shape']}, adapters.kinds says "
                                      f"{adapter_shapes[io['name']]}")
    tok = manifest["tokenizer"]
    if tok["type"] == "tokenizers" and not (bundle_dir / tok["file"]).exists():
        raise BundleError(f"{bundle_dir / tok['file']}: required by manifest.tokenizer but missing")
    return manifest
