"""The verdict on a changed workspace: the repository's original tests decide.

`verify_workspace` is called once after any harness has changed the workspace in place. It
splits the patch into tests and code (verify/patch.py), runs the test command with every test
path as at the base commit (this run decides, by `judge`'s rules, plus the tests the task
names; verify/tiers.py runs the tests that import the change first, failing fast, and the full
suite only for a change that passes them), and, when the patch also changed tests, runs the
whole patch a second time: it must be green too. A patch that changes only tests is never a
fix. Python files that no longer parse are rejected with the line before anything runs. When
nothing failed before the change (an issue), the change must also bring a test that fails on
the old code and passes with it (verify/reproduction.py): its own tests run on the old code
first, so a change that cannot show the fix is rejected before the suite runs.

`baseline_problem` says in one line when the baseline ran no test at all (collection errors,
nothing collected): then there is nothing to compare a patch with.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from acr_bot.domain import TestRun, TierTime, Verdict
from acr_bot.fixing.indent import python_syntax_error
from acr_bot.gitrepo import Worktree
from acr_bot.verify import reproduction
from acr_bot.verify.judge import describe_counts, some
from acr_bot.verify.local import Sandbox, judge, src_layout
from acr_bot.verify.patch import (
    PatchSplit,
    base_text,
    changed_paths,
    original_tests,
    split_patch,
)
from acr_bot.verify.runners import narrow
from acr_bot.verify.selection import is_test_module
from acr_bot.verify.testresults import node_ids
from acr_bot.verify.tiers import Tiered, TierOptions, tier_result, tiered_run


def verify_workspace(baseline: TestRun, tree: Worktree, sandbox: Sandbox, test_command: str, *,
                     keep: Sequence[str] = (), test_paths: Sequence[str] = (),
                     named: Sequence[str] = (), files: Sequence[str] | None = None,
                     tiers: TierOptions | None = None, reproduce: bool = False,
                     require: bool = True) -> Verdict:
    """Judge the workspace's changes against `baseline` with the original tests (see above).

    `keep`: untracked paths the setup command made (not part of the patch); `test_paths`: globs
    added to the default test paths; `named`: pytest ids the task names, which must pass;
    `files`: the paths the harness will commit (judged with whatever else changed in the
    workspace, since it is there when the tests run), which the PR's list of tests keeps to;
    `tiers`: how the decisive run goes (verify/tiers.py: the tests importing the change first,
    then the full suite); `reproduce`: the change must bring a test that fails before it and
    passes with it (verify/reproduction.py), else it is `unreproduced`; with `require`, a change
    that cannot have one (no test, or none failing on the old code) is rejected before the
    suite runs."""
    paths = sorted({*changed_paths(tree, keep), *(files or ())})
    split = split_patch(tree, paths, test_paths)
    verdict = _verify(baseline, tree, sandbox, test_command, split, keep, test_paths, named,
                      functools.partial(_decisive, baseline, tree, sandbox, test_command, split,
                                        named, tiers or TierOptions()),
                      _Reproducing(reproduce, require))
    if files is None:
        return verdict
    return replace(verdict, tests_changed=tuple(p for p in verdict.tests_changed if p in files))


class _Reproducing:
    """Whether and how strictly the change must bring its reproduction, and its first run."""

    def __init__(self, wanted: bool, required: bool) -> None:
        self.wanted, self.required = wanted, required
        self.probe: reproduction.Probe | None = None


def _verify(baseline: TestRun, tree: Worktree, sandbox: Sandbox, test_command: str,
            split: PatchSplit, keep: Sequence[str], test_paths: Sequence[str],
            named: Sequence[str], decisive: Callable[[], Tiered],
            repro: _Reproducing) -> Verdict:
    """verify_workspace once the patch is split."""
    if not split.code:
        return _not_run(test_command, split, _only_tests(split))
    if broken := syntax_problem(tree, [p for p in split.code if p.endswith(".py")]):
        return _not_run(test_command, split, broken)
    if repro.wanted and repro.required:  # fail fast: the change's own tests on the old code
        repro.probe = reproduction.probe(tree, sandbox, test_command, split, keep)
        if problem := reproduction.early_problem(baseline, repro.probe):
            return _unreproduced(test_command, split, repro.probe, problem)
    verdict, whole = _suite(baseline, tree, sandbox, test_command, split, keep, test_paths,
                            named, decisive)
    if not verdict.passed:
        return verdict
    if not repro.wanted:
        return _fixed_failures(baseline, verdict)
    found = repro.probe or reproduction.probe(tree, sandbox, test_command, split, keep)
    return _reproduced(verdict, reproduction.finish(baseline, found, tree, sandbox, keep, whole))


def _suite(baseline: TestRun, tree: Worktree, sandbox: Sandbox, test_command: str,
           split: PatchSplit, keep: Sequence[str], test_paths: Sequence[str],
           named: Sequence[str], decisive: Callable[[], Tiered]
           ) -> tuple[Verdict, TestRun | None]:
    """The repository's original tests on the patched code (tiered), then the whole patch when
    it changed tests; also that run with the whole patch (None when there was none)."""
    if not split.tests:
        return _tiered_decision(baseline, decisive(), named, split), None
    with original_tests(tree, split, keep, test_paths):
        tiered = decisive()
    verdict = _tiered_decision(baseline, tiered, named, split)
    if not verdict.passed:
        return replace(verdict, reason=f"with the original tests: {verdict.reason}"), None
    # The whole patch, its own tests included; only its test modules when nothing else of the
    # tests changed (the other tests already ran with this code, and passed).
    narrowed = _changed_tests_command(tree, test_command, split)
    second = sandbox.run(narrowed or test_command, tree.path)
    times = (*verdict.tiers, TierTime("changed tests" if narrowed else "whole patch",
                                      second.seconds, tier_result(second)))
    if problem := _red(second):
        return Verdict(False, f"the original tests pass, but with the patch's own test changes "
                       f"({some(sorted(split.tests))}) {problem}", second, split.tests,
                       times), second
    return replace(verdict, tiers=times, reason=f"{verdict.reason}; tests changed too (the "
                   f"changed tests also pass): {some(sorted(split.tests))}"), second


def _unreproduced(command: str, split: PatchSplit, found: reproduction.Probe,
                  problem: str) -> Verdict:
    """A change rejected before the suite ran: nothing in it can reproduce the issue."""
    run = found.before or TestRun(command, -1, 0.0, "")
    return Verdict(False, problem, run, split.tests, unreproduced=True, base_run=found.before)


def _reproduced(verdict: Verdict, found: reproduction.Reproduction) -> Verdict:
    """The verdict with the change's reproduction, or unreproduced with the reason."""
    if not found.tests:
        return replace(verdict, passed=False, unreproduced=True, reason=found.problem,
                       base_run=found.base_run)
    return replace(verdict, reproduction=found.tests, base_failure=found.base_failure,
                   base_run=found.base_run,
                   reason=f"{verdict.reason}; reproduced: {some(sorted(found.tests))} failed "
                          "before the change and pass with it")


