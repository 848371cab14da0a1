"""Hyperpretraining corpora: ``.txt`` files (documents separated by blank lines) or ``.jsonl`` files
(one document per line in a ``"text"`` field)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .paths import expand


def read_corpus(spec: str | Path, min_chars: int = 1) -> list[str]:
    """Documents under ``spec`` (file, folder or glob), shorter than ``min_chars`` dropped."""
    docs: list[str] = []
    for path in expand(spec, (".txt", ".jsonl")):
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".txt":
            docs += [d.strip() for d in re.split(r"\n[ \t\r]*\n", text)]  # blank lines, CRLF files included
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                docs.append(str(json.loads(line)["text"]).strip())
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ValueError(f'{path}:{number}: expected a JSON object with a "text" field ({e!r})') from e
    docs = [d for d in docs if len(d) >= min_chars]
    if not docs:
        raise ValueError(f"{spec}: no documents of at least {min_chars} characters")
    return docs
