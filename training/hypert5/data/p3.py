"""P3-style data: one JSONL file per prompt template, each line ``{"prompt", "completion"}`` and
optionally ``"answer_choices"`` (P3's own field). The file's stem names the template."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .paths import expand

# A template whose completions take at most this many distinct short values (and repeat) is treated
# as classification when the data carries no answer_choices: its choices are those values. The length
# cap keeps free-text templates whose 16-line samples happen to repeat a passage out.
MAX_INFERRED_CHOICES = 8
MAX_INFERRED_CHOICE_CHARS = 40
END_OF_TEXT = "<|endoftext|>"


@dataclass
class P3Template:
    name: str
    examples: list[tuple[str, str]]  # (prompt, completion)
    answer_choices: list[str] | None  # None: free generation

    @property
    def is_classification(self) -> bool:
        return self.answer_choices is not None


def read_p3(spec: str | Path) -> list[P3Template]:
    """Every template under ``spec`` (file, folder or glob of .jsonl), in file-name order."""
    return [_read_template(path) for path in expand(spec, (".jsonl",))]


def _read_template(path: Path) -> P3Template:
    examples, choices = [], None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            prompt, completion = row["prompt"], row["completion"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f'{path}:{number}: expected a JSON object with "prompt" and "completion" ({e})') from e
        if not isinstance(prompt, str) or not isinstance(completion, str):
            raise ValueError(f'{path}:{number}: "prompt" and "completion" must be strings')
        examples.append((prompt.strip(), _clean(completion)))
        if isinstance(row.get("answer_choices"), list):
            choices = [_clean(str(c)) for c in row["answer_choices"]]
    if len(examples) < 2:
        raise ValueError(
            f"{path}: a template needs at least 2 examples (demonstrations + a query), has {len(examples)}"
        )
    if choices is None:
        distinct = sorted({c for _, c in examples})
        short = all(len(c) <= MAX_INFERRED_CHOICE_CHARS for c in distinct)
        if 2 <= len(distinct) <= MAX_INFERRED_CHOICES and len(distinct) < len(examples) / 2 and short:
            choices = distinct
    return P3Template(path.stem, examples, choices)


def _clean(text: str) -> str:
    """P3 exports (T0's, the shared sample's) end completions with a GPT-style end-of-text marker."""
    return text.replace(END_OF_TEXT, "").strip()
