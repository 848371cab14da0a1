"""Family chains: a training family's task applied to another's output, ``then(first(x))``.

Token programs taught the hypermodel to read new compositions off examples inside their own space
(docs/experiments.md, "Inside the program space"), but the held-out families are compositions of the *families'*
procedures (a date reformatted then upper-cased, an e-mail's user part split and title-cased), which
that space does not hold. A chain is such a composition: ``first`` is a task of one training family
and reads that family's own inputs (names, dates, e-mails, paths, ...); ``then`` is a task of
another, applied to what ``first`` gives ('Ada Lovelace' -> 'Lovelace, A.' -> 'LOVELACE, A.'). With
60 families and their parameters, 4,766 of 5,000 draws are distinct chains, each a task no family is.
A chain is drawn only where ``then`` runs on ``first``'s outputs, changes them, and gives more than
one output over an episode.

An episode of a chain is dropped when one training family's task gives its demonstrations' outputs
(``plain_task_fitting``: about one chain episode in six). Its queries would teach the hypermodel to
read a composition into examples that one procedure explains. (It was meant against the everyday
e-mail request's 'linus@kernel.org' -> 'l.kernel'; alone, it did not cure that: docs/experiments.md, "Family chains
on a GPU".)

Honest evaluation: a held-out composition never appears in training, so the held-out score measures
reading a new task, not recalling one. A chain is refused
- by recipe: when it reads a held-out family's kind of input and its two recipes hold every
  operation of that family's recipe (``date_reformat`` then ``text_case`` is
  ``date_month_code``'s date, parse, reformat, case; ``name_fix_case`` then ``name_swap_comma`` is
  ``name_last_upper_first``'s, up to the separator), kinds and operations read through
  ``KIND_ALIASES`` and ``OP_ALIASES``;
- by behaviour: when, on the inputs of some task of a held-out family, it gives that task's output
  for ``MATCHES_REFUSED`` of ``CATALOGUE_INPUTS`` of them (a catalogue of every held-out family's
  tasks, drawn once per process). ``tests/test_family_chains.py`` checks both rules and shows chains
  that each one catches.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

from .episodes import Episode, cover_labels, list_families, sample_pairs
from .registry import REGISTRY, Family, Task

FAMILY = "family_chain"
CATALOGUE_TASKS = 256  # draws per held-out family, enough to meet every parameter setting; distinct tasks are kept
PLAIN_CATALOGUE_TASKS = 64  # draws per training family for plain_task_fitting (1,113 distinct tasks)
CATALOGUE_INPUTS = 8
MATCHES_REFUSED = 3
# Input kinds that are the same values under another name in the recipes (a titled name is a name, a
# duration 'h:mm' reads as a time, a product row is a row of cells), and operations that are one
# another up to a constant (upper-casing one part is re-casing; a first letter is a prefix of the
# word): so that a chain one constant away from a held-out task ('LOVELACE,Ada' for 'LOVELACE, Ada')
# counts as holding its composition.
KIND_ALIASES = {
    "title_name": "name",
    "messy_text": "text",
    "text_with_number": "text",
    "time12": "time",
    "duration": "time",
    "cells_product": "cells",
}
OP_ALIASES = {"case_part": "case", "prefix_chars": "initial"}


def _kind(family: Family) -> str:
    return KIND_ALIASES.get(family.recipe[0], family.recipe[0])


def _ops(family: Family) -> set[str]:
    return {OP_ALIASES.get(op, op) for op in family.recipe[1:]}


@dataclass(frozen=True)
class Chain:
    first: Task
    then: Task

    @property
    def name(self) -> str:
        return f"{self.first.name} >> {self.then.name}"

    def run(self, x: str) -> str:
        """``then(first(x))``, or '' (no episode uses the input) where ``then`` cannot read what
        ``first`` gives: it is another family's procedure, written for that family's inputs."""
        try:
            return self.then.apply(self.first.apply(x))
        except Exception:  # noqa: BLE001  (any failure of a procedure off its own inputs: no output)
            return ""

    def gen(self, rng: random.Random) -> str:
        return self.first.gen(rng)


def refused_by_recipe(first: Family, then: Family) -> str | None:
    """The held-out family whose every operation the chain holds on that family's kind of input."""
    ops = _ops(first) | _ops(then)
    for family in REGISTRY["val"].values():
        if _kind(family) == _kind(first) and _ops(family) <= ops:
            return family.name
    return None


