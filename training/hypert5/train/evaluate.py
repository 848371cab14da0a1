"""Evaluation on held-out task families: exact match at k = 1, 3, 5, the paper's comparisons side by side.

  (a) frozen downstream alone, no adapter
  (b) in-context: demonstrations prepended to each query (the stage-0 downstream, which saw this format
      on training families; a separately fine-tuned T5-MTF-Few-shot copy is read from
      ``<run>/mtf_fewshot.safetensors`` when it exists)
  (c) per-task LoRA / prefix tuning by gradient descent on the k demonstrations, random initialization
  (d) the same, initialized from the hypermodel's parameters ("further fine-tuning")
  (e) the hypermodel alone (one forward pass)

Usage: python -m hypert5.train.evaluate --run runs/default [--tasks-per-family 4] [--tune-steps 50]
       [--tune-lr-lora LR] [--tune-lr-prefix LR]
Writes <run>/eval.json: exact match per comparison, and per family with a character-level similarity
beside it (partial credit, so progress shows before answers are exactly right; a yes/no family's exact
match is about 50 % by guessing one of its two labels). The checkpoint's provenance records the summary.
``--split train`` measures the same on fresh tasks of the *training* families instead (the
generalisation gap; eval_train.json); ``--split programs`` on fresh random programs of
``--program-language`` (new compositions inside the space stage 2 draws its programs from;
eval_programs.json; ``--tasks-per-family`` programs); ``--tune-shots 0`` skips the gradient-tuning
comparisons. ``--refine-bundle <bundle>`` adds the refine rows (hypert5.train.refine_eval: refinement
through the bundle's training-step graphs in ONNX Runtime, at every k of --shots) in eval_refine.json.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import random
import time
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from ..adapters import kind_specs
from ..generate import greedy, pad_batch
from ..refine import AUGMENTS
from ..t5 import T5
from ..tasks import Episode, list_families, sample_episode_for_family
from ..tasks.mixture import PROGRAM_LANGUAGES
from .refine_eval import INITS, run_grid, summary_for_provenance
from .settings import load_downstream, load_hyper, read_settings, record
from .text import TOKENIZER, encode, hyper_context, in_context_prompt, targets


def predictions(model: T5, sources: list[str], adapters: dict | None) -> list[str]:
    ids, mask = pad_batch([encode(s, 1024) for s in sources])
    return [TOKENIZER.decode(o) for o in greedy(model, ids, mask, adapters, 64)]


def exact_match(model: T5, sources: list[str], answers: list[str], adapters: dict | None) -> float:
    return sum(p == a for p, a in zip(predictions(model, sources, adapters), answers)) / len(answers)


def similarity(prediction: str, answer: str) -> float:
    """difflib's ratio: 2 * matching characters / total characters, 1.0 for identical strings."""
    return difflib.SequenceMatcher(None, prediction, answer, autojunk=False).ratio()


class Scores:
    """Per-query exact match and similarity of each comparison, kept by family: the overall numbers
    average every query (every family has the same number of tasks and queries)."""

    def __init__(self) -> None:
        self.by = defaultdict(lambda: defaultdict(list))  # comparison -> family -> [(exact, similarity)]

    def add(self, name: str, family: str, outputs: list[str], answers: list[str]) -> None:
        self.by[name][family] += [(float(p == a), similarity(p, a)) for p, a in zip(outputs, answers)]

    @staticmethod
    def _percent(values: list[float]) -> float:
        return round(100 * sum(values) / len(values), 1)

    def exact(self) -> dict[str, float]:
        return {name: self._percent([e for fam in fams.values() for e, _ in fam]) for name, fams in self.by.items()}

    def per_family(self) -> dict[str, dict[str, dict[str, float]]]:
        """family -> comparison -> {"exact": %, "similarity": %}."""
        out: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
        for name, fams in self.by.items():
            for family, pairs in fams.items():
                out[family][name] = {
                    "exact": self._percent([e for e, _ in pairs]),
                    "similarity": self._percent([s for _, s in pairs]),
                }
        return dict(sorted(out.items()))


def repeat(adapter: dict[str, torch.Tensor], n: int) -> dict[str, torch.Tensor]:
    return {k: v.expand(n, *v.shape[1:]) for k, v in adapter.items()}