def _fixed_failures(baseline: TestRun, verdict: Verdict) -> Verdict:
    """For tests that failed before the change (a red CI run, named tests): they are the
    reproduction, and how they failed is the excerpt."""
    fixed = tuple(sorted(baseline.failed_ids & verdict.run.passed_ids))
    messages = dict(baseline.messages)
    first = next((messages[t] for t in fixed if messages.get(t)), "")
    return replace(verdict, reproduction=fixed, base_failure=reproduction.excerpt(first))


def _changed_tests_command(tree: Worktree, command: str, split: PatchSplit) -> str | None:
    """The test command for the patch's test modules alone, when they are all it changed of
    the tests (no conftest.py, configuration or helper, nothing deleted); else None."""
    if not all(is_test_module(p) and (tree.path / p).is_file() for p in split.tests):
        return None
    return narrow(command, split.tests)


def _decisive(baseline: TestRun, tree: Worktree, sandbox: Sandbox, command: str,
              split: PatchSplit, named: Sequence[str], options: TierOptions) -> Tiered:
    """The tiers on the tree as it stands: the tests that matter first, then the full suite."""
    known = baseline.passed_ids | baseline.failed_ids | baseline.skipped_ids
    required = [n for n in named if node_ids(n, known)]
    return tiered_run(baseline, tree.path, tree.run("ls-files", "-z").split("\0"), split.code,
                      command, lambda line: sandbox.run(line, tree.path), required, options)


