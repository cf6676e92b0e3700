"""`acr-bot fix` exit codes: one meaning each (the README's table)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import PYTEST

from acr_bot.cli import EXIT_GAVE_UP, cli
from tests.support import calc

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def fix(repo: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["fix", "--harness", "edit", "--repo", str(repo),
                                      "--test-cmd", PYTEST,
                                      "--policy", "cheapest-first", *extra])
    return result.exit_code, result.output


@pytest.fixture
def repo(make_repo) -> Path:
    return make_repo(calc.FILES)


def test_0_fixed(repo: Path, make_replay) -> None:
    replay = make_replay({"cheap": [calc.FIX]})
    code, out = fix(repo, "--task", calc.TASK, "--models", "replay/cheap",
                    "--replay-file", str(replay))
    assert code == 0 and "fixed" in out


def test_3_gave_up(repo: Path, make_replay) -> None:
    replay = make_replay({"cheap": [calc.WRONG_FIX]})
    code, out = fix(repo, "--task", calc.TASK, "--models", "replay/cheap",
                    "--replay-file", str(replay), "--max-attempts", "1")
    assert code == EXIT_GAVE_UP == 3, out


@pytest.mark.parametrize("extra, says", [
    (["--task", "x", "--repo", "/nonexistent/checkout"], "does not exist"),
    (["--models", "replay/cheap"], "exactly one of --task TEXT or --task-file FILE"),
    (["--task", "x", "--replay-file", "/nonexistent/replay.json"], "does not exist"),
    (["--task", "x", "--no-such-option"], "No such option"),
])
def test_2_is_only_a_usage_error(repo: Path, extra: list[str], says: str) -> None:
    code, out = fix(repo, *extra)
    assert code == 2 and says in out and out.startswith("Usage:")


@pytest.mark.parametrize("setup", ["no model", "not a memory"])
def test_1_is_an_error_in_one_line(repo: Path, make_replay, tmp_path: Path, setup: str) -> None:
    replay = make_replay({"cheap": [calc.FIX]})
    extra = ["--models", "replay/cheap", "--replay-file", str(replay)]
    if setup == "no model":
        extra = ["--models", "replay/cheap"]
    else:
        (tmp_path / "package.json").write_text('{"name": "web"}')
        extra += ["--memory", str(tmp_path / "package.json")]
    code, out = fix(repo, "--task", calc.TASK, *extra)
    assert code == 1 and len(out.strip().splitlines()) == 1 and out.startswith("Error: ")


def test_the_readme_documents_every_code() -> None:
    for row in ("| 0 | done", "| 1 | error", "| 2 | usage error", "| 3 | gave up",
                "| 130, 143 | interrupted"):
        assert row in README


def test_130_ctrl_c(repo: Path, make_replay) -> None:
    """A real process: click alone would exit 1 ("Aborted!") on Ctrl-C."""
    replay = make_replay({"cheap": [calc.FIX]})
    proc = subprocess.Popen(
        [sys.executable, "-m", "acr_bot", "fix", "--repo", str(repo), "--task", calc.TASK,
         "--test-cmd", "sleep 60", "--models", "replay/cheap", "--replay-file", str(replay)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "LITELLM_OFFLINE_MODE": "true", "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # wait until the baseline (sleep 60) has started
            if line.startswith("baseline: sleep 60"):
                break
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
