"""Make a run folder from a local transformers T5 checkpoint (T5 v1.1 LM-adapted, Flan-T5, ByT5, mT5),
in place of stage 0: its T5 becomes the frozen downstream and both hypermodels start from it.

    python -m hypert5.train.init_run --checkpoint ~/models/flan-t5-base --run runs/flan-base \\
        [--name NAME] [--lora-rank 8] [--prefix-positions 16] [--hyper-max-tokens N] ...

Writes <run>/hypert5.json (dims from config.json, the tokenizer, the hypermodel input format and
limits, the adapter shapes), <run>/downstream.safetensors (transformers' parameter names) and
<run>/tokenizer.json when the model has a SentencePiece vocabulary (taken from the checkpoint's
tokenizer.json, or converted from its spiece.model). Every later stage then takes the run folder:
hyperpretrain (``--corpus``), finetune (``--data``), ``python -m hypert5.evaluation --checkpoint``
and ``python -m hypert5.export --checkpoint``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from .. import checkpoint
from ..checkpoint import BundleSettings
from ..config import LoraSpec, PrefixSpec
from ..examples import HyperInputFormat
from ..t5 import T5, load_hf_state_dict
from .settings import save_module, write_settings

T5_MODEL_TYPES = ("t5", "mt5")  # same architecture; umt5 (per-layer position biases) is not supported
TOKENIZER_FILE = "tokenizer.json"
# Default (hypermodel input, downstream input, new tokens) limits; bytes carry less text per token.
LIMITS = {"byte": (2048, 1024, 256), "tokenizers": (1024, 512, 128)}
SPECIAL_TOKENS = {0: "<pad>", 1: "</s>"}  # T5's ids, assumed by training (text.py) and the service


class NotAT5Checkpoint(ValueError):
    """The folder cannot become a run; the message names the folder and what is wrong."""


def check_t5_folder(folder: Path) -> dict:
    """config.json of a transformers T5 folder, or NotAT5Checkpoint saying why it is not one."""
    if not folder.is_dir():
        raise NotAT5Checkpoint(f"{folder}: not a folder (give a transformers save_pretrained folder of a T5)")
    config_path = folder / "config.json"
    if not config_path.exists():
        raise NotAT5Checkpoint(f"{folder}: no config.json, so not a transformers checkpoint folder")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as e:
        raise NotAT5Checkpoint(f"{config_path}: not valid JSON ({e})") from e
    model_type = config.get("model_type")
    if model_type not in T5_MODEL_TYPES:
        raise NotAT5Checkpoint(
            f"{config_path}: model_type={model_type!r}, expected one of {T5_MODEL_TYPES} "
            f"(HyperT5 needs an encoder-decoder T5)"
        )
    if not any(folder.glob("*.safetensors")) and not (folder / "pytorch_model.bin").exists():
        raise NotAT5Checkpoint(f"{folder}: config.json but no weights (*.safetensors or pytorch_model.bin)")
    for name, want in (("pad_token_id", 0), ("eos_token_id", 1), ("decoder_start_token_id", 0)):
        if config.get(name, want) != want:
            raise NotAT5Checkpoint(f"{config_path}: {name}={config.get(name)!r}, HyperT5 needs {want} as in T5")
    return config


def tokenizer_spec(folder: Path, run: Path, vocab_size: int) -> dict:
    """The run's tokenizer: a copy of tokenizer.json (converted from spiece.model if needed), or bytes."""
    source = folder / TOKENIZER_FILE
    if source.exists():
        shutil.copyfile(source, run / TOKENIZER_FILE)
    elif vocab_size <= 384:
        return {"type": "byte", "offset": 3}  # ByT5: 3 specials, 256 bytes, extra ids above
    elif (folder / "spiece.model").exists():
        _convert_spiece(folder, run / TOKENIZER_FILE)
    else:
        raise NotAT5Checkpoint(f"{folder}: vocab_size={vocab_size} but neither tokenizer.json nor spiece.model")
    try:
        _check_tokenizer(run / TOKENIZER_FILE, vocab_size, source if source.exists() else folder / "spiece.model")
    except NotAT5Checkpoint:
        (run / TOKENIZER_FILE).unlink()
        raise
    return {"type": "tokenizers", "file": TOKENIZER_FILE}


def _convert_spiece(folder: Path, out: Path) -> None:
    """tokenizer.json from spiece.model the way transformers builds a T5 tokenizer (SentencePiece's
    pieces, then 100 sentinel ids), reading the model with protobuf so the sentencepiece package is
    not needed. T5 v1.1 LM-adapted checkpoints ship spiece.model only."""
    try:
        from tokenizers import AddedToken
        from transformers.convert_slow_tokenizer import SpmConverter, import_protobuf

        proto = import_protobuf().ModelProto()
        proto.ParseFromString((folder / "spiece.model").read_bytes())
        sentinels = [f"<extra_id_{i}>" for i in range(99, -1, -1)]
        vocab = [(p.piece, p.score) for p in proto.pieces] + [(s, 0.0) for s in sentinels]
        tok = SpmConverter.build_tokenizer_from_spm_proto(proto, vocab)
        controls = [p.piece for p in proto.pieces if p.type in (2, 3)]  # unknown, control: <unk>, <pad>, </s>
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in controls + sentinels])
    except Exception as e:  # version-dependent internals: say what to do instead
        raise NotAT5Checkpoint(
            f"{folder / 'spiece.model'}: could not convert to tokenizer.json ({e!r}); save one "
            f"with transformers (AutoTokenizer.from_pretrained(...).save_pretrained(...))"
        ) from e
    tok.save(str(out))


