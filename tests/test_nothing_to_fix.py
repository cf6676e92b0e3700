"""Nothing to fix is not a failure: green tests and a task that only reports failing tests
stop after the baseline, before any model call; a task that asks for a change goes on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import PYTEST

from acr_bot.cli import cli
from acr_bot.memory.store import Memory
from acr_bot.report import gave_up_comment
from tests.support import calc

GREEN = {**calc.FILES, "calc.py": calc.FIXED}
DIV = calc.FIXED + "\n\ndef div(a, b):\n    return a / b\n"
DIV_TEST = "\n\ndef test_div():\n    from calc import div\n    assert div(6, 3) == 2\n"


def fix(repo: Path, replay: Path, task: str, models: str = "replay/cheap"
        ) -> tuple[int, dict, str]:
    result = CliRunner().invoke(cli, ["fix", "--harness", "edit", "--repo", str(repo),
                                      "--test-cmd", PYTEST, "--policy", "cheapest-first",
                                      "--task", task, "--models", models,
                                      "--replay-file", str(replay), "--json"])
    doc = json.loads(result.stdout) if result.stdout.startswith("{") else {}
    return result.exit_code, doc, result.stderr


@pytest.mark.parametrize("task", ["CI is failing on main\n\nThe tests fail since yesterday.",
                                  "tests fail: test_mul is failing"])
def test_green_tests_and_a_failing_tests_report_stop_before_any_call(make_repo, make_replay,
                                                                     task: str) -> None:
    repo = make_repo(GREEN)
    replay = make_replay({"cheap": [calc.reply("calc.py", calc.FIXED, DIV)]})
    code, doc, progress = fix(repo, replay, task)
    assert code == 0, progress
    assert doc["outcome"] == "nothing_to_fix" and doc["attempts"] == []
    assert doc["reason"] == ("the tests already pass (exit 0; 3 passed) and the task names no "
                             "test that fails, so no model was called")
    assert "attempt 1" not in progress
    assert not (repo / ".acr" / "memory.json").exists() or \
        Memory.load(repo / ".acr" / "memory.json").records == []


@pytest.mark.parametrize("task", ["Add a div() function to calc.py",
                                  "CI fails: test_div fails"])  # names a test that is not there
def test_a_change_goes_on_and_must_bring_its_reproduction(make_repo, make_replay,
                                                          task: str) -> None:
    """Not nothing to fix: the task asks for a change the tests cannot show yet, so the change
    must bring a test that fails without it (the reproduction rule, tests/test_reproduction.py)."""
    repo = make_repo(GREEN)
    with_test = (calc.reply("calc.py", calc.FIXED, DIV) + "\n" + calc.reply(
        "tests/test_calc.py", calc.TESTS, calc.TESTS + DIV_TEST))
    replay = make_replay({"cheap": [calc.reply("calc.py", calc.FIXED, DIV)],
                          "strong": [with_test]})
    code, doc, progress = fix(repo, replay, task, "replay/cheap,replay/strong")
    assert code == 0, progress
    assert doc["outcome"] == "fixed" and doc["reproduced"] is True
    assert [a["outcome"] for a in doc["attempts"]] == ["no_reproduction", "passed"]
    assert doc["attempts"][1]["reproduction"] == ["tests.test_calc::test_div"]
    assert ("note: the tests already pass, so a fix must bring a test that reproduces the "
            "issue: it fails on the code before the change and passes with it") in progress
    assert "the agent continues" not in progress  # an edit attempt is judged once


def test_the_issue_comment_says_nothing_to_fix(make_repo, make_replay) -> None:
    from acr_bot import app
    from acr_bot.config import load_settings

    repo = make_repo(GREEN)
    settings = load_settings(repo, {"harness": "edit", "models": ["replay/cheap"],
                                    "test_command": PYTEST,
                                    "replay_file": make_replay({"cheap": ["x"]})})
    result = app.fix(repo, app.task_from_text("CI is red", source="ci"), settings)
    assert result.outcome == "nothing_to_fix"
    assert gave_up_comment(result).startswith("**acr-bot found nothing to fix:** the tests "
                                              "already pass")
