"""Refine-aware training of HyperT5-LoRA, a probe: is a hypermodel trained for where refinement takes its adapter a
better start, so that the refined adapter is right more often on families it never saw?

Refinement fits the k demonstrations completely, and its held-out accuracy tracks the start (hyper against random
init is worth about 22 points; docs/experiments.md, "Refinement levers"). Here the hypermodel is trained with a
first-order meta-objective (as first-order MAML): per training episode it writes an adapter from the k
demonstrations; ``--inner`` Adam steps on the demonstrations (the service's refinement, in PyTorch, all episodes of
a batch at once) take it further; the queries' loss there gives a gradient, which is passed back into the
hypermodel as if it were the gradient at its own output (first order). The one-pass query loss is added with
weight ``--one-pass``, so that the adapter stays useful unrefined.

``--eval`` compares checkpoints on the held-out families at k = 3 (the draw of ``hypert5.train.refine_eval
--shots 3 --tasks-per-family 4``: 56 tasks, 448 queries): one pass, and 100 Adam steps at 1e-3 on the
demonstrations, exact match %.

    python -m experiments.refine_aware --checkpoint runs/from-default --out runs/refine-aware --minutes 40
    python -m experiments.refine_aware --eval runs/from-default runs/refine-aware
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from hypert5 import checkpoint
from hypert5.generate import greedy, pad_batch
from hypert5.tasks import list_families, sample_episode_for_family
from hypert5.train.text import TOKENIZER, encode, targets

Pairs = list[tuple[str, str]]
REFINE_LR = 1e-3  # the manifest's LoRA default


def contexts(models: checkpoint.Models, tasks: list[Pairs]) -> tuple[Tensor, Tensor]:
    fmt = models.settings.hyper_input
    return pad_batch([encode(fmt.serialize(d), fmt.max_tokens) for d in tasks])


def rows_of(tasks: list[Pairs]) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Every task's pairs as one batch: ids, mask, decoder inputs, labels, and each row's task index."""
    flat = [(encode(x, 256), encode(y, 64)) for pairs in tasks for x, y in pairs]
    owner = torch.tensor([i for i, pairs in enumerate(tasks) for _ in pairs])
    ids, mask = pad_batch([x for x, _ in flat])
    decoder_in, labels = targets([y for _, y in flat])
    return ids, mask, decoder_in, labels, owner


def task_losses(models: checkpoint.Models, adapters: dict[str, Tensor], batch, tasks: int) -> Tensor:
    """Per task, the mean token cross-entropy of its rows (the refinement loss of each task on its own)."""
    ids, mask, decoder_in, labels, owner = batch
    rows = {k: v.index_select(0, owner) for k, v in adapters.items()}
    logits = models.downstream(ids, mask, decoder_in, rows)
    nll = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100, reduction="none")  # (rows, T)
    counted = (labels != -100).float()
    per_task_sum = torch.zeros(tasks).index_add(0, owner, nll.sum(1))
    per_task_tokens = torch.zeros(tasks).index_add(0, owner, counted.sum(1))
    return per_task_sum / per_task_tokens


def refine(models: checkpoint.Models, start: dict[str, Tensor], demos: list[Pairs], steps: int) -> dict[str, Tensor]:
    """Adam on every task's demonstrations at once: the tasks' tensors are slices of one batch, and Adam works
    elementwise, so each slice follows its own task's loss as the service's refinement of that adapter does."""
    params = {k: v.detach().clone().requires_grad_(True) for k, v in start.items()}
    optimizer = torch.optim.Adam(params.values(), lr=REFINE_LR)
    batch = rows_of(demos)
    for _ in range(steps):
        optimizer.zero_grad()
        task_losses(models, params, batch, len(demos)).sum().backward()
        optimizer.step()
    return {k: v.detach() for k, v in params.items()}


