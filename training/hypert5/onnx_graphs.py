"""The four ONNX graphs of a bundle (models/README.md, "Graphs"): wrappers with flat inputs, and export.

Each wrapper's ``inputs``/``outputs`` list ``(name, dtype, shape)`` with symbolic dims; the same
lists become the manifest's graph table, and ``bundle.validate`` checks them against the ONNX files.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from .adapters import DECODER_PREFIXES, ENCODER_PREFIXES, TensorSpec, for_graph, lora_specs, prefix_specs
from .checkpoint import Models
from .hypermodel import HyperT5
from .t5 import T5

OPSET = 17
IO = tuple[str, str, list]  # (name, dtype, shape with int or symbolic dims)


def _adapter_io(specs: list[TensorSpec]) -> list[IO]:
    return [(s.name, "float32", ["batch", *s.shape]) for s in specs]


class EncoderGraph(nn.Module):
    def __init__(self, t5: T5, adapter_specs: list[TensorSpec]):
        super().__init__()
        self.t5, self.adapter_names = t5, [s.name for s in adapter_specs]
        d = t5.dims
        self.vocab_size = d.vocab_size
        cache = ["batch", d.num_decoder_layers, d.num_heads, "src_len", d.d_kv]
        self.inputs: list[IO] = [
            ("input_ids", "int64", ["batch", "src_len"]),
            ("attention_mask", "int64", ["batch", "src_len"]),
            *_adapter_io(adapter_specs),
        ]
        self.outputs: list[IO] = [("cross_key", "float32", cache), ("cross_value", "float32", cache)]

    def forward(self, input_ids: Tensor, attention_mask: Tensor, *adapter_tensors: Tensor) -> tuple[Tensor, Tensor]:
        adapters = dict(zip(self.adapter_names, adapter_tensors))
        return self.t5.cross_kv(self.t5.encode(input_ids, attention_mask, adapters), adapters)


class LayerList:
    """Per-layer tensors read as one stacked tensor: ``t5.py`` reads layer ``l`` of a cache or an adapter
    tensor as ``tensor[:, l]``, which here is the layer's own graph input (no slicing op in the graph)."""

    def __init__(self, layers: list[Tensor]):
        self.layers = layers

    def __getitem__(self, index: tuple) -> Tensor:
        rows, layer = index
        if rows != slice(None):
            raise IndexError(f"LayerList supports [:, layer] only, got {index}")
        return self.layers[layer]


def _per_layer(spec: TensorSpec) -> bool:
    """Adapter tensors with a layer dimension go in per layer; a "peft" prefix's mask [P] has none."""
    return not spec.name.endswith(".mask")


class DecoderGraph(nn.Module):
    """One decode step with every per-layer tensor a graph input of its own (models/README.md, "decoder"):
    the keys/values ``<name>.<l>``, the adapter tensors ``<tensor>.<l>``, and the new keys/values as
    outputs, so that the graph holds no slicing or stacking of a layer dimension."""

    KV = ("past_key", "past_value", "cross_key", "cross_value")
    # Only the decoders: ONNX Runtime infers the other graphs' output shapes from their files as they are
    # (rewriting the encoder's would change its bytes, hence the model's fingerprint and every adapter id).
    PIN_OUTPUT_SHAPES = True

    def __init__(self, t5: T5, adapter_specs: list[TensorSpec]):
        super().__init__()
        self.t5, self.specs = t5, adapter_specs
        d = t5.dims
        self.vocab_size = d.vocab_size
        self.layers = d.num_decoder_layers
        layers = range(self.layers)
        kv_len = {"past_key": "past_len", "past_value": "past_len", "cross_key": "src_len", "cross_value": "src_len"}
        adapter_inputs: list[IO] = []
        for spec in adapter_specs:
            if _per_layer(spec):
                adapter_inputs += [
                    (f"{spec.name}.{i}", "float32", ["batch", *spec.shape[1:]]) for i in range(spec.shape[0])
                ]
            else:
                adapter_inputs.append((spec.name, "float32", ["batch", *spec.shape]))
        self.inputs: list[IO] = [
            ("input_ids", "int64", ["batch", 1]),
            ("self_attention_mask", "int64", ["batch", "past_len_plus_1"]),
            ("encoder_attention_mask", "int64", ["batch", "src_len"]),
            *[
                (f"{name}.{i}", "float32", ["batch", d.num_heads, kv_len[name], d.d_kv])
                for name in self.KV
                for i in layers
            ],
            *adapter_inputs,
        ]
        new = ["batch", d.num_heads, 1, d.d_kv]
        self.outputs: list[IO] = [
            ("logits", "float32", ["batch", d.vocab_size]),
            *[(f"new_key.{i}", "float32", new) for i in layers],
            *[(f"new_value.{i}", "float32", new) for i in layers],
        ]

    def forward(self, input_ids, self_attention_mask, encoder_attention_mask, *rest: Tensor):
        L = self.layers
        kv = [LayerList(list(rest[i * L : (i + 1) * L])) for i in range(len(self.KV))]
        rest = rest[len(self.KV) * L :]
        adapters = {}
        for spec in self.specs:
            if _per_layer(spec):
                n = spec.shape[0]
                adapters[spec.name], rest = LayerList(list(rest[:n])), rest[n:]
            else:
                adapters[spec.name], rest = rest[0], rest[1:]
        logits, new_key, new_value = self.t5.decoder_step(
            input_ids, self_attention_mask, encoder_attention_mask, *kv, adapters, stack_new=False
        )
        return (logits, *new_key, *new_value)


