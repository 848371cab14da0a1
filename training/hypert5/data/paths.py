"""Expanding a user's ``--data`` argument (a file, a folder or a glob) into a sorted file list."""

from __future__ import annotations

import glob
from pathlib import Path


def expand(spec: str | Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files under ``spec`` with one of ``suffixes``, sorted so that seeded sampling is reproducible."""
    path = Path(spec)
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file() and p.suffix in suffixes]
    elif path.is_file():
        files = [path]
    else:
        files = [Path(p) for p in glob.glob(str(spec)) if Path(p).suffix in suffixes]
    if not files:
        raise FileNotFoundError(f"{spec}: no {'/'.join(suffixes)} files there")
    return sorted(files)
