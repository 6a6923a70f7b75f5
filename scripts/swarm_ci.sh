#!/usr/bin/env bash
# CI stage for the fleet on Docker Swarm (issue 16): two fresh Docker engines, each in its
# own network namespace and joined by a veth, form a two-node swarm; the lab image is loaded
# on both (docker save | docker load, no registry); 4 bays of 2 phones are deployed with
# scripts/fleet.sh; every phone must pair and sync and every mirror must equal its phone's
# book (`fleet.sh status --json`); then the worker's engine is killed and the manager's bays
# must keep working; then everything goes: stacks, swarm, engines (by PID), docker_gwbridge
# and the iptables rules (inside the namespaces), the namespaces, the veth, the temp dir.
#
#   scripts/swarm_ci.sh                  # needs root; about 2-4 minutes
#   CARHUB_SWARM_BAYS=8 scripts/swarm_ci.sh
#
# Nothing of the host's own Docker is used or changed: the engines have their own
# data-root, exec-root, pidfile, socket, containerd, cgroup parent, config file and network
# namespace (so their bridges, routes and iptables rules never reach the host's tables).
# The image comes from CARHUB_IMAGE_TAR (a `docker save` tarball) if set, else it is built
# on the compose lab's private engine (scripts/dockerd.sh, /tmp/carhub-docker) and saved.
#
# Env: CARHUB_SWARM_BAYS (4), CARHUB_PHONES_PER_BAY (2), CARHUB_PHONE_CONTACTS (500),
# CARHUB_BAY_TRANSPORT (ble|lan, default ble), CARHUB_SWARM_WAIT (seconds for each wait,
# default 240), CARHUB_SWARM_NET (first two octets of the private subnets, default 10.231),
# CARHUB_IMAGE (carhub/carhub:local), CARHUB_IMAGE_TAR (use this tarball, build nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"

BAYS="${CARHUB_SWARM_BAYS:-4}"
export CARHUB_PHONES_PER_BAY="${CARHUB_PHONES_PER_BAY:-2}"
export CARHUB_PHONE_CONTACTS="${CARHUB_PHONE_CONTACTS:-500}"
export CARHUB_BAY_TRANSPORT="${CARHUB_BAY_TRANSPORT:-ble}"
export CARHUB_IMAGE="${CARHUB_IMAGE:-carhub/carhub:local}"
WAIT="${CARHUB_SWARM_WAIT:-240}"
NET="${CARHUB_SWARM_NET:-10.231}"
IFS=. read -r NET_A NET_B <<<"$NET"
# Subnets: veth $NET.0.0/24; the engines' local pools (docker_gwbridge) $NET_A.(B+1) and
# (B+2); the swarm's overlay pool $NET_A.(B+3). Apart from the host engine's 172.17/16.
VETH_NET="$NET_A.$NET_B.0"
POOL_M="$NET_A.$((NET_B + 1)).0.0/16"
POOL_W="$NET_A.$((NET_B + 2)).0.0/16"
POOL_SWARM="$NET_A.$((NET_B + 3)).0.0/16"

TAG="$$"
WORK="$(mktemp -d /tmp/carhub-swarm.XXXXXX)"
NS_M="chsw-m-$TAG" NS_W="chsw-w-$TAG"
VETH_M="chm$TAG" VETH_W="chw$TAG"
ADDR_M="$VETH_NET.1" ADDR_W="$VETH_NET.2"
CG_M="carhub-swarm-$TAG-m" CG_W="carhub-swarm-$TAG-w"
SOCK_M="$WORK/m/docker.sock" SOCK_W="$WORK/w/docker.sock"
T0=$SECONDS
SUMMARY=()
FIGURES=()

