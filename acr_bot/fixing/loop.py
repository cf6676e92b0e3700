"""The attempt loop inside one task: route -> ask -> apply -> verify -> feed back or escalate.

All work happens in a temporary worktree at HEAD; a verified fix becomes a new branch. Every
attempt is reported to the policy (so it learns within the task) and queued as a memory record.
"""

from __future__ import annotations

import re
import time
from contextlib import AbstractContextManager, nullcontext
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from acr_bot.domain import (
    Attempt,
    Features,
    FixResult,
    Price,
    Record,
    Reply,
    Task,
    TestRun,
    TierTime,
)
from acr_bot.errors import ConfigError
from acr_bot.fixing import trajectory
from acr_bot.fixing.agent import AgentHarness
from acr_bot.fixing.agent_prompts import REJECTED, REVERTED, SENTINEL
from acr_bot.fixing.context import Context, build_context
from acr_bot.fixing.edit_harness import FEEDBACK_LIMIT, EditHarness
from acr_bot.fixing.harness import (
    DEFAULT_HARNESS,
    HARNESSES,
    AttemptResult,
    Brief,
    Harness,
    Limits,
    split_arm,
)
from acr_bot.fixing.paths import protected_reason
from acr_bot.gitrepo import GitRepo, Worktree, slugify
from acr_bot.llm import table_context_window
from acr_bot.memory.store import new_id
from acr_bot.report import clip, run_summary
from acr_bot.routing.base import Outcome, Policy, RouteTask
from acr_bot.routing.cascade import Cascade
from acr_bot.routing.features import task_features, task_kind
from acr_bot.verify.baselines import BaselineCache, baseline_key, timed_baseline
from acr_bot.verify.local import Sandbox, failure_feedback
from acr_bot.verify.reproduction import folders_with_tests, needs_reproduction
from acr_bot.verify.tiers import OutOfTime, TierOptions
from acr_bot.verify.verdict import baseline_problem, named_tests, verify_workspace

CACHED = " (cached: the suite ran before at this commit with this command)"


class Caller(Protocol):
    def complete(self, model: str, messages: list[dict[str, str]]) -> Reply: ...


@dataclass
class FixJob:
    """Everything one fix needs; built by `app.py` from settings."""

    task: Task
    repo: GitRepo
    models: Sequence[str]
    policy: Policy
    llm: Caller
    sandbox: Sandbox
    test_command: str
    prices: Mapping[str, Price | None] = field(default_factory=dict)
    setup_command: str | None = None
    protected: Sequence[str] = (".github/**",)
    test_paths: Sequence[str] = ()  # globs added to the default test paths (verify/patch.py)
    max_attempts: int = 3
    max_cost_usd: float = 2.0
    context_tokens: int = 24_000
    max_output_tokens: int = 8_192
    branch: str | None = None
    dry_run: bool = False
    base: str | None = None  # commit to start from (default HEAD)
    echo: Callable[[str], None] = lambda line: None
    on_record: Callable[[Record], None] = lambda record: None
    run_id: str = field(default_factory=new_id)  # ties this run's attempts into one cascade
    harness: str = DEFAULT_HARNESS  # for a candidate named without `@harness`
    limits: Limits = field(default_factory=lambda: Limits(max_cost_usd=0.0))  # per attempt
    harnesses: dict[str, Harness] = field(default_factory=dict)  # built on first use
    rounds: int = 2  # agent submissions judged per attempt (the agent goes on when rejected)
    # When no test fails before the change, a fix must bring a test that reproduces the issue;
    # off, such a change is published anyway, as a draft marked "not reproduced".
    require_reproduction: bool = True
    trajectory_dir: Path | None = None  # one JSON transcript per attempt
    tiers: TierOptions = field(default_factory=TierOptions)  # first tier, job deadline
    baselines: BaselineCache = field(default_factory=lambda: BaselineCache(None))
    group: Callable[[str], AbstractContextManager[None]] = lambda title: nullcontext()


