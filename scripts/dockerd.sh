#!/usr/bin/env bash
# Start or stop a PRIVATE Docker engine for the CarHub lab, with every bit of its state
# (data-root, exec-root, pidfile, socket, containerd) under one work folder, so it never
# touches a system Docker and a stop leaves no process behind.
#
#   scripts/dockerd.sh start    # installs docker.io docker-compose debootstrap if missing
#   eval "$(scripts/dockerd.sh env)"   # export DOCKER_HOST for this shell
#   scripts/dockerd.sh stop     # stops the engine by PID (containers die with it)
#   scripts/dockerd.sh status
#   scripts/dockerd.sh install  # only install the packages
#   scripts/dockerd.sh purge    # stop, then delete the work folder (images, cache)
#
# Work folder: $CARHUB_DOCKER_DIR (default /tmp/carhub-docker). Needs root.
set -euo pipefail

WORK="${CARHUB_DOCKER_DIR:-/tmp/carhub-docker}"
SOCK="$WORK/docker.sock"
PIDFILE="$WORK/dockerd.pid"
LOG="$WORK/dockerd.log"
START_TIMEOUT="${CARHUB_DOCKERD_TIMEOUT:-60}"

log() { printf '[dockerd] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install_missing() {
    local need=()
    command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
    command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
    command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
    [ ${#need[@]} -eq 0 ] && return 0
    log "installing ${need[*]}"
    sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive sudo_ apt-get install -y -qq --no-install-recommends \
        "${need[@]}" >/dev/null
}

running_pid() {
    # Print the PID of our engine if it is alive; the pidfile alone could be stale.
    [ -f "$PIDFILE" ] || return 1
    local pid
    pid="$(cat "$PIDFILE")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

engine_ready() {
    DOCKER_HOST="unix://$SOCK" docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

start() {
    [ "$(id -u)" = 0 ] || die "dockerd needs root (run through sudo)"
    install_missing
    if running_pid >/dev/null; then
        log "already running (pid $(running_pid)), DOCKER_HOST=unix://$SOCK"
        return 0
    fi
    mkdir -p "$WORK/data" "$WORK/exec"
    # --bridge=none: no default docker0, so we never clash with a system engine's bridge;
    # compose makes its own user-defined networks and builds use --network host.
    # dockerd launches its own containerd under exec-root/data-root when none is given.
    setsid dockerd \
        --data-root "$WORK/data" \
        --exec-root "$WORK/exec" \
        --pidfile "$PIDFILE" \
        --host "unix://$SOCK" \
        --bridge none \
        --storage-driver "${CARHUB_DOCKER_STORAGE:-overlay2}" \
        >"$LOG" 2>&1 </dev/null &
    local launcher=$!
    local deadline=$((SECONDS + START_TIMEOUT))
    until engine_ready; do
        if ! kill -0 "$launcher" 2>/dev/null; then
            tail -n 20 "$LOG" >&2
            die "dockerd exited during start-up (log: $LOG)"
        fi
        [ $SECONDS -lt $deadline ] || { stop; die "dockerd not ready after ${START_TIMEOUT}s"; }
        sleep 0.3
    done
    log "started (pid $(cat "$PIDFILE")), DOCKER_HOST=unix://$SOCK"
}

stop() {
    local pid
    if ! pid="$(running_pid)"; then
        log "not running"
        rm -f "$PIDFILE"
        return 0
    fi
    # SIGTERM lets dockerd stop its containers and its managed containerd; give it time,
    # then SIGKILL so that `stop` always ends with no engine left.
    kill -TERM "$pid"
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.3; done
    if kill -0 "$pid" 2>/dev/null; then
        log "dockerd ignored SIGTERM for 30s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    # The managed containerd normally exits with dockerd; stop it by its own pidfile if not.
    local cpid_file="$WORK/exec/containerd/containerd.pid"
    if [ -f "$cpid_file" ] && kill -0 "$(cat "$cpid_file")" 2>/dev/null; then
        kill -TERM "$(cat "$cpid_file")" 2>/dev/null || true
    fi
    unmount_leftovers
    rm -f "$PIDFILE" "$SOCK"
    log "stopped (pid $pid)"
}

unmount_leftovers() {
    # dockerd leaves its default network namespace (exec/netns/default) bind-mounted after it
    # exits; lift every mount under the work folder, deepest first, so nothing outlives us.
    { grep -o " $WORK/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
}

case "${1:-}" in
    start) start ;;
    install) install_missing ;;
    stop) stop ;;
    env) echo "export DOCKER_HOST=unix://$SOCK" ;;
    status)
        if pid="$(running_pid)"; then log "running (pid $pid)"; else log "not running"; exit 1; fi ;;
    purge)
        stop
        unmount_leftovers
        rm -rf "$WORK"
        log "removed $WORK" ;;
    *) echo "usage: $0 start|stop|env|status|install|purge" >&2; exit 64 ;;
esac
