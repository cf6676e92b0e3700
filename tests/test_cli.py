"""The `acr-bot` command line, in process (CliRunner) and as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import PYTEST

from acr_bot.cli import cli
from acr_bot.fixing.edits import format_edits, make_edits
from acr_bot.gitrepo import git
from acr_bot.memory.store import Memory

CALC = "def mul(a, b):\n    return a + b\n"
FIXED = "def mul(a, b):\n    return a * b\n"
WRONG = "def mul(a, b):\n    return a * b + 1\n"
TESTS = ("from calc import mul\n\n\ndef test_one():\n    assert mul(1, 1) in (1, 2)\n\n\n"
         "def test_mul():\n    assert mul(3, 4) == 12\n")
FILES = {"calc.py": CALC, "tests/test_calc.py": TESTS,
         "pytest.ini": "[pytest]\ntestpaths = tests\npythonpath = .\n"}
TASK = "mul() adds instead of multiplying\n\ntests/test_calc.py::test_mul fails."


def fix_args(repo: Path, replay: Path, *extra: str) -> list[str]:
    return ["fix", "--repo", str(repo), "--test-cmd", PYTEST, "--replay-file", str(replay),
            "--models", "replay/cheap,replay/strong", "--policy", "cheapest-first",
            "--harness", "edit", *extra]


def test_fix_json_reports_a_verified_fix(make_repo, make_replay) -> None:
    repo = make_repo(FILES)
    replay = make_replay({"cheap": [format_edits(make_edits("calc.py", CALC, WRONG))],
                          "strong": [format_edits(make_edits("calc.py", CALC, FIXED))]})
    result = CliRunner().invoke(cli, fix_args(repo, replay, "--task", TASK, "--json"))

    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["outcome"] == "fixed"
    assert doc["model"] == "replay/strong"
    assert [a["outcome"] for a in doc["attempts"]] == ["tests_failed", "passed"]
    assert [a["model"] for a in doc["attempts"]] == ["replay/cheap", "replay/strong"]
    assert doc["cost_usd"] > 0
    assert doc["cost_usd"] == pytest.approx(sum(a["cost_usd"] for a in doc["attempts"]), abs=1e-6)
    assert all(a["prompt_tokens"] > 0 for a in doc["attempts"])
    assert doc["baseline"]["counts"] == {"passed": 1, "failed": 1, "skipped": 0, "errors": 0}
    assert doc["final"]["counts"]["passed"] == 2 and doc["final"]["exit_code"] == 0
    assert doc["task"]["title"] == "mul() adds instead of multiplying"
    assert doc["decisions"][0]["model"] == "replay/cheap"
    assert git(repo, "show", f"{doc['branch']}:calc.py") == FIXED.rstrip("\n")
    assert git(repo, "rev-parse", doc["branch"]) == doc["commit"]
    assert "baseline" in result.stderr  # progress goes to stderr, keeping stdout pure JSON


def test_fix_exits_3_when_it_gives_up(make_repo, make_replay, tmp_path: Path) -> None:
    repo = make_repo(FILES)
    replay = make_replay({"cheap": [format_edits(make_edits("calc.py", CALC, WRONG))],
                          "strong": ["no idea, sorry"]})
    task_file = tmp_path / "TASK.md"
    task_file.write_text(TASK)
    memory = tmp_path / "elsewhere" / "memory.json"
    result = CliRunner().invoke(cli, fix_args(repo, replay, "--task-file", str(task_file),
                                              "--max-attempts", "2", "--memory", str(memory)))
    assert result.exit_code == 3, result.output
    assert "tests_failed" in result.output and "no_edits" in result.output
    assert git(repo, "branch", "--format=%(refname:short)") == "main"
    assert [r.outcome for r in Memory.load(memory).records] == ["tests_failed", "no_edits"]
    assert not (repo / ".acr").exists()  # --memory put it elsewhere


@pytest.mark.parametrize("task_args", [[], ["--task", "x", "--task-file", "FILE"]])
def test_task_and_task_file_are_exclusive(make_repo, make_replay, tmp_path: Path,
                                          task_args: list[str]) -> None:
    repo = make_repo(FILES)
    replay = make_replay({"cheap": ["x"], "strong": ["y"]})
    task_file = tmp_path / "task.md"
    task_file.write_text("a task")
    args = [str(task_file) if a == "FILE" else a for a in task_args]
    result = CliRunner().invoke(cli, fix_args(repo, replay, *args))
    assert result.exit_code == 2
    assert "exactly one of --task TEXT or --task-file FILE" in result.output
    assert not (repo / ".acr").exists()


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "acr_bot", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120, check=False)


def test_a_directory_that_is_not_a_git_repo_is_a_one_line_error(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    done = run_cli("fix", "--repo", str(plain), "--task", "fix it", "--test-cmd", "true",
                   cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: ") and "not inside a git repository" in lines[0]
    assert done.stdout == ""


def test_a_bad_setting_is_a_one_line_error(make_repo) -> None:
    repo = make_repo({**FILES, ".github/acr-bot.yml": "max_attempt: 2\n"})
    done = run_cli("fix", "--repo", str(repo), "--task", "fix it", cwd=repo)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "unknown setting 'max_attempt'" in done.stderr


def test_demo_completes_and_leaves_a_branch(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    project = out / "stats-project"
    branches = git(project, "branch", "--format=%(refname:short)").split()
    fix_branches = [b for b in branches if b.startswith("acr/fix-")]
    assert len(fix_branches) == 1 and "main" in branches
    fixed = git(project, "show", f"{fix_branches[0]}:stats/core.py")
    assert "(ordered[middle - 1] + ordered[middle]) / 2" in fixed
    assert git(project, "symbolic-ref", "--short", "HEAD") == "main"
    assert "verified fix" in result.output
    records = Memory.load(project / ".acr" / "memory.json").records
    assert [r.outcome for r in records][-1] == "passed"
    # The agent story, on an issue (the tests pass before any change): mini changes the code
    # without a test (sent back once, then rejected: nothing shows the issue fixed); pro greps,
    # writes a test that fails, fixes the code, runs the tests and submits.
    assert [(r.model, r.harness, r.outcome, r.reproduction) for r in records] == [
        ("replay/mini", "agent", "no_reproduction", 0), ("replay/pro", "agent", "passed", 1)]
    assert "the change adds or changes no test" in result.output
    assert "step 1: grep -rn 'def median'" in result.output
    # The PR's words on the reproduction: the test, and how it failed before the change.
    pr = result.output[result.output.index("The PR says"):]
    assert "## Reproduction" in pr and "test_median_of_an_even_count_is_the_mean" in pr
    assert "assert 3 == 2.5" in pr
    assert "def test_median_of_an_even_count_is_the_mean_of_the_middle_two" in git(
        project, "show", f"{fix_branches[0]}:tests/test_core.py")
    # A second demo into the same directory refuses rather than mixing projects.
    again = CliRunner().invoke(cli, ["demo", "--out", str(out)])
    assert again.exit_code != 0
    assert "already exists" in again.output
