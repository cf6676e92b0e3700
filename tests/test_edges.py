"""Smaller edges a newcomer met (issue #9, item 8), one test each."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import PYTEST

from acr_bot.cli import _progress, cli
from acr_bot.domain import Attempt, TestCounts, TestRun
from acr_bot.fixing import edits
from acr_bot.gitrepo import git
from acr_bot.report import attempts_table, clip, run_summary
from acr_bot.verify.judge import judge
from tests.support import calc

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
SYNTH = Path(__file__).parent / "data" / "synthetic.jsonl"


def fix(repo: Path, replay: Path, *extra: str) -> object:
    return CliRunner().invoke(cli, ["fix", "--harness", "edit", "--repo", str(repo),
                                    "--test-cmd", PYTEST,
                                    "--replay-file", str(replay), "--models", "replay/cheap",
                                    *extra])


# --- the bench progress bar ---------------------------------------------------------------------

def test_bench_without_a_terminal_writes_nothing_to_stderr() -> None:
    result = CliRunner().invoke(cli, ["bench", "--dataset", str(SYNTH), "--policies", "oracle"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.count("stream rows after") == 1  # the header, once


def test_the_bar_on_a_terminal_shows_no_eta(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    with _progress(10, "bench") as bar:
        bar.update(5)
        assert bar.show_eta is False
    assert "bench" in sys.stderr.getvalue() and ":" not in sys.stderr.getvalue()


# --- the README documents the edit format --------------------------------------------------------

def test_the_readme_edit_example_applies(tmp_path: Path) -> None:
    section = README.split("### The edit format (SEARCH/REPLACE)", 1)[1]
    example = re.search(r"````text\n(.*?)\n````", section, re.DOTALL).group(1)
    (tmp_path / "calc.py").write_text("def mul(a, b):\n    return a + b\n")
    blocks = edits.parse_edits(example)
    assert [b.path for b in blocks] == ["calc.py"]
    edits.apply_to_tree(tmp_path, blocks, ())
    assert (tmp_path / "calc.py").read_text() == "def mul(a, b):\n    return a * b\n"


# --- the demo's next steps -----------------------------------------------------------------------

def test_the_demos_next_steps_name_no_missing_file(tmp_path: Path) -> None:
    from acr_bot.demo import run_demo

    lines: list[str] = []
    assert run_demo(tmp_path, lines.append) == 0
    steps = "\n".join(lines).split("Next steps", 1)[1]
    assert "--task-file" not in steps
    assert "--task 'median() is wrong for lists with an even number of values'" in steps


# --- route prices replay models --------------------------------------------------------------

def test_route_reads_replay_prices(make_repo, make_replay, caplog) -> None:
    repo = make_repo(calc.FILES)
    replay = make_replay({"cheap": ["x"], "strong": ["y"]})
    with caplog.at_level(logging.WARNING):
        result = CliRunner().invoke(cli, ["route", "--repo", str(repo), "--task", calc.TASK,
                                          "--models", "replay/cheap,replay/strong",
                                          "--replay-file", str(replay), "--json"])
    assert result.exit_code == 0, result.output
    assert "no price known" not in caplog.text
    costs = [c["expected_cost_usd"] for c in json.loads(result.stdout)["candidates"]]
    assert len(costs) == 2 and all(c is not None and c > 0 for c in costs)


# --- uncommitted changes ---------------------------------------------------------------------

def test_uncommitted_changes_are_named_not_ignored(make_repo, make_replay) -> None:
    repo = make_repo(calc.FILES)
    replay = make_replay({"cheap": [calc.FIX]})
    first = fix(repo, replay, "--task", calc.TASK)
    assert first.exit_code == 0 and "uncommitted" not in first.output  # its memory file aside
    (repo / "calc.py").write_text(calc.CALC + "# my local note\n")
    second = fix(repo, replay, "--task", calc.TASK)
    head = git(repo, "rev-parse", "HEAD")[:12]
    assert (f"note: the fix starts from HEAD ({head}); 1 uncommitted change(s) are not part of "
            "it (calc.py): commit them first to include them") in second.output


# --- uncut test ids and details; one vocabulary ---------------------------------------------

def test_the_attempts_table_cuts_no_detail() -> None:
    detail = "exit 1; 1 failed: tests/test_paginate.py::test_first_page_of_a_long_listing"
    table = attempts_table([Attempt(1, "m", "tests_failed", 1.0, detail=detail)])
    assert detail in table
    assert detail in attempts_table([Attempt(1, "m", "tests_failed", 1.0, detail=detail)],
                                    markdown=True)


def test_counts_read_the_same_on_the_console_and_in_the_verdict() -> None:
    before = TestRun("pytest", 2, 1.0, "", TestCounts(errors=13))
    after = TestRun("pytest", 0, 1.0, "", TestCounts(passed=13))
    assert run_summary(before) == "exit 2; 13 errors"
    assert judge(before, after).reason == "exit 0; 13 passed (before: 13 errors)"
    assert run_summary(TestRun("t", 1, 1.0, "", TestCounts(3, 1, 2, 1))) == \
        "exit 1; 3 passed, 1 failed, 1 error, 2 skipped"


# --- a YAML error is one line --------------------------------------------------------------------

def test_a_yaml_error_in_the_settings_file_is_one_line(make_repo, make_replay) -> None:
    repo = make_repo({**calc.FILES, ".github/acr-bot.yml": "models: [a, b\nmax_attempts: 2\n"})
    result = fix(repo, make_replay({"cheap": [calc.FIX]}), "--task", calc.TASK)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"Error: {repo}/.github/acr-bot.yml: not valid YAML: ")
    assert re.search(r"at line \d+, column \d+$", lines[0])


# --- commit titles -------------------------------------------------------------------------------

def test_a_long_title_is_cut_at_a_word_and_kept_whole_in_the_body(make_repo, make_replay) -> None:
    title = ("mul() returns the sum of its arguments instead of their product whenever both "
             "of them are positive integers")
    repo = make_repo(calc.FILES)
    result = fix(repo, make_replay({"cheap": [calc.FIX]}), "--task", f"{title}\n\ntest_mul fails")
    assert result.exit_code == 0, result.output
    branch = git(repo, "branch", "--list", "acr/*", "--format=%(refname:short)")
    subject, _, body = git(repo, "log", "-1", "--format=%B", branch).partition("\n\n")
    assert subject == clip(title, 72) and len(subject) <= 72
    assert subject.endswith("...") and title.startswith(subject[:-3] + " ")
    assert body.startswith(title + "\n")
