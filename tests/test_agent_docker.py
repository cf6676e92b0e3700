"""The agent's commands in the docker sandbox, against a real dockerd: one container per
attempt on a copy of the tree, commands by `exec`, no network, no host environment, limits,
hostile commands contained, the changed tree copied back, the container always removed.

Skipped loudly where no Docker engine can be started (see conftest.docker_client).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import docker
import docker.errors
import pytest

from acr_bot import app
from acr_bot.config import Settings
from acr_bot.gitrepo import git
from acr_bot.verify.docker import DockerSandbox
from tests.support.agent import SUBMIT, agent_model, script

try:
    from tests.support import dockerd
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from support import dockerd  # type: ignore[no-redef]

pytestmark = pytest.mark.docker
IMAGE = dockerd.BASE_IMAGE  # python3 + git, no pytest: unittest below


def test_one_container_per_attempt_contains_hostile_commands(
        docker_client: docker.DockerClient, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-abcdefghijklmnopqrstuvwx")
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.txt").write_text("one\n")
    (work / "gone.txt").write_text("x\n")
    sandbox = DockerSandbox(IMAGE, client=docker_client, memory="256m", pids=128)
    shell = sandbox.session(work)
    try:
        hang = shell.exec("sleep 600", 2, 1_000)
        flood = shell.exec("yes acr-flood | head -c 5000000", 30, 2_000)
        shell.exec("(setsid sleep 600 > /dev/null 2>&1 &); sleep 0.3; echo forked", 10, 1_000)
        survivors = shell.exec("cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' "
                               "| grep -c 'sleep 60[0]'", 10, 1_000)
        network = shell.exec("python3 -c \"import socket; "
                             "socket.create_connection(('1.1.1.1', 53), timeout=3)\"", 20, 2_000)
        env = shell.exec("env", 10, 10_000)
        bash = shell.exec("echo {1..3}", 10, 1_000)
        shell.exec("echo two >> a.txt && rm gone.txt && mkdir -p n && echo new > n/b.txt "
                   "&& ln -s /etc/passwd n/link", 10, 1_000)
    finally:
        shell.close()

    assert hang.exit_code is None and hang.seconds < 20
    assert len(flood.output) < 2_500 and "bytes omitted" in flood.output
    assert survivors.output.strip() == "0"  # the daemon died with its command
    assert network.exit_code != 0 and "unreachable" in network.output.lower()
    assert "OPENAI_API_KEY" not in env.output and "sk-test" not in env.output
    assert bash.output.strip() == "1 2 3"  # commands run in bash where the image has it
    assert (work / "a.txt").read_text() == "one\ntwo\n"
    assert not (work / "gone.txt").exists()
    assert (work / "n" / "b.txt").read_text() == "new\n"
    assert (work / "n" / "link").is_symlink()  # a link comes back as a link, not /etc/passwd
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(shell.container.id)


CALC = "def mul(a, b):\n    return a + b\n"
TESTS = ("import unittest\n\nfrom calc import mul\n\n\nclass T(unittest.TestCase):\n"
         "    def test_mul(self):\n        self.assertEqual(mul(3, 4), 12)\n")


def test_an_agent_fixes_a_repo_inside_docker(docker_client: docker.DockerClient, make_repo,
                                             tmp_path: Path) -> None:
    repo = make_repo({"calc.py": CALC, "tests/__init__.py": "", "tests/test_calc.py": TESTS})
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"models": {"agent": agent_model(script(
        "grep -rn 'def mul' .", "sed -i 's/a + b/a * b/' calc.py",
        "python3 -m unittest -q 2>&1 | tail -1", "echo scratch > notes.txt", SUBMIT))}}))
    settings = replace(Settings(), models=("replay/agent",), replay_file=replay,
                       test_command="python3 -m unittest -q", harness="agent",
                       sandbox="docker", sandbox_image=IMAGE, llm_retries=0)
    result = app.fix(repo, app.task_from_text("mul() adds instead of multiplying"), settings)

    assert result.outcome == "fixed", result.reason
    assert result.attempts[0].files == ("calc.py",)  # notes.txt was scratch
    assert "a * b" in git(repo, "show", f"{result.branch}:calc.py")


def test_an_image_without_git_is_named_once(docker_client: docker.DockerClient, make_repo,
                                            caplog: pytest.LogCaptureFixture) -> None:
    """The scaffold's runs had git; an image without it is said once per run, not silently."""
    maker = docker_client.containers.run(IMAGE, ["sh", "-c", "rm -f \"$(command -v git)\""],
                                         detach=True)
    maker.wait(timeout=60)
    image = maker.commit(repository="acr-bot-test-nogit", tag=maker.id[:12])
    maker.remove(force=True)
    try:
        repo = make_repo({"a.txt": "x\n"})
        sandbox = DockerSandbox(image.id, client=docker_client)
        with caplog.at_level(logging.WARNING):
            for _ in range(2):  # two agent sessions: one warning
                shell = sandbox.session(repo)
                try:
                    status = shell.exec("git status", 10, 1_000)
                finally:
                    shell.close()
        warnings = [r.getMessage() for r in caplog.records if "has no git" in r.getMessage()]
        assert status.exit_code != 0
        assert len(warnings) == 1 and "use an image with git" in warnings[0]
        with_git = DockerSandbox(IMAGE, client=docker_client)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            with_git.session(repo).close()
        assert not [r for r in caplog.records if "has no git" in r.getMessage()]
    finally:
        docker_client.images.remove(image.id, force=True)
