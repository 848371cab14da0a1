"""The refinement-levers experiment (experiments/refine_levers.py) on the tiny bundle: its loop is the product's
refinement loop, each lever changes what it says it changes, and the whole run reports every lever."""

import json
from pathlib import Path

import numpy as np

from experiments import refine_levers
from hypert5.ort_runtime import OrtBundle
from hypert5.refine_runtime import OrtRefiner

TINY = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "tiny"
DEMOS = [("Ada Lovelace", "Lovelace, A."), ("Grace Hopper", "Hopper, G."), ("Alan Turing", "Turing, A.")]


def setup():
    runtime = OrtBundle(TINY, threads=1)
    refiner = OrtRefiner(runtime)
    return refiner, runtime.hyper("lora", DEMOS), refiner.batch(DEMOS, "none")


def test_without_a_hook_the_loop_is_the_products() -> None:
    refiner, hyper, batch = setup()
    mine = refine_levers.run_steps(refiner, "lora", hyper, batch, [3], 1e-2)[3]
    product = next(refiner.run("lora", hyper, batch, [3], learning_rate=1e-2)).adapter
    assert mine.keys() == product.keys()
    for name in mine:
        assert np.array_equal(mine[name], product[name]), name


def test_levers_change_what_they_name() -> None:
    refiner, hyper, batch = setup()
    plain = refine_levers.run_steps(refiner, "lora", hyper, batch, [3], 1e-2)[3]
    frozen = refine_levers.run_steps(
        refiner, "lora", hyper, batch, [3], 1e-2, refine_levers.freeze(lambda n: ".encoder." in n)
    )[3]
    for name in frozen:
        if ".encoder." in name:
            assert np.array_equal(frozen[name], hyper[name]), name
        elif name.endswith(".b"):
            assert not np.array_equal(frozen[name], hyper[name]), name
    # Pulled all the way back every step, the adapter never leaves the start.
    still = refine_levers.run_steps(refiner, "lora", hyper, batch, [3], 1e-2, refine_levers.anchor(1.0))[3]
    assert all(np.allclose(still[n], hyper[n], atol=1e-6) for n in still)
    halfway = refine_levers.mix(hyper, plain, 0.5)
    for name in plain:
        assert np.allclose(halfway[name], (hyper[name] + plain[name]) / 2, atol=1e-6), name


def test_a_run_reports_every_lever(tmp_path) -> None:
    out = tmp_path / "levers.json"
    refine_levers.main(["--bundle", str(TINY), "--split", "val", "--steps", "4", "--queries", "1", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["tasks"] == 14  # one task of each held-out family
    names = set(result["exact_match_percent"])
    assert {
        "one_pass",
        "plain/1",
        "plain/4",
        "plain/8",
        "wise0.5/4",
        "tail_mean/1-4",
        "anchor0.1/4",
        "freeze_a/4",
    } <= names
    assert all(0 <= v <= 100 for v in result["exact_match_percent"].values())
    assert all(t["exact"].keys() == names for t in result["per_task"])


def test_vote_takes_the_majority_and_breaks_ties_by_order() -> None:
    assert refine_levers.vote([["a", "x", "p"], ["b", "y", "q"], ["b", "x", "r"]]) == ["b", "x", "p"]


def test_the_starts_set_reports_its_levers(tmp_path) -> None:
    out = tmp_path / "starts.json"
    refine_levers.main(
        [
            "--bundle",
            str(TINY),
            "--split",
            "val",
            "--set",
            "starts",
            "--steps",
            "2",
            "--queries",
            "1",
            "--out",
            str(out),
        ]
    )
    names = set(json.loads(out.read_text())["exact_match_percent"])
    assert names == {"one_pass", "one_pass/order_mean", "plain/2", "reversed/2", "rotated/2", "order_mean/2", "vote3/2"}
