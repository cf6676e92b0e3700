#!/usr/bin/env bash
# Build the acr-bot test base image (Debian bookworm + python3, venv, pip, git,
# ca-certificates) from Debian's own packages with debootstrap, then
# `docker import` it. Docker Hub is not reachable here, so no `FROM debian`.
#
# Two images:
#   $IMAGE-rootfs  the plain debootstrap import (~60 s to build, cached)
#   $IMAGE         rootfs + this host's extra CA certificates
#                  (/usr/local/share/ca-certificates/*.crt) added to the image's
#                  trust store, so pip inside the image (and inside builds FROM
#                  it) trusts what the host trusts - here a TLS-intercepting
#                  egress proxy whose CA may change between sessions. Labelled
#                  with the certificates' sha256; re-layered (~2 s) when they change.
#
# Idempotent: does nothing when $IMAGE exists with the current label (FORCE=1
# rebuilds everything).
# Needs: root, a running docker engine, debootstrap (apt-get install -y debootstrap).
# Env: ACR_BASE_IMAGE (default acr-bot-base:bookworm), DEBIAN_MIRROR (default:
#      the first deb.debian.org-style URI in /etc/apt/sources.list*, else
#      http://deb.debian.org/debian), ACR_EXTRA_CA_DIR (default
#      /usr/local/share/ca-certificates).
set -euo pipefail

IMAGE="${ACR_BASE_IMAGE:-acr-bot-base:bookworm}"
ROOTFS_IMAGE="${IMAGE}-rootfs"
CA_DIR="${ACR_EXTRA_CA_DIR:-/usr/local/share/ca-certificates}"
SUITE=bookworm
PACKAGES=python3,python3-venv,python3-pip,git,ca-certificates

log() { printf '[base-image] %s\n' "$*" >&2; }

# The extra CAs, in a stable order; "none" when there are none.
ca_files() { find "$CA_DIR" -maxdepth 1 -name '*.crt' -type f 2>/dev/null | LC_ALL=C sort; }
ca_hash() {
    local files
    files=$(ca_files)
    if [ -z "$files" ]; then echo none; return; fi
    # shellcheck disable=SC2086
    cat $files | sha256sum | cut -c1-64
}
label_of() {
    docker image inspect "$1" --format '{{ index .Config.Labels "acr-bot.ca-sha256" }}' 2>/dev/null || true
}

CA_HASH=$(ca_hash)
if [ "${FORCE:-0}" != 1 ] && [ "$(label_of "$IMAGE")" = "$CA_HASH" ]; then
    log "$IMAGE already exists (CA sha256 ${CA_HASH:0:12}); nothing to do"
    exit 0
fi

# A base image from before the CA layer existed is a plain rootfs import: keep it.
if [ "${FORCE:-0}" != 1 ] && ! docker image inspect "$ROOTFS_IMAGE" >/dev/null 2>&1 \
   && docker image inspect "$IMAGE" >/dev/null 2>&1 && [ -z "$(label_of "$IMAGE")" ]; then
    log "reusing unlabelled $IMAGE as $ROOTFS_IMAGE"
    docker tag "$IMAGE" "$ROOTFS_IMAGE"
fi

add_cas() {
    local certs name
    certs=$(mktemp -d /var/tmp/acr-bot-ca.XXXXXX)
    name="acr-bot-ca-layer-$$"
    while read -r file; do
        [ -n "$file" ] && cp "$file" "$certs/"
    done < <(ca_files)
    docker rm -f "$name" >/dev/null 2>&1 || true
    docker run --name "$name" --network none -v "$certs:/in:ro" "$ROOTFS_IMAGE" \
        sh -euc 'cp /in/*.crt /usr/local/share/ca-certificates/ 2>/dev/null || true
                 update-ca-certificates >/dev/null 2>&1' >/dev/null
    docker commit --change "LABEL acr-bot.ca-sha256=$CA_HASH" --change 'CMD ["/bin/bash"]' \
        "$name" "$IMAGE" >/dev/null
    docker rm -f "$name" >/dev/null
    rm -rf "$certs"
    log "$IMAGE = $ROOTFS_IMAGE + $(ca_files | wc -l) host CA certificate(s) (sha256 ${CA_HASH:0:12})"
}

if [ "${FORCE:-0}" != 1 ] && docker image inspect "$ROOTFS_IMAGE" >/dev/null 2>&1; then
    add_cas
    docker image ls "$IMAGE" --format '[base-image] {{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}' >&2
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
    - "$ROOTFS_IMAGE" >/dev/null
add_cas
t2=$(date +%s)
log "docker import took $((t2 - t1)) s; total $((t2 - t0)) s"
docker image ls "$IMAGE" --format '[base-image] {{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}' >&2
