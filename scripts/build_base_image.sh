#!/usr/bin/env bash
# Build the lab's base image locally, with no image registry: debootstrap a minimal Debian
# bookworm with Python, pack it as a tarball (cached between runs), `docker import` it and
# tag it with the name the Dockerfile's FROM uses.
#
#   scripts/build_base_image.sh            # needs root and a reachable Docker engine
#   CARHUB_BASE_REBUILD=1 scripts/build_base_image.sh   # ignore the cached tarball
#
# Env: CARHUB_DOCKER_DIR (work folder, default /tmp/carhub-docker), CARHUB_BASE_IMAGE
# (tag, default carhub/bookworm-python:local), DEBIAN_MIRROR (default deb.debian.org).
set -euo pipefail

WORK="${CARHUB_DOCKER_DIR:-/tmp/carhub-docker}"
TAG="${CARHUB_BASE_IMAGE:-carhub/bookworm-python:local}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
# What the Dockerfile needs from the base: Python with venv, and the CA store that pip (and
# a CI build's extra CA) use. passwd gives useradd for the non-root user.
PACKAGES="python3,python3-venv,ca-certificates,passwd"
# The cache key changes whenever the recipe does, so a stale tarball is never reused.
KEY="$(printf '%s|%s|%s|v1' "$SUITE" "$PACKAGES" "$MIRROR" | sha256sum | cut -c1-12)"
TARBALL="$WORK/cache/$SUITE-python-$KEY.tar"

log() { printf '[base-image] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "debootstrap needs root (run through sudo)"
command -v debootstrap >/dev/null 2>&1 || die "debootstrap missing (scripts/dockerd.sh start installs it)"
docker version >/dev/null 2>&1 || die "no Docker engine reachable (DOCKER_HOST=${DOCKER_HOST:-unset})"

ROOT="$WORK/rootfs.$$"
cleanup() {
    # Whatever happens, never leave a half-built root (with /proc mounted) behind.
    umount -l "$ROOT/proc" "$ROOT/sys" 2>/dev/null || true
    rm -rf "$ROOT" "$TARBALL.tmp"
}
trap cleanup EXIT

make_tarball() {
    local root=$ROOT
    rm -rf "$root" && mkdir -p "$root" "$WORK/cache"
    log "debootstrap --variant=minbase $SUITE (+ ${PACKAGES//,/ })"
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" \
        >"$WORK/debootstrap.log" 2>&1 || { tail -n 20 "$WORK/debootstrap.log" >&2; return 1; }
    slim_rootfs "$root"
    tar --numeric-owner -C "$root" -cf "$TARBALL.tmp" .
    mv "$TARBALL.tmp" "$TARBALL"
}

slim_rootfs() {
    # Drop what a container never reads: apt lists and .debs, docs, man pages, locales.
    local root=$1
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
        "$root"/var/cache/apt/archives/*.deb "$root"/usr/share/doc/* "$root"/usr/share/man/* \
        "$root"/usr/share/info/* "$root"/var/log/*.log "$root"/var/log/apt/*
    find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' \
        -exec rm -rf {} + 2>/dev/null || true
    # debootstrap copies the build host's resolver and hostname; docker supplies its own.
    : >"$root/etc/resolv.conf"
    : >"$root/etc/hostname"
}

if [ "${CARHUB_BASE_REBUILD:-0}" = 1 ] || [ ! -s "$TARBALL" ]; then
    make_tarball
else
    log "using cached $TARBALL"
fi

# The tarball's hash labels the image, so an unchanged tarball skips the import.
digest="$(sha256sum "$TARBALL" | cut -c1-16)"
have="$(docker image inspect -f '{{index .Config.Labels "org.carhub.rootfs"}}' "$TAG" 2>/dev/null || true)"
if [ "$have" = "$digest" ]; then
    log "$TAG is up to date"
else
    docker import \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change "LABEL org.carhub.rootfs=$digest" \
        --change 'CMD ["/bin/bash"]' \
        "$TARBALL" "$TAG" >/dev/null
    log "imported $TAG"
fi
docker image inspect -f '{{.Size}}' "$TAG" | awk -v t="$TAG" '{printf "[base-image] %s: %.1f MB\n", t, $1/1e6}' >&2
