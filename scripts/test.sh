#!/usr/bin/env bash
# The one test command: set-up, lint, type check, then every test level.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy .
exec .venv/bin/python -m pytest "$@"
