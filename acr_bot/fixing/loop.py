"""The attempt loop inside one task: route -> ask -> apply -> verify -> feed back or escalate.

All work happens in a temporary worktree at HEAD; a verified fix becomes a new branch. Every
attempt (fixing/attempt.py) is reported to the policy (so it learns within the task) and queued
as a memory record.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace

from acr_bot.domain import Attempt, Features, FixResult, Record, Task, TestRun
from acr_bot.fixing.attempt import accepted, expected_cost, run_attempt
from acr_bot.fixing.budget import DollarCap
from acr_bot.fixing.context import build_context
from acr_bot.fixing.harness import split_arm
from acr_bot.fixing.job import FixJob, RunState
from acr_bot.gitrepo import GitRepo, Worktree, slugify
from acr_bot.memory.store import new_id
from acr_bot.report import commit_message, run_summary
from acr_bot.routing.base import Outcome, RouteTask
from acr_bot.routing.cascade import Cascade
from acr_bot.routing.features import task_features, task_kind
from acr_bot.verify.baselines import baseline_key, timed_baseline
from acr_bot.verify.reproduction import folders_with_tests, needs_reproduction
from acr_bot.verify.tiers import OutOfTime
from acr_bot.verify.verdict import baseline_problem, named_tests

__all__ = ["FixJob", "run_fix"]


CACHED = " (cached: the suite ran before at this commit with this command)"


def run_fix(job: FixJob) -> FixResult:
    """Try to fix `job.task`; the user's branch and working tree are never touched."""
    base = job.base or job.repo.head()
    with job.repo.worktree(base) as tree:
        early = _prepare(job, tree)
        if isinstance(early, FixResult):
            return early
        state = early
        nothing = _nothing_to_fix(job.task, state.baseline)
        if nothing:
            return _result(job, state, "nothing_to_fix", nothing)
        if state.reproduce:
            job.echo(_REPRODUCE_NOTE if job.require_reproduction else _UNREPRODUCED_NOTE)
        if job.dry_run:
            _say_cap(job, state)
            candidates = _affordable(job, state)
            if not candidates:  # the policy cannot choose among none
                return _result(job, state, "dry_run", "dry run: no model's expected cost fits "
                               f"under the ${job.max_cost_usd:.2f} cap")
            state.cascade.next(candidates)
            return _result(job, state, "dry_run", "dry run: no model was called")
        winner = _loop(job, state)
        if winner is None:
            return _result(job, state, "gave_up", _give_up_reason(job, state))
        branch, commit = _publish(job, state, winner)
        said = (f"verified fix by {winner.model}" if winner.passed else
                f"change by {winner.model}, not reproduced: {winner.detail} (require_reproduction"
                " is off, so it is published as a draft marked not reproduced)")
        result = _result(job, state, "fixed", said)
        return replace(result, branch=branch, commit=commit)


_REPRODUCE_NOTE = ("note: the tests already pass, so a fix must bring a test that reproduces the "
                   "issue: it fails on the code before the change and passes with it")
_UNREPRODUCED_NOTE = ("note: the tests already pass and require_reproduction is off: a change "
                      "without a test that reproduces the issue is published as a draft marked "
                      "not reproduced")


def _prepare(job: FixJob, tree: Worktree) -> RunState | FixResult:
    """Setup, baseline run, context and features."""
    task = job.task
    keep: tuple[str, ...] = ()
    if job.setup_command:
        job.echo(f"setup: {job.setup_command}")
    setup = job.sandbox.prepare(job.setup_command, tree.path)
    if setup is not None:
        if not setup.green:
            return FixResult(task, "gave_up", f"setup command failed ({run_summary(setup)})",
                             job.test_command, baseline=setup)
        keep = tree.untracked()
    job.echo(f"baseline: {job.test_command}")
    key = baseline_key(tree.run("rev-parse", "HEAD").strip(), job.test_command,
                       setup=job.setup_command, sandbox=job.sandbox.name)
    baseline, spent = timed_baseline(job.baselines, key,
                                     lambda: job.sandbox.run(job.test_command, tree.path))
    job.echo(f"baseline: {run_summary(baseline)}" + (CACHED if spent.result == "cached" else ""))
    if baseline.timed_out:
        return FixResult(task, "gave_up", "the test command timed out before any change: "
                         "raise test_timeout or narrow --test-cmd", job.test_command,
                         baseline=baseline)
    if problem := baseline_problem(baseline, tree.path, task.text):
        return FixResult(task, "gave_up", problem, job.test_command, baseline=baseline)
    paths = GitRepo(tree.path).ls_files()
    context = build_context(tree.path, task.text, paths, failing=sorted(baseline.failed_ids),
                            test_output=baseline.output, budget_tokens=job.context_tokens)
    features = task_features(task, context.libraries, context.languages,
                             files=sorted(baseline.failed_ids))
    tree.restore(keep)  # the baseline run may leave files behind
    cascade = Cascade(job.policy, RouteTask(task.id, features), job.max_attempts)
    return RunState(tree, baseline, context, cascade, keep=keep, named=named_tests(task.text),
                  baseline_time=spent, reproduce=needs_reproduction(task.source, baseline),
                  test_dirs=tuple(folders_with_tests(paths, job.test_paths)))


