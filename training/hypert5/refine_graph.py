"""The bundle's training-step graphs (models/README.md, "Refinement graphs"): one Adam step of an
adapter on a padded batch, with the frozen downstream inside, as one ONNX graph of standard ops.

Inputs: the batch (``input_ids``/``attention_mask`` (rows, src_len), ``target_ids``/``target_mask``
(rows, tgt_len)), ``step`` (float32 scalar: updates already done), ``learning_rate`` (float32 scalar),
then per trained tensor ``<name>``, ``adam_m.<name>``, ``adam_v.<name>`` (the adapter's shape, no batch
dimension). Outputs: ``loss`` (the mean token cross-entropy *before* the update) and
``updated.<name>``, ``updated.adam_m.<name>``, ``updated.adam_v.<name>``.

How it is built: the loss, ``torch.autograd.grad`` with respect to the adapter only, and Adam
(``refine.py``) are traced together by ``make_fx`` with the core ATen decompositions, then written by
``torch.onnx.export(dynamo=True)``; ``refine_simplify`` then rewrites what the trace leaves costly to run
(the same values from fewer nodes). Left to the exporter's own decompositions the mean-reduction
backward loses its division and every gradient comes out too large by the token count, which is why
the exporter gates every graph on a parity check of loss, gradients and parameters (``refine_check``).
Three more traps: one tensor object passed as two example inputs becomes one graph input (the
moments get distinct tensors here); equal example sizes are taken for one symbolic size (source and
target lengths get different ones); the exporter drops Adam's scalar ``+ eps``, so a zero gradient
updates to NaN (``refine.adam_update`` adds it as a tensor, and the check starts one case from zeros).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from .adapters import TensorSpec
from .refine import adam_update, masked_mean_nll, teacher_forcing
from .t5 import T5

IO = tuple[str, str, list]
BATCH_IO: list[IO] = [
    ("input_ids", "int64", ["rows", "src_len"]),
    ("attention_mask", "int64", ["rows", "src_len"]),
    ("target_ids", "int64", ["rows", "tgt_len"]),
    ("target_mask", "int64", ["rows", "tgt_len"]),
    ("step", "float32", []),
    ("learning_rate", "float32", []),
]
MOMENTS = ("adam_m", "adam_v")
UPDATED = "updated"


def trained_specs(specs: list[TensorSpec]) -> list[TensorSpec]:
    """The tensors a step updates: all of the kind's but a "peft" prefix's 0/1 mask."""
    return [s for s in specs if not s.name.endswith(".mask")]


class TrainStep:
    """``(batch, step, lr, *params, *adam_m, *adam_v) -> (loss, *params', *adam_m', *adam_v')`` for one
    adapter kind on a frozen T5. Tensors of the kind that are not trained (a "peft" mask) are inputs
    after the moments, fed as they are."""

    def __init__(self, t5: T5, specs: list[TensorSpec]):
        self.t5 = t5.eval()
        for p in self.t5.parameters():
            p.requires_grad_(False)
        self.trained = trained_specs(specs)
        self.fixed = [s for s in specs if s not in self.trained]
        names = [s.name for s in self.trained]
        shapes = {s.name: list(s.shape) for s in specs}
        self.inputs: list[IO] = [
            *BATCH_IO,
            *[(n, "float32", shapes[n]) for n in names],
            *[(f"{m}.{n}", "float32", shapes[n]) for m in MOMENTS for n in names],
            *[(s.name, "float32", list(s.shape)) for s in self.fixed],
        ]
        self.outputs: list[IO] = [
            ("loss", "float32", []),
            *[(f"{UPDATED}.{n}", "float32", shapes[n]) for n in names],
            *[(f"{UPDATED}.{m}.{n}", "float32", shapes[n]) for m in MOMENTS for n in names],
        ]

    def loss(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        target_ids: Tensor,
        target_mask: Tensor,
        adapter: dict[str, Tensor],
    ) -> Tensor:
        d = self.t5.dims
        decoder_in, _ = teacher_forcing(target_ids, target_mask, d.decoder_start_token_id, d.pad_token_id)
        rows = input_ids.shape[0]
        batched = {k: v.unsqueeze(0).expand(rows, *v.shape) for k, v in adapter.items()}  # one adapter, every row
        logits = self.t5(input_ids, attention_mask, decoder_in, batched)  # (rows, T, V)
        return masked_mean_nll(logits, target_ids, target_mask)

    def __call__(self, input_ids, attention_mask, target_ids, target_mask, step, learning_rate, *state):
        n = len(self.trained)
        params, m, v, fixed = state[:n], state[n : 2 * n], state[2 * n : 3 * n], state[3 * n :]
        params = [p.detach().requires_grad_(True) for p in params]
        with torch.enable_grad():
            adapter = {s.name: p for s, p in zip(self.trained, params)}
            adapter.update({s.name: t for s, t in zip(self.fixed, fixed)})
            loss = self.loss(input_ids, attention_mask, target_ids, target_mask, adapter)
            grads = torch.autograd.grad(loss, params)
        updates = [adam_update(p.detach(), g, mm, vv, step, learning_rate) for p, g, mm, vv in zip(params, grads, m, v)]
        return (loss.detach(), *[u[0] for u in updates], *[u[1] for u in updates], *[u[2] for u in updates])


def example_args(
    step: TrainStep, rows: int = 3, src_len: int = 7, tgt_len: int = 5, seed: int = 0
) -> tuple[Tensor, ...]:
    """Distinct example tensors for every input (see the module docstring), source and target lengths
    different, the last row padded on both sides."""
    g = torch.Generator().manual_seed(seed)
    vocab = step.t5.dims.vocab_size
    ids = torch.randint(3, vocab, (rows, src_len), generator=g)
    mask = torch.ones(rows, src_len, dtype=torch.long)
    mask[-1, src_len - 2 :] = 0
    targets = torch.randint(3, vocab, (rows, tgt_len), generator=g)
    target_mask = torch.ones(rows, tgt_len, dtype=torch.long)
    target_mask[-1, tgt_len - 2 :] = 0
    targets = targets * target_mask
    state = []
    for name, _, shape in step.inputs[len(BATCH_IO) :]:
        if name.startswith("adam_v."):
            state.append(torch.rand(shape, generator=g) * 1e-6)
        elif name.startswith("adam_m."):
            state.append(torch.randn(shape, generator=g) * 1e-3)
        elif name.endswith(".mask"):
            state.append(torch.ones(shape))
        else:
            state.append(torch.randn(shape, generator=g) * 0.1)
    return (ids, mask, targets, target_mask, torch.tensor(3.0), torch.tensor(1e-3), *state)


def trace(step: TrainStep) -> torch.fx.GraphModule:
    from torch._decomp import core_aten_decompositions
    from torch.fx.experimental.proxy_tensor import make_fx

    args = example_args(step)
    assert len({id(a) for a in args}) == len(args), "every example input must be its own tensor"
    return make_fx(
        step, tracing_mode="symbolic", decomposition_table=core_aten_decompositions(), _allow_non_fake_inputs=True
    )(*args)


def _module(gm: torch.fx.GraphModule, count: int) -> nn.Module:
    """An nn.Module whose forward takes ``count`` positional tensors (the dynamo exporter maps
    dynamic shapes and input names by signature)."""
    params = ", ".join(f"x{i}" for i in range(count))
    namespace = {"gm": gm}
    exec(f"def forward(self, {params}):\n    return gm({params})", namespace)  # noqa: S102 (fixed text)
    cls = type("TrainStepModule", (nn.Module,), {"forward": namespace["forward"]})
    module = cls()
    module.gm = gm
    return module


def export_step(step: TrainStep, path: Path, simplified: bool = True) -> dict[str, int]:
    """Trace and write the graph to ``path`` (weights inside), dims named as in ``step.inputs``, with
    ``refine_simplify``'s rewrites unless ``simplified`` is False; returns the rewrites made per pass."""
    import onnx

    from .refine_simplify import simplify

    gm = trace(step)
    args = example_args(step)
    rows, src, tgt = (torch.export.Dim(n, min=1, max=4096) for n in ("rows", "src_len", "tgt_len"))
    dims = {"rows": rows, "src_len": src, "tgt_len": tgt}
    dynamic = tuple(
        {i: dims[d] for i, d in enumerate(shape)} if any(isinstance(d, str) for d in shape) else None
        for _, _, shape in step.inputs
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _module(gm, len(args)),
            args,
            str(path),
            dynamo=True,
            external_data=False,
            optimize=True,
            input_names=[n for n, _, _ in step.inputs],
            output_names=[n for n, _, _ in step.outputs],
            dynamic_shapes=dynamic,
            verbose=False,
        )
    model = onnx.load(str(path))
    _name_dims(model, step)
    rewrites = simplify(model) if simplified else {}
    onnx.save(model, str(path))
    return rewrites


def _name_dims(model, step: TrainStep) -> None:
    """The exporter names symbolic dims after its own symbols; the manifest's names are the contract."""
    declared = {n: shape for n, _, shape in step.inputs + step.outputs}
    for value in list(model.graph.input) + list(model.graph.output):
        shape = declared[value.name]
        dims = value.type.tensor_type.shape.dim
        for dim, want in zip(dims, shape):
            if isinstance(want, str):
                dim.ClearField("dim_value")
                dim.dim_param = want


SHARED_MIN_BYTES = 1024  # smaller initializers (shape constants) stay inside each graph
ALIGN = 64


def share_weights(sources: dict[str, Path], out_dir: Path, weights_file: str) -> dict[str, int]:
    """Write each graph of ``sources`` (file name -> exported graph) into ``out_dir`` with its large
    initializers moved to one external-data file, ``weights_file``, which stores equal tensors once:
    the step graphs of both kinds hold the same frozen downstream. Returns the byte size of each file
    written. ONNX Runtime reads the weights from beside the graph file."""
    import hashlib

    import onnx
    from onnx.external_data_helper import set_external_data

    offsets: dict[bytes, tuple[int, int]] = {}
    blob = bytearray()
    models = {}
    for name in sorted(sources):
        model = onnx.load(str(sources[name]))
        for tensor in model.graph.initializer:
            data = tensor.raw_data
            if len(data) < SHARED_MIN_BYTES:
                continue
            key = hashlib.sha256(bytes([tensor.data_type]) + repr(list(tensor.dims)).encode() + data).digest()
            if key not in offsets:
                blob.extend(b"\0" * (-len(blob) % ALIGN))
                offsets[key] = (len(blob), len(data))
                blob.extend(data)
            offset, length = offsets[key]
            set_external_data(tensor, location=weights_file, offset=offset, length=length)
            tensor.ClearField("raw_data")
            tensor.data_location = onnx.TensorProto.EXTERNAL
        strip_metadata(model)
        models[name] = model
    (out_dir / weights_file).write_bytes(bytes(blob))
    sizes = {weights_file: len(blob)}
    for name, model in models.items():
        data = model.SerializeToString()
        (out_dir / name).write_bytes(data)
        sizes[name] = len(data)
    return sizes


def strip_metadata(model) -> None:
    """Drop the exporter's per-node provenance (FX node text, Python stack traces with local paths):
    most of a step graph's bytes without its weights, and different on every machine."""
    for node in model.graph.node:
        node.ClearField("metadata_props")
    for value in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        value.ClearField("metadata_props")
    model.graph.ClearField("metadata_props")
