#!/usr/bin/env bash
# Build the acr-bot test base image (Debian bookworm + python3, venv, pip, git,
# ca-certificates) from Debian's own packages with debootstrap, then
# `docker import` it. Docker Hub is not reachable here, so no `FROM debian`.
#
# Idempotent: does nothing when the image already exists (FORCE=1 rebuilds).
# Needs: root, a running docker engine, debootstrap (apt-get install -y debootstrap).
# Env: ACR_BASE_IMAGE (default acr-bot-base:bookworm), DEBIAN_MIRROR (default:
#      the first deb.debian.org-style URI in /etc/apt/sources.list*, else
#      http://deb.debian.org/debian).
set -euo pipefail

IMAGE="${ACR_BASE_IMAGE:-acr-bot-base:bookworm}"
SUITE=bookworm
PACKAGES=python3,python3-venv,python3-pip,git,ca-certificates

log() { printf '[base-image] %s\n' "$*" >&2; }

if [ "${FORCE:-0}" != 1 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    log "$IMAGE already exists; nothing to do"
    exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    log "debootstrap not found: run 'apt-get install -y debootstrap'"
    exit 1
fi

pick_mirror() {
    # Prefer the mirror apt on this machine already uses for the main archive
    # (deb822 "URIs:" lines or one-line "deb URL suite" entries).
    local uri
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v -- '-security' | head -n1 | tr -d ' ' || true)
    echo "${uri:-http://deb.debian.org/debian}"
}
MIRROR="${DEBIAN_MIRROR:-$(pick_mirror)}"

ROOTFS=$(mktemp -d /var/tmp/acr-bot-rootfs.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT

t0=$(date +%s)
log "debootstrap $SUITE from $MIRROR into $ROOTFS (packages: $PACKAGES)"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" \
    > /tmp/acr-bot-debootstrap.log 2>&1 || {
    log "debootstrap failed; tail of /tmp/acr-bot-debootstrap.log:"
    tail -n 30 /tmp/acr-bot-debootstrap.log >&2
    exit 1
}
t1=$(date +%s)
log "debootstrap took $((t1 - t0)) s"

# Slim down: apt lists/caches, docs and man pages are not needed in tests.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
       "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
       "$ROOTFS"/var/log/*.log "$ROOTFS"/var/cache/debconf/*-old
# Point apt inside the image at the same mirror (containers normally run with
# the network disabled anyway).
echo "deb $MIRROR $SUITE main" > "$ROOTFS"/etc/apt/sources.list

tar --numeric-owner -C "$ROOTFS" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    - "$IMAGE" >/dev/null
t2=$(date +%s)
log "docker import took $((t2 - t1)) s; total $((t2 - t0)) s"
docker image ls "$IMAGE" --format '[base-image] {{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}' >&2
