"""Batches built ahead in worker processes (prefetch.py) and the training loop's --time-budget (loop.py):
neither may change what a step sees, and a budgeted run must end in time and resume to the same total."""

import os
import time

import pytest
import torch

from hypert5.train import loop
from hypert5.train.loop import CALIBRATION, finished, train
from hypert5.train.prefetch import Prefetcher

# ---- Prefetcher --------------------------------------------------------------------------------------


def make(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch that is a pure function of the step (module level: the workers run it)."""
    return torch.full((3,), step), torch.arange(step)


def make_with_pid(step: int) -> torch.Tensor:
    """The step and the process that built its batch."""
    return torch.tensor([step, os.getpid()])


def _same(got, step: int) -> bool:
    want = make(step)
    return len(got) == len(want) and all(torch.equal(g, w) for g, w in zip(got, want))


@pytest.mark.parametrize("workers", [0, 2])
def test_prefetcher_in_order_returns_each_steps_batch(workers) -> None:
    """The training loop's order, from a resume point (5): prefetching must not change a batch."""
    batches = Prefetcher(make, stop=15, workers=workers)
    for step in range(5, 15):
        assert _same(batches(step), step), step


def test_prefetcher_out_of_order_restarts_and_stays_right() -> None:
    """A step other than the next one restarts the workers from it, forwards and backwards."""
    batches = Prefetcher(make, stop=20, workers=2)
    for step in (3, 4, 10, 11, 2, 3):
        assert _same(batches(step), step), step


def test_prefetcher_builds_in_workers_and_inline_past_stop() -> None:
    """With workers the batches come from other processes; from ``stop`` on (the loop's steps past
    --steps, never prefetched), from this one, also as the first step asked for."""
    batches = Prefetcher(make_with_pid, stop=4, workers=2)
    for step in range(4):
        got = batches(step)
        assert got[0].item() == step and got[1].item() != os.getpid()
    for step in (4, 7):
        assert torch.equal(batches(step), make_with_pid(step))  # pid included: built here
    assert _same(Prefetcher(make, stop=4, workers=2)(9), 9)


def test_prefetcher_rejects_negative_workers() -> None:
    with pytest.raises(ValueError):
        Prefetcher(make, stop=10, workers=-1)


# ---- train(time_budget=...) ---------------------------------------------------------------------------

FAST = dict(lr=1e-3, warmup=1, checkpoint_every=1000, log_every=1000)


@pytest.fixture(autouse=True)
def _single_process(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module", autouse=True)
def _warm(tmp_path_factory):
    """Pay the process's one-off costs before any timed run: the first AdamW imports torch._dynamo
    (about 1 s here), outside the budget's clock but inside a test's own bound."""
    with pytest.MonkeyPatch.context() as env:
        for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
            env.delenv(var, raising=False)
        module = torch.nn.Linear(2, 1)
        train(module, Loss(module), 2, tmp_path_factory.mktemp("warm"), **FAST)


class Loss:
    """loss_fn(step) through ``module(x)``, taking ``sleep(step)`` seconds; counts its calls."""

    def __init__(self, module: torch.nn.Module, sleep=lambda step: 0.0):
        self.module, self.sleep, self.calls = module, sleep, 0
        self.x = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))

    def __call__(self, step: int) -> torch.Tensor:
        self.calls += 1
        seconds = self.sleep(step)
        if seconds:
            time.sleep(seconds)
        return self.module(self.x).pow(2).mean()


def _state(state_dir) -> dict:
    return torch.load(state_dir / "state.pt", map_location="cpu", weights_only=False)


def test_without_a_budget_the_loop_runs_every_step(tmp_path) -> None:
    """No --time-budget: the behaviour from before the option, and no budget in the checkpoint."""
    module = torch.nn.Linear(2, 1)
    loss = Loss(module)
    assert train(module, loss, 50, tmp_path, **FAST) == 50
    state = _state(tmp_path)
    assert state["step"] == 50 and "budgeted_total" not in state
    assert loss.calls == 50 and finished(tmp_path, 50) and not finished(tmp_path, 51)


def test_a_budget_sets_the_total_from_the_measured_speed(tmp_path) -> None:
    """10 ms steps and 1.5 s: far fewer than the 100000 steps asked for, at least the calibration's,
    kept in the checkpoint, and the stage counts as finished."""
    module = torch.nn.Linear(2, 1)
    loss = Loss(module, lambda step: 0.01)
    t0 = time.time()
    total = train(module, loss, 100000, tmp_path, time_budget=1.5, **FAST)
    took = time.time() - t0
    assert CALIBRATION[1] <= total < 100000
    state = _state(tmp_path)
    assert state["step"] == total == state["budgeted_total"] == loss.calls
    assert finished(tmp_path, 100000)
    assert took < 1.5 * 2 + 1


def test_a_budgeted_run_resumes_to_the_same_total(tmp_path) -> None:
    """Rerunning a budgeted stage (e.g. the pipeline restarted) reuses the total it chose instead of
    measuring again: same total, no further step."""
    module = torch.nn.Linear(2, 1)
    total = train(module, Loss(module, lambda step: 0.005), 100000, tmp_path, time_budget=0.6, **FAST)
    again = Loss(module, lambda step: 0.005)
    assert train(module, again, 100000, tmp_path, time_budget=0.6, **FAST) == total
    assert again.calls == 0 and _state(tmp_path)["step"] == total


def test_a_budget_spent_before_calibration_stops_the_run(tmp_path) -> None:
    """100 ms steps and 0.35 s: the budget runs out long before step 40 measures the speed; the loop
    stops after the step that crossed it and checkpoints there."""
    module = torch.nn.Linear(2, 1)
    loss = Loss(module, lambda step: 0.1)
    total = train(module, loss, 100000, tmp_path, time_budget=0.35, **FAST)
    assert 1 <= total < CALIBRATION[0]
    state = _state(tmp_path)
    assert state["step"] == total == state["budgeted_total"] == loss.calls
    assert finished(tmp_path, 100000)


def test_steps_that_slow_down_after_calibration_stop_at_the_budget(tmp_path, monkeypatch) -> None:
    """Fast while measured (2 ms), then 50 ms a step: the calibrated total would overrun the budget
    by far, so the loop stops short of it, within about a step of the budget."""
    estimates = []

    def recording_fit(*args):
        estimates.append(fit(*args))
        return estimates[-1]

    fit = loop._fit
    monkeypatch.setattr(loop, "_fit", recording_fit)
    module = torch.nn.Linear(2, 1)
    loss = Loss(module, lambda step: 0.002 if step < CALIBRATION[1] else 0.05)
    t0 = time.time()
    total = train(module, loss, 100000, tmp_path, time_budget=1.0, **FAST)
    took = time.time() - t0
    assert len(estimates) == 1 and CALIBRATION[1] <= total < estimates[0]
    state = _state(tmp_path)
    assert state["step"] == total == state["budgeted_total"] == loss.calls
    assert took < 5  # without the stop: about 20 s (the estimate's steps at 50 ms); loose for busy CI machines


def test_fit_keeps_three_percent_of_the_budget() -> None:
    """The arithmetic behind the budgeted total, without a clock: 0.97 * budget, capped by --steps,
    never below the steps already done."""
    assert loop._fit(100.0, 1.0, 0.5, 40, 100000) == 40 + int((97.0 - 1.0) / 0.5)
    assert loop._fit(100.0, 1.0, 0.5, 40, 100) == 100
    assert loop._fit(100.0, 99.0, 0.5, 40, 100000) == 40
