"""Real data for the hypermodel stages, drawn from a step's rng like the generated data:

- stage 1: ABCD documents from a user's corpus (``--corpus``), cut on the run's tokens so that
  every segment fits its limit;
- stage 2: episodes of P3 prompt templates or Super-NaturalInstructions tasks (``--data``).
"""

from __future__ import annotations

import random
from pathlib import Path

from ..data import p3_episode, read_corpus, read_p3, read_sni, sni_episode, sni_examples
from ..data.p3 import P3Template
from ..data.sni import SniTask
from ..examples import HyperInputFormat
from .text import EOS, TextCodec

Ids = list[int]
MIN_DOC_TOKENS = 4  # one token each for A, B, C and D at least


class CorpusDocuments:
    """Stage 1 on a user's corpus: a document cut into consecutive A, B, C, D; the hypermodel reads
    A + separator + D, the downstream reads B and predicts C.

    Lengths scale with the run's limits (B: source/16-source/4 tokens, C: target/8-3*target/4, the
    generated corpus' 16-64 and 8-48 bytes for the default model) and shrink on short documents;
    A keeps its end and D its start, the text nearest to B and C, within the hypermodel's limit.
    """

    def __init__(self, spec: str | Path, codec: TextCodec, separator: str):
        self.docs = read_corpus(spec, min_chars=MIN_DOC_TOKENS)
        self.codec = codec
        self.separator = codec.tokenizer.encode(separator)
        # Long documents are windowed before tokenizing: ample for the longest cut with any tokenizer.
        self.window = 8 * (codec.context_limit + codec.source_limit + codec.target_limit)

    def sample(self, rng: random.Random) -> tuple[Ids, Ids, Ids]:
        """(hypermodel context, downstream source, target) ids, each ending in eos."""
        for _ in range(100):
            doc = rng.choice(self.docs)
            if len(doc) > self.window:
                start = rng.randrange(len(doc) - self.window)
                doc = doc[start : start + self.window]
            ids = self.codec.tokenizer.encode(doc)
            if len(ids) >= MIN_DOC_TOKENS:
                return self.cut(ids, rng)
        raise ValueError(f"the corpus' documents are shorter than {MIN_DOC_TOKENS} tokens")

    def cut(self, ids: Ids, rng: random.Random) -> tuple[Ids, Ids, Ids]:
        c = self.codec
        n = len(ids)
        b_len = min(c.source_limit - 1, rng.randint(max(1, c.source_limit // 16), max(1, c.source_limit // 4)))
        c_len = min(c.target_limit - 1, rng.randint(max(1, c.target_limit // 8), max(1, c.target_limit * 3 // 4)))
        if b_len + c_len > n // 2:  # short document: B and C share half of it, A and D the rest
            b_len = max(1, b_len * (n // 2) // (b_len + c_len))
            c_len = max(1, n // 2 - b_len)
        b_start = rng.randint(1, n - b_len - c_len - 1)
        c_start, d_start = b_start + b_len, b_start + b_len + c_len
        a, d = ids[:b_start], ids[d_start:]
        room = max(2, c.context_limit - 1 - len(self.separator))
        a_keep = min(len(a), max(room // 2, room - len(d)))
        d_keep = min(len(d), room - a_keep)
        context = a[len(a) - a_keep :] + self.separator + d[:d_keep]
        return context[: c.context_limit - 1] + [EOS], ids[b_start:c_start] + [EOS], ids[c_start:d_start] + [EOS]


def parse_data(spec: str) -> tuple[str, str]:
    """``p3:PATH`` or ``sni:PATH`` -> (kind, path)."""
    kind, sep, path = spec.partition(":")
    if not sep or kind not in ("p3", "sni") or not path:
        raise ValueError(f"invalid --data={spec!r}: must be p3:PATH or sni:PATH (a file, folder or glob)")
    return kind, path


SNI_CONTEXTS = ("examples", "raw")


class TaskEpisodes:
    """Stage 2 on real tasks. P3: k examples of a template -> the hypermodel (k drawn from
    k_min..k_max, clipped to what the template and hyper_input.max_examples allow), other examples of
    the template -> queries. SNI: Def+2Pos -> the hypermodel, instances -> queries. The first
    acceptable output is the target. Tasks named in ``exclude`` are held out (for evaluation).

    SNI's Def+2Pos reaches the hypermodel as ``sni_context``: "examples" (default), the two positive
    examples in the run's example format with the definition leading the first input, which is what
    the service can be sent and what the evaluation harness feeds (evaluation/harness.py says why);
    or "raw", the SNI paper's text (``data.def_2pos``)."""

    def __init__(
        self,
        spec: str,
        fmt: HyperInputFormat,
        k_min: int,
        k_max: int,
        exclude: list[str] = (),
        sni_context: str = "examples",
    ):
        if not 1 <= k_min <= k_max:
            raise ValueError(f"invalid k range {k_min}..{k_max}: need 1 <= k_min <= k_max")
        if sni_context not in SNI_CONTEXTS:
            raise ValueError(f"invalid sni_context={sni_context!r}: must be one of {SNI_CONTEXTS}")
        self.kind, path = parse_data(spec)
        self.fmt, self.k_min, self.k_max, self.sni_context = fmt, k_min, k_max, sni_context
        tasks: list[P3Template | SniTask] = list(read_p3(path) if self.kind == "p3" else read_sni(path))
        names = {t.name for t in tasks}
        unknown = sorted(set(exclude) - names)
        if unknown:
            raise ValueError(f"--exclude names no task of {spec}: {unknown}")
        self.excluded = sorted(set(exclude))
        self.dropped: list[str] = []  # tasks left without 2 usable examples (e.g. every completion empty)
        self.tasks = []
        for task in tasks:
            if task.name in self.excluded:
                continue
            usable = _usable(task)
            if usable is None:
                self.dropped.append(task.name)
            else:
                self.tasks.append(usable)
        if not self.tasks:
            raise ValueError(
                f"{spec}: no task left to train on (excluded {len(self.excluded)}, "
                f"without usable examples {len(self.dropped)})"
            )

    def sample(self, rng: random.Random, queries: int) -> tuple[str, list[tuple[str, str]]]:
        """One episode: (hypermodel context, [(downstream source, target)] * <= queries)."""
        task = rng.choice(self.tasks)
        if isinstance(task, P3Template):
            q = min(queries, len(task.examples) - 1)
            k = min(rng.randint(self.k_min, self.k_max), len(task.examples) - q, self.fmt.max_examples)
            episode = p3_episode(task, rng, k, q, self.fmt)
        else:
            episode = sni_episode(task, rng.sample(task.instances, min(queries, len(task.instances))))
            if self.sni_context == "examples":
                return self.fmt.serialize(sni_examples(task)), [(x, ys[0]) for x, ys in episode.queries]
        return episode.context, [(source, outputs[0]) for source, outputs in episode.queries]

    def describe(self) -> dict:
        info = {"kind": self.kind, "tasks": len(self.tasks), "excluded": self.excluded, "dropped": self.dropped}
        return {**info, "sni_context": self.sni_context} if self.kind == "sni" else info


def _usable(task: P3Template | SniTask) -> P3Template | SniTask | None:
    """The task without examples that have no non-empty target; None when too few remain."""
    if isinstance(task, P3Template):
        examples = [(x, y) for x, y in task.examples if y]
        return P3Template(task.name, examples, task.answer_choices) if len(examples) >= 2 else None
    instances = [(x, [y for y in ys if y]) for x, ys in task.instances]
    instances = [(x, ys) for x, ys in instances if ys]
    return SniTask(task.name, task.definition, task.positives, instances) if instances else None
