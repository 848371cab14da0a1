#!/usr/bin/env bash
# `npm run test:training`, the Python half of `npm test`. Creates .venv from training/requirements.txt
# when it is missing or the requirements changed (so a fresh clone needs nothing by hand), then runs
# ruff (lint, then a format check; settings in training/ruff.toml) and pytest over every Python suite:
#   training/tests  the training package, and its parity with the exported bundle and the service
#   bench/tests     the bench's Python (FLOP formulas, eager baselines), and `npm run bench` in quick mode
#   test/e2e        the service over a socket, driven from Python (schemathesis over openapi.yaml)
# Arguments go to pytest instead of those three folders (paths relative to training/).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$root/training/requirements.txt" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setting up $venv from training/requirements.txt (about 1.4 GB; minutes)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/training/requirements.txt"
  echo "$want" > "$stamp"
fi
cd "$root/training"
python_dirs=(. ../bench ../test/e2e)
"$venv/bin/ruff" check "${python_dirs[@]}"
"$venv/bin/ruff" format --check "${python_dirs[@]}"
[ "$#" -gt 0 ] || set -- tests ../bench/tests ../test/e2e
exec "$venv/bin/python" -m pytest "$@"
