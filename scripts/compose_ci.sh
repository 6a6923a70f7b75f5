#!/usr/bin/env bash
# CI stage for the docker-compose lab: validate the compose file, start a private Docker
# engine, build the base and project images, bring the lab up, check that a phone pairs and
# syncs, scale to three phones, then tear everything down. Whatever happens, the trap removes
# the lab's containers, networks and volumes and stops the engine it started (by PID).
#
#   scripts/compose_ci.sh            # all steps (needs root)
#   scripts/compose_ci.sh --until 3  # stop after the image build (validate + build only)
#
# Env: CARHUB_DOCKER_DIR (work folder, default /tmp/carhub-docker), CARHUB_UI_PORT (host
# port for the dashboard; default 8080, or a free one when 8080 is taken),
# CARHUB_SYNC_PATTERN (the phone log line that means a sync finished), CARHUB_WAIT (seconds
# to wait for each of steps 4 and 5, default 180).
set -euo pipefail
cd "$(dirname "$0")/.."

WORK="${CARHUB_DOCKER_DIR:-/tmp/carhub-docker}"
UNTIL=6
[ "${1:-}" = --until ] && UNTIL="${2:?--until needs a step number}"
export CARHUB_DOCKER_DIR="$WORK"
export DOCKER_HOST="unix://$WORK/docker.sock"
export COMPOSE_PROJECT_NAME=carhub-ci
export CARHUB_IMAGE="${CARHUB_IMAGE:-carhub/carhub:local}"
export CARHUB_BASE_IMAGE="${CARHUB_BASE_IMAGE:-carhub/bookworm-python:local}"
# docker-compose v1 builds through the engine's classic builder; use it for `docker` too.
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0
SYNC_PATTERN="${CARHUB_SYNC_PATTERN:-sync(ed)? complete}"
WAIT="${CARHUB_WAIT:-180}"
STARTED_ENGINE=0
SUMMARY=()
IMAGES=""
T0=$SECONDS

log() { printf '[compose-ci] %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

step() {
    # Run one numbered step and record how long it took.
    local n=$1 name=$2; shift 2
    if [ "$n" -gt "$UNTIL" ]; then return 0; fi
    log "step $n: $name"
    local t=$SECONDS
    "$@"
    SUMMARY+=("$(printf 'step %s  %-34s %4ds' "$n" "$name" $((SECONDS - t)))")
}

teardown() {
    local rc=$?
    trap - EXIT INT TERM
    if [ $rc -ne 0 ] && docker version >/dev/null 2>&1; then
        # Full logs to a file for the CI artefacts; the states and a tail on the console.
        docker-compose logs --no-color -t >"$WORK/lab.log" 2>&1 || true
        docker-compose ps >&2 2>/dev/null || true
        log "logs of the lab (last 40 lines per service; all in $WORK/lab.log):"
        docker-compose logs --no-color --tail 40 >&2 2>/dev/null || true
    fi
    if [ $STARTED_ENGINE = 1 ]; then
        docker-compose down -v --remove-orphans -t 10 >/dev/null 2>&1 || true
        # Anything else this engine still holds goes too, so nothing is left behind.
        local ids
        ids="$(docker ps -aq 2>/dev/null || true)"
        [ -z "$ids" ] || docker rm -f -v $ids >/dev/null 2>&1 || true
        docker volume prune -f >/dev/null 2>&1 || true
        docker network prune -f >/dev/null 2>&1 || true
        scripts/dockerd.sh stop || true
    fi
    printf '%s\n' "${SUMMARY[@]}" >&2
    [ -z "$IMAGES" ] || printf '%s\n' "$IMAGES" >&2
    log "total $((SECONDS - T0))s, exit $rc"
    exit $rc
}
trap teardown EXIT
trap 'exit 130' INT TERM

validate() {
    scripts/dockerd.sh install
    docker-compose config -q
    local venv="$WORK/tools/jsonschema"
    if [ ! -x "$venv/bin/check-jsonschema" ]; then
        mkdir -p "$WORK/tools"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q check-jsonschema 2>&1 | grep -v 'is ignored' >&2 || true
    fi
    "$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml
}

start_engine() {
    if scripts/dockerd.sh status 2>/dev/null; then
        log "reusing the running private engine (it is left running)"
    else
        STARTED_ENGINE=1
        scripts/dockerd.sh start
    fi
}

build_images() {
    local t=$SECONDS
    scripts/build_base_image.sh
    BASE_SECONDS=$((SECONDS - t))
    # Builds behind a TLS-intercepting proxy need its CA; it goes in as a build argument of
    # the builder stage only (see the Dockerfile), never into the published image.
    CARHUB_EXTRA_CA_CERTS="$(cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true)"
    export CARHUB_EXTRA_CA_CERTS
    t=$SECONDS
    # One service builds the shared image; the others use the same tag.
    docker-compose build radio >"$WORK/build.log" 2>&1 \
        || { tail -n 30 "$WORK/build.log" >&2; return 1; }
    PROJECT_SECONDS=$((SECONDS - t))
    docker run --rm "$CARHUB_IMAGE" carhub --help >/dev/null
    docker run --rm "$CARHUB_IMAGE" carhub-radio --help >/dev/null
    local size base
    size="$(docker image inspect -f '{{.Size}}' "$CARHUB_IMAGE")"
    base="$(docker image inspect -f '{{.Size}}' "$CARHUB_BASE_IMAGE")"
    IMAGES="$(printf 'image %s: %d MB (base %s: %d MB); build: base %ds, project %ds' \
        "$CARHUB_IMAGE" $((size / 1000000)) "$CARHUB_BASE_IMAGE" $((base / 1000000)) \
        "$BASE_SECONDS" "$PROJECT_SECONDS")"
    log "image runs carhub and carhub-radio; $IMAGES"
}

pick_ui_port() {
    # Publish on 8080 as documented unless something on this host already holds it.
    local port="${CARHUB_UI_PORT:-8080}"
    if python3 -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1])))" \
        "$port" 2>/dev/null; then
        echo "$port"
    else
        python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
    fi
}

