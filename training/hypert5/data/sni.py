"""Super-NaturalInstructions task files (``Definition``, ``Positive Examples``, ``Instances``) and
the paper's "Def+2Pos" hypermodel input: the task definition plus two positive examples."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .paths import expand


@dataclass
class SniTask:
    name: str
    definition: str
    positives: list[tuple[str, str]]
    instances: list[tuple[str, list[str]]]  # (input, acceptable outputs)


def read_sni(spec: str | Path) -> list[SniTask]:
    """Every task under ``spec`` (file, folder or glob of .json), in file-name order."""
    return [_read_task(path) for path in expand(spec, (".json",))]


def _read_task(path: Path) -> SniTask:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg}, column {e.colno})") from e
    try:
        definition = " ".join(data["Definition"]).strip()
        positives = [(p["input"], p["output"]) for p in data["Positive Examples"]]
        instances = [(i["input"], list(i["output"])) for i in data["Instances"]]
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a Super-NaturalInstructions task file ({e!r})") from e
    if not instances:
        raise ValueError(f"{path}: no Instances")
    return SniTask(path.stem, definition, positives, instances)


def def_2pos(task: SniTask, num_positives: int = 2) -> str:
    """The hypermodel's input for a task, in the layout of the SNI paper's Def+2Pos prompts."""
    parts = [f"Definition: {task.definition}"]
    for n, (x, y) in enumerate(task.positives[:num_positives], 1):
        parts.append(f"Positive Example {n} -\nInput: {x}\nOutput: {y}")
    return "\n\n".join(parts)


def sni_examples(task: SniTask, num_positives: int = 2) -> list[tuple[str, str]]:
    """Def+2Pos as the service's examples: the two positive examples, the definition leading the first input.

    The service builds the hypermodel's text from examples only, so this is the form training, the
    evaluation harness and HTTP clients share (evaluation/harness.py's docstring says more)."""
    definition = f"Definition: {task.definition}"
    positives = task.positives[:num_positives]
    if not positives:
        return [(definition, "")]
    (x1, y1), *rest = positives
    return [(f"{definition}\n\n{x1}", y1), *rest]
