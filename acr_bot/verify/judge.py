"""Judge a patch's test run against the baseline's, and say why in words for the PR and
for the model (its feedback). Pure functions on TestRun values (verify/testresults.py reads
them)."""

from __future__ import annotations

from collections.abc import Sequence

from acr_bot.domain import TestCounts, TestRun, Verdict
from acr_bot.verify.testresults import parse_unittest

SHOWN = 5  # ids or paths named in one line; the rest are counted


def judge(baseline: TestRun, after: TestRun) -> Verdict:
    """Accept `after` only if it is green and lost nothing that ran at `baseline`."""
    problem = (
        _exit_problem(baseline, after)
        or _lost_results(baseline, after)
        or _id_problem(baseline, after)
        or _count_problem(baseline, after)
    )
    if problem:
        return Verdict(passed=False, reason=problem, run=after)
    return Verdict(passed=True, reason=_pass_reason(baseline, after), run=after)


def _exit_problem(baseline: TestRun, after: TestRun) -> str | None:
    """Why the run failed by its exit code alone, if it did (and which tests vanished)."""
    if after.timed_out:
        return f"timed out after {after.seconds:.0f} s"
    if after.exit_code == 0:
        return None
    head = f"exit {after.exit_code}"
    if after.failed_ids:
        return f"{head}; {len(after.failed_ids)} failed: {some(sorted(after.failed_ids))}"
    if after.counts is None:
        return f"{head}; {_unread(after)}"
    if after.counts.failed or after.counts.errors:
        return f"{head}; {describe_counts(after.counts)}"
    # e.g. pytest's exit 5 when a conftest or an ini option left nothing to run: say what went.
    gone = _gone(baseline, after)
    return f"{head}; {gone}" if gone else head


def _lost_results(baseline: TestRun, after: TestRun) -> str | None:
    """A problem if the baseline's results could be read but the patched run's cannot."""
    had_ids = bool(baseline.passed_ids | baseline.failed_ids)
    has_ids = bool(after.passed_ids | after.failed_ids | after.skipped_ids)
    # Results that name no test although some ran; when none ran at all, the ids tell what went.
    any_ran = after.counts is None or after.counts.ran > 0
    if (baseline.counts is not None and after.counts is None) or (had_ids and not has_ids
                                                                  and any_ran):
        ran = baseline.counts.ran if baseline.counts else len(baseline.passed_ids)
        return f"no test results could be read after the patch ({_tests(ran)} ran before)"
    return None


def _id_problem(baseline: TestRun, after: TestRun) -> str | None:
    """The first test, by id, that regressed, disappeared or still fails."""
    before_ran = baseline.passed_ids | baseline.failed_ids
    if not before_ran:
        return None  # the runner names no tests: counts decide
    if broken := baseline.passed_ids & after.failed_ids:
        fail = _verb(broken, "fail")
        return f"{_tests(len(broken))} that passed before now {fail}: {some(sorted(broken))}"
    if gone := _gone(baseline, after):
        return gone
    if after.failed_ids:
        failed = some(sorted(after.failed_ids))
        return f"exit 0 but {_tests(len(after.failed_ids))} failed: {failed}"
    return None


def _gone(baseline: TestRun, after: TestRun) -> str | None:
    """The tests, by id, that ran before and did not run now."""
    gone = baseline.passed_ids | baseline.failed_ids
    gone -= after.passed_ids | after.failed_ids
    if not gone:
        return None
    were = "were" if len(gone) > 1 else "was"
    return f"{_tests(len(gone))} that ran before {were} skipped or removed: {some(sorted(gone))}"


def _count_problem(baseline: TestRun, after: TestRun) -> str | None:
    """A problem visible in the counts: fewer tests ran, or failures behind an exit code of 0."""
    before, now = baseline.counts, after.counts
    if before is None or now is None:
        return None
    if now.ran < before.ran:
        return (
            f"fewer tests ran: {before.ran} before, {now.ran} after"
            " (deleting or skipping tests is not a fix)"
        )
    if now.failed or now.errors:
        return f"exit 0 but {describe_counts(now)}"
    return None


