"""The exporter's gate on a training-step graph: ONNX Runtime against PyTorch, on several batch shapes.

The reference is written independently of the traced function: ``F.cross_entropy`` with -100 labels,
``loss.backward()`` and ``torch.optim.Adam``, as the per-task tuning of the evaluation runs them. Compared:
the loss, the gradients (read back from the first moment after a step from zero moments:
m' = (1 - beta1) g), and after ``STEPS`` steps the adapter and its loss.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F

from .refine import ADAM_BETA1, teacher_forcing
from .refine_graph import UPDATED, TrainStep, example_args

SHAPES = ((3, 7, 5), (2, 11, 4), (5, 4, 9), (1, 6, 6))  # (rows, src_len, tgt_len)
STEPS = 5
LEARNING_RATE = 1e-3
# Loss and gradients: float reordering only; a graph that dropped the mean's division would be off by
# the token count (x4 or more on these shapes). After STEPS steps: the loss of the trained tensors, and
# their distance from PyTorch's relative to the distance moved. Adam turns float noise in a near-zero
# gradient into a full step of either sign, so a few entries may differ by a step or two; the loss
# stays within float noise.
LOSS_TOLERANCE = 1e-4
GRAD_TOLERANCE = 1e-3  # relative to the largest gradient
PARAM_TOLERANCE = 5e-2  # relative to the distance moved


def torch_reference(step: TrainStep, feeds: dict[str, np.ndarray], steps: int, lr: float) -> dict:
    """PyTorch eager: loss and gradients at the start, the trained tensors after ``steps`` Adam steps
    and their loss."""
    t = {k: torch.from_numpy(np.asarray(v)) for k, v in feeds.items()}
    d = step.t5.dims
    decoder_in, labels = teacher_forcing(t["target_ids"], t["target_mask"], d.decoder_start_token_id, d.pad_token_id)
    params = {s.name: t[s.name].clone().requires_grad_(True) for s in step.trained}
    fixed = {s.name: t[s.name] for s in step.fixed}
    optimizer = torch.optim.Adam(params.values(), lr=lr)
    rows = t["input_ids"].shape[0]
    out = {}
    for i in range(steps):
        batched = {k: v.unsqueeze(0).expand(rows, *v.shape) for k, v in {**params, **fixed}.items()}
        logits = step.t5(t["input_ids"], t["attention_mask"], decoder_in, batched)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
        optimizer.zero_grad()
        loss.backward()
        if i == 0:
            out["loss"] = float(loss.detach())
            out["grads"] = {k: p.grad.numpy().copy() for k, p in params.items()}
        optimizer.step()
    out["params"] = {k: p.detach().numpy() for k, p in params.items()}
    with torch.no_grad():
        batched = {k: v.unsqueeze(0).expand(rows, *v.shape) for k, v in {**params, **fixed}.items()}
        logits = step.t5(t["input_ids"], t["attention_mask"], decoder_in, batched)
        out["loss_after"] = float(
            F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
        )
    return out


def ort_run(
    session: ort.InferenceSession, step: TrainStep, feeds: dict[str, np.ndarray], steps: int, lr: float
) -> dict:
    """The graph from zero moments: loss and gradients (from m') at the start, the trained tensors
    after ``steps`` steps and their loss."""
    names = [s.name for s in step.trained]
    state = {n: feeds[n] for n in names}
    moments = {f"{m}.{n}": np.zeros_like(feeds[n]) for m in ("adam_m", "adam_v") for n in names}
    out = {}
    for i in range(steps + 1):
        got = dict(
            zip(
                [o.name for o in session.get_outputs()],
                session.run(
                    None,
                    {
                        **feeds,
                        **state,
                        **moments,
                        "step": np.array(float(i), np.float32),
                        "learning_rate": np.array(lr, np.float32),
                    },
                ),
            )
        )
        if i == steps:  # the loss of the trained tensors (this run's update is not used)
            out["loss_after"] = float(got["loss"])
            break
        if i == 0:
            out["loss"] = float(got["loss"])
            out["grads"] = {n: got[f"{UPDATED}.adam_m.{n}"] / (1.0 - ADAM_BETA1) for n in names}
        state = {n: got[f"{UPDATED}.{n}"] for n in names}
        moments = {k: got[f"{UPDATED}.{k}"] for k in moments}
    out["params"] = state
    return out


def _finite(result: dict) -> bool:
    values = [result["loss"], result["loss_after"], *result["grads"].values(), *result["params"].values()]
    return all(bool(np.isfinite(v).all()) for v in values)


def step_differences(
    session: ort.InferenceSession, step: TrainStep, steps: int = STEPS, lr: float = LEARNING_RATE, shapes=SHAPES
) -> dict[str, float]:
    """Worst |ONNX Runtime - PyTorch| over ``shapes``: loss, gradients relative to their scale, parameters
    (inf where ONNX Runtime gives a non-finite value). The last shape starts as a PEFT-style random init
    does, LoRA ``b`` and prefix gates zero, so some gradients are exactly zero."""
    worst = {"loss": 0.0, "grad_relative": 0.0, "params_relative": 0.0, "loss_after": 0.0}
    for seed, shape in enumerate(shapes):
        args = example_args(step, *shape, seed=seed + 1)
        feeds = {
            name: a.numpy()
            for (name, _, _), a in zip(step.inputs, args)
            if name not in ("step", "learning_rate") and not name.startswith(("adam_m.", "adam_v."))
        }
        if seed == len(shapes) - 1:
            feeds = {n: np.zeros_like(v) if n.endswith((".b", ".gate")) else v for n, v in feeds.items()}
        want, got = torch_reference(step, feeds, steps, lr), ort_run(session, step, feeds, steps, lr)
        if not _finite(got):
            return {k: float("inf") for k in worst}
        scale = max(float(np.abs(g).max()) for g in want["grads"].values())
        worst["loss"] = max(worst["loss"], abs(want["loss"] - got["loss"]))
        worst["grad_relative"] = max(
            worst["grad_relative"],
            max(float(np.abs(want["grads"][n] - got["grads"][n]).max()) for n in want["grads"]) / scale,
        )
        start = {n: feeds[n] for n in want["params"]}
        apart = sum(float(((want["params"][n] - got["params"][n]) ** 2).sum()) for n in start) ** 0.5
        moved = sum(float(((want["params"][n] - start[n]) ** 2).sum()) for n in start) ** 0.5
        worst["params_relative"] = max(worst["params_relative"], apart / moved)
        worst["loss_after"] = max(worst["loss_after"], abs(want["loss_after"] - got["loss_after"]))
    return worst


def check_step_graph(session: ort.InferenceSession, step: TrainStep, kind: str) -> dict[str, float]:
    """Raise AssertionError naming the kind and the numbers when the graph is off; else the differences."""
    worst = step_differences(session, step)
    limits = {
        "loss": LOSS_TOLERANCE,
        "grad_relative": GRAD_TOLERANCE,
        "params_relative": PARAM_TOLERANCE,
        "loss_after": LOSS_TOLERANCE,
    }
    bad = {k: v for k, v in worst.items() if v > limits[k]}
    if bad:
        raise AssertionError(f"train_step_{kind}: ONNX Runtime differs from PyTorch: {bad} (limits {limits})")
    return worst