def random_init(kind: str, settings, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """PEFT-style starting points: LoRA a random, b zero; prefix keys/values small random, gate zero
    (a "peft" prefix: every position attended)."""
    out = {}
    for spec in kind_specs(kind, settings.dims, settings.lora, settings.prefix):
        if spec.name.endswith((".b", ".gate")):
            out[spec.name] = torch.zeros((1, *spec.shape))
        elif spec.name.endswith(".mask"):
            out[spec.name] = torch.ones((1, *spec.shape))
        else:
            fan_in = spec.shape[-2] if spec.name.endswith(".a") else spec.shape[-1]
            out[spec.name] = torch.randn((1, *spec.shape), generator=generator) / math.sqrt(fan_in)
    return out


# Adam learning rates of the gradient-tuning comparisons, one per kind: LoRA and prefix tensors want
# rates 30 times apart. Chosen by a sweep on fresh tasks of the *training* families (the
# lr at which random-init tuning, the baseline a user would run, scores best; docs/experiments.md "Per-task tuning
# learning rate"), so the held-out families play no part in the choice. bench/ uses the same.
TUNE_LR = {"lora": 1e-3, "prefix": 3e-2}


def tune(
    model: T5,
    adapter: dict[str, torch.Tensor],
    demos: list[tuple[str, str]],
    steps: int,
    lr: float,
    batch: int | None = None,
    rng: random.Random | None = None,
) -> dict[str, torch.Tensor]:
    """Gradient descent on the adapter tensors only, on the k demonstrations: full batch, or ``batch``
    pairs drawn by ``rng`` each step (the capacity ceiling tunes on many more pairs than k)."""
    rng = rng or random.Random(0)
    params = {k: v.detach().clone().requires_grad_(True) for k, v in adapter.items()}
    optimizer = torch.optim.Adam(params.values(), lr=lr)
    encoded = [(encode(x, 256), encode(y, 64)) for x, y in demos]
    for _ in range(steps):
        chosen = encoded if batch is None or batch >= len(encoded) else rng.sample(encoded, batch)
        ids, mask = pad_batch([x for x, _ in chosen])
        decoder_in, labels = targets([y for _, y in chosen])
        logits = model(ids, mask, decoder_in, repeat(params, len(chosen)))
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {k: v.detach() for k, v in params.items()}


def split_families(split: str, language: str) -> list[str]:
    """What the evaluation reports per "family": the split's families, or the program language."""
    return [language] if split == "programs" else list_families(split)


def fresh_episode(rng: random.Random, split: str, family: str, k: int, queries: int) -> Episode:
    """A fresh task of the family (a fresh program of the language for ``split == "programs"``)."""
    if split == "programs":
        return PROGRAM_LANGUAGES[family](rng, k, queries)
    return sample_episode_for_family(rng, family, k, queries)


def save_result(run: Path, stem: str, stage: str, result: dict) -> None:
    """``<run>/<stem>.json`` keeps the per-family detail; the provenance (and so the bundle's manifest)
    keeps the summary under ``stage``."""
    (run / f"{stem}.json").write_text(json.dumps(result, indent=2))
    record(run, stage, {name: v for name, v in result.items() if name != "per_family"})
    print(json.dumps(result["exact_match_percent"], indent=2))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("runs/default"))
    parser.add_argument(
        "--split",
        choices=["val", "train", "programs"],
        default="val",
        help="held-out families (the benchmark), the training families (fresh tasks of them) or "
        "fresh random programs of --program-language",
    )
    parser.add_argument(
        "--program-language",
        choices=sorted(PROGRAM_LANGUAGES),
        default="tokens",
        help="with --split programs: the language the programs are drawn from",
    )
    parser.add_argument("--tasks-per-family", type=int, default=4)
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--tune-shots", type=int, default=3, help="k for the gradient-tuning comparisons")
    parser.add_argument("--tune-steps", type=int, default=50)
    for kind, lr in TUNE_LR.items():
        parser.add_argument(f"--tune-lr-{kind}", type=float, default=lr, help=f"Adam lr of {kind} tuning")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--refine-bundle",
        type=Path,
        default=None,
        help="also the refine rows through this bundle's training-step graphs (eval_refine.json)",
    )
    parser.add_argument("--refine-steps", type=int, nargs="+", default=[25, 50, 100, 200])
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = read_settings(args.run)
    downstream = load_downstream(args.run)
    hypers = {k: load_hyper(args.run, k, downstream).eval() for k in ("lora", "prefix")}
    mtf = None
    if (args.run / "mtf_fewshot.safetensors").exists():
        mtf = T5(settings.dims, lora_scale=settings.lora.scaling).eval()
        mtf.load_state_dict(load_file(str(args.run / "mtf_fewshot.safetensors")))
    fmt = settings.hyper_input
    rng = random.Random(args.seed)
    families = split_families(args.split, args.program_language)
    episodes = {k: [] for k in args.shots}
    for family in families:
        for _ in range(args.tasks_per_family):
            # The same task and queries at every k: demos are the first k of a pool of max(shots).
            ep = fresh_episode(rng, args.split, family, max(args.shots), args.queries)
            for k in args.shots:
                episodes[k].append((ep.demos[:k], ep.queries, family))
    scores = {k: Scores() for k in args.shots}
    t0 = time.time()
    with torch.no_grad():
        for k in args.shots:
            row = scores[k]
            for demos, queries, family in episodes[k]:
                xs, ys = [q for q, _ in queries], [a for _, a in queries]
                row.add("frozen", family, predictions(downstream, xs, None), ys)
                prompts = [in_context_prompt(fmt, demos, x) for x in xs]
                row.add("in_context_stage0", family, predictions(downstream, prompts, None), ys)
                if mtf is not None:
                    row.add("in_context_mtf", family, predictions(mtf, prompts, None), ys)
                ctx_ids, ctx_mask = hyper_context(fmt, demos)
                for kind, hyper in hypers.items():
                    adapter = hyper(ctx_ids, ctx_mask)
                    row.add(f"hyper_{kind}", family, predictions(downstream, xs, repeat(adapter, len(xs))), ys)
            print(f"k={k}: {row.exact()}", flush=True)
    # Gradient tuning at one k (cost): random init vs hypermodel init, equal steps, equal lr.
    tune_lr = {kind: getattr(args, f"tune_lr_{kind}") for kind in TUNE_LR}
    generator = torch.Generator().manual_seed(args.seed)
    k = args.tune_shots
    for demos, queries, family in episodes.get(k, []):
        xs, ys = [q for q, _ in queries], [a for _, a in queries]
        ctx_ids, ctx_mask = hyper_context(fmt, demos)
        for kind, hyper in hypers.items():
            with torch.no_grad():
                start = hyper(ctx_ids, ctx_mask)
            for init, adapter in (("random_init", random_init(kind, settings, generator)), ("hyper_init", start)):
                trained = tune(downstream, adapter, demos, args.tune_steps, tune_lr[kind])
                with torch.no_grad():
                    scores[k].add(
                        f"tuned_{kind}_{init}", family, predictions(downstream, xs, repeat(trained, len(xs))), ys
                    )
    if k in scores:
        print(f"k={k} with tuning: {scores[k].exact()}", flush=True)
    for k, row in scores.items():
        print(f"k={k} per family, exact match % (similarity %):")
        for family, by_name in row.per_family().items():
            cells = (f"{name} {v['exact']:g} ({v['similarity']:g})" for name, v in by_name.items())
            print(f"  {family:24s} " + "  ".join(cells))
    result = {
        "split": args.split,
        "families": families,
        "tasks_per_family": args.tasks_per_family,
        "queries_per_task": args.queries,
        "tune_steps": args.tune_steps,
        "tune_lr": tune_lr,
        "seed": args.seed,
        **({"program_language": args.program_language} if args.split == "programs" else {}),
        "exact_match_percent": {f"k={k}": row.exact() for k, row in scores.items()},
        "per_family": {f"k={k}": row.per_family() for k, row in scores.items()},
        "seconds": round(time.time() - t0),
    }
    suffix = "" if args.split == "val" else f"_{args.split}"
    save_result(args.run, f"eval{suffix}", f"evaluation{suffix}", result)
    if args.refine_bundle is not None and args.split == "val":
        refined = run_grid(
            args.refine_bundle,
            args.shots,
            args.refine_steps,
            ["lora", "prefix"],
            list(AUGMENTS),
            list(INITS),
            args.tasks_per_family,
            args.queries,
            args.seed,
            args.threads,
        )
        (args.run / "eval_refine.json").write_text(json.dumps(refined, indent=1))
        record(args.run, "evaluation_refine", summary_for_provenance(refined))


if __name__ == "__main__":
    main()