@dataclass
class _State:
    """What the loop carries from one attempt to the next."""

    worktree: Worktree
    baseline: TestRun
    context: Context
    cascade: Cascade  # routing: what was tried, what is left, when to stop
    attempts: list[Attempt] = field(default_factory=list)
    faulted: set[str] = field(default_factory=set)
    records: list[Record] = field(default_factory=list)
    final: TestRun | None = None
    keep: tuple[str, ...] = ()  # untracked files the setup command made: restores keep them
    named: tuple[str, ...] = ()  # test ids the task names: they must run and pass
    capped: set[str] = field(default_factory=set)  # models the console was told the cap excludes
    baseline_time: TierTime | None = None
    out_of_time: str = ""  # why the job's time limit stopped the loop
    reproduce: bool = False  # nothing fails before the change: a fix must bring its own test
    test_dirs: tuple[str, ...] = ()  # where the repository keeps its tests (for the prompts)

    @property
    def route(self) -> RouteTask:
        return self.cascade.task

    @property
    def spent(self) -> float:
        return sum(a.cost_usd for a in self.attempts)


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


def _prepare(job: FixJob, tree: Worktree) -> _State | FixResult:
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
    return _State(tree, baseline, context, cascade, keep=keep, named=named_tests(task.text),
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


def _expected_cost(job: FixJob, state: _State, arm: str) -> float | None:
    model, name = split_arm(arm, job.harness)
    price = job.prices.get(model)
    if price is None:
        return None
    brief = Brief(job.task, job.test_command, state.baseline, state.context,
                  tuple(state.attempts), tuple(job.protected))
    # The worst case, not the typical reply: the cap must hold even for a maximal answer.
    return price.cost(_harness(job, name).prompt_tokens(brief), job.max_output_tokens)


def _affordable(job: FixJob, state: _State) -> list[str]:
    """Models whose expected call cost still fits under the dollar cap."""
    over = _over_cap(job, state)
    return [m for m in job.models if m not in state.faulted and m not in over]


def _over_cap(job: FixJob, state: _State) -> dict[str, float]:
    """Models whose worst-case call would break the dollar cap, with that worst case."""
    out = {}
    for model in job.models:
        cost = _expected_cost(job, state, model) or 0.0
        if model not in state.faulted and state.spent + cost > job.max_cost_usd:
            out[model] = cost
    return out


def _say_cap(job: FixJob, state: _State) -> None:
    """Say when the cap takes a model out of the choice (once per model), and before the first
    call when it leaves fewer models than attempts: otherwise the cap is invisible."""
    over = _over_cap(job, state)
    left = max(job.max_cost_usd - state.spent, 0.0)
    for model, cost in over.items():
        if model not in state.capped:
            state.capped.add(model)
            job.echo(f"cap: {model} is left out: its worst case ${cost:.4f} is over the "
                     f"${left:.4f} left of the ${job.max_cost_usd:.2f} cap")
    fit = [m for m in job.models if m not in over and m not in state.faulted]
    if not state.attempts and over and 0 < len(fit) < job.max_attempts:
        job.echo(f"cap: only {len(fit)} model(s) fit under the ${job.max_cost_usd:.2f} cap "
                 f"({', '.join(fit)}) for up to {job.max_attempts} attempts: a model may be "
                 "tried again")


def _loop(job: FixJob, state: _State) -> Attempt | None:
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
                attempt = _attempt(job, state, decision.model, number)
            except OutOfTime:
                job.echo(f"  {state.out_of_time}")
                return None
        _remember(job, state, attempt)
        if _accepted(job, attempt):
            return attempt
        state.worktree.restore(state.keep)


def _attempt(job: FixJob, state: _State, arm: str, number: int) -> Attempt:
    """One attempt: the harness changes the worktree, then the verifier judges it. A rejected
    agent may go on with the verifier's output while its steps and dollars last."""
    model, name = split_arm(arm, job.harness)
    harness = _harness(job, name)
    brief = _brief(job, state)
    started = time.monotonic()
    total: Attempt | None = None
    rounds = job.rounds if name == "agent" else 1  # only an agent goes on after a rejection
    for round_ in range(rounds):
        limits = _limits(job, state, model, total)
        result = harness.attempt(model, brief, state.worktree.path, limits)
        total = _add(total, result, Attempt(number, arm, "tests_failed", 0.0, harness=name))
        if result.outcome == "provider_fault":
            state.faulted.add(arm)
        if result.outcome != "edited":
            total = replace(total, outcome=result.outcome, detail=result.detail,
                            feedback=result.feedback)
            break
        try:
            total = _verify(job, state, result, total, started)
        except OutOfTime as stop:  # the change is not judged: no outcome to learn from
            state.out_of_time = str(stop)
            raise
        if _accepted(job, total) or round_ + 1 == rounds or \
                _limits(job, state, model, total).steps < 2:
            break
        job.echo(f"  rejected: {total.detail}; the agent continues with the verifier's output")
        reverted = prompts_reverted(result.reverted, job.protected)
        brief = replace(brief, resume=replace(result, feedback=REJECTED.format(
            feedback=total.feedback, reverted=reverted, sentinel=SENTINEL)))
    assert total is not None
    total = replace(total, seconds=time.monotonic() - started)
    return _save_trajectory(job, total, result)


def _accepted(job: FixJob, attempt: Attempt) -> bool:
    """A fix to publish: it passed or, with the reproduction rule off, it is unreproduced."""
    return attempt.passed or (attempt.outcome == "no_reproduction"
                              and not job.require_reproduction)


def _brief(job: FixJob, state: _State) -> Brief:
    return Brief(job.task, job.test_command, state.baseline, state.context,
                 tuple(state.attempts), tuple(job.protected), state.keep,
                 reproduce=state.reproduce, test_dirs=state.test_dirs,
                 test_paths=tuple(job.test_paths))


def _limits(job: FixJob, state: _State, model: str, so_far: Attempt | None) -> Limits:
    """The job's limits, less what this attempt's earlier rounds used."""
    used_usd = so_far.cost_usd if so_far else 0.0
    used_steps = so_far.calls if so_far else 0
    # The smaller of the setting and the window litellm lists for the model.
    window = min(job.limits.context_tokens, table_context_window(model) or job.limits.context_tokens)
    # The agent must leave the job time for the full suite (tiers.Deadline).
    left = job.tiers.deadline.seconds_for_work(state.baseline.seconds)
    seconds = job.limits.attempt_seconds if left is None else min(job.limits.attempt_seconds, left)
    return replace(job.limits, attempt_seconds=seconds, max_cost_usd=max(job.max_cost_usd - state.spent - used_usd, 0.0),
                   steps=max(job.limits.steps - used_steps, 0), context_tokens=window,
                   max_output_tokens=job.max_output_tokens, price=job.prices.get(model))


def _add(total: Attempt | None, result: AttemptResult, blank: Attempt) -> Attempt:
    """The attempt so far plus one more round of the harness."""
    base = total or blank
    return replace(base, prompt_tokens=base.prompt_tokens + result.prompt_tokens,
                   completion_tokens=base.completion_tokens + result.completion_tokens,
                   cost_usd=base.cost_usd + result.cost_usd, calls=base.calls + result.calls,
                   steps=len(result.steps), commands=tuple(s.command for s in result.steps),
                   files=result.files, note=result.note)


def _save_trajectory(job: FixJob, attempt: Attempt, result: AttemptResult) -> Attempt:
    """Write the attempt's transcript as JSON when the job asks for it."""
    if job.trajectory_dir is None:
        return attempt
    path = trajectory.write(job.trajectory_dir, job.run_id, job.task, attempt, result)
    job.echo(f"  trajectory: {path}")
    return replace(attempt, trajectory=str(path))


def _verify(job: FixJob, state: _State, result: AttemptResult, attempt: Attempt,
            started: float) -> Attempt:
    """Run the tests on the changed worktree and judge them against the baseline."""
    diff = state.worktree.diff(result.files)
    verdict = verify_workspace(state.baseline, state.worktree, job.sandbox, job.test_command,
                               keep=state.keep, test_paths=job.test_paths, named=state.named,
                               files=result.files, tiers=job.tiers, reproduce=state.reproduce,
                               require=job.require_reproduction)
    run = verdict.run
    judged = replace(attempt, seconds=time.monotonic() - started, counts=run.counts,
                     detail=verdict.reason, diff=diff, tests_changed=verdict.tests_changed,
                     reproduction=verdict.reproduction, base_failure=verdict.base_failure,
                     tiers=verdict.tiers)
    if verdict.passed or verdict.unreproduced:
        state.final = run
        # An unreproduced change keeps its files: with the rule off it is the one published.
        return replace(judged, outcome="passed" if verdict.passed else "no_reproduction",
                       files=result.files,
                       feedback=failure_feedback(verdict, FEEDBACK_LIMIT) if verdict.unreproduced
                       else "")
    feedback = (f"Your edits applied:\n```diff\n{diff[:2000]}\n```\nbut verification failed.\n"
                + failure_feedback(verdict, FEEDBACK_LIMIT))
    return replace(judged, outcome="tests_failed", feedback=feedback, files=())


def prompts_reverted(paths: Sequence[str], protected: Sequence[str]) -> str:
    """The note to the agent on protected paths put back, each with the glob it matches."""
    return REVERTED.format(paths="; ".join(protected_reason(p, protected) for p in paths)
                           ) if paths else ""


def _harness(job: FixJob, name: str) -> Harness:
    """The job's harness called `name`, built on first use."""
    if name not in job.harnesses:
        if name not in HARNESSES:
            raise ConfigError(f"unknown harness {name!r} (known: {', '.join(HARNESSES)})")
        job.harnesses[name] = (EditHarness(job.llm) if name == "edit"
                               else AgentHarness(job.llm, job.sandbox, job.echo))
    return job.harnesses[name]


def _remember(job: FixJob, state: _State, attempt: Attempt) -> None:
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
                  cost_usd=attempt.cost_usd, tokens=attempt.prompt_tokens + attempt.completion_tokens,
                  seconds=attempt.seconds, run=run, harness=harness,
                  reproduction=len(attempt.reproduction) if attempt.passed else 0,
                  tests_passed=counts.passed if counts else None,
                  tests_failed=(counts.failed + counts.errors) if counts else None)