def _check_tokenizer(path: Path, vocab_size: int, origin: Path) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    for token_id, token in SPECIAL_TOKENS.items():
        if tok.id_to_token(token_id) != token:
            raise NotAT5Checkpoint(f"{origin}: id {token_id} is {tok.id_to_token(token_id)!r}, T5 needs {token!r}")
    if tok.get_vocab_size() > vocab_size:
        raise NotAT5Checkpoint(f"{origin}: {tok.get_vocab_size()} tokens but the model's vocab_size is {vocab_size}")


def init_run(
    folder: Path,
    run: Path,
    *,
    name: str | None = None,
    lora_rank: int = 8,
    lora_alpha: float | None = None,
    prefix_positions: int = 16,
    prefix_attention: str = "peft",
    head_hidden: int = 128,
    default_kind: str = "prefix",
    hyper_max_tokens: int | None = None,
    encoder_max_tokens: int | None = None,
    max_new_tokens: int | None = None,
    max_examples: int = 16,
) -> BundleSettings:
    """Write the run folder; limits left None take the tokenizer's defaults (LIMITS)."""
    config = check_t5_folder(folder)
    if (run / "hypert5.json").exists():
        raise FileExistsError(f"{run}: already a run (hypert5.json); choose another --run folder")
    state = checkpoint.load_hf_weights(folder)
    dims = checkpoint.hf_dims(folder, config, state)
    downstream = T5(dims)
    load_hf_state_dict(downstream, state)  # checks every tensor against config.json
    run.mkdir(parents=True, exist_ok=True)
    tokenizer = tokenizer_spec(folder, run, dims.vocab_size)
    hyper_max, encoder_max, new_max = LIMITS[tokenizer["type"]]
    settings = BundleSettings(
        dims=dims,
        lora=LoraSpec(rank=lora_rank, alpha=float(lora_alpha if lora_alpha is not None else 2 * lora_rank)),
        prefix=PrefixSpec(num_positions=prefix_positions, attention=prefix_attention),
        head_hidden=head_hidden,
        tokenizer=tokenizer,
        hyper_input=HyperInputFormat(max_tokens=hyper_max_tokens or hyper_max, max_examples=max_examples),
        encoder_max_tokens=encoder_max_tokens or encoder_max,
        generation={"max_new_tokens": max_new_tokens or new_max, "num_beams": 1},
        default_kind=default_kind,
        name=name or f"hypert5-{folder.resolve().name}",
        provenance={
            "initialized_from": {
                "checkpoint": str(folder.resolve()),
                "model_type": config["model_type"],
                "name_or_path": config.get("_name_or_path"),
            }
        },
    )
    save_module(downstream, run / "downstream.safetensors")
    write_settings(run, settings)
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True, help="transformers save_pretrained T5 folder")
    parser.add_argument("--run", type=Path, required=True, help="run folder to create")
    parser.add_argument("--name", help="model name served by the bundle (default: hypert5-<checkpoint folder>)")
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument("--lora-alpha", type=float, help="LoRA scaling numerator (default: 2 * rank)")
    parser.add_argument("--prefix-positions", type=int, default=16, help="prefix length P")
    parser.add_argument(
        "--prefix-attention",
        choices=["peft", "gated"],
        default="peft",
        help="peft: HF PEFT prefix tuning's attention (decoder self-attention, one softmax), so prefix "
        "adapters convert to and from PEFT; gated: gated prefixes at every attention site "
        '(models/README.md, "Adapter kinds")',
    )
    parser.add_argument("--head-hidden", type=int, default=128, help="hidden width of the parameter heads")
    parser.add_argument("--default-kind", choices=["lora", "prefix"], default="prefix")
    parser.add_argument(
        "--hyper-max-tokens",
        type=int,
        help="hypermodel input limit in tokens (default: 2048 bytes or 1024 SentencePiece tokens)",
    )
    parser.add_argument("--encoder-max-tokens", type=int, help="downstream input limit (default: 1024 or 512)")
    parser.add_argument("--max-new-tokens", type=int, help="target / generation limit (default: 256 or 128)")
    parser.add_argument("--max-examples", type=int, default=16, help="most examples one adapter is made from")
    args = parser.parse_args(argv)
    try:
        settings = init_run(
            args.checkpoint,
            args.run,
            name=args.name,
            lora_rank=args.lora_rank,
            lora_alpha=args.lora_alpha,
            prefix_positions=args.prefix_positions,
            prefix_attention=args.prefix_attention,
            head_hidden=args.head_hidden,
            default_kind=args.default_kind,
            hyper_max_tokens=args.hyper_max_tokens,
            encoder_max_tokens=args.encoder_max_tokens,
            max_new_tokens=args.max_new_tokens,
            max_examples=args.max_examples,
        )
    except (NotAT5Checkpoint, FileExistsError, ValueError, FileNotFoundError) as e:
        parser.error(str(e))
    d = settings.dims
    print(
        f"{args.run}: {settings.name}, T5 d_model={d.d_model} layers={d.num_layers}/{d.num_decoder_layers} "
        f"vocab={d.vocab_size}, tokenizer {settings.tokenizer['type']}, limits hypermodel "
        f"{settings.hyper_input.max_tokens} / encoder {settings.encoder_max_tokens} / new "
        f"{settings.generation['max_new_tokens']} tokens"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
