"""Scale-out options of the training loop: torchrun data parallelism (on CPU, gloo), gradient
checkpointing and bf16 autocast; and the single-process path left exactly as it was."""

import json
import math
import os
import random
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import ddp_worker
import pytest
import torch
import torch.nn.functional as F

from hypert5.config import HyperConfig, LoraSpec, PrefixSpec, T5Dims
from hypert5.hypermodel import HyperT5
from hypert5.t5 import T5, enable_gradient_checkpointing
from hypert5.train.loop import LoopOptions, train
from hypert5.train.settings import stage_parser, step_rng

WORKER = Path(ddp_worker.__file__)
STEPS, CUT_AT = 4, 2  # the first launch is cut off before step 2, just after the checkpoint at 2


def launch(out: Path, stop_at: int, *flags: str) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    }
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(WORKER),
            str(out),
            str(STEPS),
            str(stop_at),
            *flags,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Two torchrun launches of two ranks: cut off after the step-2 checkpoint, then resumed to step 4
    with gradient checkpointing on (which must not change a number)."""
    out = tmp_path_factory.mktemp("ddp")
    launch(out, CUT_AT)
    first = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    launch(out, 0, "--grad-checkpointing")
    second = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    params = [torch.load(out / f"params{r}.pt") for r in range(2)]
    return out, first, second, params


@contextmanager
def as_rank(rank: int, world: int = 2):
    """Make step_rng draw rank ``rank``'s data in this (single, ungrouped) process."""
    saved = {k: os.environ.get(k) for k in ("RANK", "WORLD_SIZE")}
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world))
    try:
        yield
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def test_ranks_draw_different_data_and_the_second_launch_resumes(smoke) -> None:
    _, first, second, _ = smoke
    assert [r["status"] for r in first] == ["interrupted"] * 2 and [r["status"] for r in second] == ["done"] * 2
    assert all(r["world_size"] == 2 for r in first + second)
    assert [r["checkpointing"] for r in first + second] == [[False, False]] * 2 + [[True, True]] * 2
    assert [sorted(r["seen"]) for r in first] == [["0", "1"]] * 2  # cut off before step 2
    assert [sorted(r["seen"]) for r in second] == [["2", "3"]] * 2  # resumed at 2, not 0
    for launch_seen in (first, second):
        assert all(launch_seen[0]["seen"][s] != launch_seen[1]["seen"][s] for s in launch_seen[0]["seen"])
    with as_rank(1):  # the streams are the rank-keyed step_rng ones, so they can be replayed
        assert ddp_worker.step_loss(*ddp_worker.build(), 3)[1] == second[1]["seen"]["3"]


