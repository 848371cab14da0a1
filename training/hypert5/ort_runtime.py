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

from .bundle import validate
from .examples import HyperInputFormat
from .tokenizer import from_spec

Adapter = dict[str, np.ndarray]


class OrtBundle:
    def __init__(self, bundle_dir: Path, threads: int = 1):
        self.dir = Path(bundle_dir)
        self.manifest: dict[str, Any] = validate(self.dir)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        # The service's setting (src/inference/onnx.ts): graphs run sequentially, so only intra-op threads work.
        options.inter_op_num_threads = 1
        self.sessions = {
            name: ort.InferenceSession(str(self.dir / g["file"]), options, providers=["CPUExecutionProvider"])
            for name, g in self.manifest["graphs"].items()
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
        """The adapter inputs of ``graph`` for a batch, one row per adapter; zeros (an exact no-op) for a row
        whose adapter is None or lacks the input (the other kind)."""
        feeds = {}
        for io in self.manifest["graphs"][graph]["inputs"]:
            if io["name"] in self.adapter_shapes:
                shape = self.adapter_shapes[io["name"]]
                feeds[io["name"]] = np.stack(
                    [
                        a[io["name"]] if a is not None and io["name"] in a else np.zeros(shape, np.float32)
                        for a in adapters
                    ]
                ).astype(np.float32)
        return feeds

    def _greedy_feeds(
        self, rows: list[list[int]], adapters: list[Adapter | None]
    ) -> Iterator[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
        """Greedy decoding one step at a time: yields the encoder's feeds and the next decoder step's, and runs
        that step when resumed; the tokens it picks are the next feeds' ``input_ids``. Every row runs every
        step (stopping at eos is the caller's business)."""
        dims = self.manifest["dims"]
        ids, mask = self._pad(rows, self.special["pad"])
        encoder = {"input_ids": ids, "attention_mask": mask, **self.adapter_feeds("encoder", adapters)}
        cross_key, cross_value = self.sessions["encoder"].run(["cross_key", "cross_value"], encoder)
        batch = len(rows)
        past_key = np.zeros((batch, dims["num_decoder_layers"], dims["num_heads"], 0, dims["d_kv"]), np.float32)
        past_value = past_key.copy()
        token = np.full((batch, 1), self.special["decoder_start"], np.int64)
        decoder_adapters = self.adapter_feeds("decoder", adapters)
        for step in itertools.count():
            decoder = {
                "input_ids": token,
                "self_attention_mask": np.ones((batch, step + 1), np.int64),
                "encoder_attention_mask": mask,
                "past_key": past_key,
                "past_value": past_value,
                "cross_key": cross_key,
                "cross_value": cross_value,
                **decoder_adapters,
            }
            yield encoder, decoder
            logits, new_key, new_value = self.sessions["decoder"].run(None, decoder)
            past_key = np.concatenate([past_key, new_key], 3)  # (B, L, H, step + 1, d_kv)
            past_value = np.concatenate([past_value, new_value], 3)
            token = logits.argmax(-1)[:, None].astype(np.int64)

    def step_feeds(
        self, texts: list[str], adapters: list[Adapter | None], past: int
    ) -> dict[str, dict[str, np.ndarray]]:
        """The encoder's feeds for ``texts`` and the decoder's at the greedy step whose past holds ``past``
        tokens (every row runs every step): what a graph-level measurement or comparison feeds."""
        steps = self._greedy_feeds([self.encode_text(t) for t in texts], adapters)
        for _ in range(past + 1):
            encoder, decoder = next(steps)
        return {"encoder": encoder, "decoder": decoder}

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
