"""Spreadsheet string-transformation tasks ("Flash Fill" by example) for HyperT5 training.

Public API:
- ``sample_episode(rng, split, k, num_queries) -> Episode`` and
  ``sample_episode_for_family(rng, family, k, num_queries)``: few-shot episodes.
- ``list_families(split)``: family names of "train" or "val" (disjoint; split is by family).
- ``make_task(family, rng=None, **params) -> Task``: a concrete task (``task.apply(x)``).
- ``sample_corpus_text(rng)``: one domain text line for span-corruption pretraining.

Importing the family modules registers them; value pools are built lazily on first sampling.
"""

from . import families_val, train_dates, train_numbers, train_people, train_text  # noqa: F401  (registers families)
from .corpus import sample_corpus_text
from .episodes import (
    MAX_INPUT_BYTES,
    MAX_OUTPUT_BYTES,
    Episode,
    get_family,
    list_families,
    make_task,
    sample_episode,
    sample_episode_for_family,
)
from .primitives import CELL_SEP
from .registry import Task

__all__ = [
    "CELL_SEP",
    "MAX_INPUT_BYTES",
    "MAX_OUTPUT_BYTES",
    "Episode",
    "Task",
    "get_family",
    "list_families",
    "make_task",
    "sample_corpus_text",
    "sample_episode",
    "sample_episode_for_family",
]
