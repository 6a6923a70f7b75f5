#!/usr/bin/env bash
# Set everything up, then run lint, type checks and the whole test suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -k pairing
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "[test] ruff" >&2
.venv/bin/ruff check protocol carhub phone_bridge radio tests bench
echo "[test] mypy --strict protocol/" >&2
.venv/bin/mypy
echo "[test] pytest" >&2
exec .venv/bin/python -m pytest "$@"
