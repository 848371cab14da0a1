"""Where the evaluation runs: in PyTorch on a checkpoint (``TorchBackend``) or against a running service over
HTTP (``HttpBackend``). Both give the same predictions for the same model, because both

- build the hypermodel's input the service's way: from (input, output) examples, serialized with the
  bundle's ``hyper_input`` format (``HyperInputFormat.serialize``, byte for byte what
  ``src/inference/tokenizer.ts`` ``serializeExamples`` does), tokenized with eos appended;
- fit over-long inputs the same way, on the client side, before anything is sent or encoded (``Limits``):
  the service refuses what is over its limits (422) rather than truncating, so the harness truncates text
  on both backends instead of truncating token ids offline. A query keeps its longest character prefix
  whose tokens (eos included) fit ``encoder_input.max_tokens``. A set of examples first has every input
  and output cut to ``max_example_chars`` characters (the service's ``MAX_EXAMPLE_CHARS``, 4096 by
  default); when the serialization is still over ``hyper_input.max_tokens``, the inputs are cut to one
  common length, the largest that fits (only the longest inputs lose their tails, outputs stay whole);
  only when even empty inputs do not fit are the outputs cut the same way;
- decode greedily (the service: ``temperature: 0``, one beam) for at most ``max_new_tokens`` tokens.

The protocol: ``adapt(examples_or_context, kind) -> handle`` and ``generate(handle, sources,
max_new_tokens) -> texts``; the handle None means the frozen base model. ``TorchBackend`` also takes a raw
context string (the text the hypermodel reads, no examples; e.g. ``def_2pos`` as in training), which the
service cannot take, and ``score`` (log-likelihoods of answer choices, for rank classification).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Union, runtime_checkable

import torch

from .. import checkpoint
from ..examples import HyperInputFormat
from ..generate import greedy, pad_batch
from ..tokenizer import ByteTokenizer, Tokenizer, from_spec

Example = tuple[str, str]
Context = Union[Sequence[Example], str]
DEFAULT_MAX_EXAMPLE_CHARS = 4096  # the service's MAX_EXAMPLE_CHARS default


@dataclass
class Limits:
    """What both backends need to fit inputs the same way: the tokenizer and the bundle's limits."""

    tokenizer: Tokenizer
    hyper_input: HyperInputFormat  # prefixes, separator, max_tokens (eos included), max_examples
    encoder_max_tokens: int  # a query's tokens, eos included
    max_new_tokens: int  # the bundle's default generation budget
    append_eos: bool = True
    max_example_chars: int | None = DEFAULT_MAX_EXAMPLE_CHARS
    fingerprint: str | None = None

    def count(self, text: str) -> int:
        return len(self.tokenizer.encode(text)) + (1 if self.append_eos else 0)

    def fit_text(self, text: str, max_tokens: int | None = None) -> str:
        """The longest character prefix of ``text`` whose tokens fit ``max_tokens`` (default: a query's)."""
        limit = self.encoder_max_tokens if max_tokens is None else max_tokens
        if self.count(text) <= limit:
            return text
        lo, hi = 0, len(text)  # text[:lo] fits, text[:hi] does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.count(text[:mid]) <= limit:
                lo = mid
            else:
                hi = mid
        return text[:lo]

    def _fits(self, examples: Sequence[Example]) -> bool:
        return self.count(self.hyper_input.serialize(list(examples))) <= self.hyper_input.max_tokens

    def fit_examples(self, examples: Sequence[Example]) -> list[Example]:
        """The examples, shortened as the module docstring says, so that their serialization fits."""
        if len(examples) > self.hyper_input.max_examples:
            raise ValueError(
                f"{len(examples)} examples; the model takes at most {self.hyper_input.max_examples} "
                "(hyper_input.max_examples)"
            )
        cap = self.max_example_chars
        out = [(x[:cap], y[:cap]) if cap is not None else (x, y) for x, y in examples]
        if self._fits(out):
            return out

        def largest(make: Callable[[int], list[Example]], longest: int) -> int | None:
            if not self._fits(make(0)):
                return None
            lo, hi = 0, longest  # make(lo) fits, make(hi) does not
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if self._fits(make(mid)):
                    lo = mid
                else:
                    hi = mid
            return lo

        def cut_inputs(n: int) -> list[Example]:
            return [(x[:n], y) for x, y in out]

        n = largest(cut_inputs, max(len(x) for x, _ in out))
        if n is not None:
            return cut_inputs(n)

        def cut_outputs(n: int) -> list[Example]:
            return [("", y[:n]) for _, y in out]

        n = largest(cut_outputs, max(len(y) for _, y in out))
        if n is None:
            raise ValueError(
                f"{len(out)} examples do not fit hyper_input.max_tokens={self.hyper_input.max_tokens} even when empty"
            )
        return cut_outputs(n)


