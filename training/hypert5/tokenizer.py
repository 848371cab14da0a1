"""Tokenizers named by a bundle's ``manifest.tokenizer`` (models/README.md).

``byte``: ByT5-style, id = UTF-8 byte + offset, ids below the offset are special (pad, eos, unk) and
ids at or above 256 + offset are unused extra ids. ``tokenizers``: an HF ``tokenizer.json``
(SentencePiece T5), special tokens left to us so both sides append eos the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class Tokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: list[int]) -> str: ...


class ByteTokenizer:
    def __init__(self, offset: int = 3):
        self.offset = offset

    def encode(self, text: str) -> list[int]:
        return [b + self.offset for b in text.encode("utf-8")]

    def decode(self, ids: list[int]) -> str:
        data = bytes(i - self.offset for i in ids if self.offset <= i < 256 + self.offset)
        return data.decode("utf-8", errors="replace")


class HFTokenizer:
    def __init__(self, path: Path):
        from tokenizers import Tokenizer as _Tokenizer

        self._tok = _Tokenizer.from_file(str(path))

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids, skip_special_tokens=True)


def from_spec(spec: dict[str, Any], bundle_dir: Path) -> Tokenizer:
    if spec["type"] == "byte":
        return ByteTokenizer(spec["offset"])
    if spec["type"] == "tokenizers":
        return HFTokenizer(bundle_dir / spec["file"])
    raise ValueError(f"invalid tokenizer.type={spec['type']!r}: must be 'byte' or 'tokenizers'")