def _tiered_decision(baseline: TestRun, tiered: Tiered, named: Sequence[str],
                     split: PatchSplit) -> Verdict:
    """A first tier's rejection, or the full suite judged by `_decide`."""
    if tiered.rejection:
        return Verdict(False, tiered.rejection, tiered.run, split.tests, tiered.times)
    return replace(_decide(baseline, tiered.run, named, split), tiers=tiered.times)


def _decide(baseline: TestRun, run: TestRun, named: Sequence[str], split: PatchSplit) -> Verdict:
    """`judge`'s rules, then: every named test and every module that failed to collect at
    baseline ran and passed."""
    verdict = judge(baseline, run)
    if verdict.passed and (problem := _required_problem(baseline, run, named)):
        verdict = Verdict(False, problem, run)
    return replace(verdict, tests_changed=split.tests)


def _not_run(command: str, split: PatchSplit, reason: str) -> Verdict:
    """A rejection decided before any test ran (exit_code -1: not run)."""
    return Verdict(False, reason, TestRun(command, -1, 0.0, ""), split.tests)


def _only_tests(split: PatchSplit) -> str:
    if not split.tests:
        return "the patch changes no file"
    return (f"the patch changes only tests ({some(sorted(split.tests))}) and no code: the "
            "verdict runs the repository's original tests, so fix the code under test")


def _red(run: TestRun) -> str | None:
    """Why a run is not green, if it is not."""
    if run.timed_out:
        return f"the tests timed out after {run.seconds:.0f} s"
    failing = run.failed_ids or (run.counts and (run.counts.failed or run.counts.errors))
    if run.exit_code != 0 or failing:
        counts = f"; {describe_counts(run.counts)}" if run.counts else ""
        names = f": {some(sorted(run.failed_ids))}" if run.failed_ids else ""
        return f"the tests fail (exit {run.exit_code}{counts}){names}"
    return None


# --- the tests the task names ------------------------------------------------------------------

# pytest node ids: tests/test_x.py, tests/test_x.py::TestC::test_y[param]
_NODE = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.py(?:::\w+(?:\[[^\]\s]*\])?)*)")
_ERROR_MODULE = re.compile(r"^(?:ERROR|_+ ERROR collecting) ((?:[\w.-]+/)*[\w.-]+\.py)\b",
                           re.MULTILINE)


def named_tests(text: str) -> tuple[str, ...]:
    """pytest ids named in a task (or a CI log): `path.py::Class::test` or a test file path."""
    found = []
    for node in _NODE.findall(text):
        path = node.split("::", 1)[0]
        if "::" in node or Path(path).name.startswith("test_") or path.endswith("_test.py"):
            found.append(node)
    return tuple(dict.fromkeys(found))


def collection_errors(run: TestRun) -> tuple[str, ...]:
    """Test modules pytest could not import ("ERROR tests/test_x.py - ImportError ...")."""
    return tuple(dict.fromkeys(_ERROR_MODULE.findall(run.output)))