def _pass_reason(baseline: TestRun, after: TestRun) -> str:
    """One line saying why the patch passed."""
    if after.counts is None:
        return f"exit 0 ({_unread(after)}; judged by the exit code alone)"
    before = f" (before: {describe_counts(baseline.counts)})" if baseline.counts else ""
    return f"exit 0; {describe_counts(after.counts)}{before}"


def shown_counts(run: TestRun) -> TestCounts | None:
    """The counts a person is shown: the run's own, else unittest's summary ("Ran 18205
    tests", "FAILED (failures=1, skipped=1841)"), which the verdict does not judge by (a
    runner's output can hold another process's unittest lines)."""
    if run.counts is not None:
        return run.counts
    results = parse_unittest(run.output)
    return results.counts if results else None


def _unread(run: TestRun) -> str:
    """What a run without counts of its own shows: unittest's summary, or that there is none."""
    shown = shown_counts(run)
    if shown is None:
        return "no test results could be read"
    return f"unittest's summary: {describe_counts(shown)}"


def describe_counts(counts: TestCounts) -> str:
    """Counts as "3 passed, 1 failed, 2 skipped", leaving out zeros."""
    parts = [
        f"{counts.passed} passed" if counts.passed else "",
        f"{counts.failed} failed" if counts.failed else "",
        f"{counts.errors} error{'s' if counts.errors > 1 else ''}" if counts.errors else "",
        f"{counts.skipped} skipped" if counts.skipped else "",
    ]
    return ", ".join(p for p in parts if p) or "no tests"


def _tests(n: int) -> str:
    """The phrase "1 test" or "3 tests"."""
    return f"{n} test" if n == 1 else f"{n} tests"


def _verb(ids: frozenset[str], verb: str) -> str:
    """`verb` agreeing with how many `ids` there are: "fails" or "fail"."""
    return f"{verb}s" if len(ids) == 1 else verb


def some(items: Sequence[str], shown: int = SHOWN) -> str:
    """The first few items, in their order, and how many more there are (ids, paths...)."""
    more = f", ... (+{len(items) - shown} more)" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


def failure_feedback(verdict: Verdict, limit: int = 6000) -> str:
    """A message for the model: why the patch was rejected, what fails, and the output's end."""
    if verdict.passed:
        return f"The tests passed: {verdict.reason}"
    if verdict.unreproduced:
        return _unreproduced_feedback(verdict, limit)
    lines = [f"The patch was rejected: {verdict.reason}"]
    failing = sorted(verdict.run.failed_ids)
    if failing:
        lines.append("Failing tests:")
        lines += [f"- {test_id}" for test_id in failing[:20]]
        if len(failing) > 20:
            lines.append(f"- ... and {len(failing) - 20} more")
    lines.append("Fix the code under test; deleting, skipping or weakening tests is rejected.")
    head = "\n".join(lines)[:limit]
    title = "\n\nEnd of the test output:\n"
    tail = _tail(verdict.run.output, limit - len(head) - len(title))
    return head + title + tail if tail else head


def _unreproduced_feedback(verdict: Verdict, limit: int) -> str:
    """Why a change that breaks nothing is still not a fix, with its own tests' output on the
    code before it (which shows, say, that they pass there too)."""
    head = (f"The repository's tests pass with your change, but it was rejected: {verdict.reason}."
            "\nAdd a test that reproduces the issue to the repository's tests: it must fail on "
            "the code before your change (inside the test: an assertion, or the missing "
            "behaviour) and pass with it. Test configuration (conftest.py, ini files) is judged "
            "as it was before your change.")[:limit]
    run = verdict.base_run
    if run is None or not run.output.strip():
        return head
    title = "\n\nYour tests, run on the code before your change:\n"
    return head + title + _tail(run.output, limit - len(head) - len(title))


def _tail(text: str, budget: int) -> str:
    """The last `budget` chars of `text`, starting at a line boundary when one is near."""
    text = text.rstrip()
    if budget <= 0 or not text:
        return ""
    if len(text) <= budget:
        return text
    tail = text[-budget:]
    newline = tail.find("\n")
    return tail[newline + 1 :] if 0 <= newline < 200 else tail
