"""The verdict in tiers: the tests that matter to a change first, failing fast; the full suite
once, only for a candidate that passed them.

Tier 1a runs the tests the task names (pytest ids known at the baseline); tier 1b the test
modules that import a changed module (verify/selection.py), as many as fit FIRST_TIER_SHARE of
the baseline's time by its JUnit times, less what the named tests' run took and as much again
for this run's own start, in one process (for an accepted change a first tier is pure cost: the
full suite runs those tests again). A tier can only reject: a test that
fails there would fail in the full suite too, which must be green to accept. When a tier cannot
run (a command that cannot be narrowed, no test selected) it is skipped, never trusted. Tier 2
is the repository's full test command, judged against the baseline by the usual rules.

A deadline, when the job has one, is checked before tier 2: a full suite that cannot finish in
the time left stops the task with a message, instead of the runner killing the job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from acr_bot.domain import TestRun, TierTime
from acr_bot.errors import AcrError, GitError
from acr_bot.gitrepo import git
from acr_bot.verify.judge import describe_counts, shown_counts
from acr_bot.verify.runners import narrow, single_process
from acr_bot.verify.selection import DEFAULT_LIMIT, Selection, select_tests
from acr_bot.verify.testresults import in_module

# The related tests may cost this share of the baseline's time (by its JUnit times): a first
# tier pays off only when it is small next to the full suite an accepted change runs anyway.
FIRST_TIER_SHARE = 0.05
# And at most this many seconds, whatever the suite's size: the first tier is there to reject
# a wrong change fast (on sympy's whole suite, 5 % would be over two minutes).
FIRST_TIER_MAX_S = 30.0
SUITE_MARGIN = 1.1  # the full suite may take this much longer than at the baseline
SUITE_SLACK_S = 60.0  # plus this, for copying the tree back, the PR and the memory push


class OutOfTime(AcrError):
    """The job's time left cannot fit a full-suite run: stop cleanly, memory saved."""


@dataclass
class Deadline:
    """When the job must be done by (time.monotonic()); None: no limit."""

    at: float | None = None
    clock: Callable[[], float] = field(default=time.monotonic)

    @classmethod
    def in_minutes(cls, minutes: float | None) -> Deadline:
        return cls(None if minutes is None else time.monotonic() + minutes * 60)

    def left(self) -> float | None:
        return None if self.at is None else self.at - self.clock()

    def seconds_for_work(self, suite_seconds: float) -> float | None:
        """What an attempt may spend before its full suite must start (None: no limit)."""
        left = self.left()
        return None if left is None else max(left - _need(suite_seconds), 0.0)

    def shortfall(self, suite_seconds: float) -> str:
        """Why a full suite no longer fits (check_suite's message), or ''."""
        try:
            self.check_suite(suite_seconds)
        except OutOfTime as stop:
            return str(stop)
        return ""

    def check_suite(self, suite_seconds: float) -> None:
        """Raise OutOfTime when a full run (as long as the baseline's, plus margins) does not
        fit in the time left."""
        left = self.left()
        if left is not None and left < _need(suite_seconds):
            raise OutOfTime(
                f"stopped before the full test suite: it took {_minutes(suite_seconds)} at the "
                f"baseline and {_minutes(max(left, 0))} of the job's time limit is left "
                "(time_limit_minutes); the attempts so far are saved in the memory")


def _need(suite_seconds: float) -> float:
    return suite_seconds * SUITE_MARGIN + SUITE_SLACK_S


@dataclass
class TierOptions:
    """How a job's verdicts run: with a first tier or not, and by when they must be done."""

    first_tier: bool = True
    deadline: Deadline = field(default_factory=Deadline)
    limit: int = DEFAULT_LIMIT
    echo: Callable[[str], None] = lambda line: None


@dataclass(frozen=True)
class Tiered:
    """What the tiers did: the run that decides, a first-tier rejection, the times."""

    run: TestRun
    rejection: str  # "" unless the first tier rejected (then `run` is that tier's run)
    times: tuple[TierTime, ...]


def tiered_run(baseline: TestRun, root: Path, paths: Sequence[str], code: Sequence[str],
               command: str, run: Callable[[str], TestRun], named: Sequence[str] = (),
               options: TierOptions | None = None) -> Tiered:
    """The first tier, then (unless it rejected) the full suite once: `run` runs a command on
    the tree at `root` as it stands. Raises OutOfTime before a full suite that cannot fit."""
    options = options or TierOptions()
    times: tuple[TierTime, ...] = ()
    if options.first_tier:
        steps = first_tier(root, paths, code, command, named, options.limit, baseline)
        failed, rejection, times = run_first_tier(steps, run, options.echo)
        if failed is not None:
            return Tiered(failed, rejection, times)
    options.deadline.check_suite(baseline.seconds)
    full = run(command)
    return Tiered(full, "", (*times, full_tier(full)))


@dataclass(frozen=True)
class Step:
    """One first-tier run to make."""

    name: str
    command: str
    size: str  # what it runs, for the console: "2 named tests", "5 test modules"
    # The step again once the runs before it took these seconds (None: nothing fits any more)
    replan: Callable[[float], Step | None] | None = None


