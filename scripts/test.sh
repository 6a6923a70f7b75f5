#!/usr/bin/env bash
# Set everything up, then run lint, type checks, the docker-compose lab, and the whole
# test suite (pytest last, so its summary closes the output).
#   scripts/test.sh                 # everything
#   scripts/test.sh -k pairing      # extra arguments go to pytest
#   CARHUB_SKIP_LAB=1 scripts/test.sh   # skip the container labs (they need root and ~2 min)
#   CARHUB_SWARM_CI=0 scripts/test.sh   # skip the fleet on Docker Swarm (two engines,
#                                       # scripts/swarm_ci.sh, ~1.5 min)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "[test] ruff" >&2
.venv/bin/ruff check protocol shell carhub phone_bridge radio tests bench
echo "[test] mypy --strict (protocol, shell, carhub, phone_bridge, radio)" >&2
.venv/bin/mypy
if [ "${CARHUB_SKIP_LAB:-0}" = 1 ]; then
    echo "[test] WARNING: CARHUB_SKIP_LAB=1: the docker-compose lab is NOT tested" >&2
else
    echo "[test] docker-compose lab" >&2
    if [ "$(id -u)" = 0 ]; then scripts/compose_ci.sh; else sudo scripts/compose_ci.sh; fi
    if [ "${CARHUB_SWARM_CI:-1}" = 1 ]; then
        echo "[test] Docker Swarm fleet" >&2
        if [ "$(id -u)" = 0 ]; then scripts/swarm_ci.sh; else sudo scripts/swarm_ci.sh; fi
    else
        echo "[test] note: the Docker Swarm fleet is not tested (CARHUB_SWARM_CI=0)" >&2
    fi
fi
echo "[test] pytest" >&2
exec .venv/bin/python -m pytest "$@"
