"""The action's container image, built from the repo's Dockerfile on the local base image
(Docker Hub is not reachable here) and tagged by a hash of everything the build copies, so
an unchanged tree reuses the image. Used by the container test and by the docker sandbox
test (an image with an ENTRYPOINT)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import docker
import docker.errors
import pytest

try:
    from tests.support import dockerd
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from support import dockerd  # type: ignore[no-redef]

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE_REPOSITORY = "acr-bot-action"
# What the Dockerfile COPYs (and the files that decide how): the image tag is their hash.
BUILD_INPUTS = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "entrypoint.py")
BUILD_TREES = ("acr_bot",)


def build_hash(base_image_id: str) -> str:
    """A hash of every file the image is built from, and of the base image."""
    digest = hashlib.sha256(base_image_id.encode())
    files = [REPO_ROOT / name for name in BUILD_INPUTS]
    for tree in BUILD_TREES:
        files += sorted(p for p in (REPO_ROOT / tree).rglob("*")
                        if p.is_file() and "__pycache__" not in p.parts)
    for path in files:
        digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0")
        digest.update(path.read_bytes() if path.exists() else b"<missing>")
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def build_action_image(client: docker.DockerClient) -> tuple[str, float, bool]:
    """The action image for the current tree: (tag, seconds, built now?)."""
    base = client.images.get(dockerd.BASE_IMAGE)
    tag = f"{IMAGE_REPOSITORY}:{build_hash(base.id)}"
    started = time.monotonic()
    try:
        client.images.get(tag)
        return tag, time.monotonic() - started, False
    except docker.errors.ImageNotFound:
        pass
    # Its own client: the pip install layer can be quiet for longer than ensure_docker's 30 s.
    builder = docker.from_env(timeout=30 * 60)
    try:
        builder.images.build(
            path=str(REPO_ROOT), dockerfile="Dockerfile", tag=tag,
            buildargs={"BASE_IMAGE": dockerd.BASE_IMAGE},
            # Host networking: pip reaches PyPI the way the host does (and docker0's MTU,
            # larger than the uplink's here, never matters).
            network_mode="host", rm=True, forcerm=True, pull=False,
        )
    except docker.errors.BuildError as exc:
        log = "".join(str(chunk.get("stream") or chunk.get("error") or "")
                      for chunk in exc.build_log)
        pytest.fail(f"building the action image failed: {exc}\n{log[-6000:]}", pytrace=False)
    finally:
        builder.close()
    seconds = time.monotonic() - started
    _prune_old_tags(client, keep=tag)
    return tag, seconds, True


def _prune_old_tags(client: docker.DockerClient, keep: str, newest: int = 2) -> None:
    """Every edit of acr_bot/ makes a new tag (sharing the dependency layers): drop all but
    the newest few. An image a container still uses stays."""
    images = sorted(client.images.list(name=IMAGE_REPOSITORY),
                    key=lambda image: image.attrs.get("Created", ""), reverse=True)
    tags = [t for image in images for t in image.tags if t.startswith(IMAGE_REPOSITORY + ":")]
    for old in [t for t in tags if t != keep][newest - 1:]:
        try:
            client.images.remove(old)
        except docker.errors.APIError:
            pass
