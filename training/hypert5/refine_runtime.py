"""Refinement through a bundle's training-step graphs in ONNX Runtime: the Python reference of what the
service runs (the batch, the Adam state, the step loop), used by the evaluation and the tests.

Adapters are dicts of per-adapter numpy arrays, as in ``ort_runtime``. Deterministic: the same bundle,
start, demonstrations and settings give the same bytes (one intra-op thread by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .ort_runtime import Adapter, OrtBundle
from .refine import TextLimits, augment_pairs, encode_batch
from .refine_graph import UPDATED


@dataclass(frozen=True)
class Checkpoint:
    steps: int  # updates done
    adapter: Adapter
    loss: float  # the loss of the step that produced it (measured before its update)


class OrtRefiner:
    def __init__(self, runtime: OrtBundle):
        self.runtime = runtime
        manifest = runtime.manifest
        if "refine" not in manifest:
            raise ValueError(
                f"{runtime.dir}: the bundle has no training-step graphs (manifest field refine); "
                f"add them with python -m hypert5.export_refine"
            )
        self.settings = manifest["refine"]["kinds"]
        special = manifest["special_ids"]
        self.limits = TextLimits(
            eos=special["eos"],
            pad=special["pad"],
            source_max_tokens=manifest["encoder_input"]["max_tokens"],
            target_max_tokens=manifest["generation"]["max_new_tokens"],
        )

    def batch(self, demos: list[tuple[str, str]], augment: str) -> dict[str, np.ndarray]:
        pairs = augment_pairs(demos, augment, self.runtime.hyper_format)
        return encode_batch(pairs, self.runtime.tokenizer.encode, self.limits)

    def _graph(self, kind: str):
        name = self.settings[kind]["graph"]
        session = self.runtime.sessions[name]
        trained = [o.name[len(UPDATED) + 1 :] for o in session.get_outputs() if o.name.startswith(f"{UPDATED}.{kind}.")]
        return session, trained

    def run(
        self,
        kind: str,
        start: Adapter,
        batch: dict[str, np.ndarray],
        checkpoints: list[int],
        learning_rate: float | None = None,
    ) -> Iterator[Checkpoint]:
        """Adam from ``start`` (zero moments); yields the adapter after each count in ``checkpoints``."""
        session, trained = self._graph(kind)
        lr = np.array(self.settings[kind]["learning_rate"] if learning_rate is None else learning_rate, np.float32)
        params = {n: np.ascontiguousarray(start[n], np.float32) for n in trained}
        fixed = {n: start[n] for n in start if n not in params}  # a "peft" prefix's mask
        moments = {f"{m}.{n}": np.zeros_like(params[n]) for m in ("adam_m", "adam_v") for n in trained}
        outputs = [o.name for o in session.get_outputs()]
        done, loss = 0, float("nan")
        for target in sorted(checkpoints):
            while done < target:
                got = dict(
                    zip(
                        outputs,
                        session.run(
                            None,
                            {
                                **batch,
                                **params,
                                **moments,
                                **fixed,
                                "learning_rate": lr,
                                "step": np.array(float(done), np.float32),
                            },
                        ),
                    )
                )
                loss = float(got["loss"])
                params = {n: got[f"{UPDATED}.{n}"] for n in trained}
                moments = {k: got[f"{UPDATED}.{k}"] for k in moments}
                done += 1
            yield Checkpoint(done, {**params, **fixed}, loss)

    def loss(self, kind: str, adapter: Adapter, batch: dict[str, np.ndarray]) -> float:
        """The mean token cross-entropy of ``adapter`` on ``batch`` (one step at learning rate 0)."""
        return next(self.run(kind, adapter, batch, [1], learning_rate=0.0)).loss
