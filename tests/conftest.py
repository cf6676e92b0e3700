"""Shared fixtures: real temporary git repos, replay model files, isolated state."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

# litellm fetches its price map from the internet at import unless this is set; no test may
# reach the network.
os.environ["LITELLM_OFFLINE_MODE"] = "true"

from acr_bot.gitrepo import git

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "github"  # sources: SOURCES.md there
PYTEST = f"{sys.executable} -m pytest -q -p no:cacheprovider"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's settings, git identity or replay file."""
    for name in list(os.environ):
        if name.startswith(("ACR_", "INPUT_", "GITHUB_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # and so the baseline cache
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    (tmp_path / "home").mkdir(exist_ok=True)
    # Nested pytest runs inside test repos skip plugin autoload (hypothesis costs ~1 s each).
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


MakeRepo = Callable[[Mapping[str, str]], Path]


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory the sandbox user may write, as it may /tmp (tmp_path is the bot's own and out
    of its reach): where a test command leaves what the test reads afterwards."""
    path = Path(tempfile.mkdtemp(prefix="acr-test-shared-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_repo(tmp_path: Path) -> MakeRepo:
    """Create a committed git repo from {path: content}; returns its root."""
    counter = iter(range(1000))

    def make(files: Mapping[str, str]) -> Path:
        root = tmp_path / f"repo{next(counter)}"
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        root.mkdir(exist_ok=True)
        git(root, "init", "--quiet", "--initial-branch=main")
        git(root, "add", "-A")
        git(root, "commit", "--quiet", "--allow-empty", "-m", "initial")
        return root

    return make


MakeReplay = Callable[[Mapping[str, object]], Path]


@pytest.fixture
def make_replay(tmp_path: Path) -> MakeReplay:
    """Write a replay file: {name: [reply text or reply dict, ...]} with default prices."""
    counter = iter(range(1000))

    def make(models: Mapping[str, object]) -> Path:
        spec = {}
        for i, (name, replies) in enumerate(models.items()):
            if isinstance(replies, dict):
                spec[name] = replies
                continue
            spec[name] = {"input_cost_per_token": 1e-6 * (i + 1),
                          "output_cost_per_token": 4e-6 * (i + 1),
                          "replies": [r if isinstance(r, dict) else {"text": r}
                                      for r in replies]}  # type: ignore[union-attr]
        path = tmp_path / f"replay{next(counter)}.json"
        path.write_text(json.dumps({"models": spec}))
        return path

    return make


def load_fixture(relative: str) -> dict:
    return json.loads((FIXTURES / relative).read_text())


@pytest.fixture(scope="session")
def docker_client() -> Iterator[object]:
    """A Docker engine with the local base image; a loud skip (or, with ACR_REQUIRE_DOCKER=1,
    a failure) when none can start."""
    from tests.support import dockerd

    client, why = dockerd.ensure_docker()
    if client is None:
        if os.environ.get("ACR_REQUIRE_DOCKER") == "1":
            pytest.fail(f"ACR_REQUIRE_DOCKER=1, but no Docker engine could be started: {why}",
                        pytrace=False)
        pytest.skip(f"DOCKER TESTS SKIPPED - no Docker engine could be started: {why}")
    yield client
    client.close()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Back-off sleeps (urllib3's and ours), recorded and cut short."""
    slept: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        real_sleep(min(seconds, 0.01))

    monkeypatch.setattr(time, "sleep", sleep)
    return slept
