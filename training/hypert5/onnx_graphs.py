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


class DecoderGraph(nn.Module):
    def __init__(self, t5: T5, adapter_specs: list[TensorSpec]):
        super().__init__()
        self.t5, self.adapter_names = t5, [s.name for s in adapter_specs]
        d = t5.dims
        self.vocab_size = d.vocab_size
        past = ["batch", d.num_decoder_layers, d.num_heads, "past_len", d.d_kv]
        cross = ["batch", d.num_decoder_layers, d.num_heads, "src_len", d.d_kv]
        new = ["batch", d.num_decoder_layers, d.num_heads, 1, d.d_kv]
        self.inputs = [
            ("input_ids", "int64", ["batch", 1]),
            ("self_attention_mask", "int64", ["batch", "past_len_plus_1"]),
            ("encoder_attention_mask", "int64", ["batch", "src_len"]),
            ("past_key", "float32", past),
            ("past_value", "float32", past),
            ("cross_key", "float32", cross),
            ("cross_value", "float32", cross),
            *_adapter_io(adapter_specs),
        ]
        self.outputs = [
            ("logits", "float32", ["batch", d.vocab_size]),
            ("new_key", "float32", new),
            ("new_value", "float32", new),
        ]

    def forward(
        self,
        input_ids,
        self_attention_mask,
        encoder_attention_mask,
        past_key,
        past_value,
        cross_key,
        cross_value,
        *adapter_tensors,
    ):
        adapters = dict(zip(self.adapter_names, adapter_tensors))
        return self.t5.decoder_step(
            input_ids,
            self_attention_mask,
            encoder_attention_mask,
            past_key,
            past_value,
            cross_key,
            cross_value,
            adapters,
        )


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