def first_tier(root: Path, paths: Sequence[str], code: Sequence[str], command: str,
               named: Sequence[str] = (), limit: int = DEFAULT_LIMIT,
               baseline: TestRun | None = None) -> list[Step]:
    """The first-tier runs for a change to `code` (paths) in the tree at `root`; with the
    `baseline`'s JUnit times, only the related modules that fit FIRST_TIER_SHARE of its time."""
    selection = select_tests(paths, code, lambda p: _read(root / p), named=named, limit=limit,
                             grep=lambda words, files: _grep(root, words, files))
    steps = []
    if selection.named and (narrowed := narrow(command, selection.named)):
        steps.append(Step("named tests", single_process(narrowed),
                          _count(len(selection.named), "named test")))
    if (related := _related(selection, command, baseline)) is not None:
        if steps and affordable(selection.modules, baseline) is not None:
            # The named tests' run is mostly the start (the interpreter, the project's import):
            # it counts against the budget, and so does the related run's own start, alike.
            related = replace(related, replan=lambda spent: _related(
                selection, command, baseline, spent=2 * spent))
        steps.append(related)
    return steps


def _related(selection: Selection, command: str, baseline: TestRun | None,
             spent: float = 0.0) -> Step | None:
    """The related modules' run: those within the budget (less `spent`), in one process."""
    budgeted = affordable(selection.modules, baseline, spent=spent)
    modules, over = budgeted or (list(selection.modules), 0)
    if not modules or not (narrowed := narrow(command, modules)):
        return None
    size = _count(len(modules), "test module")
    dropped = selection.dropped + over
    more = f" (+{dropped} more left to the full suite)" if dropped else ""
    # Kept within the budget, they run in one process: workers would each import the
    # project first, which costs more than they save on a few seconds of tests.
    if budgeted is not None:
        narrowed = single_process(narrowed)
    return Step("related tests", narrowed,
                f"{size} importing {', '.join(selection.changed)}{more}")


def affordable(modules: Sequence[str], baseline: TestRun | None,
               share: float = FIRST_TIER_SHARE, spent: float = 0.0,
               ) -> tuple[list[str], int] | None:
    """`modules` (in their order) whose tests took together at most `share` of the
    `baseline`'s time (FIRST_TIER_MAX_S at most) less `spent`, by its JUnit times, and how
    many were left out. None (no budget) when those times name none of the modules: no JUnit
    (Django's runner, an old cached baseline), or names that are not the modules' paths (a
    command that starts with `cd DIR &&`). A module they do not name (it failed to collect,
    or is new) counts as free."""
    times = dict(baseline.test_seconds) if baseline is not None else {}
    costs = [module_seconds(module, times) for module in modules]
    if baseline is None or all(cost is None for cost in costs):
        return None
    budget, kept = min(share * baseline.seconds, FIRST_TIER_MAX_S) - spent, []
    for module, cost in zip(modules, costs, strict=True):
        if (cost or 0.0) <= budget:
            kept.append(module)
            budget -= cost or 0.0
    return kept, len(modules) - len(kept)


def module_seconds(module: str, times: dict[str, float]) -> float | None:
    """The seconds the tests of `module` (a repository path) took, None when `times` does not
    name it: JUnit names them by the dotted path (tests/test_x.py -> tests.test_x, then
    .Class for a class's tests)."""
    dotted = module.removesuffix(".py").replace("/", ".")
    found = [seconds for name, seconds in times.items() if in_module(name, dotted)]
    return sum(found) if found else None


def run_first_tier(steps: Sequence[Step], run: Callable[[str], TestRun],
                   echo: Callable[[str], None] = lambda line: None,
                   ) -> tuple[TestRun | None, str, tuple[TierTime, ...]]:
    """Run `steps` in order; stop at the first with a failed test. Returns that run and the
    rejection (or None and ""), and each run's time."""
    times: list[TierTime] = []
    for planned in steps:
        spent = sum(t.seconds for t in times)
        step = planned.replan(spent) if planned.replan and times else planned
        if step is None:
            echo(f"  tier 1 ({planned.name}): none within the first tier's share of the "
                 "baseline's time, all left to the full suite")
            continue
        echo(f"  tier 1 ({step.name}): {step.size}")
        result = run(step.command)
        times.append(TierTime(step.name, result.seconds, tier_result(result)))
        if problem := failed_in_tier(result):
            return result, f"the {step.name} failed first ({step.size}): {problem}; the full " \
                           "suite was not run", tuple(times)
    return None, "", tuple(times)


def failed_in_tier(run: TestRun) -> str | None:
    """Why a first-tier run rejects: a test failed. Anything else (a timeout, a usage error,
    nothing collected) is not held against the patch: the full suite decides."""
    if run.timed_out:
        return None
    counts = shown_counts(run)
    failed = len(run.failed_ids) or (counts.failed + counts.errors if counts else 0)
    if not failed:
        return None
    names = ", ".join(sorted(run.failed_ids)[:5])
    return f"{failed} failed" + (f": {names}" if names else "")


def full_tier(run: TestRun) -> TierTime:
    return TierTime("full suite", run.seconds, tier_result(run))


def tier_result(run: TestRun) -> str:
    """A run's result in a few words, for the table of tiers."""
    if run.timed_out:
        return "timed out"
    counts = shown_counts(run)
    if counts is not None and counts.ran + counts.skipped:
        return describe_counts(counts)
    return f"exit {run.exit_code}"


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def _grep(root: Path, words: Sequence[str], files: Sequence[str]) -> set[str] | None:
    """The tracked `files` that hold any of `words` (git grep: fast on a large tree); None
    when git cannot tell (not a repository)."""
    if not files:
        return set()
    patterns = [arg for word in words for arg in ("-e", word)]
    try:
        out = git(root, "grep", "-l", "-z", "-F", "--no-color", *patterns, "--", *files)
    except GitError as error:  # exit 1 and nothing said: no file holds them
        return None if getattr(error, "output", "") else set()
    return {p for p in out.split("\0") if p}


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
