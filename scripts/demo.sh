#!/usr/bin/env bash
# Set everything up, then run the demo: an emulated car and phone, paired and syncing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m carhub.demo "$@"
