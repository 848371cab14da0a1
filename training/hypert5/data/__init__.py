"""Readers for real task data: P3-style prompt/completion templates, Super-NaturalInstructions task
files and plain-text / JSONL corpora. Each reader returns plain dataclasses; turning them into
episodes for training or evaluation is the caller's job (``episodes.py``).
"""

from .corpus import read_corpus
from .episodes import RealEpisode, p3_episode, sni_episode
from .p3 import P3Template, read_p3
from .sni import SniTask, def_2pos, read_sni, sni_examples

__all__ = [
    "P3Template",
    "RealEpisode",
    "SniTask",
    "def_2pos",
    "p3_episode",
    "read_corpus",
    "read_p3",
    "read_sni",
    "sni_episode",
    "sni_examples",
]