def _publish(job: FixJob, state: _State, winner: Attempt) -> tuple[str, str]:
    """Commit the fix in the worktree and point a new branch at it."""
    # git's convention: a subject of about 72 characters; a longer title goes whole in the body.
    subject = clip(job.task.title, 72)
    whole = f"{job.task.title}\n\n" if subject != job.task.title else ""
    shown = (f"Reproduced by {len(winner.reproduction)} test(s) that failed before this change: "
             f"{', '.join(winner.reproduction[:5])}.\n\n" if winner.reproduction else
             "Not reproduced: no test fails without this change.\n\n" if not winner.passed else "")
    message = (f"{subject}\n\n{whole}Verified by `{job.test_command}`: "
               f"{run_summary(state.final)}.\n\n{shown}Acr-Task: {job.task.id}\n"
               f"Acr-Model: {winner.model}\n")
    commit = state.worktree.commit(message, winner.files)
    branch = job.repo.free_branch_name(job.branch or f"acr/fix-{slugify(job.task.title)}")
    job.repo.create_branch(branch, commit)
    return branch, commit


def _give_up_reason(job: FixJob, state: _State) -> str:
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


def _result(job: FixJob, state: _State, outcome: str, reason: str) -> FixResult:
    return FixResult(job.task, outcome, reason, job.test_command,  # type: ignore[arg-type]
                     tuple(state.attempts), tuple(state.cascade.decisions), state.baseline,
                     state.final, records=tuple(state.records),
                     baseline_time=state.baseline_time)
