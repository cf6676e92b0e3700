"""Every refusal says why: each refused path with its reason, in the console, the JSON, the
PR or issue comment and the text fed back to the model."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from conftest import PYTEST

from acr_bot.cli import cli
from acr_bot.report import gave_up_comment, pr_body
from tests.support import calc

WORKFLOW = ".github/workflows/ci.yml"
EVIL = calc.reply(WORKFLOW, None, "on: push\njobs: {}\n", "Disable CI.") + "\n" + \
    calc.reply("../outside.py", None, "x = 1\n")
REASON = (f"These edits were refused and nothing was applied: '{WORKFLOW}': the path is "
          "protected (it matches '.github/**'); '../outside.py': '..' is not allowed in paths.")


def run(repo: Path, replay: Path, *extra: str) -> object:
    return CliRunner().invoke(cli, [
        "fix", "--harness", "edit", "--repo", str(repo), "--test-cmd", PYTEST, "--task", calc.TASK,
        "--replay-file", str(replay), "--models", "replay/evil,replay/good",
        "--policy", "cheapest-first", *extra])


def test_the_reasons_reach_the_json_console_comments_and_the_model(make_repo,
                                                                    make_replay) -> None:
    repo = make_repo(calc.FILES)
    replay = make_replay({"evil": [EVIL], "good": [calc.FIX]})
    result = run(repo, replay, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["attempts"][0]["outcome"] == "apply_failed"
    assert doc["attempts"][0]["detail"] == REASON
    assert f"-> apply_failed: {REASON}" in result.stderr  # the progress lines

    verbose = run(make_repo(calc.FILES), make_replay({"evil": [EVIL], "good": [calc.FIX]}))
    assert REASON in verbose.output  # progress and the attempts table, uncut


def test_the_comments_and_the_feedback_carry_the_reason(make_repo, make_replay) -> None:
    from acr_bot import app
    from acr_bot.config import load_settings

    repo = make_repo(calc.FILES)
    replay = make_replay({"evil": [EVIL], "good": [calc.FIX]})
    settings = load_settings(repo, {"harness": "edit", "models": ["replay/evil", "replay/good"],
                                    "replay_file": replay, "policy": "cheapest-first",
                                    "test_command": PYTEST, "max_attempts": 1})
    result = app.fix(repo, app.task_from_text(calc.TASK), settings)
    assert result.outcome == "gave_up"
    assert REASON.replace("|", "\\|") in gave_up_comment(result)
    assert REASON in result.attempts[0].feedback  # what the next model reads
    fixed = app.fix(repo, app.task_from_text(calc.TASK),
                    load_settings(repo, {"harness": "edit",
                                         "models": ["replay/evil", "replay/good"],
                                         "replay_file": replay, "policy": "cheapest-first",
                                         "test_command": PYTEST}))
    assert fixed.outcome == "fixed" and REASON in pr_body(fixed, "<!-- m -->")
