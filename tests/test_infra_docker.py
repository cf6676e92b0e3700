"""A real Docker engine runs the locally built base image.

Skipped, with the reason, where no engine can be started (ACR_REQUIRE_DOCKER=1
turns that into a failure).
"""

from __future__ import annotations

import time

import docker.errors
import pytest

try:
    from tests.support import dockerd
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from support import dockerd  # type: ignore[no-redef]

pytestmark = pytest.mark.docker


def test_python_runs_in_base_image(docker_client, request: pytest.FixtureRequest) -> None:
    started = time.monotonic()
    container = docker_client.containers.run(
        dockerd.BASE_IMAGE,
        ["python3", "-c", "print(1+1)"],
        detach=True,
        network_disabled=True,
        mem_limit="256m",
        pids_limit=64,
    )
    try:
        result = container.wait(timeout=60)
        elapsed = time.monotonic() - started
        output = container.logs(stdout=True, stderr=True).decode()
        assert result["StatusCode"] == 0, output
        assert output.strip() == "2"
        host = container.attrs["HostConfig"]
        assert host["Memory"] == 256 * 1024 * 1024
        assert host["PidsLimit"] == 64
        assert container.attrs["Config"].get("NetworkDisabled") is True
    finally:
        container.remove(force=True)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\n[docker] create+start+run+wait: {elapsed:.2f} s")
    with pytest.raises(docker.errors.NotFound):  # removed
        docker_client.containers.get(container.id)
