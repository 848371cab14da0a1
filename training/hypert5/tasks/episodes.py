"""Few-shot episodes: k demonstrations plus held-back queries, all from one sampled task.

Contracts:
- Only the ``rng`` passed in is used, so the same seed gives the same episodes in any process.
- Every input is <= MAX_INPUT_BYTES and every output is 1..MAX_OUTPUT_BYTES UTF-8 bytes, single
  line; inputs within an episode (demos and queries together) are distinct.
- ``task.fn(x) == y`` for every pair: outputs are a pure function of the input given the task.
- For label-valued tasks (yes/no, High/Low) demos show at least two different labels when k >= 2,
  so the rule is not ambiguous from the demos alone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .registry import REGISTRY, Family, Task

MAX_INPUT_BYTES = 80
MAX_OUTPUT_BYTES = 48
SPLITS = ("train", "val")


@dataclass
class Episode:
    family: str
    task: str  # family + parameters, human-readable, e.g. "date_iso_to_dmy(sep='/', pad=True)"
    demos: list[tuple[str, str]]
    queries: list[tuple[str, str]]


def list_families(split: str) -> list[str]:
    """Family names of a split, sorted (a stable order, so seeded choices are reproducible)."""
    if split not in SPLITS:
        raise ValueError(f"invalid split={split!r}: must be one of {SPLITS}")
    return sorted(REGISTRY[split])


def get_family(name: str) -> Family:
    for fams in REGISTRY.values():
        if name in fams:
            return fams[name]
    raise KeyError(f"unknown family {name!r}")


def make_task(family: str, rng: random.Random | None = None, **params) -> Task:
    """A task of ``family``; ``params`` pin parameters, the rest are drawn from ``rng``."""
    return get_family(family).make(rng or random.Random(0), **params)


def valid_pair(x: str, y: str) -> bool:
    return (
        0 < len(x.encode()) <= MAX_INPUT_BYTES
        and 0 < len(y.encode()) <= MAX_OUTPUT_BYTES
        and "\n" not in x
        and "\n" not in y
    )


def sample_pairs(rng: random.Random, task: Task, n: int) -> list[tuple[str, str]] | None:
    """n valid (input, output) pairs with distinct inputs, or None if the task can't supply them."""
    pairs, seen = [], set()
    for _ in range(12 * n + 20):
        x = task.gen(rng)
        if x in seen:
            continue
        y = task.fn(x)
        if valid_pair(x, y):
            seen.add(x)
            pairs.append((x, y))
            if len(pairs) == n:
                return pairs
    return None


def cover_labels(pairs: list[tuple[str, str]], k: int) -> list[tuple[str, str]] | None:
    """Make the demos (first k pairs) show two labels by swapping in a query; None if impossible."""
    if k < 2 or len({y for _, y in pairs[:k]}) > 1:
        return pairs
    for j in range(k, len(pairs)):
        if pairs[j][1] != pairs[0][1]:
            pairs = list(pairs)
            pairs[k - 1], pairs[j] = pairs[j], pairs[k - 1]
            return pairs
    return None


def sample_episode_for_family(rng: random.Random, family: str, k: int, num_queries: int) -> Episode:
    """An episode of a fresh task (fresh parameters) of the named family."""
    fam = get_family(family)
    for _ in range(50):
        task = fam.make(rng)
        pairs = sample_pairs(rng, task, k + num_queries)
        if pairs is not None and task.balanced:
            pairs = cover_labels(pairs, k)
        if pairs is not None:
            return Episode(fam.name, task.name, pairs[:k], pairs[k:])
    raise RuntimeError(f"family {family!r} could not produce an episode with k={k}, q={num_queries}")


def sample_episode(rng: random.Random, split: str, k: int, num_queries: int) -> Episode:
    """An episode from a uniformly chosen family of ``split`` ('train' or 'val')."""
    return sample_episode_for_family(rng, rng.choice(list_families(split)), k, num_queries)
