"""Scripted replays of what real runs of the scaffold do with git (issue #17), each locally and
in docker: the agent's copy is a git repository at the attempt's base, so `git diff`, `git
status`, `git checkout --`, `git stash` and `git log` work as in mini-SWE-agent; what is
submitted is still computed by the bot from the files against the base. The replies are in the
scaffold's style (THOUGHT, one bash block) and end with its own submission line."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from acr_bot import app
from acr_bot.config import Settings
from acr_bot.domain import FixResult
from acr_bot.gitrepo import git
from tests.support.agent import SUBMIT, agent_model, script, turn

try:
    from tests.support import dockerd
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from support import dockerd  # type: ignore[no-redef]

CALC = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a + b\n"
FILES = {
    "calc.py": CALC,
    "report.py": "from calc import mul\n\n\ndef squares(n):\n    return [mul(i, i) for i in range(n)]\n",
    "settings.py": "DEBUG = False\n",
    "tests/__init__.py": "",
    "tests/test_calc.py": ("import unittest\n\nfrom calc import mul\n\n\nclass T(unittest.TestCase):\n"
                           "    def test_mul(self):\n        self.assertEqual(mul(3, 4), 12)\n"),
    ".gitignore": "__pycache__/\n",
}
TASK = "mul() adds instead of multiplying\n\nmul(3, 4) gives 7, not 12."
FIX = "sed -i '/def mul/{n;s/a + b/a * b/}' calc.py"
SANDBOXES = ["local", pytest.param("docker", marks=pytest.mark.docker)]


@pytest.fixture(params=SANDBOXES)
def sandbox(request: pytest.FixtureRequest) -> str:
    if request.param == "docker":
        request.getfixturevalue("docker_client")  # a loud skip where there is no engine
    return request.param


def python(sandbox: str) -> str:
    return "python3" if sandbox == "docker" else sys.executable


def run(make_repo, tmp_path: Path, sandbox: str, replies: list[dict],
        **changes: object) -> tuple[Path, FixResult, list[dict[str, str]]]:
    """`app.fix` on a fresh repo with one replayed agent; the repo, the result and the
    conversation (from the trajectory)."""
    repo = make_repo(FILES)
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"models": {"agent": agent_model(replies, price=1e-7)}}))
    settings = replace(Settings(), models=("replay/agent",), replay_file=replay,
                       test_command=f"{python(sandbox)} -m unittest -q", harness="agent",
                       policy="cheapest-first", llm_retries=0, max_attempts=1,
                       sandbox=sandbox, sandbox_image=dockerd.BASE_IMAGE,
                       trajectory_dir=tmp_path / "trajectories", **changes)
    result = app.fix(repo, app.task_from_text(TASK), settings)
    assert result.attempts, result.reason
    doc = json.loads(Path(result.attempts[0].trajectory).read_text())
    return repo, result, doc["messages"]


def observed(messages: list[dict[str, str]], step: int) -> str:
    """The output the agent saw after its `step`-th command (1-based; a submission is a step
    with no output, the verifier's message after it is not an observation)."""
    seen = [messages[i + 1]["content"] for i, m in enumerate(messages[:-1])
            if m["role"] == "assistant" and messages[i + 1]["role"] == "user"]
    outputs = [text for text in seen if text.startswith("<returncode>")]
    return outputs[step - 1].split("<output>\n", 1)[1].rsplit("</output>", 1)[0]


def changed(repo: Path, branch: str) -> list[str]:
    return git(repo, "diff", "--name-only", f"{branch}~1", branch).splitlines()


def test_scratch_edits_reverted_with_git_leave_only_the_intended_change(
        make_repo, tmp_path: Path, sandbox: str) -> None:
    py = python(sandbox)
    repo, result, messages = run(make_repo, tmp_path, sandbox, script(
        "grep -rn 'def mul' --include=*.py .",
        # Three files edited to get a reproduction running: two of them only for that.
        "sed -i 's/DEBUG = False/DEBUG = True/' settings.py && sed -i '1i import settings' "
        "report.py && printf 'from report import squares\\nprint(squares(4))\\n' > reproduce.py"
        f" && {py} reproduce.py",
        f"{FIX} && {py} reproduce.py",
        "git checkout -- settings.py report.py && rm reproduce.py && git status --short",
        "git diff",
        SUBMIT))

    assert result.outcome == "fixed", result.reason
    assert observed(messages, 2) == "[0, 2, 4, 6]\n"  # the bug reproduced
    assert observed(messages, 3) == "[0, 1, 4, 9]\n"
    assert observed(messages, 4) == " M calc.py\n"  # the two scratch edits are gone
    assert result.attempts[0].files == ("calc.py",)
    assert changed(repo, result.branch) == ["calc.py"]
    # The patch is the one the scaffold would submit: the diff the agent reviewed.
    assert git(repo, "diff", f"{result.branch}~1", result.branch) + "\n" == observed(messages, 5)


def test_git_stash_compares_before_and_after_and_pop_brings_the_fix_back(
        make_repo, tmp_path: Path, sandbox: str) -> None:
    show = f"{python(sandbox)} -c 'from calc import mul; print(mul(3, 4))'"
    repo, result, messages = run(make_repo, tmp_path, sandbox, script(
        f"{FIX} && {show}", f"git stash -q && {show}", f"git stash pop -q && {show}",
        "git stash list | wc -l", SUBMIT))

    assert result.outcome == "fixed", result.reason
    assert [observed(messages, n) for n in (1, 2, 3, 4)] == ["12\n", "7\n", "12\n", "0\n"]
    assert changed(repo, result.branch) == ["calc.py"]


def test_a_commit_in_the_middle_of_the_run_neither_loses_the_change_nor_smuggles_files(
        make_repo, tmp_path: Path, sandbox: str) -> None:
    repo, result, messages = run(make_repo, tmp_path, sandbox, script(
        FIX,
        "git add -A && git commit -q -m wip && git log --oneline | head -3",
        "sed -i '1i \"\"\"Arithmetic.\"\"\"' calc.py && mkdir -p .github/workflows && "
        "echo 'on: push' > .github/workflows/x.yml && echo todo > notes.txt && "
        "git add -A && git commit -q -m 'wip 2' && git status --short | wc -l",
        "git diff | wc -l",
        SUBMIT))  # the scaffold's `git diff --cached` is empty here: everything is committed

    assert result.outcome == "fixed", result.reason
    lines = observed(messages, 2).splitlines()
    assert re.fullmatch(r"[0-9a-f]+ wip", lines[0]) and lines[1].endswith(" initial")
    assert observed(messages, 3) == "0\n" and observed(messages, 4) == "0\n"
    attempt = result.attempts[0]
    assert attempt.files == ("calc.py",)
    assert "'.github/workflows/x.yml': the path is protected" in attempt.note
    assert git(repo, "log", "--format=%s", result.branch).splitlines()[1:] == ["initial"]
    assert changed(repo, result.branch) == ["calc.py"]  # no notes.txt, no workflow
    fixed = git(repo, "show", f"{result.branch}:calc.py")
    assert fixed.startswith('"""Arithmetic."""') and "return a * b" in fixed


def test_a_long_run_submits_at_step_110_under_the_default_step_limit(
        make_repo, tmp_path: Path, sandbox: str) -> None:
    reads = ["cat calc.py", "git status --short", "ls", "git log --oneline -1",
             "grep -n 'a + b' calc.py"]
    commands = [reads[i % len(reads)] for i in range(108)] + [FIX, SUBMIT]
    commands += ["ls"] * 10  # a 120-step script: the last ten replies are never asked for
    repo, result, _ = run(make_repo, tmp_path, sandbox, script(*commands))

    assert Settings().agent_steps >= 120
    assert result.outcome == "fixed", result.reason
    assert (result.attempts[0].calls, result.attempts[0].steps) == (110, 110)


def test_after_a_rejection_the_copy_shows_the_base_as_head_and_the_earlier_edit_as_a_change(
        make_repo, tmp_path: Path, sandbox: str) -> None:
    wrong = "sed -i '/def mul/{n;s/a + b/a * b + 1/}' calc.py"
    repo, result, messages = run(make_repo, tmp_path, sandbox, [
        *script(wrong, SUBMIT),
        turn("git log --oneline && git status --short", match="rejected it"),
        turn("sed -i 's/a \\* b + 1/a * b/' calc.py"), turn(SUBMIT)])

    assert result.outcome == "fixed", result.reason
    assert len(result.attempts) == 1 and result.attempts[0].steps == 5
    lines = observed(messages, 2).splitlines()  # the first command after the verdict
    base = git(repo, "log", "--format=%h", "-1", "main")
    assert lines == [f"{base} initial", " M calc.py"]
