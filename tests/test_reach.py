"""A test command the sandbox user cannot run stops before any model call with one line that
names the path and what to do; a toolchain in a private folder or under the hidden home (a venv
in a `0700` folder, rustup's ~/.cargo + ~/.rustup, `pip install --user`) is kept usable.

Real processes as the real sandbox user (root or passwordless sudo here), in its namespaces."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from acr_bot.cli import cli
from acr_bot.domain import TestRun
from acr_bot.errors import VerifyError
from acr_bot.verify.isolation import sandbox_user
from acr_bot.verify.local import LocalSandbox
from acr_bot.verify.reach import needed_paths
from tests.support.agent import agent_model, script

pytestmark = pytest.mark.skipif(isinstance(sandbox_user(), str),
                                reason="no sandbox user can be made here (not root, no sudo)")


@pytest.fixture
def private() -> Iterator[Path]:
    """A folder only the bot may enter, as `mktemp -d` or /root make."""
    folder = Path(tempfile.mkdtemp(prefix="acr-private-"))
    folder.chmod(0o700)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "probe.py").write_text("import sys\nprint(sys.prefix)\n")
    return folder


def run(command: str, work: Path) -> TestRun:
    sandbox = LocalSandbox(timeout=60)
    try:
        return sandbox.run(command, work)
    finally:
        sandbox.close()


def test_a_venv_in_a_private_folder_runs_the_tests(private: Path, work: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(private / "env")],
                   check=True)
    result = run(f"{private}/env/bin/python probe.py", work)
    assert (result.exit_code, result.output.strip()) == (0, str(private / "env"))


def test_a_venv_in_the_tree_whose_python_lives_in_a_private_folder(private: Path,
                                                                    work: Path) -> None:
    base = Path(sys._base_executable).resolve()  # type: ignore[attr-defined]
    (private / "python").mkdir()
    (private / "python" / "bin").mkdir()
    os.symlink(base, private / "python" / "bin" / "python3")
    (work / ".venv" / "bin").mkdir(parents=True)
    os.symlink(private / "python" / "bin" / "python3", work / ".venv" / "bin" / "python")
    assert needed_paths(".venv/bin/python probe.py", work, os.environ) == [
        private / "python" / "bin" / "python3", base]  # the venv's own link is in the copy
    result = run("PYTHONSAFEPATH=1 .venv/bin/python probe.py", work)
    assert result.exit_code == 0, result.output


def test_rustups_toolchain_under_the_home_is_kept_with_its_proxies(
        work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = Path.home()  # the test's own, hidden from the sandbox like the bot's
    toolchain = home / ".rustup" / "toolchains" / "stable" / "bin"
    toolchain.mkdir(parents=True)
    (toolchain / "cargo").write_text('#!/bin/sh\necho "cargo from the toolchain: $*"\n')
    proxies = home / ".cargo" / "bin"
    proxies.mkdir(parents=True)
    # rustup's proxy: on PATH in ~/.cargo/bin, it runs the toolchain from ~/.rustup.
    (proxies / "cargo").write_text(f'#!/bin/sh\nexec {toolchain}/cargo "$@"\n')
    for tool in (toolchain / "cargo", proxies / "cargo"):
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{proxies}{os.pathsep}{os.environ['PATH']}")
    result = run("cargo test", work)
    assert (result.exit_code, result.output.strip()) == (0, "cargo from the toolchain: test")


def test_pip_install_user_packages_are_found(work: Path) -> None:
    site = Path.home() / ".local" / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    site.mkdir(parents=True)
    (site / "userpkg.py").write_text("WHERE = 'user site'\n")
    python = sys._base_executable  # type: ignore[attr-defined]  # a venv has no user site
    result = run(f"{python} -c 'import userpkg; print(userpkg.WHERE)'", work)
    assert (result.exit_code, result.output.strip()) == (0, "user site")


ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="makes a folder of another user")


@ROOT
def test_a_program_another_user_keeps_private_stops_with_one_line(work: Path) -> None:
    folder = Path(tempfile.mkdtemp(prefix="acr-others-"))
    try:
        (folder / "tool").write_text("#!/bin/sh\necho no\n")
        (folder / "tool").chmod(0o755)
        folder.chmod(0o700)
        os.chown(folder, 4242, 4242)  # not the bot's: it will not open it
        with pytest.raises(VerifyError) as caught:
            run(f"{folder}/tool", work)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    message = str(caught.value)
    assert "\n" not in message
    assert f"cannot run {folder}/tool: {folder} (drwx------) is closed to it" in message
    assert "chmod o+rx" in message and "sandbox: docker" in message


@ROOT
def test_the_cli_stops_before_any_model_call(make_repo, tmp_path: Path) -> None:
    folder = Path(tempfile.mkdtemp(prefix="acr-others-"))
    (folder / "pytest").write_text("#!/bin/sh\nexit 0\n")
    (folder / "pytest").chmod(0o755)
    folder.chmod(0o700)
    os.chown(folder, 4242, 4242)
    repo = make_repo({"calc.py": "x = 1\n"})
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"models": {"agent": agent_model(script("ls"))}}))
    try:
        result = CliRunner().invoke(cli, [
            "fix", "--repo", str(repo), "--task", "x is wrong", "--models", "replay/agent",
            "--replay-file", str(replay), "--test-cmd", f"{folder}/pytest -q"])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if "sandbox user" in line]
    assert len(lines) == 1 and f"{folder}" in lines[0]
    assert "step 1" not in result.output  # no model was asked for anything