log() { printf '[swarm-ci] %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
dm() { DOCKER_HOST="unix://$SOCK_M" docker "$@"; }
dw() { DOCKER_HOST="unix://$SOCK_W" docker "$@"; }
fleet() { DOCKER_HOST="unix://$SOCK_M" CARHUB_FLEET_TMP="$WORK" "$REPO/scripts/fleet.sh" "$@"; }

step() {
    # Run one named step and record how long it took.
    local name=$1; shift
    log "== $name"
    local t=$SECONDS
    "$@"
    SUMMARY+=("$(printf '%-46s %4ds' "$name" $((SECONDS - t)))")
}

wait_until() {
    # wait_until WHAT SECONDS CMD...: poll CMD every 2 s until it succeeds or time runs out.
    local what=$1 limit=$2; shift 2
    local deadline=$((SECONDS + limit))
    until "$@"; do
        [ $SECONDS -lt $deadline ] || die "$what: not after ${limit}s"
        sleep 2
    done
}

cg_dirs() {
    # The cgroup directories (every hierarchy) named $1: a relative --cgroup-parent lands
    # under the cgroup of the engine in each hierarchy, wherever that is.
    find /sys/fs/cgroup -maxdepth 6 -type d -name "$1" 2>/dev/null || true
}

cg_pids() {
    # PIDs of every process in the cgroups named $1.
    local d
    for d in $(cg_dirs "$1"); do
        case "$d" in /sys/fs/cgroup/pids/* | /sys/fs/cgroup/memory/*) ;; *) continue ;; esac
        cat "$d"/*/cgroup.procs 2>/dev/null || true
    done | sort -u
}

# ---- engines -------------------------------------------------------------------------

make_netns() {
    [ "$(id -u)" = 0 ] || die "needs root (network namespaces, dockerd)"
    local tool
    for tool in dockerd containerd docker nsenter unshare ip iptables python3; do
        command -v "$tool" >/dev/null || die "$tool missing (scripts/dockerd.sh install gives docker.io)"
    done
    ip netns add "$NS_M"
    ip netns add "$NS_W"
    ip link add "$VETH_M" type veth peer name "$VETH_W"
    ip link set "$VETH_M" netns "$NS_M"
    ip link set "$VETH_W" netns "$NS_W"
    ip -n "$NS_M" addr add "$ADDR_M/24" dev "$VETH_M"
    ip -n "$NS_W" addr add "$ADDR_W/24" dev "$VETH_W"
    local ns
    for ns in "$NS_M" "$NS_W"; do
        ip -n "$ns" link set lo up
    done
    ip -n "$NS_M" link set "$VETH_M" up
    ip -n "$NS_W" link set "$VETH_W" up
    log "namespaces $NS_M ($ADDR_M) and $NS_W ($ADDR_W), veth $VETH_M-$VETH_W"
}

start_engine() {
    # start_engine m|w NETNS POOL: our own containerd, then dockerd, inside NETNS (`ip netns
    # exec` fails here: "Devices cgroup isn't mounted"; nsenter --net does not), each node
    # with its own hostname (unshare --uts) so that `docker node ls` tells them apart.
    local n=$1 ns=$2 pool=$3 dir="$WORK/$1" cg
    [ "$n" = m ] && cg=$CG_M || cg=$CG_W
    mkdir -p "$dir/data" "$dir/exec" "$dir/containerd"
    cat >"$dir/containerd.toml" <<EOF
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$dir/containerd.sock"
[debug]
  address = "$dir/containerd-debug.sock"
EOF
    # An empty config file, so that a host /etc/docker/daemon.json is not read.
    echo '{}' >"$dir/daemon.json"
    setsid nsenter --net="/var/run/netns/$ns" containerd --config "$dir/containerd.toml" \
        >"$dir/containerd.log" 2>&1 </dev/null &
    echo $! >"$dir/containerd.pid"
    disown
    local deadline=$((SECONDS + 30))
    until [ -S "$dir/containerd.sock" ]; do
        kill -0 "$(cat "$dir/containerd.pid")" 2>/dev/null \
            || { tail -n 20 "$dir/containerd.log" >&2; die "containerd ($n) exited"; }
        [ $SECONDS -lt $deadline ] || die "containerd ($n) not listening after 30s"
        sleep 0.2
    done
    setsid nsenter --net="/var/run/netns/$ns" unshare --uts \
        sh -c 'hostname "$0" && exec dockerd "$@"' "swarm-$n" \
        --config-file "$dir/daemon.json" \
        --containerd "$dir/containerd.sock" \
        --data-root "$dir/data" --exec-root "$dir/exec" \
        --pidfile "$dir/dockerd.pid" --host "unix://$dir/docker.sock" \
        --bridge none --default-address-pool "base=$pool,size=24" \
        --cgroup-parent "$cg" --storage-driver "${CARHUB_DOCKER_STORAGE:-overlay2}" \
        >"$dir/dockerd.log" 2>&1 </dev/null &
    local launcher=$!
    disown
    deadline=$((SECONDS + 60))
    until DOCKER_HOST="unix://$dir/docker.sock" docker version >/dev/null 2>&1; do
        kill -0 "$launcher" 2>/dev/null \
            || { tail -n 20 "$dir/dockerd.log" >&2; die "dockerd ($n) exited during start-up"; }
        [ $SECONDS -lt $deadline ] || die "dockerd ($n) not ready after 60s (log $dir/dockerd.log)"
        sleep 0.3
    done
    log "engine $n: dockerd pid $(cat "$dir/dockerd.pid"), containerd pid $(cat "$dir/containerd.pid"), unix://$dir/docker.sock"
}

start_engines() {
    start_engine m "$NS_M" "$POOL_M"
    start_engine w "$NS_W" "$POOL_W"
}

form_swarm() {
    dm swarm init --advertise-addr "$ADDR_M" --listen-addr "$ADDR_M:2377" \
        --default-addr-pool "$POOL_SWARM" --default-addr-pool-mask-length 24 >/dev/null
    local token
    token="$(dm swarm join-token -q worker)"
    timeout 60 env DOCKER_HOST="unix://$SOCK_W" docker swarm join --token "$token" \
        --advertise-addr "$ADDR_W" --listen-addr "$ADDR_W:2377" "$ADDR_M:2377" >/dev/null
    wait_until "two Ready nodes" 60 nodes_ready 2
    dm node ls >&2
}

nodes_ready() {
    [ "$(dm node ls --format '{{.Status}}' | grep -c '^Ready$')" -ge "$1" ]
}

# ---- images ----------------------------------------------------------------------------

image_tar() {
    # The lab image as a `docker save` tarball: given, or built on the compose lab's
    # private engine (its layer cache makes a rebuild of unchanged code take seconds).
    if [ -n "${CARHUB_IMAGE_TAR:-}" ]; then
        [ -s "$CARHUB_IMAGE_TAR" ] || die "CARHUB_IMAGE_TAR=$CARHUB_IMAGE_TAR: no such file"
        IMAGE_TAR=$CARHUB_IMAGE_TAR
        return 0
    fi
    IMAGE_TAR="$WORK/images.tar"
    local started=0
    export CARHUB_DOCKER_DIR="${CARHUB_DOCKER_DIR:-/tmp/carhub-docker}"
    if ! scripts/dockerd.sh status 2>/dev/null; then
        scripts/dockerd.sh start
        started=1
    fi
    local rc=0
    (
        export DOCKER_HOST="unix://$CARHUB_DOCKER_DIR/docker.sock" DOCKER_BUILDKIT=0
        scripts/build_base_image.sh
        docker build -q --network host \
            --build-arg BASE_IMAGE="${CARHUB_BASE_IMAGE:-carhub/bookworm-python:local}" \
            --build-arg EXTRA_CA_CERTS="$(cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true)" \
            -t "$CARHUB_IMAGE" . >"$WORK/build.log" 2>&1 || { tail -n 30 "$WORK/build.log" >&2; exit 1; }
        docker save "$CARHUB_IMAGE" -o "$IMAGE_TAR"
    ) || rc=$?
    [ $started = 0 ] || scripts/dockerd.sh stop
    [ $rc = 0 ] || die "image build failed"
    log "image $CARHUB_IMAGE saved: $(du -m "$IMAGE_TAR" | cut -f1) MB"
}

load_images() {
    # docker save | docker load on every node: no registry anywhere.
    fleet load-images "$IMAGE_TAR" "unix://$SOCK_M" "unix://$SOCK_W"
}

# ---- the fleet -------------------------------------------------------------------------

fleet_converged() {
    # All bays up, every phone paired, synced and equal to its book; prints a summary line.
    # $1: which bays must be up ("all", or a space-separated list of bay names).
    fleet status --json >"$WORK/status.json" 2>"$WORK/status.err" || true
    python3 - "$WORK/status.json" "$CARHUB_PHONES_PER_BAY" "${1:-all}" <<'PY'
import json, sys
try:
    doc = json.load(open(sys.argv[1]))
except (OSError, ValueError) as exc:
    print("[swarm-ci]   status not readable yet: %s" % exc, file=sys.stderr)
    sys.exit(1)
want = int(sys.argv[2])
only = None if sys.argv[3] == "all" else set(sys.argv[3].split())
bays = [b for b in doc["bays"] if only is None or b["bay"] in only]
ok = 0
parts = []
for b in bays:
    good = [p for p in b["phones"] if p["consistent"] and p["connected"]]
    parts.append("%s %d/%d" % (b["bay"], len(good), want))
    ok += b["reachable"] and len(good) >= want
print("[swarm-ci]   %d/%d bays converged: %s" % (ok, len(bays), ", ".join(parts)), file=sys.stderr)
sys.exit(0 if bays and ok == len(bays) and (only is None or len(bays) == len(only)) else 1)
PY
}

deploy_fleet() {
    local t=$SECONDS
    fleet up "$BAYS"
    wait_until "every phone paired, synced and consistent" "$WAIT" fleet_converged all
    CONVERGE_S=$((SECONDS - t))
    fleet status >&2
    FIGURES+=("deploy + converge $BAYS bays x $CARHUB_PHONES_PER_BAY phones ($CARHUB_PHONE_CONTACTS contacts, $CARHUB_BAY_TRANSPORT): ${CONVERGE_S}s")
    fleet_rss
}

fleet_rss() {
    # Memory of every container process of both engines (their cgroups): the sum of VmRSS
    # (shared pages counted in every process) and of Pss (shared pages split among them).
    local kb=0 pss=0 n=0 pid v
    for pid in $(cg_pids "$CG_M"; cg_pids "$CG_W"); do
        v="$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)"
        kb=$((kb + ${v:-0}))
        v="$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || true)"
        pss=$((pss + ${v:-0}))
        n=$((n + 1))
    done
    local line="memory of the fleet's $n container processes: RSS $((kb / 1024)) MB, PSS $((pss / 1024)) MB"
    FIGURES+=("$line")
    log "$line"
    # Idle CPU of the converged fleet: utime + stime of those processes over a window.
    local window="${CARHUB_SWARM_IDLE_WINDOW:-10}" t0 t1
    t0="$(cpu_ticks)"
    sleep "$window"
    t1="$(cpu_ticks)"
    line="idle CPU of the fleet over ${window}s: $(((t1 - t0) * 100 / $(getconf CLK_TCK) / window))% of one core"
    FIGURES+=("$line")
    log "$line"
}

cpu_ticks() {
    local pid sum=0 v
    for pid in $(cg_pids "$CG_M"; cg_pids "$CG_W"); do
        v="$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || true)"
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

manager_bays() {
    python3 -c '
import json, sys
doc = json.load(open(sys.argv[1]))
print(" ".join(b["bay"] for b in doc["bays"] if b["node_role"] == "manager"))' "$WORK/status.json"
}

kill_worker() {
    # The worker "host" dies: its dockerd and containerd (SIGKILL), then every process of
    # its containers (its cgroup) and their shims. The manager's bays must keep working.
    MGR_BAYS="$(manager_bays)"
    [ -n "$MGR_BAYS" ] || die "no bay runs on the manager"
    cp "$WORK/status.json" "$WORK/status.before-kill.json"
    log "killing the worker's engine (manager's bays: $MGR_BAYS)"
    kill_node w
    wait_until "the manager sees the worker Down" 90 worker_down
    log "worker is Down; waiting for the manager's bays ($MGR_BAYS)"
    local t=$SECONDS
    wait_until "the manager's bays working without the worker" "$WAIT" fleet_converged "$MGR_BAYS"
    python3 - "$WORK/status.before-kill.json" "$WORK/status.json" "$MGR_BAYS" <<'PY' || die "a manager bay's car changed"
import json, sys
before = {b["bay"]: b for b in json.load(open(sys.argv[1]))["bays"]}
after = {b["bay"]: b for b in json.load(open(sys.argv[2]))["bays"]}
bad = [n for n in sys.argv[3].split() if before[n]["car_id"] != after[n]["car_id"]]
print("[swarm-ci]   same cars before and after: %s" % ("no: " + " ".join(bad) if bad else "yes"),
      file=sys.stderr)
sys.exit(1 if bad else 0)
PY
    fleet status >&2
    # As an operator would with a host that is gone for good: without this, its tasks
    # never report stopped and `stack rm` cannot remove the bays' networks.
    dm node rm --force swarm-w >/dev/null
    log "removed the dead worker from the swarm"
    FIGURES+=("manager's bays healed after the worker died: $((SECONDS - t))s after it was Down")
}

worker_down() {
    dm node ls --format '{{.Hostname}} {{.Status}}' | grep -q '^swarm-w Down$'
}

kill_node() {
    local n=$1 dir="$WORK/$1" cg pid
    [ "$n" = m ] && cg=$CG_M || cg=$CG_W
    for pid in $(cat "$dir/dockerd.pid" "$dir/containerd.pid" 2>/dev/null); do
        kill -KILL "$pid" 2>/dev/null || true
    done
    for pid in $(cg_pids "$cg"); do
        kill -KILL "$pid" 2>/dev/null || true
    done
    for pid in $(our_pids "$dir/"); do
        kill -KILL "$pid" 2>/dev/null || true
    done
}

our_pids() {
    # PIDs of processes whose command line names our own temp dir $1 (shims, containerd).
    # The "[/]" keeps grep from matching its own command line.
    local f
    for f in $(grep -lsa -- "${1%/}[/]" /proc/[0-9]*/cmdline || true); do
        f="${f#/proc/}"
        echo "${f%/cmdline}"
    done
}

remove_fleet() {
    fleet down
    wait_until "the manager's containers gone" 60 no_containers
    dm swarm leave --force >/dev/null
    log "left the swarm"
}

no_containers() { [ -z "$(dm ps -q)" ]; }

# ---- cleanup ---------------------------------------------------------------------------

stop_engine() {
    # SIGTERM, 20 s, then SIGKILL; then containerd, the shims and the container processes.
    local n=$1 dir="$WORK/$1" pid
    pid="$(cat "$dir/dockerd.pid" 2>/dev/null || true)"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        local deadline=$((SECONDS + 20))
        while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.3; done
    fi
    pid="$(cat "$dir/containerd.pid" 2>/dev/null || true)"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        local deadline=$((SECONDS + 10))
        while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.3; done
    fi
    kill_node "$n"
}

clean_netns() {
    # docker_gwbridge and the iptables rules the engine made live in our namespace: remove
    # them explicitly, then the veth and the namespace itself.
    local ns=$1 veth=$2
    [ -e "/var/run/netns/$ns" ] || return 0
    ip -n "$ns" link del docker_gwbridge 2>/dev/null || true
    local table
    for table in filter nat mangle; do
        nsenter --net="/var/run/netns/$ns" iptables -t "$table" -F 2>/dev/null || true
        nsenter --net="/var/run/netns/$ns" iptables -t "$table" -X 2>/dev/null || true
    done
    ip -n "$ns" link del "$veth" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ $rc -ne 0 ] && [ -S "$SOCK_M" ]; then
        log "state at failure:"
        dm node ls >&2 2>/dev/null || true
        dm service ls >&2 2>/dev/null || true
        [ ! -s "$WORK/status.err" ] || tail -n 20 "$WORK/status.err" >&2
        local s
        for s in $(dm service ls -q 2>/dev/null); do
            dm service logs --no-task-ids --tail 15 "$s" >>"$WORK/services.log" 2>&1 || true
        done
        [ ! -s "$WORK/services.log" ] || tail -n 60 "$WORK/services.log" >&2
    fi
    log "cleaning up"
    local n
    for n in w m; do stop_engine "$n"; done
    clean_netns "$NS_M" "$VETH_M"
    clean_netns "$NS_W" "$VETH_W"
    # A failure between creating the veth and moving it leaves it in the host's namespace.
    ip link del "$VETH_M" 2>/dev/null || true
    # dockerd leaves its network namespaces (exec/netns/*) bind-mounted: lift them all.
    { grep -o " $WORK/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
    local cg
    for cg in $(cg_dirs "$CG_M"; cg_dirs "$CG_W"); do
        find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done
    rm -rf "$WORK"
    local left=""
    [ -z "$(our_pids "$WORK/")" ] || left="$left processes"
    [ -z "$(cg_dirs "$CG_M"; cg_dirs "$CG_W")" ] || left="$left cgroups"
    ! ip netns list | grep -qE "^($NS_M|$NS_W)( |$)" || left="$left namespaces"
    ! ip link show "$VETH_M" >/dev/null 2>&1 || left="$left veth"
    [ ! -e "$WORK" ] || left="$left $WORK"
    [ -z "$left" ] || { log "left behind:$left"; [ $rc -ne 0 ] || rc=1; }
    printf '%s\n' "${SUMMARY[@]}" >&2
    [ ${#FIGURES[@]} -eq 0 ] || printf 'figure: %s\n' "${FIGURES[@]}" >&2
    log "total $((SECONDS - T0))s, exit $rc"
    exit $rc
}

trap cleanup EXIT
trap 'log "FAILED: interrupted"; exit 130' INT TERM

step "image tarball" image_tar
step "namespaces + veth" make_netns
step "two engines" start_engines
step "swarm init + join" form_swarm
step "load images on both nodes" load_images
step "deploy $BAYS bays, wait for every mirror" deploy_fleet
step "kill the worker, manager's bays keep working" kill_worker
step "remove stacks, leave swarm" remove_fleet