def limits_from_path(path: Path, max_example_chars: int | None = DEFAULT_MAX_EXAMPLE_CHARS) -> Limits:
    """Limits of a bundle (folder with manifest.json, or the manifest file) or of a checkpoint folder
    (hypert5.json; the bundle exported from it has the same limits)."""
    path = Path(path)
    folder = path.parent if path.is_file() else path
    manifest = path if path.is_file() else path / "manifest.json"
    if manifest.exists():
        m = json.loads(manifest.read_text())
        return Limits(
            from_spec(m["tokenizer"], folder),
            HyperInputFormat(**m["hyper_input"]),
            m["encoder_input"]["max_tokens"],
            m["generation"]["max_new_tokens"],
            m["encoder_input"].get("append_eos", True),
            max_example_chars,
            m.get("fingerprint"),
        )
    if (folder / "hypert5.json").exists():
        s = checkpoint.BundleSettings.from_json(json.loads((folder / "hypert5.json").read_text()))
        return Limits(
            from_spec(s.tokenizer, folder),
            s.hyper_input,
            s.encoder_max_tokens,
            s.generation["max_new_tokens"],
            True,
            max_example_chars,
        )
    raise FileNotFoundError(f"{path}: neither a bundle (manifest.json) nor a checkpoint folder (hypert5.json)")


@runtime_checkable
class Backend(Protocol):
    name: str
    model: str  # the model's name (manifest/settings ``name``)
    kinds: tuple[str, ...]
    default_kind: str
    limits: Limits

    def adapt(self, context: Context, kind: str) -> Any: ...

    def generate(self, handle: Any, sources: Sequence[str], max_new_tokens: int) -> list[str]: ...


# ---- PyTorch ----------------------------------------------------------------------------------------


@dataclass
class TorchAdapter:
    kind: str
    tensors: dict[str, torch.Tensor]  # batch of one


