"""How few-shot examples become the hypermodel's one input text (manifest ``hyper_input``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class HyperInputFormat:
    input_prefix: str = "in: "
    output_prefix: str = " out: "
    example_separator: str = "\n"
    max_tokens: int = 1024  # counts the appended eos
    max_examples: int = 16

    def __post_init__(self) -> None:
        if self.max_tokens < 2:
            raise ValueError(f"invalid config: max_tokens={self.max_tokens!r}: must be >= 2")
        if self.max_examples < 1:
            raise ValueError(f"invalid config: max_examples={self.max_examples!r}: must be >= 1")

    def serialize(self, examples: list[tuple[str, str]]) -> str:
        return self.example_separator.join(f"{self.input_prefix}{x}{self.output_prefix}{y}" for x, y in examples)
