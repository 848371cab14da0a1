"""A minimal ONNX Runtime client of a bundle in Python: the reference the TypeScript service must match.

Used by the exporter's self-check, the parity tests, evaluation against exported bundles and the bench's
ONNX Runtime sections. Adapters are dicts of per-adapter numpy arrays (no batch dimension), as stored by
the service.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from .bundle import adapter_input, validate
from .examples import HyperInputFormat
from .tokenizer import from_spec

Adapter = dict[str, np.ndarray]


class OrtBundle:
    def __init__(self, bundle_dir: Path, threads: int = 1, kind_decoders: bool = True):
        """``kind_decoders=False`` runs every step on ``decoder`` (a measurement of that graph alone)."""
        self.dir = Path(bundle_dir)
        self.manifest: dict[str, Any] = validate(self.dir)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        # The service's setting (src/inference/onnx.ts): graphs run sequentially, so only intra-op threads work.
        options.inter_op_num_threads = 1
        self.sessions = {
            name: ort.InferenceSession(str(self.dir / g["file"]), options, providers=["CPUExecutionProvider"])
            for name, g in self.manifest["graphs"].items()
            if kind_decoders or name not in ("decoder_lora", "decoder_prefix")
        }
        self.tokenizer = from_spec(self.manifest["tokenizer"], self.dir)
        self.special = self.manifest["special_ids"]
        self.hyper_format = HyperInputFormat(**self.manifest["hyper_input"])
        self.adapter_shapes = {
            t["name"]: t["shape"] for k in self.manifest["adapters"]["kinds"].values() for t in k["tensors"]
        }

    def token_ids(self, text: str) -> list[int]:
        """``text``'s ids and eos, with no length limit: the bench measures inputs past the service's limits."""
        return self.tokenizer.encode(text) + [self.special["eos"]]

    def encode_text(self, text: str, max_tokens: int | None = None) -> list[int]:
        """``text``'s ids and eos, refused past ``max_tokens`` (default: the encoder's limit) as the service does."""
        ids = self.token_ids(text)
        limit = max_tokens or self.manifest["encoder_input"]["max_tokens"]
        if len(ids) > limit:
            raise ValueError(f"input is {len(ids)} tokens, the limit is {limit}")
        return ids

    @staticmethod
    def _pad(rows: list[list[int]], pad: int) -> tuple[np.ndarray, np.ndarray]:
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), pad, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)], mask[i, : len(r)] = r, 1
        return ids, mask

    def hyper(self, kind: str, examples: list[tuple[str, str]]) -> Adapter:
        text = self.hyper_format.serialize(examples)
        return self.hyper_ids(kind, self.encode_text(text, self.hyper_format.max_tokens))

    def hyper_ids(self, kind: str, ids: list[int]) -> Adapter:
        """The ``kind`` hypermodel on one row of token ids, as they are (no serialization, no limit)."""
        session = self.sessions[f"hyper_{kind}"]
        row = np.array([ids], dtype=np.int64)  # (1, T)
        outputs = session.run(None, {"input_ids": row, "attention_mask": np.ones_like(row)})
        return {o.name: value[0] for o, value in zip(session.get_outputs(), outputs)}

    def adapter_feeds(self, graph: str, adapters: list[Adapter | None]) -> dict[str, np.ndarray]:
        """The adapter inputs of ``graph`` for a batch, one row per adapter: the whole tensor, or its layer
        for a per-layer input (``<tensor>.<l>``); zeros (an exact no-op) for a row whose adapter is None or
        lacks the tensor (the other kind)."""
        feeds = {}
        for io in self.manifest["graphs"][graph]["inputs"]:
            found = adapter_input(io["name"], self.adapter_shapes)
            if found is None:
                continue
            tensor, layer = found
            shape = self.adapter_shapes[tensor][0 if layer is None else 1 :]
            rows = [
                (a[tensor] if layer is None else a[tensor][layer])
                if a is not None and tensor in a
                else np.zeros(shape, np.float32)
                for a in adapters
            ]
            feeds[io["name"]] = np.stack(rows).astype(np.float32)
        return feeds

    def decoder_graph(self, adapters: list[Adapter | None]) -> str:
        """The graph a step runs on, as the service chooses it (models/README.md, "Graphs"): the kind decoder
        when every row's adapter is of that kind or absent (LoRA's when none has one), else ``decoder``."""
        kinds = {name.split(".", 1)[0] for a in adapters if a is not None for name in a}
        for kind in ("lora", "prefix"):
            if kinds <= {kind} and f"decoder_{kind}" in self.sessions:
                return f"decoder_{kind}"
        return "decoder"

    def _greedy_feeds(
        self, rows: list[list[int]], adapters: list[Adapter | None], graph: str | None = None
    ) -> Iterator[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
        """Greedy decoding one step at a time: yields the encoder's feeds and the next decoder step's, and runs
        that step when resumed; the tokens it picks are the next feeds' ``input_ids``. Every row runs every
        step (stopping at eos is the caller's business). ``graph``: the decoder graph (default: the service's
        choice, ``decoder_graph``)."""
        graph = graph or self.decoder_graph(adapters)
        dims = self.manifest["dims"]
        layers = range(dims["num_decoder_layers"])
        ids, mask = self._pad(rows, self.special["pad"])
        encoder = {"input_ids": ids, "attention_mask": mask, **self.adapter_feeds("encoder", adapters)}
        cross_key, cross_value = self.sessions["encoder"].run(["cross_key", "cross_value"], encoder)
        batch = len(rows)
        empty = np.zeros((batch, dims["num_heads"], 0, dims["d_kv"]), np.float32)
        past_key, past_value = [empty] * len(layers), [empty] * len(layers)  # (B, H, step, d_kv) per layer
        cross = {
            **{f"cross_key.{i}": np.ascontiguousarray(cross_key[:, i]) for i in layers},
            **{f"cross_value.{i}": np.ascontiguousarray(cross_value[:, i]) for i in layers},
        }
        token = np.full((batch, 1), self.special["decoder_start"], np.int64)
        decoder_adapters = self.adapter_feeds(graph, adapters)
        for step in itertools.count():
            decoder = {
                "input_ids": token,
                "self_attention_mask": np.ones((batch, step + 1), np.int64),
                "encoder_attention_mask": mask,
                **{f"past_key.{i}": past_key[i] for i in layers},
                **{f"past_value.{i}": past_value[i] for i in layers},
                **cross,
                **decoder_adapters,
            }
            yield encoder, decoder
            logits, *new = self.sessions[graph].run(None, decoder)
            new_key, new_value = new[: len(layers)], new[len(layers) :]
            past_key = [np.concatenate([p, n], 2) for p, n in zip(past_key, new_key)]
            past_value = [np.concatenate([p, n], 2) for p, n in zip(past_value, new_value)]
            token = logits.argmax(-1)[:, None].astype(np.int64)

    def step_feeds(
        self, texts: list[str], adapters: list[Adapter | None], past: int, graph: str | None = None
    ) -> dict[str, Any]:
        """The encoder's feeds for ``texts`` and the decoder's at the greedy step whose past holds ``past``
        tokens (every row runs every step): what a graph-level measurement or comparison feeds. The decoder
        graph is ``graph`` or the service's choice; ``decoder_graph`` names it."""
        graph = graph or self.decoder_graph(adapters)
        steps = self._greedy_feeds([self.encode_text(t) for t in texts], adapters, graph)
        for _ in range(past + 1):
            encoder, decoder = next(steps)
        return {"encoder": encoder, "decoder": decoder, "decoder_graph": graph}

    def greedy(self, texts: list[str], adapters: list[Adapter | None], max_new_tokens: int) -> list[list[int]]:
        """Greedy decode of a batch (rows may mix adapters); eos excluded from the result."""
        return self.greedy_ids([self.encode_text(t) for t in texts], adapters, max_new_tokens)

    def greedy_ids(
        self, rows: list[list[int]], adapters: list[Adapter | None], max_new_tokens: int, stop_at_eos: bool = True
    ) -> list[list[int]]:
        """Greedy decode of token id rows (rows may mix adapters). With ``stop_at_eos`` a row ends at eos,
        which is excluded from the result; without it every row runs exactly ``max_new_tokens`` steps, eos
        and what follows included: a fixed output length, so that cost measurements do not depend on how
        long the model happens to talk."""
        steps = self._greedy_feeds(rows, adapters)
        next(steps)  # the first step's feeds
        out: list[list[int]] = [[] for _ in rows]
        done = [False] * len(rows)
        for _ in range(max_new_tokens):
            _, feeds = next(steps)  # runs a step: its tokens are the next step's input
            token = feeds["input_ids"]
            for row in range(len(rows)):
                if not done[row]:
                    if stop_at_eos and token[row, 0] == self.special["eos"]:
                        done[row] = True
                    else:
                        out[row].append(int(token[row, 0]))
            if all(done):
                break
        return out
