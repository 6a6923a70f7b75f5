#!/usr/bin/env bash
# A CarHub fleet on Docker Swarm: B bays (stacks bay1..bayB from lab/stack.yml), each a
# virtual radio, one car and CARHUB_PHONES_PER_BAY phones. Run on a swarm manager.
#
#   scripts/fleet.sh load-images [TAR] DOCKER_HOST...  # docker save | docker load per node
#   scripts/fleet.sh up B          # deploy bay1..bayB, bay i's radio + car on node i mod N
#   scripts/fleet.sh status        # per bay: car id, phones, contacts, mirror consistent?
#   scripts/fleet.sh status --json # the same as JSON (exit 0 even when not consistent)
#   scripts/fleet.sh down          # remove every bay stack
#
# Env: DOCKER_HOST (the manager), CARHUB_IMAGE (carhub/carhub:local),
# CARHUB_PHONES_PER_BAY (2), CARHUB_PHONE_CONTACTS (500), CARHUB_BAY_TRANSPORT (ble|lan),
# CARHUB_FLEET_UI_PORT_BASE (8080: bay i's dashboard on port BASE+i of its car's node),
# CARHUB_FLEET_NODES (node ids to place bays on, in order; default: every Ready node,
# managers first). See docs/lab.md.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARHUB_IMAGE="${CARHUB_IMAGE:-carhub/carhub:local}"
export CARHUB_PHONES_PER_BAY="${CARHUB_PHONES_PER_BAY:-2}"
export CARHUB_PHONE_CONTACTS="${CARHUB_PHONE_CONTACTS:-500}"
export CARHUB_BAY_TRANSPORT="${CARHUB_BAY_TRANSPORT:-ble}"
PORT_BASE="${CARHUB_FLEET_UI_PORT_BASE:-8080}"
STACK_FILE="lab/stack.yml"

log() { printf '[fleet] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

bays() {
    # The fleet's stacks, bay1..bayN, in numeric order.
    docker stack ls --format '{{.Name}}' | grep -E '^bay[0-9]+$' | sort -t y -k 2 -n || true
}

nodes() {
    # Ready, active nodes: managers first (so bay1 is on the manager), then workers.
    if [ -n "${CARHUB_FLEET_NODES:-}" ]; then
        tr ' ' '\n' <<<"$CARHUB_FLEET_NODES"
        return 0
    fi
    local role
    for role in manager worker; do
        docker node ls --filter "role=$role" --format '{{.ID}} {{.Status}} {{.Availability}}' \
            | awk '$2 == "Ready" && $3 == "Active" {print $1}'
    done
}

cmd_load_images() {
    # load-images [TAR] HOST...: with a TAR, load it on each host; without one, save the
    # image from this engine and stream it into each host's engine.
    local tar=""
    if [ $# -gt 0 ] && [ -f "$1" ]; then tar=$1; shift; fi
    [ $# -gt 0 ] || die "load-images: name at least one DOCKER_HOST (unix://..., ssh://user@host)"
    local host pids=() rc=0
    for host in "$@"; do
        if [ -n "$tar" ]; then
            DOCKER_HOST="$host" docker load -q -i "$tar" >/dev/null &
        else
            docker save "$CARHUB_IMAGE" | DOCKER_HOST="$host" docker load -q >/dev/null &
        fi
        pids+=($!)
    done
    local i
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || { log "loading on ${*:$((i + 1)):1} failed"; rc=1; }
    done
    [ $rc = 0 ] || exit 1
    for host in "$@"; do
        DOCKER_HOST="$host" docker image inspect -f '{{.Id}}' "$CARHUB_IMAGE" >/dev/null \
            || die "$host has no $CARHUB_IMAGE after load"
    done
    log "$CARHUB_IMAGE loaded on $# node(s)"
}

cmd_up() {
    local count="${1:?usage: fleet.sh up B}"
    [[ $count =~ ^[1-9][0-9]*$ ]] || die "up: B must be a positive number, not '$count'"
    local nodes_=()
    mapfile -t nodes_ < <(nodes)
    [ ${#nodes_[@]} -gt 0 ] || die "no Ready node (is DOCKER_HOST a swarm manager?)"
    # Newer CLIs warn unless told to return at once (the old default); older ones lack it.
    local detach=()
    docker stack deploy --help 2>/dev/null | grep -q -- '--detach' && detach=(--detach=true)
    local i node
    for i in $(seq 1 "$count"); do
        node="${nodes_[$(((i - 1) % ${#nodes_[@]}))]}"
        # --resolve-image never: the image is loaded on each node, there is no registry.
        CARHUB_BAY="bay$i" CARHUB_BAY_NODE="$node" CARHUB_BAY_UI_PORT=$((PORT_BASE + i)) \
            docker stack deploy "${detach[@]}" --resolve-image never -c "$STACK_FILE" "bay$i" \
            >/dev/null || die "deploying bay$i failed"
        log "bay$i: radio + car on node $node, dashboard port $((PORT_BASE + i)), $CARHUB_PHONES_PER_BAY phones"
    done
}

cmd_down() {
    # stack rm returns at once, and cannot remove a network while a task still uses it;
    # try again until the stacks and their networks are gone.
    local b left deadline=$((SECONDS + ${CARHUB_FLEET_DOWN_WAIT:-90}))
    for b in $(bays); do
        docker stack rm "$b" >/dev/null 2>&1 || true
        log "removing $b"
    done
    while left="$(bays; docker network ls --filter label=com.docker.stack.namespace -q)" \
        && [ -n "$left" ]; do
        [ $SECONDS -lt $deadline ] || die "still there after the wait: $(echo $left)"
        sleep 2
        for b in $(bays); do docker stack rm "$b" >/dev/null 2>&1 || true; done
    done
    log "fleet removed"
}

cmd_status() {
    local json=0
    [ "${1:-}" != --json ] || json=1
    local tmp
    tmp="$(mktemp -d "${CARHUB_FLEET_TMP:-/tmp}/fleet-status.XXXXXX")"
    trap 'rm -rf "$tmp"' RETURN
    local services tasks
    services="$(docker service ls -q --filter label=com.docker.stack.namespace)"
    tasks=""
    [ -z "$services" ] \
        || tasks="$(docker service ps -q --no-trunc --filter desired-state=running $services)"
    {
        printf '{"self": "%s",\n"nodes": ' "$(docker info -f '{{.Swarm.NodeID}}')"
        docker node inspect $(docker node ls -q)
        printf ',\n"services": '
        if [ -n "$services" ]; then docker service inspect $services; else echo '[]'; fi
        printf ',\n"tasks": '
        if [ -n "$tasks" ]; then docker inspect --type task $tasks; else echo '[]'; fi
        echo '}'
    } >"$tmp/fleet.json"
    cp lab/fleet_status.py "$tmp/"
    # The image's own Python reads the cars' APIs (host network: every car's host-mode port)
    # and rebuilds each phone's book; the container runs as the image's non-root user.
    chmod 0755 "$tmp" && chmod 0644 "$tmp"/*
    local args=(/fleet/fleet.json)
    [ $json = 0 ] || args+=(--json)
    docker run --rm --network host -v "$tmp:/fleet:ro" "$CARHUB_IMAGE" \
        python /fleet/fleet_status.py "${args[@]}"
}

case "${1:-}" in
    up) shift; cmd_up "$@" ;;
    down) cmd_down ;;
    status) shift; cmd_status "$@" ;;
    load-images) shift; cmd_load_images "$@" ;;
    *) echo "usage: $0 up B | status [--json] | down | load-images [TAR] DOCKER_HOST..." >&2; exit 64 ;;
esac