class HyperGraph(nn.Module):
    def __init__(self, hyper: HyperT5):
        super().__init__()
        self.hyper = hyper
        self.vocab_size = hyper.dims.vocab_size
        self.inputs = [("input_ids", "int64", ["batch", "ctx_len"]), ("attention_mask", "int64", ["batch", "ctx_len"])]
        self.outputs = _adapter_io(hyper.specs)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, ...]:
        adapters = self.hyper(input_ids, attention_mask)
        return tuple(adapters[s.name] for s in self.hyper.specs)


def build_graphs(models: Models) -> dict[str, nn.Module]:
    s = models.settings
    specs = lora_specs(s.dims, s.lora) + prefix_specs(s.dims, s.prefix)
    return {
        "encoder": EncoderGraph(models.downstream, for_graph(specs, ENCODER_PREFIXES)),
        "decoder": DecoderGraph(models.downstream, for_graph(specs, DECODER_PREFIXES)),
        # One kind's branch only: a single-kind batch skips the other kind's work (models/README.md).
        "decoder_lora": DecoderGraph(models.downstream, for_graph(lora_specs(s.dims, s.lora), DECODER_PREFIXES)),
        "decoder_prefix": DecoderGraph(models.downstream, for_graph(prefix_specs(s.dims, s.prefix), DECODER_PREFIXES)),
        "hyper_lora": HyperGraph(models.hyper["lora"]),
        "hyper_prefix": HyperGraph(models.hyper["prefix"]),
    }


def example_inputs(graph: nn.Module, batch: int = 2, length: int = 5, past: int = 3) -> tuple[Tensor, ...]:
    """Small inputs of the right shapes for tracing and parity checks (masks of ones, random floats)."""
    sizes = {"batch": batch, "src_len": length, "ctx_len": length, "past_len": past, "past_len_plus_1": past + 1}
    generator = torch.Generator().manual_seed(0)
    out = []
    for name, dtype, shape in graph.inputs:
        concrete = [sizes[d] if isinstance(d, str) else d for d in shape]
        if dtype == "int64":
            t = (
                torch.ones(concrete, dtype=torch.long)
                if "mask" in name
                else torch.randint(3, graph.vocab_size, concrete, generator=generator)
            )
        elif name.endswith(".mask"):  # a "peft" prefix mask: row 0 attends to all but its first position
            t = torch.ones(concrete)
            t[0, 0] = 0.0
        else:
            t = torch.randn(concrete, generator=generator) * 0.1
        out.append(t)
    return tuple(out)


def export_graph(graph: nn.Module, path: Path) -> None:
    graph.eval()
    dynamic = {
        name: {i: d for i, d in enumerate(shape) if isinstance(d, str)}
        for name, _, shape in graph.inputs + graph.outputs
    }
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        torch.onnx.export(
            graph,
            example_inputs(graph),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=[n for n, _, _ in graph.inputs],
            output_names=[n for n, _, _ in graph.outputs],
            dynamic_axes=dynamic,
            do_constant_folding=True,
        )
    if getattr(graph, "PIN_OUTPUT_SHAPES", False):
        _pin_output_shapes(path, graph.outputs)


def _pin_output_shapes(path: Path, outputs: list[IO]) -> None:
    """Write the declared output shapes into the graph. The exporter's shape inference can leave a dim it
    could not follow symbolic under a made-up name (a "peft" prefix's decoder gives ``new_key.1`` a
    ``Transposenew_key.1_dim_2`` for what is always 1), and the manifest must match the graph exactly."""
    import onnx

    model = onnx.load(str(path))
    declared = {name: shape for name, _, shape in outputs}
    changed = False
    for out in model.graph.output:
        dims = out.type.tensor_type.shape.dim
        for dim, want in zip(dims, declared[out.name]):
            if isinstance(want, int) and dim.dim_value != want:
                dim.Clear()
                dim.dim_value = want
                changed = True
    if changed:
        onnx.save(model, str(path))