def _nothing_to_fix(task: Task, baseline: TestRun) -> str:
    """Why there is nothing to fix, or '': the tests pass and the task only reports failing
    tests (CI red, "the tests fail") without naming one that does not pass now. A task that
    asks for a change (a bug, a feature) goes on: tests cannot show it yet."""
    if not baseline.green or task_kind(task.text, task.source) != "test-failure":
        return ""
    if named_tests(task.text):  # a node id or test file: the verdict will hold the fix to it
        return ""
    passing = {test.rsplit("::", 1)[-1].split("[")[0] for test in baseline.passed_ids}
    if any(name not in passing for name in re.findall(r"\b(test_\w+)(?![\w.])", task.text)):
        return ""
    return (f"the tests already pass ({run_summary(baseline)}) and the task names no test "
            "that fails, so no model was called")


def _cap(job: FixJob, state: RunState) -> DollarCap:
    """The run's dollar cap, made on first use."""
    if state.cap is None:
        state.cap = DollarCap(job.max_cost_usd, job.models, job.max_attempts,
                              lambda arm: expected_cost(job, state, arm), job.echo)
    return state.cap


def _affordable(job: FixJob, state: RunState) -> list[str]:
    """Models whose worst-case next call still fits under the dollar cap."""
    return _cap(job, state).affordable(state.spent, state.faulted)


def _say_cap(job: FixJob, state: RunState) -> None:
    _cap(job, state).say(state.spent, state.faulted, first=not state.attempts)


def _loop(job: FixJob, state: RunState) -> Attempt | None:
    """Attempts until one passes, the attempt limit, the budget, or the router's stop."""
    while True:
        state.out_of_time = state.out_of_time or job.tiers.deadline.shortfall(
            state.baseline.seconds)
        if state.out_of_time:
            return None
        _say_cap(job, state)
        decision = state.cascade.next(_affordable(job, state))
        if decision is None:
            return None
        number = len(state.attempts) + 1
        with job.group(f"attempt {number}: {decision.model}"):
            job.echo(f"attempt {number}: {decision.model} - {decision.reason}")
            try:
                attempt = run_attempt(job, state, decision.model, number)
            except OutOfTime:
                job.echo(f"  {state.out_of_time}")
                return None
        _remember(job, state, attempt)
        if accepted(job, attempt):
            return attempt
        state.worktree.restore(state.keep)


def _remember(job: FixJob, state: RunState, attempt: Attempt) -> None:
    """Tell the policy (it learns within the task) and queue the memory record."""
    skill = attempt.outcome != "provider_fault"
    outcome = Outcome(1.0 if attempt.passed else 0.0, attempt.cost_usd, skill)
    state.cascade.record(attempt.model, outcome)
    state.attempts.append(attempt)
    job.echo(f"  -> {attempt.outcome}: {attempt.detail} ({attempt.seconds:.1f} s, "
             f"${attempt.cost_usd:.4f})")
    record = _record(job.task, state.route.features, attempt, job.run_id, job.harness)
    state.records.append(record)
    job.on_record(record)


def _record(task: Task, features: Features, attempt: Attempt, run: str,
            default_harness: str) -> Record:
    counts = attempt.counts
    model, harness = split_arm(attempt.model, attempt.harness or default_harness)
    return Record(id=new_id(), kind="attempt", ts=time.time(), task=task.id, model=model,
                  outcome=attempt.outcome, features=features.compact(), attempt=attempt.number,
                  cost_usd=attempt.cost_usd,
                  tokens=attempt.prompt_tokens + attempt.completion_tokens,
                  seconds=attempt.seconds, run=run, harness=harness,
                  reproduction=len(attempt.reproduction) if attempt.passed else 0,
                  tests_passed=counts.passed if counts else None,
                  tests_failed=(counts.failed + counts.errors) if counts else None)


def _publish(job: FixJob, state: RunState, winner: Attempt) -> tuple[str, str]:
    """Commit the fix in the worktree and point a new branch at it."""
    message = commit_message(job.task, job.test_command, state.final, winner)
    commit = state.worktree.commit(message, winner.files)
    branch = job.repo.free_branch_name(job.branch or f"acr/fix-{slugify(job.task.title)}")
    job.repo.create_branch(branch, commit)
    return branch, commit


def _give_up_reason(job: FixJob, state: RunState) -> str:
    if state.out_of_time:
        return state.out_of_time
    if state.cascade.stopped:
        return f"stopped: {state.cascade.stopped}"
    if state.cascade.attempts_done >= job.max_attempts:
        return f"no verified fix in {job.max_attempts} attempt(s)"
    if not _affordable(job, state):
        return (f"stopped before the next call: it would exceed the ${job.max_cost_usd:.2f} cap "
                f"(spent ${state.spent:.4f})" if state.faulted != set(job.models)
                else "every model failed at the provider")
    return "no model left to try"


def _result(job: FixJob, state: RunState, outcome: str, reason: str) -> FixResult:
    return FixResult(job.task, outcome, reason, job.test_command,  # type: ignore[arg-type]
                     tuple(state.attempts), tuple(state.cascade.decisions), state.baseline,
                     state.final, records=tuple(state.records),
                     baseline_time=state.baseline_time)