@functools.cache
def held_out_catalogue() -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """Every held-out family's distinct tasks (up to ``CATALOGUE_TASKS`` draws each), by name, with
    ``CATALOGUE_INPUTS`` (input, output) pairs from the family's own inputs. Seeded: the same in
    every process."""
    rng = random.Random("held-out catalogue")
    catalogue = {}
    for name in list_families("val"):
        for _ in range(CATALOGUE_TASKS):
            task = REGISTRY["val"][name].make(rng)
            if task.name not in catalogue:
                pairs = tuple((x, task.apply(x)) for x in (task.gen(rng) for _ in range(CATALOGUE_INPUTS)))
                catalogue[task.name] = pairs
    return tuple(catalogue.items())


def refused_by_behaviour(chain: Chain) -> str | None:
    """The held-out task whose outputs the chain gives on ``MATCHES_REFUSED`` of its inputs, or None."""
    for task_name, pairs in held_out_catalogue():
        matches = 0
        for i, (x, y) in enumerate(pairs):
            matches += chain.run(x) == y
            if matches >= MATCHES_REFUSED:
                return task_name
            if matches + len(pairs) - i - 1 < MATCHES_REFUSED:
                break
    return None


@functools.cache
def training_catalogue() -> tuple[Task, ...]:
    """Every training family's distinct tasks (up to ``PLAIN_CATALOGUE_TASKS`` draws each). Seeded:
    the same in every process."""
    rng = random.Random("training catalogue")
    tasks: dict[str, Task] = {}
    for name in list_families("train"):
        for _ in range(PLAIN_CATALOGUE_TASKS):
            task = REGISTRY["train"][name].make(rng)
            tasks.setdefault(task.name, task)
    return tuple(tasks.values())


def _gives(task: Task, pairs: list[tuple[str, str]]) -> bool:
    try:
        return all(task.apply(x) == y for x, y in pairs)
    except Exception:  # noqa: BLE001  (a procedure off its own inputs explains nothing)
        return False


def plain_task_fitting(demos: list[tuple[str, str]]) -> str | None:
    """The training family task (of ``training_catalogue``) that gives every demonstration's
    output, or None: demonstrations one procedure explains are not a chain's to teach."""
    return next((task.name for task in training_catalogue() if _gives(task, demos)), None)


def forbidden(chain: Chain) -> str | None:
    """Why the chain imitates a held-out family, or None (module docstring: the rules)."""
    first, then = (REGISTRY["train"].get(t.family) for t in (chain.first, chain.then))
    if first is None or then is None:
        return "chains a family outside the training split"
    return refused_by_recipe(first, then) or refused_by_behaviour(chain)


def _changes_its_input(chain: Chain, rng: random.Random) -> bool:
    """Whether ``then`` runs on most of ``first``'s outputs and changes most of them (4 probes)."""
    changed = 0
    for _ in range(4):
        x = chain.gen(rng)
        out = chain.run(x)
        changed += bool(out) and out != chain.first.apply(x)
    return changed >= 3


def sample_chain(rng: random.Random) -> Chain:
    """A random chain of two different training families that runs and that ``forbidden`` accepts."""
    families = list_families("train")
    while True:
        first, then = rng.sample(families, 2)
        if refused_by_recipe(REGISTRY["train"][first], REGISTRY["train"][then]):
            continue
        chain = Chain(REGISTRY["train"][first].make(rng), REGISTRY["train"][then].make(rng))
        if _changes_its_input(chain, rng) and refused_by_behaviour(chain) is None:
            return chain


def chain_episode(rng: random.Random, chain: Chain, k: int, num_queries: int) -> Episode | None:
    """k demonstrations and queries of one chain, with the families' contracts (episodes.py), or None
    when its inputs cannot supply them, every output is the same, or one training family's task gives
    the demonstrations' outputs (``plain_task_fitting``)."""
    task = Task(FAMILY, (("chain", chain.name),), chain.gen, chain.run, chain.then.balanced)
    pairs = sample_pairs(rng, task, k + num_queries)
    if pairs is not None and task.balanced:
        pairs = cover_labels(pairs, k)
    if pairs is None or len({y for _, y in pairs}) < 2 or plain_task_fitting(pairs[:k]) is not None:
        return None
    return Episode(FAMILY, task.name, pairs[:k], pairs[k:])


def sample_chain_episode(rng: random.Random, k: int, num_queries: int) -> Episode:
    """An episode of a fresh random chain."""
    for _ in range(100):
        episode = chain_episode(rng, sample_chain(rng), k, num_queries)
        if episode is not None:
            return episode
    raise RuntimeError(f"no family chain produced an episode with k={k}, q={num_queries}")
