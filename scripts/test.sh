#!/usr/bin/env bash
# The one test command: set-up, lint, type check, then every test level.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check .
# mypy's cache lives outside the work tree (it checks every file's hash, so it is never stale).
.venv/bin/mypy --cache-dir "${XDG_CACHE_HOME:-$HOME/.cache}/ivr-engine/mypy" .
# Two workers: every e2e test in one of them, one after another (their timing is asserted), the
# rest file by file in the other (the scheduler in tests/conftest.py).
exec .venv/bin/python -m pytest -n 2 --durations=25 "$@"
