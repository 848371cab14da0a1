"""The default model's shape and the run folder helpers shared by the stages."""

from __future__ import annotations

import argparse
import fcntl
import json
import random
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..checkpoint import BundleSettings
from ..config import LoraSpec, PrefixSpec, T5Dims
from ..examples import HyperInputFormat
from ..hypermodel import HyperT5
from ..t5 import T5
from ..tasks.mixture import PROGRAM_LANGUAGES
from . import distributed
from .loop import add_loop_arguments


def default_settings() -> BundleSettings:
    """A small byte-level T5 (about 2M parameters per copy) chosen to train on a 2-core CPU."""
    return BundleSettings(
        # 384 ids as in ByT5: 3 specials, 256 bytes, then sentinels for span corruption at the top.
        dims=T5Dims(vocab_size=384, d_model=128, d_kv=32, num_heads=4, d_ff=384, num_layers=4, num_decoder_layers=4),
        lora=LoraSpec(rank=8, alpha=16.0),
        prefix=PrefixSpec(num_positions=8),
        head_hidden=128,
        hyper_input=HyperInputFormat(
            input_prefix="in: ", output_prefix=" out: ", example_separator="\n", max_tokens=1024, max_examples=16
        ),
        encoder_max_tokens=256,
        generation={"max_new_tokens": 64, "num_beams": 1},
        default_kind="prefix",
        name="hypert5-strings-small",
    )


def stage_parser(doc: str | None, *, steps: int, lr: float) -> argparse.ArgumentParser:
    """The arguments every training stage takes; defaults are what the shipped model used."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    # --run-dir: the spelling to use under torchrun, whose own parser takes --run for its --run-path
    parser.add_argument("--run", "--run-dir", type=Path, default=Path("runs/default"), help="checkpoint folder")
    parser.add_argument("--steps", type=int, default=steps, help="total optimizer steps (a re-run resumes)")
    parser.add_argument("--lr", type=float, default=lr, help="peak learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    add_loop_arguments(parser)
    return parser


def add_programs_argument(parser: argparse.ArgumentParser, episodes: str) -> None:
    """--programs for the stages that draw training episodes (stage 0, stage 2, T5-MTF-Few-shot)."""
    parser.add_argument(
        "--programs",
        type=float,
        default=0.0,
        help=f"fraction of {episodes} that are random string programs instead of training families",
    )
    parser.add_argument(
        "--program-language",
        choices=sorted(PROGRAM_LANGUAGES),
        default="fields",
        help="fields: rows of random fields (tasks/programs.py); tokens: RobustFill-style extraction "
        "from realistic values (tasks/token_programs.py); token-edits: the same, pieces also "
        "title-cased, padded, masked or with a separator replaced",
    )


def check_programs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """Refuses a --programs outside [0, 1]; returns what the stage's provenance records of them."""
    if not 0.0 <= args.programs <= 1.0:
        parser.error(f"invalid --programs={args.programs}: a fraction in [0, 1]")
    return {"programs": args.programs, "program_language": args.program_language} if args.programs else {}


def step_rng(seed: int, stage: str, step: int) -> random.Random:
    """Data for a step is a function of (seed, stage, step): resumed runs see the same batches.

    Under torchrun the rank joins the key, so each rank draws its own share of the global batch (a
    resumed run must keep the world size to see the same batches); one process keeps the old key.
    """
    if distributed.world_size() > 1:
        return random.Random(f"{seed}/{stage}/{step}/rank{distributed.rank()}")
    return random.Random(f"{seed}/{stage}/{step}")


def read_settings(run: Path) -> BundleSettings:
    return BundleSettings.from_json(json.loads((run / "hypert5.json").read_text()))


def write_settings(run: Path, settings: BundleSettings) -> None:
    tmp = run / "hypert5.json.tmp"
    tmp.write_text(json.dumps(settings.to_json(), indent=2))
    tmp.replace(run / "hypert5.json")


def record(run: Path, stage: str, info: dict[str, Any]) -> None:
    """Add a stage's figures to the checkpoint's provenance (copied into the bundle manifest)."""
    with (run / "hypert5.json.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the two kinds train in parallel processes
        settings = read_settings(run)
        settings.provenance.setdefault("stages", {})[stage] = info
        write_settings(run, settings)


def load_downstream(run: Path) -> T5:
    settings = read_settings(run)
    model = T5(settings.dims, lora_scale=settings.lora.scaling)
    model.load_state_dict(load_file(str(run / "downstream.safetensors")))
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def load_hyper(run: Path, kind: str, downstream: T5) -> HyperT5:
    settings = read_settings(run)
    model = HyperT5.from_downstream(downstream, settings.hyper_config(kind))
    path = run / f"hyper_{kind}.safetensors"
    if path.exists():
        model.load_state_dict(load_file(str(path)))
    return model


def save_module(module: torch.nn.Module, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(tmp))
    tmp.replace(path)
