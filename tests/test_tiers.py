"""The first tier: the tests that matter to a change, run for real, failing fast (verify/tiers.py)."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from acr_bot import app
from acr_bot.config import Settings
from acr_bot.domain import TestCounts, TestRun
from acr_bot.gitrepo import Worktree
from acr_bot.report import job_summary
from acr_bot.verify.local import LocalSandbox
from acr_bot.verify.process import run_command
from acr_bot.verify.testresults import parse_unittest
from acr_bot.verify.tiers import (
    FIRST_TIER_MAX_S,
    FIRST_TIER_SHARE,
    Deadline,
    OutOfTime,
    TierOptions,
    affordable,
    failed_in_tier,
    first_tier,
    run_first_tier,
)
from acr_bot.verify.verdict import verify_workspace
from tests.support.calc import FILES, FIX, TASK

ENV = {"PATH": os.environ["PATH"]}
COMMAND = f"{sys.executable} -m pytest -q -p no:cacheprovider"

PROJECT = {
    "shop/__init__.py": "",
    "shop/prices.py": "def price(x):\n    return x * 2\n",
    "shop/labels.py": "def label(x):\n    return f'<{x}>'\n",
    "tests/test_prices.py": "from shop.prices import price\n\n\ndef test_price():\n"
                            "    assert price(2) == 4\n",
    "tests/test_labels.py": "from shop import labels\n\n\ndef test_label():\n"
                            "    assert labels.label(1) == '<1>'\n\n\ndef test_other():\n"
                            "    assert True\n",
    # Uses prices without importing it: only the full suite sees this test break.
    "tests/test_indirect.py": "import importlib\n\n\ndef test_via_name():\n"
                              "    mod = importlib.import_module('shop.' + 'prices')\n"
                              "    assert mod.price(1) == 2\n",
}


def project(root: Path, **changes: str) -> list[str]:
    for path, text in {**PROJECT, **changes}.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return sorted(PROJECT)


def runner(root: Path, ran: list[str]):
    def run(command: str) -> TestRun:
        ran.append(command)
        return run_command(command, root, timeout=120, env=ENV, max_output=20_000)
    return run


def test_a_change_that_breaks_an_importing_test_is_rejected_by_the_first_tier(
        tmp_path: Path) -> None:
    paths = project(tmp_path, **{"shop/prices.py": "def price(x):\n    return x * 3\n"})
    steps = first_tier(tmp_path, paths, ["shop/prices.py"], COMMAND)
    assert [s.name for s in steps] == ["related tests"]
    assert steps[0].command == f"{COMMAND} tests/test_prices.py"
    ran: list[str] = []
    run, reason, times = run_first_tier(steps, runner(tmp_path, ran))
    assert run is not None and ran == [steps[0].command]
    assert reason.startswith("the related tests failed first (1 test module importing "
                             "shop.prices): 1 failed: tests.test_prices::test_price")
    assert reason.endswith("the full suite was not run")
    assert [(t.name, t.result) for t in times] == [("related tests", "1 failed")]


def test_a_break_outside_the_selected_modules_passes_the_first_tier(tmp_path: Path) -> None:
    """The first tier misses test_indirect (no import of shop.prices): it must not accept
    anything, only let the full suite decide, and the full suite does fail."""
    paths = project(tmp_path, **{"shop/prices.py": "def price(x):\n    return x * 2 + (x == 1)\n"})
    steps = first_tier(tmp_path, paths, ["shop/prices.py"], COMMAND)
    run, reason, times = run_first_tier(steps, runner(tmp_path, []))
    assert run is None and reason == "" and times[0].result == "1 passed"
    full = run_command(COMMAND, tmp_path, timeout=120, env=ENV, max_output=20_000)
    assert full.exit_code == 1 and "test_via_name" in full.output


def test_named_tests_run_before_the_related_modules(tmp_path: Path) -> None:
    paths = project(tmp_path, **{"shop/labels.py": "def label(x):\n    return str(x)\n"})
    steps = first_tier(tmp_path, paths, ["shop/labels.py"], COMMAND,
                       named=["tests/test_labels.py::test_other"])
    assert [s.name for s in steps] == ["named tests", "related tests"]
    ran: list[str] = []
    run, reason, times = run_first_tier(steps, runner(tmp_path, ran))
    assert len(ran) == 2 and [t.result for t in times] == ["1 passed", "1 passed, 1 failed"]
    assert run is not None and "tests.test_labels::test_label" in reason


def test_the_related_tests_keep_to_a_share_of_the_baselines_time(tmp_path: Path) -> None:
    """By the baseline's JUnit times: the module whose tests took a second stays out of the
    first tier (the full suite runs it), the quick one runs, in one process; without times
    both run, as the command has them."""
    slow = ("import time\nfrom shop.prices import price\n\n\ndef test_slowly():\n"
            "    time.sleep(1.0)\n    assert price(1) == 2\n")
    paths = sorted({*project(tmp_path, **{"tests/test_prices_slow.py": slow}),
                    "tests/test_prices_slow.py"})
    command = f"{COMMAND} -n 2"
    baseline = run_command(COMMAND, tmp_path, timeout=120, env=ENV, max_output=20_000)
    times = dict(baseline.test_seconds)
    assert times["tests.test_prices_slow"] >= 1.0 > times["tests.test_prices"]
    assert baseline.seconds * FIRST_TIER_SHARE < 1.0  # the slow module cannot fit
    [step] = first_tier(tmp_path, paths, ["shop/prices.py"], command, baseline=baseline)
    assert step.command == f"{command} tests/test_prices.py -n 0"
    assert step.size == "1 test module importing shop.prices (+1 more left to the full suite)"
    [step] = first_tier(tmp_path, paths, ["shop/prices.py"], command)
    assert step.command == f"{command} tests/test_prices.py tests/test_prices_slow.py"


@pytest.mark.parametrize(("named_s", "related"), [
    (0.5, "2 test modules importing shop.labels"),
    (1.2, "1 test module importing shop.labels (+1 more left to the full suite)"),
    (2.5, None)])
def test_the_named_tests_run_counts_against_the_related_tests_budget(
        tmp_path: Path, named_s: float, related: str | None) -> None:
    """Budget 5 s (5 % of 100 s); the related modules took 1 s and 2 s by JUnit. The named
    tests' run is mostly a start: it counts, and the related run's start as much again."""
    more = "from shop.labels import label\n\n\ndef test_more():\n    assert label(2)\n"
    paths = sorted({*project(tmp_path, **{"tests/test_labels_more.py": more}),
                    "tests/test_labels_more.py"})
    baseline = TestRun(COMMAND, 0, 100.0, "", test_seconds=(
        ("tests.test_labels", 1.0), ("tests.test_labels_more", 2.0)))
    steps = first_tier(tmp_path, paths, ["shop/labels.py"], COMMAND,
                       named=["tests/test_labels.py::test_other"], baseline=baseline)
    assert [s.size for s in steps] == ["1 named test", "2 test modules importing shop.labels"]
    ran: list[str] = []
    echoed: list[str] = []

    def run(command: str) -> TestRun:
        ran.append(command)
        return TestRun(command, 0, named_s, "", TestCounts(passed=1))

    failed, _, times = run_first_tier(steps, run, echoed.append)
    assert failed is None and [t.name for t in times][:1] == ["named tests"]
    if related is None:
        assert len(ran) == 1 and "none within the first tier's share" in echoed[-1]
    else:
        assert len(ran) == 2 and echoed[-1] == f"  tier 1 (related tests): {related}"
        assert ran[1].startswith(f"{COMMAND} tests/test_labels.py")


def test_no_budget_when_the_baselines_times_name_none_of_the_modules() -> None:
    """Times from another layout (or none: Django's runner, an old cached baseline) leave the
    related modules as they were, workers and all; a module the times miss counts as free."""
    modules = ["tests/test_a.py", "tests/test_b.py", "tests/test_new.py"]
    foreign = TestRun("pytest", 0, 100.0, "", test_seconds=(("sub.tests.test_a", 9.0),))
    assert affordable(modules, foreign) is None
    assert affordable(modules, TestRun("pytest", 0, 100.0, "")) is None
    assert affordable(modules, None) is None
    timed = TestRun("pytest", 0, 100.0, "", test_seconds=(
        ("tests.test_a", 4.0), ("tests.test_a.TestX", 0.5), ("tests.test_b", 1.0),
        ("tests.test_ab", 50.0)))  # a prefix of the name is another module
    assert affordable(modules, timed) == (["tests/test_a.py", "tests/test_new.py"], 1)
    assert affordable(modules, timed, share=0.06) == (modules, 0)
    # A suite of an hour: 5 % would be three minutes, the budget stays at FIRST_TIER_MAX_S.
    hour = replace(timed, seconds=3600.0, test_seconds=(
        ("tests.test_a", FIRST_TIER_MAX_S - 1.0), ("tests.test_b", 2.0), ("tests.test_ab", 1.0)))
    assert affordable(modules, hour) == (["tests/test_a.py", "tests/test_new.py"], 1)


def test_no_first_tier_for_a_command_that_cannot_be_narrowed_or_no_importer(
        tmp_path: Path) -> None:
    paths = project(tmp_path)
    assert first_tier(tmp_path, paths, ["shop/prices.py"], "make test") == []
    assert first_tier(tmp_path, paths, ["README.md"], COMMAND) == []


def test_only_failed_tests_reject_in_a_first_tier() -> None:
    assert failed_in_tier(TestRun("x", 4, 1.0, "usage error")) is None
    assert failed_in_tier(TestRun("x", None, 60.0, "killed")) is None
    assert failed_in_tier(TestRun("x", 1, 1.0, "", TestCounts(1, 0, 0, 1))) == "1 failed"
    assert failed_in_tier(TestRun("x", 1, 1.0, "", TestCounts(0, 1, 0, 0),
                                  failed_ids=frozenset({"t::a"}))) == "1 failed: t::a"


def test_a_deadline_stops_before_a_full_suite_that_cannot_fit() -> None:
    now = [1000.0]
    deadline = Deadline(at=1000.0 + 600, clock=lambda: now[0])
    deadline.check_suite(400)  # 400 * 1.1 + 60 = 500 s fits in 600
    now[0] += 200
    with pytest.raises(OutOfTime, match=r"took 6.7 min at the baseline and 6.7 min"):
        deadline.check_suite(400)
    Deadline().check_suite(10 ** 6)  # no limit
    assert Deadline.in_minutes(None).left() is None


def test_a_first_tier_reads_unittest_and_django_summaries(tmp_path: Path) -> None:
    """Django's runtests.py reports like unittest: the counts are read from a real run."""
    (tmp_path / "test_u.py").write_text(
        "import unittest\n\n\nclass T(unittest.TestCase):\n"
        "    def test_ok(self):\n        pass\n\n"
        "    def test_bad(self):\n        self.assertEqual(1, 2)\n\n"
        "    def test_error(self):\n        raise KeyError\n\n"
        "    @unittest.skip('no')\n    def test_skip(self):\n        pass\n\n"
        "    @unittest.expectedFailure\n    def test_xfail(self):\n        self.fail()\n")
    run = run_command(f"{sys.executable} -m unittest test_u", tmp_path, timeout=60, env=ENV,
                      max_output=20_000)
    assert "FAILED (failures=1, errors=1, skipped=1, expected failures=1)" in run.output
    assert run.counts is None  # the verdict judges unittest runs by the exit code
    counted = parse_unittest(run.output)
    assert counted is not None and counted.counts == TestCounts(2, 1, 1, 1)
    assert failed_in_tier(run) == "2 failed"
    ok = parse_unittest("Ran 3 tests in 0.1s\n\nOK (skipped=1)\n")
    assert ok is not None and ok.counts == TestCounts(passed=2, skipped=1)


# --- through the verdict and the fix loop, with the real sandbox ------------------------------

PYTEST = f"{sys.executable} -m pytest -q -p no:cacheprovider"
LAYOUT = {**PROJECT, "pytest.ini": "[pytest]\ntestpaths = tests\npythonpath = .\n",
          ".gitignore": "__pycache__/\n"}


def test_a_break_outside_the_selected_modules_is_rejected_by_the_full_suite(make_repo) -> None:
    """A tier can never accept what the full suite rejects: test_indirect uses shop.prices
    without importing it, so the first tier passes and the final tier rejects."""
    root = make_repo(LAYOUT)
    sandbox = LocalSandbox(timeout=120)
    try:
        baseline = sandbox.run(PYTEST, root)
        assert baseline.green, baseline.output
        (root / "shop/prices.py").write_text("def price(x):\n    return x * 2 + (x == 1)\n")
        verdict = verify_workspace(baseline, Worktree(root), sandbox, PYTEST)
    finally:
        sandbox.close()
    assert not verdict.passed
    assert [(t.name, t.result) for t in verdict.tiers] == [
        ("related tests", "1 passed"), ("full suite", "3 passed, 1 failed")]
    assert "tests.test_indirect::test_via_name" in verdict.reason, verdict.reason


def test_a_correct_change_passes_both_tiers(make_repo) -> None:
    root = make_repo(LAYOUT)
    sandbox = LocalSandbox(timeout=120)
    try:
        baseline = sandbox.run(PYTEST, root)
        (root / "shop/labels.py").write_text("def label(x):\n    return '<' + str(x) + '>'\n")
        verdict = verify_workspace(baseline, Worktree(root), sandbox, PYTEST,
                                   tiers=TierOptions(first_tier=True))
        off = verify_workspace(baseline, Worktree(root), sandbox, PYTEST,
                               tiers=TierOptions(first_tier=False))
    finally:
        sandbox.close()
    assert verdict.passed and [t.name for t in verdict.tiers] == ["related tests", "full suite"]
    assert off.passed and [t.name for t in off.tiers] == ["full suite"]


def test_a_second_task_on_the_same_base_skips_the_baseline(make_repo, make_replay) -> None:
    root = make_repo(FILES)
    lines: list[str] = []
    settings = replace(Settings(), models=("replay/a",), replay_file=make_replay({"a": [FIX]}),
                       test_command=PYTEST, llm_retries=0, harness="edit")
    first = app.fix(root, app.task_from_text(TASK), settings, dry_run=True, echo=lines.append)
    second = app.fix(root, app.task_from_text("Another task\n\ntests/test_calc.py fails"),
                     settings, dry_run=True, echo=lines.append)
    assert first.baseline_time is not None and first.baseline_time.result == "2 passed, 1 failed"
    assert second.baseline_time is not None and second.baseline_time.result == "cached"
    assert second.baseline == first.baseline
    assert sum("(cached: the suite ran before" in line for line in lines) == 1
    fixed = app.fix(root, app.task_from_text(TASK), settings)  # a real run reads it too
    assert fixed.outcome == "fixed" and fixed.baseline_time.result == "cached"  # type: ignore
    summary = job_summary("fix", fixed)  # the job summary shows where the time went
    assert "Time per test tier:" in summary and "| baseline | " in summary
    assert re.search(r"\| attempt 1: named tests \| [\d.]+ \| 1 passed \|", summary), summary
    assert re.search(r"\| attempt 1: full suite \| [\d.]+ \| 3 passed \|", summary), summary
    off = app.fix(root, app.task_from_text(TASK), replace(settings, baseline_cache=False),
                  dry_run=True)
    assert off.baseline_time is not None and off.baseline_time.result != "cached"


def test_a_job_without_time_for_the_full_suite_stops_cleanly(make_repo, make_replay) -> None:
    root = make_repo(FILES)
    settings = replace(Settings(), models=("replay/a",), replay_file=make_replay({"a": [FIX]}),
                       test_command=PYTEST, llm_retries=0, harness="edit",
                       time_limit_minutes=0.5)  # the suite needs 60 s of slack on top
    result = app.fix(root, app.task_from_text(TASK), settings)
    assert result.outcome == "gave_up" and result.attempts == ()
    assert result.reason.startswith("stopped before the full test suite: it took 0.0 min at "
                                    "the baseline and 0.")
    assert "(time_limit_minutes)" in result.reason


def test_an_agent_attempt_leaves_the_full_suite_its_time() -> None:
    from types import SimpleNamespace

    from acr_bot.fixing.attempt import attempt_limits
    from acr_bot.fixing.harness import Limits

    now = [0.0]
    deadline = Deadline(at=1000.0, clock=lambda: now[0])
    job = SimpleNamespace(limits=Limits(max_cost_usd=1.0, attempt_seconds=3600),
                          max_cost_usd=2.0, max_output_tokens=100, prices={},
                          tiers=TierOptions(deadline=deadline))
    state = SimpleNamespace(spent=0.0, baseline=SimpleNamespace(seconds=300.0))
    # 1000 s left, the suite needs 300 * 1.1 + 60 = 390 s of them
    assert attempt_limits(job, state, "replay/x", None).attempt_seconds == pytest.approx(610)
    job.tiers = TierOptions()
    assert attempt_limits(job, state, "replay/x", None).attempt_seconds == 3600


def test_out_of_time_after_an_attempt_stops_with_that_attempt_in_the_memory(
        make_repo, make_replay, monkeypatch, tmp_path) -> None:
    from acr_bot.memory.store import Memory
    from tests.support.calc import WRONG_FIX

    now = [0.0]
    monkeypatch.setattr(app, "Deadline", type("FakeDeadline", (Deadline,), {
        "in_minutes": classmethod(lambda cls, minutes: cls(at=3600.0, clock=lambda: now[0]))}))

    def echo(line: str) -> None:
        if line.startswith("  -> "):  # an attempt ended: the job's hour is nearly gone
            now[0] = 3590.0

    root = make_repo(FILES)
    settings = replace(Settings(), models=("replay/a", "replay/b"),
                       replay_file=make_replay({"a": [WRONG_FIX], "b": [FIX]}),
                       test_command=PYTEST, llm_retries=0, harness="edit", max_attempts=2,
                       policy="cheapest-first", time_limit_minutes=60)
    memory = tmp_path / "memory.json"
    result = app.fix(root, app.task_from_text(TASK), settings, echo=echo, memory_file=memory)
    assert result.outcome == "gave_up" and [a.model for a in result.attempts] == ["replay/a"]
    assert result.reason.startswith("stopped before the full test suite")
    assert "0.2 min of the job's time limit is left" in result.reason
    assert [r.model for r in Memory.load(memory).records] == ["replay/a"]  # saved


def test_a_patch_that_adds_a_test_module_runs_only_that_module_a_second_time(make_repo) -> None:
    root = make_repo(LAYOUT)
    sandbox = LocalSandbox(timeout=120)
    try:
        baseline = sandbox.run(PYTEST, root)
        (root / "shop/labels.py").write_text("def label(x):\n    return '<' + str(x) + '>'\n")
        (root / "tests/test_new.py").write_text(
            "from shop.labels import label\n\n\ndef test_new():\n    assert label(2) == '<2>'\n")
        added = verify_workspace(baseline, Worktree(root), sandbox, PYTEST)
        (root / "tests/test_new.py").write_text("def test_new():\n    assert False\n")
        failing = verify_workspace(baseline, Worktree(root), sandbox, PYTEST)
        (root / "tests/conftest.py").write_text("")  # configuration: the whole patch again
        (root / "tests/test_new.py").write_text("def test_new():\n    assert True\n")
        configured = verify_workspace(baseline, Worktree(root), sandbox, PYTEST)
    finally:
        sandbox.close()
    assert added.passed and [(t.name, t.result) for t in added.tiers][-1] == (
        "changed tests", "1 passed")
    assert not failing.passed and "tests.test_new::test_new" in failing.reason
    assert configured.passed and configured.tiers[-1].name == "whole patch"
    assert configured.tiers[-1].result == "5 passed"
