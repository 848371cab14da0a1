"""Family chains (tasks/family_chains.py): episodes keep the families' contracts, and no chain computes
a held-out task (held-out compositions never appear in training, or the held-out score would measure
recall), checked by recipe and by behaviour on the held-out families' own inputs."""

import random

import pytest

from hypert5.tasks import get_family, list_families, make_task
from hypert5.tasks.episodes import valid_pair
from hypert5.tasks.family_chains import (
    Chain,
    chain_episode,
    forbidden,
    held_out_catalogue,
    plain_task_fitting,
    refused_by_behaviour,
    refused_by_recipe,
    sample_chain,
    sample_chain_episode,
)


def test_episodes_keep_the_contracts() -> None:
    """Distinct, valid pairs; every output is the chain run on its input; more than one output."""
    rng = random.Random(0)
    made = 0
    for _ in range(200):
        chain, k, q = sample_chain(rng), rng.randint(1, 8), rng.randint(1, 4)
        ep = chain_episode(rng, chain, k, q)
        if ep is None:
            continue
        made += 1
        pairs = ep.demos + ep.queries
        assert len(ep.demos) == k and len(ep.queries) == q and ep.family == "family_chain"
        assert len({x for x, _ in pairs}) == len(pairs) and len({y for _, y in pairs}) > 1
        assert all(valid_pair(x, y) and chain.run(x) == y for x, y in pairs)
        assert chain.first.family != chain.then.family
    assert made > 120  # some chains cannot supply an episode; about one in six is explained by one family


def test_a_chain_is_one_task_after_another() -> None:
    chain = Chain(
        make_task("name_swap_comma", direction="to_last_first", sep=", "), make_task("text_case", mode="upper")
    )
    assert chain.run("Ada Lovelace") == "LOVELACE, ADA"
    # another family's procedure off its own inputs gives no output, so no episode uses that input
    assert Chain(make_task("text_case", mode="upper"), make_task("date_reformat", random.Random(0))).run("hello") == ""


def test_demonstrations_one_family_explains_are_not_a_chain_episode() -> None:
    """The everyday e-mail examples are one family's task, so no chain episode shows them; a chain no
    family computes ('LOVELACE, ADA') keeps its episodes; no drawn episode's demonstrations fit a
    training family's task."""
    emails = [
        ("grace.hopper@navy.mil", "grace.hopper"),
        ("alan@turing.org.uk", "alan"),
        ("k.johnson@nasa.gov", "k.johnson"),
    ]
    assert plain_task_fitting(emails).startswith("email_user(")
    assert plain_task_fitting([("  Retail banker ", "retailbanker")]).startswith("code_normalize(")
    assert plain_task_fitting([("Ada Lovelace", "LOVELACE, ADA")]) is None
    rng = random.Random(3)
    swap = Chain(
        make_task("name_swap_comma", direction="to_last_first", sep=", "), make_task("text_case", mode="upper")
    )
    assert all(chain_episode(rng, swap, 3, 2) is not None for _ in range(10))
    for _ in range(100):
        ep = sample_chain_episode(rng, rng.randint(1, 8), 2)
        assert plain_task_fitting(ep.demos) is None, ep.task


def test_same_seed_same_episode() -> None:
    a = sample_chain_episode(random.Random(7), 3, 2)
    b = sample_chain_episode(random.Random(7), 3, 2)
    assert (a.task, a.demos, a.queries) == (b.task, b.demos, b.queries)


def test_chains_reach_most_training_families() -> None:
    rng = random.Random(2)
    chains = [sample_chain(rng) for _ in range(1500)]
    firsts, thens = {c.first.family for c in chains}, {c.then.family for c in chains}
    assert firsts == set(list_families("train")) and len(thens) > 40


def test_drawn_chains_obey_every_rule() -> None:
    rng = random.Random(1)
    for _ in range(1000):
        assert forbidden(sample_chain(rng)) is None


# date_reformat then text_case: date_month_code's 'MAR 2024' from '2024-03-07'
MONTH_CODE = Chain(
    make_task("date_reformat", in_layout="YYYY-MM-DD", out_layout="MMM D, YYYY"), make_task("text_case", mode="upper")
)


def test_the_recipe_rule_refuses_a_held_out_composition() -> None:
    assert refused_by_recipe(get_family("date_reformat"), get_family("text_case")) == "date_month_code"
    assert refused_by_recipe(get_family("text_count"), get_family("number_threshold")) == "word_count_test"
    assert refused_by_recipe(get_family("cells_arith"), get_family("currency_format")) == "line_total_currency"
    # one constant away ('LOVELACE,Ada' for 'LOVELACE, Ada'): upper-casing the surname is re-casing
    swap = Chain(
        make_task("name_fix_case", style="last_upper"), make_task("name_swap_comma", direction="to_last_first", sep=",")
    )
    assert swap.run("Ada Lovelace") == "LOVELACE,Ada" and "name_last_upper_first" in forbidden(swap)
    assert refused_by_recipe(get_family("cells_join"), get_family("text_acronym")) == "sku_from_cells"
    # the same operations on another kind of input are another composition
    assert refused_by_recipe(get_family("time_24_to_12"), get_family("text_case")) is None
    assert "date_month_code" in forbidden(MONTH_CODE)


def test_the_behaviour_rule_refuses_what_computes_a_held_out_task() -> None:
    """A chain whose second task is a held-out one computes it wherever its first leaves the input as it
    is (collapsing spaces in a name): the catalogue sees it. Its recipe-free neighbour passes."""
    mask = make_task("name_mask", char="*")
    assert refused_by_behaviour(Chain(make_task("text_clean", mode="collapse"), mask)) == mask.name
    assert "outside the training split" in forbidden(Chain(make_task("text_clean", mode="collapse"), mask))
    assert refused_by_behaviour(MONTH_CODE) is None  # 'MAR 7, 2024' is not 'MAR 2024'


def test_the_catalogue_holds_every_held_out_task() -> None:
    """Every parameter setting of every held-out family (as many as 2,000 fresh draws meet)."""
    rng = random.Random(5)
    every = {get_family(name).make(rng).name for name in list_families("val") for _ in range(2000)}
    assert {name for name, _ in held_out_catalogue()} == every
    assert all(len(pairs) == 8 for _, pairs in held_out_catalogue())


@pytest.mark.parametrize("family", list_families("val"))
def test_no_drawn_chain_computes_a_held_out_task(family) -> None:
    """On fresh tasks of each held-out family (not the catalogue's draws), no accepted chain gives the
    task's output on every one of its inputs."""
    rng = random.Random(family)
    tasks = [get_family(family).make(rng) for _ in range(4)]
    samples = [(task, [task.gen(rng) for _ in range(6)]) for task in tasks]
    for _ in range(400):
        chain = sample_chain(rng)
        for task, inputs in samples:
            assert not all(chain.run(x) == task.apply(x) for x in inputs), (chain.name, task.name)
