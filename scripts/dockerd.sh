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
    save_host_net
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
    remove_iptables_chains
    restore_host_net
    rm -f "$PIDFILE" "$SOCK"
    log "stopped (pid $pid)"
}

remove_iptables_chains() {
    # dockerd leaves its (by now empty) DOCKER* chains and the jumps to them in iptables.
    # They are shared by name with any other engine, so only remove them when no other
    # dockerd runs on this host (checked, not killed, by name).
    command -v iptables >/dev/null 2>&1 || return 0
    if pgrep -x dockerd >/dev/null 2>&1; then return 0; fi
    local rule chain
    for rule in "filter FORWARD -j DOCKER-USER" "filter FORWARD -j DOCKER-ISOLATION-STAGE-1" \
        "nat PREROUTING -m addrtype --dst-type LOCAL -j DOCKER" \
        "nat OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER"; do
        read -r -a r <<<"$rule"
        while iptables -t "${r[0]}" -D "${r[@]:1}" 2>/dev/null; do :; done
    done
    for chain in "filter DOCKER-USER" "filter DOCKER-ISOLATION-STAGE-1" \
        "filter DOCKER-ISOLATION-STAGE-2" "filter DOCKER" "nat DOCKER"; do
        read -r -a r <<<"$chain"
        iptables -t "${r[0]}" -F "${r[1]}" 2>/dev/null && iptables -t "${r[0]}" -X "${r[1]}" 2>/dev/null || true
    done
}

save_host_net() {
    # dockerd turns on IP forwarding and sets the FORWARD policy to DROP; note both first so
    # that stop can put them back (unless another engine already runs and owns them).
    pgrep -x dockerd >/dev/null 2>&1 && return 0
    {
        echo "ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)"
        echo "forward_policy=$(iptables -S FORWARD 2>/dev/null | awk '$1 == "-P" {print $3}')"
    } >"$WORK/host-net.saved"
}

restore_host_net() {
    local saved="$WORK/host-net.saved"
    [ -f "$saved" ] || return 0
    if ! pgrep -x dockerd >/dev/null 2>&1; then
        local ip_forward forward_policy
        ip_forward="$(sed -n 's/^ip_forward=//p' "$saved")"
        forward_policy="$(sed -n 's/^forward_policy=//p' "$saved")"
        [ -z "$forward_policy" ] || iptables -P FORWARD "$forward_policy" 2>/dev/null || true
        [ -z "$ip_forward" ] || echo "$ip_forward" >/proc/sys/net/ipv4/ip_forward 2>/dev/null || true
    fi
    rm -f "$saved"
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
