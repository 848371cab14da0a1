#!/usr/bin/env bash
# `npm run test:training`, the Python half of `npm test`. Creates .venv from training/requirements.txt
# when it is missing or the requirements changed (so a fresh clone needs nothing by hand), then runs
# ruff (lint, then a format check; settings in training/ruff.toml) and pytest.
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
"$venv/bin/ruff" check .
"$venv/bin/ruff" format --check .
exec "$venv/bin/python" -m pytest "$@"
