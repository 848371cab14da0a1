"""The paper's metrics, per prediction (in [0, 1]); the harness averages them and reports x100.

- ``rouge_l``: ROUGE-L F-measure from Google's ``rouge_score`` package with the Porter stemmer, the
  scorer of the Super-NaturalInstructions evaluation (allenai/natural-instructions,
  ``eval/automatic/evaluation.py``: ``use_stemmer=True``, ``rougeL`` fmeasure, max over the acceptable
  outputs). Its default tokenizer lowercases and keeps only ``[a-z0-9]`` runs, so two strings with no
  ASCII word in common score 0.
- ``exact_match``: SNI's (SQuAD's without dropping articles): lowercase, punctuation removed, whitespace
  collapsed, then string equality; max over the acceptable outputs.
- ``choice_accuracy``: accuracy with answer choices for generated text. ``map_to_choice`` maps the
  generation onto one choice: the choice equal to it after lowercasing and collapsing whitespace;
  otherwise the choice with the highest ROUGE-L (as above) against the generation, the earlier choice on a
  tie; when every choice scores 0 the generation names no choice and counts as wrong. Correct when the
  mapped choice is the gold answer (compared the same normalized way).
- ``rank_choice``: the paper's rank classification (T0's): the choice with the highest log-likelihood
  under the adapted downstream model (``backends.TorchBackend.score``, summed over the choice's tokens and
  eos, no length normalization), earlier choice on a tie. Offline only: the service has no scoring route.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from functools import lru_cache

from rouge_score import rouge_scorer


@lru_cache(maxsize=1)
def _scorer() -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def _refs(references: str | Sequence[str]) -> list[str]:
    refs = [references] if isinstance(references, str) else list(references)
    if not refs:
        raise ValueError("no reference to score against")
    return refs


def rouge_l(prediction: str, references: str | Sequence[str]) -> float:
    """ROUGE-L F-measure in [0, 1], the best over the acceptable references."""
    return max(_scorer().score(target=ref, prediction=prediction)["rougeL"].fmeasure for ref in _refs(references))


def normalize_answer(text: str) -> str:
    """SNI's normalization for exact match: lowercase, no punctuation, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(text.split())


def exact_match(prediction: str, references: str | Sequence[str]) -> float:
    p = normalize_answer(prediction)
    return float(any(p == normalize_answer(ref) for ref in _refs(references)))


def _norm_choice(text: str) -> str:
    return " ".join(text.lower().split())


def map_to_choice(prediction: str, choices: Sequence[str]) -> str | None:
    """The answer choice a generation names (see the module docstring), or None when it names none."""
    if not choices:
        raise ValueError("no answer choices")
    p = _norm_choice(prediction)
    for choice in choices:
        if _norm_choice(choice) == p:
            return choice
    best, best_score = None, 0.0
    for choice in choices:
        score = rouge_l(prediction, choice)
        if score > best_score:
            best, best_score = choice, score
    return best


def same_choice(a: str | None, b: str) -> bool:
    return a is not None and _norm_choice(a) == _norm_choice(b)


def choice_accuracy(prediction: str, gold: str, choices: Sequence[str]) -> float:
    return float(same_choice(map_to_choice(prediction, choices), gold))


def rank_choice(log_likelihoods: Sequence[float], choices: Sequence[str]) -> str:
    """The choice with the highest log-likelihood; the earlier one on a tie."""
    if len(log_likelihoods) != len(choices) or not choices:
        raise ValueError(f"{len(log_likelihoods)} scores for {len(choices)} choices")
    best = max(range(len(choices)), key=lambda i: (log_likelihoods[i], -i))
    return choices[best]


def mean_percent(values: Sequence[float]) -> float | None:
    """Average of per-prediction scores in [0, 1], as a percentage rounded to 2 decimals (None if empty)."""
    return round(100.0 * sum(values) / len(values), 2) if values else None
