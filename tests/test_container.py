"""The action's real image, run the way the GitHub Actions runner runs a Docker action.

Builds the repo's Dockerfile (on the locally built Debian base: Docker Hub is not reachable
here) with the docker SDK, tagged by a hash of everything the build copies, so an unchanged
tree reuses the image. Then runs it like the runner does (`docker run --workdir
/github/workspace -v workspace:/github/workspace -v ...:/github/workflow -v
...:/github/file_commands -v ...:/github/home -e INPUT_... image`) on an `issues.labeled`
event, against a fake GitHub API on the host and a bare origin repo mounted into the
container, with replayed models: the verified fix must come back as a draft PR, the outputs
and the memory branch must be written, and the container must be gone afterwards.

Skipped loudly where no Docker engine can be started; ACR_REQUIRE_DOCKER=1 (set by .ci/run
when it started one) turns that into a failure.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from conftest import load_fixture

from acr_bot import demo
from acr_bot.gitrepo import git
from acr_bot.memory.store import Memory

try:
    from tests.support.action_image import build_action_image as action_image_build
    from tests.support.fake_github import FakeGitHub, serve_fake_github
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from support.action_image import (  # type: ignore[no-redef]
        build_action_image as action_image_build,
    )
    from support.fake_github import FakeGitHub, serve_fake_github  # type: ignore[no-redef]

pytestmark = pytest.mark.docker

REPOSITORY = "Codertocat/Hello-World"  # the fixture's repository
ISSUE = 1
ORIGIN_IN_CONTAINER = "/srv/acr-origin.git"
WORKSPACE_UID = 1001  # the runner user's uid on GitHub-hosted runners; root in the container
TOKEN = "ghs_" + "T0kenForTheContainerTest" + "x" * 12
MODELS = ("replay/mini", "replay/mid", "replay/pro")


def _report(request: pytest.FixtureRequest, line: str) -> None:
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)


@pytest.fixture(scope="module")
def action_image(docker_client: docker.DockerClient, request: pytest.FixtureRequest) -> str:
    tag, seconds, built = action_image_build(docker_client)
    _report(request, f"\n[container] action image {tag}: "
                     f"{'built in' if built else 'cached, looked up in'} {seconds:.1f} s")
    return tag


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    with serve_fake_github(REPOSITORY) as github:
        yield github


def _event(path: Path) -> dict[str, Any]:
    payload = load_fixture("issues/labeled.payload.json")
    title, _, body = demo.TASK.partition("\n")
    payload["label"]["name"] = "acr:fix"
    payload["issue"]["number"] = ISSUE
    payload["issue"]["title"] = title.strip()
    payload["issue"]["body"] = body.strip()
    payload["issue"]["labels"] = [dict(payload["label"])]
    payload["repository"]["default_branch"] = "main"
    path.write_text(json.dumps(payload))
    return payload


def _chown_tree(root: Path, uid: int) -> None:
    for path in [root, *root.rglob("*")]:
        os.lchown(path, uid, uid)


def _outputs(path: Path) -> dict[str, str]:
    """GITHUB_OUTPUT in the heredoc syntax the action writes (`name<<DELIM`...`DELIM`)."""
    found: dict[str, str] = {}
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        match = re.fullmatch(r"([\w-]+)<<(\S+)", lines[i])
        assert match, f"unexpected line in GITHUB_OUTPUT: {lines[i]!r}"
        end = lines.index(match.group(2), i + 1)
        found[match.group(1)] = "\n".join(lines[i + 1:end])
        i = end + 1
    return found


def test_action_container_fixes_a_labelled_issue(
    docker_client: docker.DockerClient, action_image: str, fake_github: FakeGitHub,
    tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    # The repository on "GitHub": a bare origin, and the runner's checkout of it.
    project = demo.build_project(tmp_path / "src")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(project), str(origin))
    workspace = tmp_path / "workspace"
    git(tmp_path, "clone", "--quiet", str(origin), str(workspace))
    git(workspace, "remote", "set-url", "origin", ORIGIN_IN_CONTAINER)
    head = git(workspace, "rev-parse", "HEAD")

    # What the runner mounts: /github/workflow (event), /github/file_commands, /github/home.
    # (Named like the runner's _temp folders; conftest already made tmp_path/home.)
    workflow, commands, home, acr = (
        tmp_path / d for d in ("_github_workflow", "_runner_file_commands", "_github_home", "acr"))
    for folder in (workflow, commands, home, acr):
        folder.mkdir()
    _event(workflow / "event.json")
    (commands / "set_output").touch()
    (commands / "step_summary").touch()
    (acr / "replay.json").write_text(json.dumps(demo.replay_models()))
    fake_github.labels[ISSUE] = ["acr:fix"]

    # The checkout belongs to the runner user, not to the container's root: git refuses such
    # a repo unless entrypoint.py marks it safe.
    chowned = os.geteuid() == 0
    if chowned:
        _chown_tree(workspace, WORKSPACE_UID)

    environment = {
        "GITHUB_ACTIONS": "true", "CI": "true", "HOME": "/github/home",
        "GITHUB_EVENT_NAME": "issues", "GITHUB_EVENT_PATH": "/github/workflow/event.json",
        "GITHUB_REPOSITORY": REPOSITORY, "GITHUB_WORKSPACE": "/github/workspace",
        "GITHUB_API_URL": fake_github.api_url, "GITHUB_SERVER_URL": "https://github.test",
        "GITHUB_REF": "refs/heads/main", "GITHUB_RUN_ID": "4242", "GITHUB_ACTOR": "Codertocat",
        "GITHUB_OUTPUT": "/github/file_commands/set_output",
        "GITHUB_STEP_SUMMARY": "/github/file_commands/step_summary",
        "INPUT_GITHUB-TOKEN": TOKEN, "INPUT_MODELS": ",".join(MODELS), "INPUT_HARNESS": "edit",
        "INPUT_TEST-COMMAND": "python3 -m pytest -q", "INPUT_TRIGGER-LABEL": "",
        "INPUT_MAX-ATTEMPTS": "", "INPUT_DRAFT": "",
        "ACR_REPLAY_FILE": "/github/acr/replay.json",
    }
    volumes = {
        str(workspace): {"bind": "/github/workspace", "mode": "rw"},
        str(workflow): {"bind": "/github/workflow", "mode": "rw"},
        str(commands): {"bind": "/github/file_commands", "mode": "rw"},
        str(home): {"bind": "/github/home", "mode": "rw"},
        str(acr): {"bind": "/github/acr", "mode": "ro"},
        str(origin): {"bind": ORIGIN_IN_CONTAINER, "mode": "rw"},
    }
    started = time.monotonic()
    container = docker_client.containers.run(
        action_image, detach=True, working_dir="/github/workspace", environment=environment,
        volumes=volumes, network_mode="host", labels={"acr-bot.test": request.node.name},
    )
    try:
        status = container.wait(timeout=300)
        seconds = time.monotonic() - started
        logs = container.logs(stdout=True, stderr=True).decode(errors="replace")
    finally:
        container.remove(force=True)
    _report(request, f"\n[container] action run (create+start+fix+push+PR+wait): "
                     f"{seconds:.1f} s")
    with pytest.raises(docker.errors.NotFound):  # removed, like the runner's --rm
        docker_client.containers.get(container.id)

    assert status["StatusCode"] == 0, logs[-8000:]
    assert "dubious ownership" not in logs
    assert f"::add-mask::{TOKEN}" in logs
    assert logs.count(TOKEN) == 1, "the token leaked into the log after it was masked"

    # The draft PR, from the fix branch to the default branch.
    posts = fake_github.calls("POST", rf"^/repos/{REPOSITORY}/pulls$")
    assert len(posts) == 1, fake_github.requests
    pr = posts[0]
    assert pr["head"] == f"acr/issue-{ISSUE}"
    assert pr["base"] == "main"
    assert pr["title"] == "Fix #1: median() is wrong for lists with an even number of values"
    assert pr["draft"] is True
    assert "Fixes #1" in pr["body"]
    assert TOKEN not in pr["body"]
    comments = fake_github.calls("POST", rf"^/repos/{REPOSITORY}/issues/{ISSUE}/comments$")
    assert any("acr-bot opened" in c["body"] for c in comments), comments
    assert "acr:fix" not in fake_github.labels[ISSUE]  # the trigger label is taken off
    (number,) = fake_github.pulls
    assert fake_github.labels.get(number) == ["acr-bot"]

    # The outputs and the job summary.
    outputs = _outputs(commands / "set_output")
    assert outputs["outcome"] == "fixed", outputs
    assert outputs["pr-url"] == fake_github.pulls[number]["html_url"]
    assert outputs["model"] == "replay/pro"
    assert int(outputs["attempts"]) >= 1
    assert (commands / "step_summary").read_text().strip()

    # The fix branch and the memory branch on the origin.
    fix = git(tmp_path, "--git-dir", str(origin), "rev-parse", f"refs/heads/acr/issue-{ISSUE}")
    assert git(tmp_path, "--git-dir", str(origin), "rev-parse", f"{fix}^") == head
    changed = git(tmp_path, "--git-dir", str(origin), "diff", "--name-only", head, fix)
    assert changed.split() == ["stats/core.py"]
    text = git(tmp_path, "--git-dir", str(origin), "show", "acr-memory:.acr/memory.json")
    records = Memory.from_text(text, "acr-memory").records
    task = f"gh:{REPOSITORY}#{ISSUE}"
    assert any(r.task == task and r.passed and r.model == "replay/pro" for r in records), records
    assert all(r.task == task for r in records)

    # The runner's checkout is untouched: same commit, clean tree, still the runner's.
    safe = ("-c", "safe.directory=*")
    assert git(workspace, *safe, "rev-parse", "HEAD") == head
    assert git(workspace, *safe, "status", "--porcelain") == ""
    if chowned:
        assert workspace.stat().st_uid == WORKSPACE_UID