def _required_problem(baseline: TestRun, run: TestRun, named: Sequence[str]) -> str | None:
    """The first named test (known at baseline) or uncollectable module that did not pass."""
    known = baseline.passed_ids | baseline.failed_ids | baseline.skipped_ids
    errored = collection_errors(baseline)
    required = [n for n in named if node_ids(n, known) or n.split("::")[0] in errored]
    for node in dict.fromkeys([*required, *errored]):
        ran = node_ids(node, run.passed_ids | run.failed_ids)
        why = "the task names" if node in required else "could not be collected before"
        if not ran:
            return f"{node} ({why}) did not run after the patch"
        if failed := ran & run.failed_ids:
            return f"{node} ({why}) still fails: {some(sorted(failed))}"
    return None


# --- a baseline that runs no test --------------------------------------------------------------

_USAGE = re.compile(r"^[^\n]*pytest: (error: [^\n]+)$", re.MULTILINE)
_FIRST_ERROR = (
    re.compile(r"^E\s+((?:[\w.]+\.)?\w*(?:Error|Exception)\b.*)$", re.MULTILINE),
    re.compile(r"^((?:[\w.]+\.)?\w*(?:Error|Exception): .+)$", re.MULTILINE),
)


def baseline_problem(baseline: TestRun, root: Path, task_text: str) -> str | None:
    """One line when the baseline ran no test (collection errors, nothing collected), unless
    the task is about that very error; None when the baseline is a fair comparison."""
    counts = baseline.counts
    if counts is None and baseline.exit_code == 4 and "pytest" in baseline.command:
        usage = _USAGE.search(baseline.output)  # pytest's usage error: an unknown option, say
        error = usage[1].strip()[:200] if usage else "pytest exited 4 (a usage error)"
        return (f"the tests ran nothing before any change (exit 4): {error} — install the pytest "
                "plugins the test configuration needs with --setup-cmd, or set test_command")
    if counts is None or baseline.timed_out or baseline.passed_ids or baseline.failed_ids:
        return None
    if counts.passed or counts.failed or counts.skipped:
        return None
    error = first_error(baseline.output)
    # The message without where it happened: "(/tmp/acr-worktree-x/calc.py)" is this run's.
    about = re.sub(r"\s*\([^()]*\)$", "", error.split(": ", 1)[-1]) if error else ""
    if len(about) >= 8 and about in task_text:
        return None  # the task is to fix that error (a CI log shows it): those tests must pass
    what = (f"{counts.errors} error{'s' if counts.errors != 1 else ''} while collecting"
            if counts.errors else "no test was collected")
    head = f"the tests ran nothing before any change (exit {baseline.exit_code}; {what})"
    return f"{head}: {error} — {_hint(root, error)}" if error else f"{head} — {_hint(root, '')}"


def first_error(output: str) -> str:
    """The first exception line of a test run's output ("ModuleNotFoundError: No module ...")."""
    for pattern in _FIRST_ERROR:
        if match := pattern.search(output):
            return match[1].strip()[:200]
    return ""


def _hint(root: Path, error: str) -> str:
    """A concrete next step for the user."""
    importing = "ModuleNotFoundError" in error or "ImportError" in error
    if importing and src_layout(root):
        return ("this repo keeps its code in src/: pass --setup-cmd 'pip install -e .' or set "
                "test_command (e.g. PYTHONPATH=src python -m pytest -q)")
    if importing:
        return ("install what the tests import with --setup-cmd (e.g. pip install -e '.[test]') "
                "or set test_command")
    return "check the test command (--test-cmd / test_command) and the setup (--setup-cmd)"


# --- files that must parse ---------------------------------------------------------------------


def syntax_problem(tree: Worktree, paths: Sequence[str]) -> str | None:
    """A model-facing message for the first Python file that parsed at the base commit (or is
    new) and does not parse now."""
    for path in paths:
        try:
            text = (tree.path / path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        problem = python_syntax_error(path, text)
        if problem and not python_syntax_error(path, base_text(tree, path) or ""):
            return problem
    return None
