"""Weight-space interpolation of one hypermodel between two runs that share a start: the weights
(1 - alpha) * base + alpha * tuned, as WiSE-FT (Wortsman et al., "Robust fine-tuning of zero-shot
models", CVPR 2022) does for a model and its fine-tuned copy.

A stage 2 phase that teaches the hypermodel something new (family chains, say) can cost requests
the model it started from answered right; the average of the two keeps much of both, without a
gradient step. Stage 2 leaves the downstream frozen, so both runs must hold the same downstream and
the same settings: refused otherwise, as is a tuned run that does not continue the base run.

    python -m hypert5.train.interpolate --base runs/shipped --tuned runs/chains --alpha 0.5 --out runs/soup

The output is a copy of the base run (its other hypermodel included) with the interpolated
hypermodel of --kind. Its provenance records the tuned run's extra stages under ``interpolate_<kind>``
and drops the base's evaluations, which measured other weights: evaluate the output before exporting it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..checkpoint import BundleSettings
from .settings import read_settings, write_settings


class InterpolateError(ValueError):
    pass


def _same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)


def _trained_stages(settings: BundleSettings) -> dict[str, Any]:
    """The provenance's training stages; evaluations measured one run's weights and do not carry over."""
    return {
        name: figures
        for name, figures in settings.provenance.get("stages", {}).items()
        if not name.startswith("evaluation")
    }


def interpolate(base: Path, tuned: Path, alpha: float, kind: str, out: Path) -> dict[str, Any]:
    """Writes the interpolated run to ``out``; returns what its provenance records."""
    if not 0.0 <= alpha <= 1.0:
        raise InterpolateError(f"invalid alpha={alpha}: a weight in [0, 1] (0 is the base run, 1 the tuned one)")
    if out.exists():
        raise InterpolateError(f"{out} exists: choose a new folder")
    base_settings, tuned_settings = read_settings(base), read_settings(tuned)
    if base_settings.to_json() | {"provenance": None} != tuned_settings.to_json() | {"provenance": None}:
        raise InterpolateError(f"{base} and {tuned} differ in hypert5.json beyond provenance: not the same model")
    base_stages, tuned_stages = _trained_stages(base_settings), _trained_stages(tuned_settings)
    if any(name not in tuned_stages for name in base_stages):
        raise InterpolateError(f"{tuned} does not continue {base}: its provenance lacks some of the base's stages")
    if not _same_tensors(
        load_file(str(base / "downstream.safetensors")), load_file(str(tuned / "downstream.safetensors"))
    ):
        raise InterpolateError(f"{base} and {tuned} hold different downstream weights: stage 2 keeps it frozen")
    a, b = load_file(str(base / f"hyper_{kind}.safetensors")), load_file(str(tuned / f"hyper_{kind}.safetensors"))
    if a.keys() != b.keys() or any(a[name].shape != b[name].shape for name in a):
        raise InterpolateError(f"hyper_{kind}.safetensors: the two runs' tensors differ in names or shapes")

    # Run folders keep per-phase optimizer state (stage*/) and evaluations (eval*.json) of the base's
    # weights: neither belongs to the interpolated model.
    shutil.copytree(base, out, ignore=shutil.ignore_patterns("stage*", "eval*.json", "*.lock"))
    mixed = {
        name: ((1.0 - alpha) * a[name].double() + alpha * b[name].double()).to(a[name].dtype).contiguous() for name in a
    }
    save_file(mixed, str(out / f"hyper_{kind}.safetensors"))
    info = {
        "base": str(base),
        "tuned": str(tuned),
        "alpha": alpha,
        "tuned_stages": {name: figures for name, figures in tuned_stages.items() if name not in base_stages},
    }
    base_settings.provenance["stages"] = base_stages | {f"interpolate_{kind}": info}
    write_settings(out, base_settings)
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, required=True, help="the run the tuned one started from")
    parser.add_argument("--tuned", type=Path, required=True, help="the run that continued it")
    parser.add_argument("--alpha", type=float, required=True, help="weight of the tuned run, in [0, 1]")
    parser.add_argument("--kind", choices=("lora", "prefix"), default="lora")
    parser.add_argument("--out", type=Path, required=True, help="a new run folder")
    args = parser.parse_args(argv)
    try:
        info = interpolate(args.base, args.tuned, args.alpha, args.kind, args.out)
    except (InterpolateError, FileNotFoundError) as error:
        parser.error(str(error))
    print(
        f"wrote {args.out}: hyper_{args.kind} = {1 - args.alpha:g} x {args.base} + {args.alpha:g} x {args.tuned} "
        f"(tuned stages: {', '.join(info['tuned_stages']) or 'none'})",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
