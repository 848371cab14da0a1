"""The bench's own tests (pytest in the training venv, part of `npm run test:training`): pybench imports
hypert5 as bench/torch_baselines.py arranges it."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "training")]
