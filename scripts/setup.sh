#!/usr/bin/env bash
# Set up everything CarHub needs on a fresh Debian/Ubuntu machine with Python 3.11+:
# system packages (Chromium for the dashboard test, tshark for capture checks, dbus-daemon
# and playerctl for the MPRIS tests) and a virtual environment in .venv with the project
# installed in editable mode, with the test and bench extras.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v tshark >/dev/null 2>&1 || need_apt+=(tshark)
# The MPRIS tests: a private session bus, and playerctl as an independent MPRIS client.
command -v dbus-daemon >/dev/null 2>&1 || need_apt+=(dbus-daemon)
command -v playerctl >/dev/null 2>&1 || need_apt+=(playerctl)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ "${CARHUB_SKIP_APT:-0}" != 1 ] && [ ${#need_apt[@]} -gt 0 ]; then
    log "installing system packages: ${need_apt[*]}"
    sudo_ apt-get update -qq
    echo "wireshark-common wireshark-common/install-setuid boolean false" | sudo_ debconf-set-selections
    DEBIAN_FRONTEND=noninteractive sudo_ apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    python3 -m venv .venv
fi
stamp=.venv/.carhub-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    log "installing Python packages into .venv"
    # Some machines' pip config names local indexes that may be absent: drop those warnings.
    quiet() { grep -vE "WARNING: Location .* is ignored" || true; }
    .venv/bin/pip install -q --disable-pip-version-check --upgrade pip 2>&1 | quiet
    # bench: the benchmarks' baselines and profilers (bench/README.md).
    .venv/bin/pip install -q --disable-pip-version-check -e '.[test,bench]' 2>&1 | quiet
    touch "$stamp"
fi
