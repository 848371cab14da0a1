"""Families, tasks and the registry that holds them per split.

A *family* is a named builder; calling it with an rng samples parameters (separator, constant,
case, ...) and returns a *task*: an input generator plus a pure ``str -> str`` function. The
split is by family: a family is registered in exactly one split, and each family declares a
``recipe`` (source kind + primitive chain) so tests can check that no held-out composition is
also a training composition.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable

Gen = Callable[[random.Random], str]
Fn = Callable[[str], str]


@dataclass(frozen=True)
class Task:
    """One concrete transformation. ``fn`` depends only on its input string (and the params
    baked into it), so ``fn(x)`` is the one correct answer for any ``x`` that ``gen`` makes."""

    family: str
    params: tuple[tuple[str, Any], ...]
    gen: Gen
    fn: Fn
    balanced: bool = False  # outputs are a few labels: demos should show more than one

    @property
    def name(self) -> str:
        return f"{self.family}({', '.join(f'{k}={v!r}' for k, v in self.params)})"

    def apply(self, x: str) -> str:
        return self.fn(x)


class Params:
    """Records the parameters a builder samples; ``overrides`` pin chosen ones (tests, demos)."""

    def __init__(self, rng: random.Random, overrides: dict[str, Any] | None = None):
        self.rng, self.over, self.values = rng, dict(overrides or {}), {}

    def pick(self, key: str, choices) -> Any:
        v = self.over[key] if key in self.over else self.rng.choice(choices)
        self.values[key] = v
        return v

    def randint(self, key: str, lo: int, hi: int) -> int:
        v = self.over[key] if key in self.over else self.rng.randint(lo, hi)
        self.values[key] = v
        return v

    def draw(self, key: str, sampler: Callable[[random.Random], Any]) -> Any:
        """A parameter drawn from a value sampler (e.g. a constant domain), still overridable."""
        v = self.over[key] if key in self.over else sampler(self.rng)
        self.values[key] = v
        return v


Builder = Callable[[Params], "tuple[Gen, Fn]"]


@dataclass(frozen=True)
class Family:
    name: str
    split: str
    recipe: tuple[str, ...]
    build: Builder
    balanced: bool = False
    doc: str = ""

    def make(self, rng: random.Random, **overrides: Any) -> Task:
        p = Params(rng, overrides)
        gen, fn = self.build(p)
        unknown = set(overrides) - set(p.values)
        if unknown:
            raise KeyError(f"family {self.name!r} has no parameter(s) {sorted(unknown)}")
        return Task(self.name, tuple(p.values.items()), gen, fn, self.balanced)


REGISTRY: dict[str, dict[str, Family]] = {"train": {}, "val": {}}


def family(split: str, name: str, recipe: tuple[str, ...], balanced: bool = False):
    """Decorator registering ``build(p) -> (gen, fn)`` as family ``name`` in ``split``."""

    def deco(build: Builder) -> Builder:
        if any(name in fams for fams in REGISTRY.values()):
            raise ValueError(f"duplicate family name {name!r}")
        REGISTRY[split][name] = Family(name, split, tuple(recipe), build, balanced, (build.__doc__ or "").strip())
        return build

    return deco