phones_synced() {
    # Succeed when GET /api/phones lists at least $1 paired phones with contacts > 0.
    curl -fsS --max-time 3 "http://127.0.0.1:$CARHUB_UI_PORT/api/phones" 2>/dev/null \
        | python3 -c '
import json, sys
phones = json.load(sys.stdin)
synced = [p for p in phones if (p.get("contacts") or 0) > 0]
names = ", ".join("%s=%s" % (p.get("name"), p.get("contacts")) for p in phones)
print("%d phone(s) listed, %d with contacts: %s" % (len(phones), len(synced), names),
      file=sys.stderr)
sys.exit(0 if len(synced) >= int(sys.argv[1]) else 1)' "$1"
}

iphone_ready() {
    # Succeed when the emulated iPhone is bonded and connected with AMS and ANCS, and the
    # car shows at least one of its notifications.
    python3 - "$CARHUB_UI_PORT" <<'PY'
import json, sys, urllib.request
base = "http://127.0.0.1:%s" % sys.argv[1]
def get(path):
    with urllib.request.urlopen(base + path, timeout=3) as r:
        return json.load(r)
try:
    phones = [p for p in get("/api/phones") if "ams" in p.get("profiles", [])]
    notes = get("/api/notifications")
except OSError as exc:
    print("car not answering: %s" % exc, file=sys.stderr)
    sys.exit(1)
up = [p for p in phones if p["connected"] and set(p["profiles"]) == {"ams", "ancs"}]
print("%d iPhone(s), %d connected with ams+ancs, %d notification(s)"
      % (len(phones), len(up), len(notes)), file=sys.stderr)
sys.exit(0 if up and notes else 1)
PY
}

android_ready() {
    # Succeed when the car lists the emulated Android phone over Classic (PBAP) with its
    # 1,000 contacts, a finished pull and its call history.
    python3 - "$CARHUB_UI_PORT" <<'PY'
import json, sys, urllib.request
base = "http://127.0.0.1:%s" % sys.argv[1]
def get(path):
    with urllib.request.urlopen(base + path, timeout=3) as r:
        return json.load(r)
try:
    phones = [p for p in get("/api/phones") if p.get("profiles") == ["pbap"]]
    calls = {p["id"]: len(get("/api/phones/%s/calls" % p["id"])) for p in phones}
except OSError as exc:
    print("car not answering: %s" % exc, file=sys.stderr)
    sys.exit(1)
done = [p for p in phones if p["contacts"] == 1000 and p["last_sync"] and calls[p["id"]]]
print("%d PBAP phone(s), %d pulled whole with calls: %s" % (len(phones), len(done),
      ", ".join("%s=%s" % (p["name"], p["contacts"]) for p in phones)), file=sys.stderr)
sys.exit(0 if done else 1)
PY
}

phone_exited() {
    # Print the name of a phone container that has stopped, if any: no point waiting on it.
    local id
    for id in $(docker-compose ps -q phone); do
        if [ "$(docker inspect -f '{{.State.Running}}' "$id")" != true ]; then
            docker inspect -f '{{.Name}} exited with {{.State.ExitCode}}' "$id"
            return 0
        fi
    done
    return 1
}

wait_for() {
    # wait_for WHAT CMD...: poll CMD every 2 s until it succeeds, a phone dies, or $WAIT s pass.
    local what=$1; shift
    local deadline=$((SECONDS + WAIT)) dead
    until "$@"; do
        if dead="$(phone_exited)"; then die "$what: $dead"; fi
        [ $SECONDS -lt $deadline ] || die "$what: not after ${WAIT}s"
        sleep 2
    done
}

sync_logged() {
    docker-compose logs --no-color phone 2>/dev/null | grep -qiE "$SYNC_PATTERN"
}

lab_up() {
    docker run --rm "$CARHUB_IMAGE" phone-bridge --help >/dev/null
    CARHUB_UI_PORT="$(pick_ui_port)"
    export CARHUB_UI_PORT
    docker-compose up -d --no-build
    log "dashboard: http://127.0.0.1:$CARHUB_UI_PORT/"
    wait_for "phone log line /$SYNC_PATTERN/" sync_logged
    wait_for "a paired phone with contacts in /api/phones" phones_synced 1
    wait_for "the emulated iPhone bonded, with notifications" iphone_ready
    wait_for "the emulated Android phone's book pulled over PBAP" android_ready
}

lab_scale() {
    docker-compose up -d --no-build --scale phone=3
    wait_for "three phones with contacts in /api/phones" phones_synced 3
}

lab_down() {
    docker-compose down -v --remove-orphans -t 10
    local left
    left="$(docker ps -aq; docker volume ls -q; docker network ls -q --filter type=custom)"
    [ -z "$left" ] || die "left behind after down -v: $left"
    if [ $STARTED_ENGINE = 1 ]; then
        STARTED_ENGINE=0
        scripts/dockerd.sh stop
    fi
}

step 1 "validate docker-compose.yml" validate
step 2 "start private dockerd" start_engine
step 3 "build base + project images" build_images
step 4 "lab up: pair + sync one phone" lab_up
step 5 "scale to 3 phones" lab_scale
step 6 "down -v, stop dockerd" lab_down

