"""Random string programs (tasks/programs.py): episodes keep the families' contracts, and no program
imitates a held-out family: held-out compositions never appear in training, or the held-out score
would measure recall."""

import random

import pytest

from hypert5.tasks import get_family, list_families
from hypert5.tasks.episodes import valid_pair
from hypert5.tasks.programs import Piece, Program, forbidden, program_episode, sample_program, sample_program_episode


def test_episodes_keep_the_contracts() -> None:
    """Distinct, valid pairs; every output is the program run on its input; inputs have the row's fields."""
    rng = random.Random(0)
    made = 0
    for _ in range(300):
        program, k, q = sample_program(rng), rng.randint(1, 8), rng.randint(1, 4)
        ep = program_episode(rng, program, k, q)
        if ep is None:
            continue
        made += 1
        pairs = ep.demos + ep.queries
        assert len(ep.demos) == k and len(ep.queries) == q and ep.family == "random_program"
        assert len({x for x, _ in pairs}) == len(pairs)
        assert all(valid_pair(x, y) and program.run(x) == y for x, y in pairs)
        assert all(len(x.split(program.delimiter)) == len(program.kinds) for x, _ in pairs)
    assert made > 250  # almost every program supplies an episode


def test_same_seed_same_episode() -> None:
    a = sample_program_episode(random.Random(7), 3, 2)
    b = sample_program_episode(random.Random(7), 3, 2)
    assert (a.task, a.demos, a.queries) == (b.task, b.demos, b.queries)


def test_drawn_programs_obey_every_rule() -> None:
    rng = random.Random(1)
    for _ in range(5000):
        assert forbidden(sample_program(rng)) is None


@pytest.mark.parametrize(
    "pieces, why",
    [
        # name_last_upper_first: 'Ada Lovelace' -> 'LOVELACE, Ada'
        ((Piece(1, "upper", "all"), Piece(0, "keep", "all")), "name_last_upper_first"),
        # sku_from_cells: first characters of several cells, upper-cased, joined
        ((Piece(0, "upper", "first3"), Piece(1, "upper", "first3")), "sku_from_cells"),
        ((Piece(0, "keep", "first2"), Piece(1, "keep", "first2")), "sku_from_cells"),
        ((Piece(0, "upper", "first3"),), "sku_from_cells"),
        # title case (email_to_full_name, path_stem_title, email_company_name) is not in the language
        ((Piece(0, "title", "all"),), "outside the language"),
    ],
)
def test_programs_that_imitate_held_out_families_are_refused(pieces, why) -> None:
    program = Program(" ", ("Word", "Word"), pieces, ("",) * (len(pieces) + 1))
    assert why in (forbidden(program) or "")


def test_held_out_families_it_guards_exist() -> None:
    """The rules name real held-out families: renaming one must revisit programs.py."""
    for name in (
        "name_last_upper_first",
        "sku_from_cells",
        "email_to_full_name",
        "path_stem_title",
        "email_company_name",
    ):
        assert name in list_families("val") and get_family(name).split == "val"