class TorchBackend:
    """Offline: ``checkpoint.load`` (a training run folder or a checkpoint), hypermodel forward, greedy."""

    name = "torch"

    def __init__(
        self,
        checkpoint_dir: str | Path,
        *,
        batch_size: int = 16,
        max_example_chars: int | None = DEFAULT_MAX_EXAMPLE_CHARS,
    ):
        folder = Path(checkpoint_dir)
        self.models = checkpoint.load(folder)
        s = self.models.settings
        self.model, self.kinds, self.default_kind = s.name, tuple(self.models.hyper), s.default_kind
        self.limits = Limits(
            from_spec(s.tokenizer, folder),
            s.hyper_input,
            s.encoder_max_tokens,
            s.generation["max_new_tokens"],
            True,
            max_example_chars,
        )
        self.batch_size = batch_size
        dims = s.dims
        self._eos, self._pad, self._start = dims.eos_token_id, dims.pad_token_id, dims.decoder_start_token_id

    def _ids(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return pad_batch([self.limits.tokenizer.encode(t) + [self._eos] for t in texts], self._pad)

    def hyper_text(self, context: Context) -> str:
        """The text the hypermodel reads for this context (fitted)."""
        if isinstance(context, str):
            return self.limits.fit_text(context, self.limits.hyper_input.max_tokens)
        return self.limits.hyper_input.serialize(self.limits.fit_examples(context))

    @torch.no_grad()
    def adapt(self, context: Context, kind: str) -> TorchAdapter:
        if kind not in self.models.hyper:
            raise ValueError(f"kind={kind!r}: this model has {list(self.models.hyper)}")
        ids, mask = self._ids([self.hyper_text(context)])
        return TorchAdapter(kind, self.models.hyper[kind](ids, mask))

    @staticmethod
    def _rows(handle: TorchAdapter | None, n: int) -> dict[str, torch.Tensor] | None:
        return None if handle is None else {k: v.expand(n, *v.shape[1:]) for k, v in handle.tensors.items()}

    @torch.no_grad()
    def generate(self, handle: TorchAdapter | None, sources: Sequence[str], max_new_tokens: int) -> list[str]:
        out: list[str] = []
        for start in range(0, len(sources), self.batch_size):
            chunk = [self.limits.fit_text(s) for s in sources[start : start + self.batch_size]]
            ids, mask = self._ids(chunk)
            decoded = greedy(self.models.downstream, ids, mask, self._rows(handle, len(chunk)), max_new_tokens)
            out.extend(self.limits.tokenizer.decode(row) for row in decoded)
        return out

    @torch.no_grad()
    def score(self, handle: TorchAdapter | None, sources: Sequence[str], choices: Sequence[str]) -> list[list[float]]:
        """log p(choice + eos | source) under the adapted downstream, for every source and choice."""
        pairs = [(s, c) for s in sources for c in range(len(choices))]
        targets = [self.limits.tokenizer.encode(c) + [self._eos] for c in choices]
        scores: list[float] = []
        for start in range(0, len(pairs), self.batch_size):
            chunk = pairs[start : start + self.batch_size]
            ids, mask = self._ids([self.limits.fit_text(s) for s, _ in chunk])
            rows = [targets[c] for _, c in chunk]
            labels, label_mask = pad_batch(rows, self._pad)
            decoder_in = torch.cat([torch.full((len(rows), 1), self._start, dtype=torch.long), labels[:, :-1]], 1)
            logits = self.models.downstream(ids, mask, decoder_in, self._rows(handle, len(chunk)))
            logp = torch.log_softmax(logits.float(), -1).gather(-1, labels[..., None])[..., 0]
            scores.extend((logp * label_mask).sum(-1).tolist())
        return [scores[i * len(choices) : (i + 1) * len(choices)] for i in range(len(sources))]


# ---- HTTP -------------------------------------------------------------------------------------------


class ServiceError(RuntimeError):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class HttpBackend:
    """A running service (openapi.yaml): ``POST /v1/adapters`` from the examples, then
    ``POST /v1/completions`` with ``model`` = the adapter id, up to ``batch_size`` prompts per request,
    ``temperature: 0``. 429 and 503 are retried after ``Retry-After`` seconds (``max_retries`` times); a 422
    naming ``body.prompt length`` (``MAX_PROMPTS``) halves the batch. ``Authorization: Bearer`` when
    ``api_key`` is given.

    The fitting needs the served bundle's tokenizer and hyper_input format: ``manifest`` (the bundle folder,
    its manifest.json, or the checkpoint folder it was exported from) gives them exactly, checked against
    the served fingerprint; without it they come from ``GET /v1/models`` (byte tokenizer, query limit,
    max_examples) and ``hyper_input`` is assumed to be the default format (a warning says so).
    """

    name = "http"

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        manifest: str | Path | None = None,
        batch_size: int = 16,
        timeout_s: float = 600.0,
        max_retries: int = 30,
        max_example_chars: int | None = DEFAULT_MAX_EXAMPLE_CHARS,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.url, self.api_key = url.rstrip("/"), api_key
        self.batch_size, self.timeout_s, self.max_retries, self._sleep = batch_size, timeout_s, max_retries, sleep
        self.retries = 0  # 429/503 answers waited out
        base = self._request("GET", "/v1/models")["data"][0]
        summary = base.get("summary") or {}
        self.model = base["id"]
        self.kinds = tuple(summary.get("adapter_kinds", ("lora", "prefix")))
        self.default_kind = summary.get("default_adapter_kind", self.kinds[0])
        if manifest is not None:
            self.limits = limits_from_path(Path(manifest), max_example_chars)
            served = summary.get("fingerprint")
            if self.limits.fingerprint and served and served != self.limits.fingerprint:
                raise ValueError(f"{manifest} has fingerprint {self.limits.fingerprint}; {self.url} serves {served}")
        else:
            if summary.get("tokenizer") != "byte":
                raise ValueError(
                    f"{self.url} serves a {summary.get('tokenizer')!r} tokenizer: pass the bundle folder "
                    "(manifest=..., --manifest) so that inputs can be fitted with it"
                )
            warnings.warn(
                "no manifest given: assuming the default hyper_input format and max_tokens "
                f"({HyperInputFormat().max_tokens}); pass the bundle folder for exact limits",
                stacklevel=2,
            )
            self.limits = Limits(
                ByteTokenizer(),
                HyperInputFormat(max_examples=summary["max_examples"]),
                summary["max_input_tokens"],
                summary["max_new_tokens"],
                True,
                max_example_chars,
                summary.get("fingerprint"),
            )

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"accept": "application/json"}
        if data is not None:
            headers["content-type"] = "application/json"
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as e:
                raw = e.read()
                if e.code in (429, 503) and attempt < self.max_retries:
                    self.retries += 1
                    self._sleep(_retry_after(e.headers.get("Retry-After")))
                    continue
                try:
                    err = json.loads(raw)["error"]
                    code, message = err.get("code", ""), err.get("message", "")
                except (ValueError, KeyError, TypeError):
                    code, message = "", raw.decode("utf-8", "replace")[:500]
                raise ServiceError(e.code, code, message) from None
        raise AssertionError("unreachable")

    def adapt(self, context: Context, kind: str) -> str:
        if isinstance(context, str):
            raise TypeError("the service builds the hypermodel's input from examples only; pass (input, output) pairs")
        examples = self.limits.fit_examples(context)
        body = {"examples": [{"input": x, "output": y} for x, y in examples], "kind": kind}
        try:
            return self._request("POST", "/v1/adapters", body)["id"]
        except ServiceError as e:
            if e.code in ("HT_ERR_EXAMPLES_TOO_LONG", "HT_ERR_EXAMPLE_TOO_LONG"):
                raise ServiceError(
                    e.status,
                    e.code,
                    e.message + " (the examples were fitted to the limits assumed "
                    "here: pass the served bundle folder as manifest / --manifest, and a "
                    "max_example_chars no larger than the service's MAX_EXAMPLE_CHARS)",
                ) from None
            raise

    def generate(self, handle: str | None, sources: Sequence[str], max_new_tokens: int) -> list[str]:
        prompts = [self.limits.fit_text(s) for s in sources]
        out: list[str] = []
        while len(out) < len(prompts):
            chunk = prompts[len(out) : len(out) + self.batch_size]
            body = {"model": handle or self.model, "prompt": chunk, "temperature": 0, "max_tokens": max_new_tokens}
            try:
                answer = self._request("POST", "/v1/completions", body)
            except ServiceError as e:
                if e.status == 422 and "body.prompt length" in e.message and self.batch_size > 1:
                    self.batch_size //= 2
                    print(
                        f"the service takes fewer prompts per request; batch size now {self.batch_size}",
                        file=sys.stderr,
                    )
                    continue
                raise
            choices = sorted(answer["choices"], key=lambda c: c["index"])
            if len(choices) != len(chunk):
                raise ServiceError(200, "", f"{len(choices)} choices for {len(chunk)} prompts")
            out.extend(c["text"] for c in choices)
        return out


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value is not None else 1.0
    except ValueError:  # an HTTP date: not sent by this service
        return 1.0