def train(args) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    models = checkpoint.load(args.checkpoint)
    for p in models.downstream.parameters():
        p.requires_grad_(False)  # frozen, as everywhere: only the hypermodel learns
    hyper = models.hyper["lora"].train()
    optimizer = torch.optim.Adam(hyper.parameters(), lr=args.lr)
    rng = random.Random(args.seed)
    families = list_families("train")
    began, step, log = time.time(), 0, []
    while time.time() - began < args.minutes * 60 and (args.steps is None or step < args.steps):
        episodes = [
            sample_episode_for_family(rng, rng.choice(families), rng.randint(2, 5), args.queries)
            for _ in range(args.episodes)
        ]
        demos = [list(e.demos) for e in episodes]
        queries = rows_of([list(e.queries) for e in episodes])
        start = hyper(*contexts(models, demos))
        refined = {k: v.requires_grad_(True) for k, v in refine(models, start, demos, args.inner).items()}
        after = task_losses(models, refined, queries, len(episodes)).mean()
        grads = torch.autograd.grad(after, list(refined.values()))
        one_pass = task_losses(models, start, queries, len(episodes)).mean()
        meta = sum((start[k] * g).sum() for k, g in zip(refined, grads))
        optimizer.zero_grad()
        (meta + args.one_pass * one_pass).backward()
        torch.nn.utils.clip_grad_norm_(hyper.parameters(), 1.0)
        optimizer.step()
        step += 1
        log.append((one_pass.item(), after.item()))
        if step % 20 == 0:
            recent = log[-20:]
            print(
                f"step {step} {time.time() - began:.0f}s one-pass query loss {sum(a for a, _ in recent) / 20:.3f} "
                f"refined query loss {sum(b for _, b in recent) / 20:.3f}",
                flush=True,
            )
    hyper.eval()
    checkpoint.save(args.out, models)
    (args.out / "refine_aware.json").write_text(
        json.dumps(
            {**{k: str(v) for k, v in vars(args).items()}, "steps_done": step, "seconds": round(time.time() - began)}
        )
    )
    print(f"wrote {args.out} after {step} steps")


def held_out(seed: int = 1234, per_family: int = 4, k: int = 3, queries: int = 8):
    """refine_eval's draw at --shots k: the same tasks in the same order."""
    rng = random.Random(seed)
    return [sample_episode_for_family(rng, f, k, queries) for f in list_families("val") for _ in range(per_family)]


def exact(models: checkpoint.Models, adapters: dict[str, Tensor], episodes) -> float:
    hits, total = 0, 0
    for i, e in enumerate(episodes):
        ids, mask = pad_batch([encode(x, 256) for x, _ in e.queries])
        rows = {k: v[i : i + 1].expand(len(e.queries), *v.shape[1:]) for k, v in adapters.items()}
        out = greedy(models.downstream, ids, mask, rows, 64)
        hits += sum(TOKENIZER.decode(o) == y for o, (_, y) in zip(out, e.queries))
        total += len(e.queries)
    return round(100 * hits / total, 1)


def evaluate(paths: list[Path], steps: int, threads: int, per_family: int = 4) -> dict:
    torch.set_num_threads(threads)
    episodes = held_out(per_family=per_family)
    demos = [list(e.demos) for e in episodes]
    result = {}
    for path in paths:
        models = checkpoint.load(path)
        with torch.no_grad():
            start = models.hyper["lora"].eval()(*contexts(models, demos))
        refined = refine(models, start, demos, steps)
        with torch.no_grad():
            result[str(path)] = {
                "one_pass": exact(models, start, episodes),
                f"refined_{steps}": exact(models, refined, episodes),
            }
        print(path, result[str(path)], flush=True)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, help="the run to start from (hypert5.json and weights)")
    parser.add_argument("--out", type=Path, help="where the trained checkpoint goes")
    parser.add_argument("--minutes", type=float, default=40.0)
    parser.add_argument("--steps", type=int, default=None, help="stop after this many steps too")
    parser.add_argument("--episodes", type=int, default=8, help="episodes per step")
    parser.add_argument("--queries", type=int, default=4)
    parser.add_argument("--inner", type=int, default=16, help="refinement steps inside each training step")
    parser.add_argument("--one-pass", type=float, default=1.0, help="weight of the unrefined query loss")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval", type=Path, nargs="+", help="checkpoints to compare on held-out families")
    parser.add_argument("--eval-steps", type=int, default=100)
    parser.add_argument("--eval-tasks-per-family", type=int, default=4)
    args = parser.parse_args(argv)
    if args.eval:
        print(json.dumps(evaluate(args.eval, args.eval_steps, args.threads, args.eval_tasks_per_family), indent=1))
        return
    if args.checkpoint is None or args.out is None:
        parser.error("training needs --checkpoint and --out (or give --eval)")
    train(args)


if __name__ == "__main__":
    main()
