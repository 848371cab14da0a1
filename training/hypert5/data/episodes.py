"""Real data as HyperT5 episodes: a context text for the hypermodel and (source, target) queries
for the downstream model. Shared by multi-task fine-tuning and the evaluation harness."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..examples import HyperInputFormat
from .p3 import P3Template
from .sni import SniTask, def_2pos


@dataclass
class RealEpisode:
    task: str
    context: str  # what the hypermodel reads
    queries: list[tuple[str, list[str]]]  # (downstream source, acceptable targets; the first is the reference)
    answer_choices: list[str] | None = None
    # The (input, output) pairs the context serializes, when it is a serialization of examples (P3): what a
    # client of the service sends as `examples` (the service serializes them itself).
    examples: list[tuple[str, str]] | None = None


def p3_episode(
    template: P3Template, rng: random.Random, k: int, num_queries: int, fmt: HyperInputFormat
) -> RealEpisode:
    """k examples of a template -> the hypermodel; other examples of the same template -> queries."""
    if k + num_queries > len(template.examples):
        raise ValueError(
            f"template {template.name} has {len(template.examples)} examples; k={k} + queries={num_queries} do not fit"
        )
    picked = rng.sample(template.examples, k + num_queries)
    return RealEpisode(
        template.name,
        fmt.serialize(picked[:k]),
        [(x, [y]) for x, y in picked[k:]],
        template.answer_choices,
        examples=list(picked[:k]),
    )


def sni_episode(task: SniTask, instances: list[tuple[str, list[str]]]) -> RealEpisode:
    """Def+2Pos -> the hypermodel; the given instances -> queries (the downstream reads only the input)."""
    return RealEpisode(task.name, def_2pos(task), list(instances))