def test_rank0_alone_writes_one_checkpoint_and_one_log(smoke) -> None:
    out, _, _, _ = smoke
    assert sorted(p.name for p in (out / "state").iterdir()) == ["log.jsonl", "state.pt"]  # no stray tmp
    steps = [json.loads(line)["step"] for line in (out / "state" / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]  # one writer: no step twice, and the resumed launch continued at 3
    assert torch.load(out / "state" / "state.pt", weights_only=False)["step"] == STEPS


def test_replicas_stay_identical_and_equal_one_process_on_the_averaged_loss(smoke, tmp_path) -> None:
    """DDP (gradients averaged over 2 ranks), interrupted and resumed with gradient checkpointing,
    equals one uninterrupted process minimizing the mean of the two ranks' losses."""
    _, _, _, params = smoke
    assert all(torch.equal(params[0][k], params[1][k]) for k in params[0])
    hyper, downstream = ddp_worker.build()
    start = {k: v.clone() for k, v in hyper.state_dict().items()}

    def mean_loss(step: int) -> torch.Tensor:
        losses = []
        for rank in range(2):
            with as_rank(rank):
                losses.append(ddp_worker.step_loss(hyper, downstream, step)[0])
        return (losses[0] + losses[1]) / 2

    train(hyper, mean_loss, STEPS, tmp_path / "reference", **ddp_worker.TRAIN)
    trained = hyper.state_dict()
    assert any(not torch.equal(start[k], trained[k]) for k in start)
    for k in trained:
        torch.testing.assert_close(params[0][k], trained[k], rtol=1e-4, atol=1e-5, msg=k)


def test_a_loss_that_bypasses_the_ddp_wrapper_is_caught(smoke) -> None:
    _, first, _, _ = smoke
    assert all("ranks disagree on the parameters" in r["bypass_error"] for r in first)


def test_single_process_data_stream_is_unchanged(monkeypatch) -> None:
    for var in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    assert step_rng(3, "stage2-lora", 17).random() == random.Random("3/stage2-lora/17").random()
    monkeypatch.setenv("WORLD_SIZE", "1")  # torchrun --nproc_per_node 1 too
    monkeypatch.setenv("RANK", "0")
    assert step_rng(3, "stage2-lora", 17).random() == random.Random("3/stage2-lora/17").random()


# ---- gradient checkpointing and bf16 (in process) ---------------------------------------------------

DIMS = T5Dims(vocab_size=100, d_model=32, d_kv=8, num_heads=4, d_ff=64, num_layers=2, num_decoder_layers=3)
HYPER = HyperConfig(kind="lora", head_hidden=16, lora=LoraSpec(rank=4), prefix=PrefixSpec(num_positions=3))


def _batch(seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, DIMS.vocab_size, (2, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    target = torch.randint(3, DIMS.vocab_size, (2, 5), generator=g)
    return ids, mask, torch.cat([torch.zeros_like(target[:, :1]), target[:, :-1]], 1), target


def _t5_loss(model: T5, adapters=None) -> torch.Tensor:
    ids, mask, decoder_in, target = _batch()
    logits = model(ids, mask, decoder_in, adapters)
    return F.cross_entropy(logits.reshape(-1, DIMS.vocab_size), target.reshape(-1))


def _hyper_loss(hyper: HyperT5, downstream: T5) -> torch.Tensor:
    ctx, ctx_mask, _, _ = _batch(1)
    return _t5_loss(downstream, hyper(ctx, ctx_mask))


def _grads(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


def _count_block_runs(model: T5) -> list[int]:
    # A pre-hook: a recomputation stops early, once the last tensor the backward needs exists, so a
    # post-forward hook of the block's last layer would never fire during it.
    calls = [0]
    model.encoder.block[0].layer[-1].register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_gradient_checkpointing_keeps_loss_and_gradients_of_a_trained_t5() -> None:
    """Train mode with dropout: the recomputation must replay the same dropout masks."""
    torch.manual_seed(0)
    model = T5(DIMS, dropout=0.1).train()
    calls = _count_block_runs(model)
    results = []
    for on in (False, True):
        assert enable_gradient_checkpointing(model, on) == 1
        model.zero_grad()
        torch.manual_seed(1)
        loss = _t5_loss(model)
        loss.backward()
        results.append((loss.detach(), _grads(model)))
    assert calls[0] == 3  # once without, twice (forward + recompute) with checkpointing
    (loss0, grads0), (loss1, grads1) = results
    torch.testing.assert_close(loss1, loss0, rtol=0, atol=0)
    assert grads0.keys() == grads1.keys() and len(grads0) > 0
    for name in grads0:
        torch.testing.assert_close(grads1[name], grads0[name], rtol=1e-6, atol=1e-7, msg=name)
    with torch.no_grad():  # no backward can follow: nothing is recomputed or kept
        _t5_loss(model)
    assert calls[0] == 4


def test_gradient_checkpointing_reaches_the_hypermodel_body_and_the_frozen_downstream() -> None:
    torch.manual_seed(0)
    downstream = T5(DIMS, lora_scale=HYPER.lora.scaling).eval()  # frozen, eval mode, in the backward path
    downstream.requires_grad_(False)
    hyper = HyperT5.from_downstream(downstream, HYPER).train()
    with torch.no_grad():  # make the zero-initialized LoRA b side non-zero so the downstream matters
        for head in hyper.heads.values():
            head.down.weight.normal_(0, 0.05)
    calls = _count_block_runs(downstream)
    results = []
    for on in (False, True):
        assert enable_gradient_checkpointing(hyper, on) == 1  # the body
        enable_gradient_checkpointing(downstream, on)
        hyper.zero_grad()
        loss = _hyper_loss(hyper, downstream)
        loss.backward()
        results.append((loss.detach(), _grads(hyper)))
    assert calls[0] == 3
    (loss0, grads0), (loss1, grads1) = results
    torch.testing.assert_close(loss1, loss0, rtol=0, atol=0)
    assert grads0.keys() == grads1.keys() and "body.encoder.block.0.layer.0.SelfAttention.q.weight" in grads0
    for name in grads0:
        torch.testing.assert_close(grads1[name], grads0[name], rtol=1e-6, atol=1e-7, msg=name)


def _train_first_loss(tmp_path: Path, options: LoopOptions) -> tuple[float, list[bool], T5]:
    torch.manual_seed(0)
    model = T5(DIMS)
    losses, autocast = [], []

    def loss_fn(step: int) -> torch.Tensor:
        autocast.append(torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16)
        loss = _t5_loss(model)
        losses.append(loss.item())
        return loss

    train(model, loss_fn, 2, tmp_path, lr=1e-3, warmup=1, options=options)
    return losses[0], autocast, model


def test_bf16_autocasts_the_forward_with_a_loss_close_to_fp32(tmp_path) -> None:
    fp32, autocast32, _ = _train_first_loss(tmp_path / "fp32", LoopOptions())
    bf16, autocast16, model = _train_first_loss(tmp_path / "bf16", LoopOptions(bf16=True, grad_checkpointing=True))
    assert autocast32 == [False, False] and autocast16 == [True, True]
    assert math.isfinite(bf16) and abs(bf16 - fp32) < 0.02 * fp32
    assert model.gradient_checkpointing
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay fp32
    state = torch.load(tmp_path / "bf16" / "state.pt", weights_only=False)
    assert all(v.dtype == torch.float32 for v in state["module"].values())


def test_every_stage_parser_takes_the_loop_options() -> None:
    parser = stage_parser(None, steps=10, lr=1e-3)
    assert LoopOptions.from_args(parser.parse_args([])) == LoopOptions()
    assert LoopOptions.from_args(parser.parse_args(["--bf16", "--grad-checkpointing"])) == LoopOptions(
        bf16=True, grad_checkpointing=True
    )


def test_the_stage_commands_run_under_torchrun(tmp_path) -> None:
    """The real stage-2 command, as training/README.md "Several GPUs or machines" gives it, on 2 gloo ranks: one
    writer for the weights and provenance, and the stage finishes on every rank."""
    from hypert5 import checkpoint
    from hypert5.presets import random_models

    run = tmp_path / "run"
    checkpoint.save(run, random_models("tiny", 0))
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    }
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "hypert5.train.finetune",
            "--run-dir",
            str(run),
            "--kind",
            "lora",
            "--steps",
            "2",
            "--episodes",
            "2",
            "--queries",
            "1",
            "--k-max",
            "2",
            "--threads",
            "1",
            "--grad-checkpointing",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("stage 2 (lora) done") == 1  # rank 0 alone reports and writes
    state = torch.load(run / "stage2_lora" / "state.pt", map_location="cpu", weights_only=False)
    assert state["step"] == 2
    assert (run / "hyper_lora.safetensors").exists()
    info = json.loads((run / "hypert5.json").read_text())["provenance"]["stages"]["stage2_finetune_lora"]
    assert info["steps"] == 2
