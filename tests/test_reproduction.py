"""An issue's fix is published only with a test that reproduces it (fails before, passes after).

A real git repo whose suite is green, the issue from the report that started this rule
(`days_in_month(2024, 2)` returns 28 instead of 29), real pytest runs in the sandbox, and
replayed models through litellm. Pure parts (which tests changed, the verdict on two runs) are
tested on their own at the end.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from click.testing import CliRunner

from acr_bot import app
from acr_bot.cli import cli
from acr_bot.config import Settings
from acr_bot.domain import TestCounts, TestRun
from acr_bot.gitrepo import git
from acr_bot.memory.store import Memory
from acr_bot.report import pr_body, stats_tables
from acr_bot.routing.outcomes import stats
from acr_bot.verify.reproduction import (
    changed_tests,
    in_test_layout,
    judge_reproduction,
    narrow,
    needs_reproduction,
    only,
    folders_with_tests,
)
from tests.support.calc import reply

CAL = '''\
def is_leap(year):
    return year % 4 == 0


def days_in_month(year, month):
    if month == 2:
        return 28
    return 30 if month in (4, 6, 9, 11) else 31
'''
FIXED = CAL.replace("        return 28\n", "        return 29 if is_leap(year) else 28\n")
# Handles only years divisible by 400: 2024 still gives 28.
WRONG = CAL.replace("        return 28\n", "        return 29 if year % 400 == 0 else 28\n")
TESTS = '''\
from cal import days_in_month


def test_january():
    assert days_in_month(2023, 1) == 31


def test_april():
    assert days_in_month(2023, 4) == 30
'''
REPRO = TESTS + '''

def test_february_of_a_leap_year():
    assert days_in_month(2024, 2) == 29
'''
PASSES_AT_BASE = TESTS + '''

def test_february():
    assert days_in_month(2023, 2) == 28
'''
SYNTAX_ERROR = TESTS + '''

def test_february_of_a_leap_year(:
    assert days_in_month(2024, 2) == 29
'''
FILES = {"cal.py": CAL, "tests/test_cal.py": TESTS,
         "pytest.ini": "[pytest]\ntestpaths = tests\npythonpath = .\n", ".gitignore": "__pycache__/\n"}
TASK = "days_in_month(2024, 2) returns 28 instead of 29\n\nFebruary of a leap year has 29 days."
TEST_FILE = "tests/test_cal.py"


def edits(*changes: tuple[str, str, str]) -> str:
    """One edit-harness reply changing each (path, old, new)."""
    return "\n".join(reply(path, old, new, "Here is the change.") for path, old, new in changes)


def settings(replay: Path, names: list[str], **changes: object) -> Settings:
    base = {"models": tuple(f"replay/{n}" for n in names), "replay_file": replay,
            "policy": "cheapest-first", "llm_retries": 0, "max_attempts": len(names),
            "test_command": "python -m pytest -q -p no:cacheprovider", "harness": "edit"}
    return replace(Settings(), **{**base, **changes})


@pytest.fixture
def python_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import sys
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


@pytest.fixture
def repo(make_repo, python_on_path: None) -> Path:
    return make_repo(FILES)


def test_cheapest_first_publishes_only_the_reproduced_fix(repo: Path, make_replay) -> None:
    """The report's run: a wrong fix without a test used to be published; now the four models
    (wrong + no test, wrong + a test passing before, right fix + a test that does not parse,
    right fix + the reproduction) give no_reproduction three times (each rejected on its own
    tests' run on the old code, before the suite runs), then passed."""
    replay = make_replay({
        "a-wrong-no-test": [edits(("cal.py", CAL, WRONG))],
        "b-wrong-test-passes-before": [edits(("cal.py", CAL, WRONG),
                                             (TEST_FILE, TESTS, PASSES_AT_BASE))],
        # An agent: the edit harness refuses Python that does not parse before any test runs.
        "c-fix-syntax-error-test": {"input_cost_per_token": 3e-6, "output_cost_per_token": 1e-5,
                                    "replies": [
            bash("sed -i 's/        return 28$/        return 29 if is_leap(year) else 28/' cal.py"),
            bash(f"cat >> {TEST_FILE} <<'EOF'\n{SYNTAX_ERROR[len(TESTS):]}EOF"),
            {"text": SUBMIT}]},
        # The priciest, so cheapest-first tries it last.
        "d-fix-and-test": {"input_cost_per_token": 1e-3, "output_cost_per_token": 4e-3,
                           "replies": [{"text": edits(("cal.py", CAL, FIXED),
                                                      (TEST_FILE, TESTS, REPRO))}]},
    })
    names = ["a-wrong-no-test", "b-wrong-test-passes-before", "c-fix-syntax-error-test@agent",
             "d-fix-and-test"]
    result = app.fix(repo, app.task_from_text(TASK), settings(replay, names, max_cost_usd=1e3))
    outcomes = [(a.model.split("/")[1], a.outcome) for a in result.attempts]
    assert outcomes == [("a-wrong-no-test", "no_reproduction"),
                        ("b-wrong-test-passes-before", "no_reproduction"),
                        ("c-fix-syntax-error-test@agent", "no_reproduction"),
                        ("d-fix-and-test", "passed")], [a.detail for a in result.attempts]
    a, b, c, d = result.attempts
    assert a.detail.startswith("the change adds or changes no test"), a.detail
    assert "pass on the code before your change too" in b.detail, b.detail
    assert "test_february" in b.detail and "test_january" not in b.detail
    assert "cannot be collected on the code before your change" in c.detail, c.detail
    assert "SyntaxError" in c.detail, c.detail
    assert d.reproduction == ("tests.test_cal::test_february_of_a_leap_year",)
    assert d.base_failure.startswith("assert 28 == 29"), d.base_failure
    assert result.outcome == "fixed" and result.reproduced
    assert sorted(git(repo, "diff", "--name-only", "main", result.branch or "").split()) == \
        ["cal.py", TEST_FILE]
    records = Memory.load(repo / ".acr" / "memory.json").all_records()
    assert [(r.outcome, r.reproduction) for r in records] == [
        ("no_reproduction", 0), ("no_reproduction", 0), ("no_reproduction", 0), ("passed", 1)]
    body = pr_body(result, "<!-- m -->")
    assert "tests.test_cal::test_february_of_a_leap_year" in body
    assert "assert 28 == 29" in body
    # Only the reproduced fix is a success for routing; memory stats says it was reproduced.
    cells = stats(Memory.load(repo / ".acr" / "memory.json"))["model"]
    assert cells["replay/a-wrong-no-test"]["pass_rate"] == 0.0
    assert cells["replay/d-fix-and-test"]["reproduced"] == 1.0
    table = stats_tables(stats(Memory.load(repo / ".acr" / "memory.json")))
    assert re.search(r"replay/d-fix-and-test\s.*\s1/1\s", table), table


def test_fix_json_names_the_reproduction(repo: Path, make_replay) -> None:
    replay = make_replay({"d": [edits(("cal.py", CAL, FIXED), (TEST_FILE, TESTS, REPRO))]})
    out = CliRunner().invoke(cli, ["fix", "--repo", str(repo), "--task", TASK, "--models",
                                   "replay/d", "--replay-file", str(replay), "--harness", "edit",
                                   "--test-cmd", "python -m pytest -q -p no:cacheprovider",
                                   "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["reproduced"] is True
    [attempt] = doc["attempts"]
    assert attempt["reproduction"] == ["tests.test_cal::test_february_of_a_leap_year"]
    assert attempt["base_failure"].startswith("assert 28 == 29")


def test_require_reproduction_is_a_setting_everywhere(tmp_path: Path) -> None:
    from acr_bot.config import load_settings
    assert load_settings(tmp_path, env={}).require_reproduction is True
    assert load_settings(tmp_path, env={"INPUT_REQUIRE-REPRODUCTION": "false"}
                         ).require_reproduction is False
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "acr-bot.yml").write_text("require_reproduction: false\n")
    assert load_settings(tmp_path, env={}).require_reproduction is False


@pytest.mark.parametrize("test_text, counts", [
    # A name the issue asks for, missing inside the test body: a failure in the body, it counts.
    ("from cal import days_in_month\n\n\ndef test_month_names():\n    from cal import month_name"
     "\n    assert month_name(2) == 'February'\n", True),
    # The same name imported at the top: the module cannot be imported for the missing
    # behaviour itself, so it counts too.
    ("from cal import month_name\n\n\ndef test_month_names():\n    assert month_name(2) == "
     "'February'\n", True),
], ids=["missing-name-in-body", "missing-name-at-import"])
def test_a_missing_name_the_issue_asks_for_counts(repo: Path, make_replay, test_text: str,
                                                 counts: bool) -> None:
    code = CAL + "\n\ndef month_name(month):\n    return ['January', 'February'][month - 1]\n"
    replay = make_replay({"m": [edits(("cal.py", CAL, code), ("tests/test_names.py", None,
                                                               test_text))]})
    task = "Add month_name(month)\n\nmonth_name(2) should give 'February'."
    result = app.fix(repo, app.task_from_text(task), settings(replay, ["m"]))
    [attempt] = result.attempts
    assert attempt.outcome == "passed", attempt.detail
    assert attempt.reproduction == ("tests.test_names::test_month_names",)
    assert "month_name" in attempt.base_failure


def test_a_test_that_fails_before_only_for_an_unrelated_import_does_not_count(
        repo: Path, make_replay) -> None:
    """A new test module that cannot be imported before the change for a reason other than the
    missing behaviour (here: its own typo'd import) would fail after the change too: it is
    rejected, and it never counts as a reproduction."""
    broken = "from cal import days_in_month\nimport no_such_helper\n\n\ndef test_feb():\n" \
             "    assert days_in_month(2024, 2) == 29\n"
    replay = make_replay({"m": [edits(("cal.py", CAL, FIXED), ("tests/test_feb.py", None, broken))]})
    result = app.fix(repo, app.task_from_text(TASK), settings(replay, ["m"]))
    [attempt] = result.attempts
    assert attempt.outcome == "tests_failed" and not attempt.reproduction, attempt.detail


def test_test_configuration_is_judged_as_at_the_base(repo: Path, make_replay) -> None:
    """A conftest.py that fails the new test whenever cal.py is the old code would make a
    passing test look like a reproduction: the reproduction runs ignore it (as at the base)."""
    forge = ("import pathlib\n\n\ndef pytest_runtest_call(item):\n"
             "    if 'return 28\\n' in pathlib.Path('cal.py').read_text():\n"
             "        raise AssertionError('the old code')\n")
    replay = make_replay({"m": [edits(("cal.py", CAL, FIXED), (TEST_FILE, TESTS, PASSES_AT_BASE),
                                      ("tests/conftest.py", None, forge))]})
    result = app.fix(repo, app.task_from_text(TASK), settings(replay, ["m"]))
    [attempt] = result.attempts
    assert attempt.outcome == "no_reproduction", attempt.detail


def test_with_the_rule_off_an_unreproduced_change_is_a_marked_draft_and_no_pass(
        repo: Path, make_replay) -> None:
    replay = make_replay({"a-wrong-no-test": [edits(("cal.py", CAL, WRONG))]})
    result = app.fix(repo, app.task_from_text(TASK),
                     settings(replay, ["a-wrong-no-test"], require_reproduction=False))
    assert result.outcome == "fixed" and not result.reproduced
    assert result.winner is not None and result.winner.outcome == "no_reproduction"
    assert "not reproduced" in result.reason
    [record] = Memory.load(repo / ".acr" / "memory.json").all_records()
    assert record.outcome == "no_reproduction" and not record.passed
    body = pr_body(result, "<!-- m -->")
    assert body.startswith("> [!WARNING]\n> **Not reproduced.**"), body[:200]
    assert "cal.py" in git(repo, "diff", "--name-only", "main", result.branch or "")


def test_failing_tests_the_task_names_keep_todays_rule(make_repo, python_on_path: None,
                                                       make_replay) -> None:
    """A red suite: the failing test is already the reproduction; a fix without a new test
    passes, and the PR names the test that failed before."""
    red = {**FILES, TEST_FILE: REPRO}
    root = make_repo(red)
    replay = make_replay({"m": [edits(("cal.py", CAL, FIXED))]})
    task = f"{TASK}\n\n{TEST_FILE}::test_february_of_a_leap_year fails."
    result = app.fix(root, app.task_from_text(task), settings(replay, ["m"]))
    [attempt] = result.attempts
    assert attempt.outcome == "passed" and result.reproduced
    assert attempt.reproduction == ("tests.test_cal::test_february_of_a_leap_year",)
    assert attempt.base_failure.startswith("assert 28 == 29")


# --- the agent harness -------------------------------------------------------------------------

SUBMIT = "THOUGHT: Done.\n\n```bash\necho COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT\n```"


def bash(command: str, thought: str = "Next step.") -> dict[str, object]:
    return {"text": f"THOUGHT: {thought}\n\n```bash\n{command}\n```", "times": 1}


def test_an_agent_without_a_reproduction_is_sent_back_once_and_then_accepted(
        repo: Path, make_replay) -> None:
    """First submission: the fix and a test that passes before it (sent back, with that test's
    run on the old code); second: the reproducing test in a new file under tests/ (kept: it is
    where the repository keeps its tests), accepted in the same attempt."""
    new_test = "from cal import days_in_month\n\n\ndef test_leap_february():\n" \
               "    assert days_in_month(2024, 2) == 29\n"
    script = [
        bash("sed -i 's/        return 28$/        return 29 if is_leap(year) else 28/' cal.py"),
        bash(f"cat >> {TEST_FILE} <<'EOF'\n\n\ndef test_february():\n"
             "    assert days_in_month(2023, 2) == 28\nEOF"),
        bash("python scratch_check.py 2>/dev/null; echo 'print(1)' > scratch_check.py"),
        {"text": SUBMIT, "times": 1},
        {"match": "pass on the code before your change too", **bash(
            f"cat > tests/test_leap.py <<'EOF'\n{new_test}EOF", "Add a reproducing test.")},
        {"text": SUBMIT, "times": 1},
    ]
    replay = make_replay({"agent": script})
    result = app.fix(repo, app.task_from_text(TASK), settings(replay, ["agent"], harness="agent"))
    [attempt] = result.attempts
    assert attempt.outcome == "passed", attempt.detail
    assert attempt.reproduction == ("tests.test_leap::test_leap_february",)
    changed = sorted(git(repo, "diff", "--name-only", "main", result.branch or "").split())
    assert changed == ["cal.py", TEST_FILE, "tests/test_leap.py"]  # scratch_check.py left out


def test_the_first_prompts_state_the_rule(repo: Path, make_replay, tmp_path: Path) -> None:
    replay = make_replay({"agent": [SUBMIT], "edit": [edits(("cal.py", CAL, FIXED))]})
    out = tmp_path / "traj"
    for name, harness in (("agent", "agent"), ("edit", "edit")):
        app.fix(repo, app.task_from_text(TASK),
                settings(replay, [name], harness=harness, trajectory_dir=out))
    prompts = [json.loads(p.read_text()) for p in sorted(out.rglob("*.json"))]
    texts = [" ".join(" ".join(m["content"] for m in doc["messages"] if m["role"] == "user")
                      .split()) for doc in prompts]
    assert any("Write a test that reproduces the issue in the repository's tests (tests/)" in t
               for t in texts), texts
    assert any("also add a test that reproduces the issue to the repository's tests (tests/)"
               in t for t in texts), texts


# --- pure parts --------------------------------------------------------------------------------


def run(passed: set[str] = frozenset(), failed: set[str] = frozenset(), code: int = 0,
        messages: dict[str, str] | None = None, counts: TestCounts | None = None) -> TestRun:
    return TestRun("pytest", code, 0.1, "", counts or TestCounts(len(passed), len(failed)),
                   frozenset(passed), frozenset(failed), messages=tuple((messages or {}).items()))


def test_judge_counts_failures_in_the_body_and_missing_names_only() -> None:
    baseline = run({"t::a"})
    before = run(set(), {"t::b"}, 1, {"t::b": "assert 1 == 2", "tests.test_x": "E   SyntaxError",
                                      "tests.test_y": "ImportError: cannot import name 'f'"})
    after = run({"t::b", "tests.test_x::c", "tests.test_y::d"})
    found = judge_reproduction(baseline, before, after, ["t.py"])
    assert found.tests == ("t::b", "tests.test_y::d") and found.base_failure == "assert 1 == 2"


def test_judge_says_why_nothing_reproduces() -> None:
    baseline = run({"t::a"})
    uncollected = run(set(), set(), 2, {"tests.test_x": "SyntaxError: invalid syntax"})
    assert "cannot be collected" in judge_reproduction(
        baseline, uncollected, run(), ["tests/test_x.py"]).problem
    assert "pass on the code before your change too" in judge_reproduction(
        baseline, run({"t::b"}), run({"t::b"}), ["t.py"]).problem
    assert "fail with your change too" in judge_reproduction(
        baseline, run(set(), {"t::b"}, 1), run(set(), {"t::b"}, 1), ["t.py"]).problem


def test_runners_without_test_names_are_judged_by_counts() -> None:
    baseline = TestRun("npm test", 0, 0.1, "", TestCounts(3))
    before = TestRun("npm test", 1, 0.1, "expected 29, got 28", TestCounts(3, 1))
    after = TestRun("npm test", 0, 0.1, "", TestCounts(4))
    assert judge_reproduction(baseline, before, after, ["a.test.js"]).tests == ("a.test.js",)
    assert judge_reproduction(baseline, after, after, ["a.test.js"]).problem


def test_runners_without_counts_are_judged_by_exit_codes() -> None:
    baseline = TestRun("python -m unittest", 0, 0.1, "OK")
    before = TestRun("python -m unittest", 1, 0.1, "AssertionError: 28 != 29\nFAILED")
    after = TestRun("python -m unittest", 0, 0.1, "OK")
    found = judge_reproduction(baseline, before, after, ["test_cal.py"])
    assert found.tests == ("test_cal.py",)
    assert not judge_reproduction(baseline, before, before, ["test_cal.py"]).tests


def test_changed_tests_are_new_or_different_test_functions() -> None:
    old = "import x\n\ndef helper():\n    return 1\n\ndef test_a():\n    assert 1\n\n" \
          "class TestB:\n    def test_c(self):\n        assert 2\n"
    new = old.replace("assert 2", "assert 3") + "\ndef test_d():\n    pass\n"
    assert changed_tests("t.py", old, new) == ["t.py::TestB::test_c", "t.py::test_d"]
    assert changed_tests("t.py", old, old.replace("return 1", "return 2")) == ["t.py"]
    assert changed_tests("t.py", old, "def test_(:") == ["t.py"]


def test_narrow_puts_node_ids_in_pytest_addopts(tmp_path: Path) -> None:
    import subprocess
    line = narrow("echo \"$PYTEST_ADDOPTS\"", ["tests/a b.py::test_x"])
    out = subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True,
                         env={"PYTEST_ADDOPTS": "--junitxml=j.xml", "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "--junitxml=j.xml --continue-on-collection-errors -k " \
                                 "'(test_x)' 'tests/a b.py::test_x'"
    assert narrow("make test", []) == "make test"


def test_only_the_changed_tests_count_when_the_command_selects_more() -> None:
    # more-itertools' `pytest tests/test_more.py -k ValueChain`: the command's -k wins over
    # narrow's, so the whole class ran (tests/test_reproduction_real.py)
    cls = "tests.test_more.ValueChainTests::"
    before = run({cls + "test_new", cls + "test_old", cls + "test_p[1]"})
    nodes = ["tests/test_more.py::ValueChainTests::test_new",
             "tests/test_more.py::ValueChainTests::test_p"]
    kept = only(before, nodes)
    assert kept.passed_ids == {cls + "test_new", cls + "test_p[1]"}
    problem = judge_reproduction(run(), kept, kept, ["tests/test_more.py"]).problem
    assert "test_new" in problem and "test_old" not in problem
    assert only(before, ["tests/test_more.py"]) == before  # a new file: all of its tests
    assert only(before, ["elsewhere/test_more.py::test_new"]) == before  # ids in another form


def test_new_tests_belong_where_the_repository_keeps_its_tests() -> None:
    dirs = folders_with_tests(["cal.py", "tests/test_cal.py", "tests/conftest.py",
                               "tests/unit/test_x.py"])
    assert dirs == ["tests", "tests/unit"]
    assert in_test_layout("tests/test_new.py", dirs)
    assert in_test_layout("tests/unit/deep/test_new.py", dirs)
    assert not in_test_layout("test_repro.py", dirs)  # a scratch script at the root
    assert not in_test_layout("tests/conftest.py", dirs)  # configuration is never a test
    assert in_test_layout("test_new.py", folders_with_tests(["m.py", "test_m.py"]))


def test_needs_reproduction_only_when_nothing_fails_and_the_task_is_not_ci() -> None:
    green = run({"t::a"})
    assert needs_reproduction("issue", green) and needs_reproduction("cli", green)
    assert not needs_reproduction("ci", green) and not needs_reproduction("revise", green)
    assert not needs_reproduction("issue", run({"t::a"}, {"t::b"}, 1))
    assert not needs_reproduction("cli", TestRun("npm test", 1, 0.1, "", TestCounts(1, 1)))


# --- in docker -----------------------------------------------------------------------------------

UNITTESTS = """import unittest

from cal import days_in_month


class CalTests(unittest.TestCase):
    def test_january(self):
        self.assertEqual(days_in_month(2023, 1), 31)
"""
UNITTEST_REPRO = UNITTESTS + """
    def test_leap_february(self):
        self.assertEqual(days_in_month(2024, 2), 29)
"""


@pytest.mark.docker
def test_the_reproduction_runs_in_the_docker_sandbox(docker_client, make_repo,
                                                     make_replay) -> None:
    """The base image has no pytest: unittest's exit codes decide, in the container."""
    from tests.support.dockerd import BASE_IMAGE
    root = make_repo({"cal.py": CAL, "test_cal.py": UNITTESTS, ".gitignore": "__pycache__/\n"})
    replay = make_replay({"a": [edits(("cal.py", CAL, FIXED))],
                          "d": [edits(("cal.py", CAL, FIXED),
                                      ("test_cal.py", UNITTESTS, UNITTEST_REPRO))]})
    result = app.fix(root, app.task_from_text(TASK), settings(
        replay, ["a", "d"], sandbox="docker", sandbox_image=BASE_IMAGE, test_timeout=60,
        test_command="python3 -m unittest -v"))
    assert [a.outcome for a in result.attempts] == ["no_reproduction", "passed"], \
        [a.detail for a in result.attempts]
    assert result.attempts[1].reproduction == ("test_cal.py",)
