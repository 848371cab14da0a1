"""What the training stages draw: an episode of a training family, or of a random program."""

from __future__ import annotations

import random

from .episodes import Episode, sample_episode
from .family_chains import sample_chain_episode
from .programs import sample_program_episode
from .token_programs import sample_token_edit_program_episode, sample_token_program_episode

PROGRAM_LANGUAGES = {
    "fields": sample_program_episode,
    "tokens": sample_token_program_episode,
    "token-edits": sample_token_edit_program_episode,
    "chains": sample_chain_episode,
}


def sample_training_episode(
    rng: random.Random, k: int, num_queries: int, programs: float = 0.0, language: str = "fields"
) -> Episode:
    """A random program with probability ``programs`` (``language``: "fields", programs.py's rows of
    random fields; "tokens", token_programs.py's extraction from realistic values; "token-edits", the
    same with edits: title case, padding, masking, replacing; "chains", family_chains.py's one training
    family's task applied to another's output), else a training family's episode.
    Without programs nothing extra is drawn, so runs made before the option see the batches they
    always saw."""
    if programs and rng.random() < programs:
        return PROGRAM_LANGUAGES[language](rng, k, num_queries)
    return sample_episode(rng, "train", k, num_queries)
