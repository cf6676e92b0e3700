"""A real Docker engine and the locally built base image, for tests.

``ensure_docker()`` returns ``(client, info)`` when an engine answers and the
base image exists, else ``(None, reason)`` with a loud, actionable reason.

Engine: Debian's ``docker.io`` (20.10.24, API 1.41) from ``apt-get install -y
docker.io``.  On this machine (Firecracker VM, cgroup v1, ext4 root, root user)
plain ``dockerd`` works - overlay2 storage, iptables, default bridge - so it
is started with no flags.  If that does not come up (overlayfs or iptables
unavailable elsewhere), ``--storage-driver=vfs --iptables=false --bridge=none``
is tried; that combination was checked here too (tests run containers with the
network disabled anyway).  No systemd: apt's postinst does not start the
daemon, we do, detached, logging to ``/tmp/acr-bot-dockerd.log``; it keeps
running after the tests.

Image: ``acr-bot-base:bookworm`` (Debian bookworm minbase + python3,
python3-venv, python3-pip, git, ca-certificates), built by
``.ci/base-image.sh`` with debootstrap + ``docker import`` (Docker Hub is not
reachable): ~60 s, 268 MB; a container starts and runs ``python3 -c`` in
~0.3 s.  On top of the plain import (``...-rootfs``) the script layers this
host's extra CA certificates (``/usr/local/share/ca-certificates``; here a
TLS-intercepting egress proxy's, which can change between sessions), labelled
``acr-bot.ca-sha256``, so pip inside the image reaches PyPI; a label that no
longer matches the host's certificates re-layers in ~2 s.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import docker
import docker.errors
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = os.environ.get("ACR_BASE_IMAGE", "acr-bot-base:bookworm")
BASE_IMAGE_SCRIPT = REPO_ROOT / ".ci" / "base-image.sh"
DOCKERD_LOG = Path("/tmp/acr-bot-dockerd.log")
INSTALL_HINT = "apt-get install -y docker.io debootstrap"
EXTRA_CA_DIR = Path(os.environ.get("ACR_EXTRA_CA_DIR", "/usr/local/share/ca-certificates"))
CA_LABEL = "acr-bot.ca-sha256"
# Tried in order when no engine answers; the first is what works on this machine.
DOCKERD_FLAG_SETS: tuple[tuple[str, ...], ...] = (
    (),
    ("--storage-driver=vfs", "--iptables=false", "--bridge=none"),
)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


def _client_if_up() -> docker.DockerClient | None:
    try:
        client = docker.from_env(timeout=30)
        client.ping()
        return client
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError):
        return None


def _start_dockerd(flags: tuple[str, ...], wait: float) -> tuple[docker.DockerClient | None, str]:
    with open(DOCKERD_LOG, "ab") as log:
        log.write(f"\n=== acr-bot tests: dockerd {' '.join(flags)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            ["dockerd", *flags],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the test session on purpose
        )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None, f"dockerd {' '.join(flags)} exited with {proc.returncode}"
        client = _client_if_up()
        if client is not None:
            return client, ""
        time.sleep(0.5)
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    return None, f"dockerd {' '.join(flags)} did not answer within {wait:.0f} s"


def _engine(wait: float) -> tuple[docker.DockerClient | None, str]:
    client = _client_if_up()
    if client is not None:
        return client, ""
    if os.environ.get("DOCKER_HOST"):
        return (
            None,
            f"DOCKER_HOST={os.environ['DOCKER_HOST']} does not answer (not starting dockerd)",
        )
    if shutil.which("dockerd") is None:
        return None, f"no Docker engine and no dockerd: run `{INSTALL_HINT}`"
    if os.geteuid() != 0:
        return None, "no Docker engine answering, and starting dockerd needs root"
    failures = []
    for flags in DOCKERD_FLAG_SETS:
        client, why = _start_dockerd(flags, wait)
        if client is not None:
            return client, ""
        failures.append(why)
    return None, (
        "could not start dockerd: "
        + "; ".join(failures)
        + f"\n--- tail of {DOCKERD_LOG}:\n{_tail(DOCKERD_LOG)}"
    )


def _has_image(client: docker.DockerClient, image: str) -> bool:
    try:
        client.images.get(image)
        return True
    except docker.errors.ImageNotFound:
        return False


def host_ca_hash() -> str:
    """sha256 of the host's extra CA certificates, as .ci/base-image.sh computes it."""
    files = sorted(EXTRA_CA_DIR.glob("*.crt")) if EXTRA_CA_DIR.is_dir() else []
    files = [f for f in files if f.is_file()]
    if not files:
        return "none"
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _image_current(client: docker.DockerClient, image: str) -> bool:
    try:
        labels = client.images.get(image).labels or {}
    except docker.errors.ImageNotFound:
        return False
    return labels.get(CA_LABEL) == host_ca_hash()


def ensure_base_image(client: docker.DockerClient, image: str = BASE_IMAGE) -> str | None:
    """Build the base image if missing or if the host's CAs changed; None on success, else
    the reason."""
    if _image_current(client, image):
        return None
    if shutil.which("docker") is None:
        return f"base image {image} missing and no docker CLI: run `{INSTALL_HINT}`"
    if not _has_image(client, image) and not _has_image(client, f"{image}-rootfs") \
            and shutil.which("debootstrap") is None:
        return f"base image {image} missing and debootstrap not installed: run `{INSTALL_HINT}`"
    env = {**os.environ, "ACR_BASE_IMAGE": image}
    try:
        done = subprocess.run(
            ["bash", str(BASE_IMAGE_SCRIPT)],
            check=False,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=20 * 60,
        )
    except subprocess.TimeoutExpired:
        return f"{BASE_IMAGE_SCRIPT.name} did not finish in 20 min"
    if done.returncode != 0 or not _image_current(client, image):
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-25:])
        return f"{BASE_IMAGE_SCRIPT.name} failed (exit {done.returncode}):\n{tail}"
    return None


def ensure_docker(
    *, image: str | None = BASE_IMAGE, wait: float = 30.0
) -> tuple[docker.DockerClient | None, str]:
    """A Docker client with ``image`` present, or (None, why not).

    Starts dockerd if nothing answers (waits up to ``wait`` s per attempt) and
    builds the base image with ``.ci/base-image.sh`` if it is missing
    (``image=None`` skips that).  On success the string says what is there.
    """
    client, why = _engine(wait)
    if client is None:
        return None, f"NO DOCKER ENGINE: {why}"
    if image is not None:
        why = ensure_base_image(client, image)
        if why is not None:
            return None, f"NO BASE IMAGE: {why}"
    version = client.version().get("Version", "?")
    return client, f"docker {version}" + (f", image {image}" if image else "")
