"""Adapters of the service <-> HF PEFT, from the command line (run from ``training/``).

    python -m hypert5.peft_interop export --url URL --adapter ID --bundle DIR --out PEFT_DIR [--api-key K]
    python -m hypert5.peft_interop tune --bundle DIR --adapter PEFT_DIR --examples FILE.jsonl --steps N --lr X --out DIR
    python -m hypert5.peft_interop import --url URL --adapter PEFT_DIR --bundle DIR [--api-key K]

``export`` fetches an adapter's parameters (GET /v1/adapters/{id}/parameters) and writes a PEFT folder
(adapter_config.json + adapter_model.safetensors) for the bundle's T5 (``downstream.safetensors``; see
``base_model.load_base_model``). ``tune`` fine-tunes such a folder with peft on examples (JSON lines
``{"input": ..., "output": ...}``), starting from the hypermodel's adapter. ``import`` converts a PEFT
folder back and uploads it (POST /v1/adapters/import); it prints the new adapter id on stdout.
``--bundle`` is the bundle the service serves (its fingerprint is checked). LoRA adapters always convert
(PEFT ``LORA`` on q and v); prefix adapters convert (PEFT ``PREFIX_TUNING``) when the bundle's prefixes
are PEFT's, manifest ``adapters.kinds.prefix.attention`` "peft", and are refused for gated prefixes
(see ``convert.PREFIX_REFUSAL``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from .convert import (
    InteropError,
    check_peft_config,
    load_peft,
    lora_kind,
    native_to_bytes,
    native_to_peft,
    peft_to_native,
    prefix_kind,
    read_safetensors_bytes,
    save_peft,
)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr)


# ---- HTTP ---------------------------------------------------------------------------------------------
def request(
    url: str,
    method: str,
    path: str,
    api_key: str | None = None,
    body: bytes | None = None,
    content_type: str | None = None,
    timeout: float = 60.0,
) -> bytes:
    headers = {"Accept": "application/json, application/octet-stream"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    if content_type:
        headers["Content-Type"] = content_type
    req = urllib.request.Request(url.rstrip("/") + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.read()
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", errors="replace")
        try:
            err = json.loads(detail).get("error", {})
            detail = f"{err.get('code', '')} {err.get('message', detail)}".strip()
        except (ValueError, AttributeError):
            pass
        raise InteropError(f"{method} {path}: the service answered {e.code}: {detail}") from None
    except urllib.error.URLError as e:
        raise InteropError(f"{method} {url}{path}: cannot reach the service ({e.reason})") from None


def _json(data: bytes) -> Any:
    return json.loads(data.decode("utf-8"))


def _check_service_model(args: argparse.Namespace, manifest: dict[str, Any]) -> None:
    """The service must serve the bundle given with --bundle (same fingerprint)."""
    models = _json(request(args.url, "GET", "/v1/models", args.api_key))
    base = next((m for m in models.get("data", []) if "summary" in m), None)
    fp = base and base["summary"].get("fingerprint")
    if fp and fp != manifest["fingerprint"]:
        raise InteropError(
            f"the service serves model {base['id']!r} (fingerprint {fp}), but --bundle is "
            f"{manifest['name']!r} (fingerprint {manifest['fingerprint']}): pass the bundle the service serves"
        )


# ---- commands -----------------------------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    from .base_model import read_manifest

    manifest = read_manifest(args.bundle)
    adapter_id = urllib.parse.quote(args.adapter, safe="")
    meta = _json(request(args.url, "GET", f"/v1/adapters/{adapter_id}", args.api_key))
    kind = meta.get("kind")
    if kind == "prefix":
        prefix_kind(manifest)  # refuses gated prefixes before anything is fetched
    elif kind == "lora":
        lora_kind(manifest)
    else:
        raise InteropError(f"adapter {args.adapter} has kind {kind!r}; only lora and prefix adapters convert")
    tensors, header = read_safetensors_bytes(
        request(args.url, "GET", f"/v1/adapters/{adapter_id}/parameters", args.api_key)
    )
    fp = header.get("fingerprint")
    if fp and fp != manifest["fingerprint"]:
        raise InteropError(
            f"adapter {args.adapter} belongs to the model with fingerprint {fp}, but --bundle "
            f"{args.bundle} has fingerprint {manifest['fingerprint']}: pass the bundle the service serves"
        )
    state, config = native_to_peft(tensors, manifest)
    save_peft(
        args.out,
        state,
        config,
        metadata={"hypert5_adapter": args.adapter, "hypert5_fingerprint": manifest["fingerprint"]},
    )
    what = (
        f"PEFT LoRA r={config['r']} lora_alpha={config['lora_alpha']} on q,v ({len(state)} tensors)"
        if kind == "lora"
        else f"PEFT prefix tuning, {config['num_virtual_tokens']} virtual tokens, num_layers={config['num_layers']}"
    )
    _log(f"wrote {args.out}: {what} for the T5 in {Path(args.bundle) / 'downstream.safetensors'}")
    return 0


def read_examples(path: Path) -> list[tuple[str, str]]:
    examples = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            examples.append((str(row["input"]), str(row["output"])))
        except (ValueError, KeyError, TypeError):
            raise InteropError(f'{path}:{number}: expected a JSON object with "input" and "output"') from None
    if not examples:
        raise InteropError(f"{path}: no examples")
    return examples


def encode_pairs(
    examples: list[tuple[str, str]], manifest: dict[str, Any], tokenizer
) -> list[tuple[list[int], list[int]]]:
    """Encoder ids as the service builds them (tokens + eos, at most encoder_input.max_tokens) and
    labels = output tokens + eos (generation stops at eos)."""
    eos, limit = manifest["special_ids"]["eos"], manifest["encoder_input"]["max_tokens"]
    append = manifest["encoder_input"]["append_eos"]
    pairs = []
    for source, target in examples:
        ids = tokenizer.encode(source)[: limit - 1 if append else limit] + ([eos] if append else [])
        labels = tokenizer.encode(target)[: limit - 1] + [eos]
        pairs.append((ids, labels))
    return pairs


def cmd_tune(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local; never reach for the Hub
    import torch
    from tqdm import tqdm

    from ..tokenizer import from_spec
    from .base_model import load_base_model, read_manifest

    manifest = read_manifest(args.bundle)
    _, config = load_peft(args.adapter)
    check_peft_config(config, manifest)  # refuse now what `import` would refuse later
    pairs = encode_pairs(read_examples(args.examples), manifest, from_spec(manifest["tokenizer"], Path(args.bundle)))
    pad = manifest["special_ids"]["pad"]
    torch.manual_seed(args.seed)
    model = trainable_peft_model(load_base_model(args.bundle), Path(args.adapter))
    model.peft_config["default"].base_model_name_or_path = manifest["name"]
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(args.seed)
    order: list[int] = []
    bar = tqdm(range(args.steps), desc="tune", unit="step", file=sys.stderr, disable=args.quiet)
    for _ in bar:
        while len(order) < args.batch_size:  # epochs of shuffled examples
            order += torch.randperm(len(pairs), generator=generator).tolist()
        batch, order = [pairs[i] for i in order[: args.batch_size]], order[args.batch_size :]
        src = max(len(s) for s, _ in batch)
        tgt = max(len(t) for _, t in batch)
        input_ids = torch.tensor([s + [pad] * (src - len(s)) for s, _ in batch])
        attention_mask = torch.tensor([[1] * len(s) + [0] * (src - len(s)) for s, _ in batch])
        labels = torch.tensor([t + [-100] * (tgt - len(t)) for _, t in batch])
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        bar.set_postfix(loss=f"{loss.item():.4f}")
    model.eval()
    model.save_pretrained(str(args.out), save_embedding_layers=False)  # q/v only; no Hub lookup of the base
    _log(
        f"wrote {args.out} after {args.steps} steps (last loss {loss.item():.4f})"
        if args.steps
        else f"wrote {args.out}"
    )
    return 0


def trainable_peft_model(base, adapter_dir: Path):
    """The PEFT adapter in ``adapter_dir`` on ``base``, its parameters trainable.

    peft refuses ``is_trainable`` for prompt-learning adapters loaded from a folder, so a prefix-tuning
    adapter is rebuilt: a fresh PeftModel of the same config whose embedding receives the saved
    ``prompt_embeddings``. Those are the effective prefix values even when the adapter was trained with
    ``prefix_projection``, so the rebuilt one tunes them directly (``prefix_projection`` off)."""
    from peft import PeftConfig, PeftModel, get_peft_model, set_peft_model_state_dict

    config = PeftConfig.from_pretrained(str(adapter_dir))
    if config.peft_type != "PREFIX_TUNING":  # PeftType is a str enum
        return PeftModel.from_pretrained(base, str(adapter_dir), is_trainable=True)
    config.inference_mode, config.prefix_projection = False, False
    model = get_peft_model(base, config)
    state, _ = load_peft(adapter_dir)
    set_peft_model_state_dict(model, state)
    return model


def cmd_import(args: argparse.Namespace) -> int:
    from .base_model import read_manifest

    manifest = read_manifest(args.bundle)
    state, config = load_peft(args.adapter)
    tensors = peft_to_native(state, config, manifest)
    _check_service_model(args, manifest)
    if str(config["peft_type"]).upper() == "PREFIX_TUNING":
        kind, metadata = "prefix", {"peft_num_virtual_tokens": str(config["num_virtual_tokens"])}
    else:
        kind, metadata = "lora", {"peft_r": str(config["r"]), "peft_lora_alpha": str(config["lora_alpha"])}
    body = native_to_bytes(tensors, metadata={"source": "peft", **metadata})
    answer = _json(
        request(args.url, "POST", f"/v1/adapters/import?kind={kind}", args.api_key, body, "application/octet-stream")
    )
    _log(f"imported {args.adapter} as {answer['id']} ({'new' if not answer.get('cached') else 'already stored'})")
    print(answer["id"])
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m hypert5.peft_interop", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)

    def service(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--url", required=True, help="the service, e.g. http://127.0.0.1:8000")
        sp.add_argument(
            "--api-key", default=os.environ.get("HYPERT5_API_KEY"), help="API key (default: $HYPERT5_API_KEY)"
        )
        sp.add_argument("--bundle", type=Path, required=True, help="the bundle folder the service serves")

    e = sub.add_parser("export", help="service adapter -> PEFT folder")
    service(e)
    e.add_argument("--adapter", required=True, help="adapter id (ad-...)")
    e.add_argument("--out", type=Path, required=True, help="PEFT folder to write")
    e.set_defaults(func=cmd_export)

    t = sub.add_parser("tune", help="fine-tune a PEFT folder with peft on the bundle's T5")
    t.add_argument("--bundle", type=Path, required=True)
    t.add_argument("--adapter", type=Path, required=True, help="PEFT folder to start from")
    t.add_argument("--examples", type=Path, required=True, help='JSON lines {"input": ..., "output": ...}')
    t.add_argument("--steps", type=int, required=True)
    t.add_argument("--lr", type=float, required=True)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", type=Path, required=True, help="PEFT folder to write (save_pretrained)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_tune)

    i = sub.add_parser("import", help="PEFT folder -> new service adapter (prints its id)")
    service(i)
    i.add_argument(
        "--adapter", type=Path, required=True, help="PEFT folder (adapter_config.json + adapter_model.safetensors)"
    )
    i.set_defaults(func=cmd_import)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "steps", 1) < 0 or getattr(args, "batch_size", 1) < 1:
        parser().error("--steps must be >= 0 and --batch-size >= 1")
    try:
        return args.func(args)
    except InteropError as e:
        _log(f"error: {e}")
        return 1
