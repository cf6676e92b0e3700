"""The attempt loop inside one task: route -> ask -> apply -> verify -> feed back or escalate.

All work happens in a temporary worktree at HEAD; a verified fix becomes a new branch. Every
attempt is reported to the policy (so it learns within the task) and queued as a memory record.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
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
)
from acr_bot.errors import EditError, LLMError
from acr_bot.fixing import edits, prompts
from acr_bot.fixing.context import Context, build_context
from acr_bot.gitrepo import GitRepo, Worktree, slugify
from acr_bot.llm import estimate_tokens
from acr_bot.memory.store import new_id
from acr_bot.report import run_summary
from acr_bot.routing.base import Outcome, Policy, RouteTask
from acr_bot.routing.cascade import Cascade
from acr_bot.routing.features import task_features
from acr_bot.verify.local import Sandbox, failure_feedback, judge

FEEDBACK_LIMIT = 6_000


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
        if job.dry_run:
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
        result = _result(job, state, "fixed", f"verified fix by {winner.model}")
        return replace(result, branch=branch, commit=commit)


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
    baseline = job.sandbox.run(job.test_command, tree.path)
    job.echo(f"baseline: {run_summary(baseline)}")
    if baseline.timed_out:
        return FixResult(task, "gave_up", "the test command timed out before any change: "
                         "raise test_timeout or narrow --test-cmd", job.test_command,
                         baseline=baseline)
    paths = GitRepo(tree.path).ls_files()
    context = build_context(tree.path, task.text, paths, failing=sorted(baseline.failed_ids),
                            test_output=baseline.output, budget_tokens=job.context_tokens)
    features = task_features(task, context.libraries, context.languages)
    tree.restore(keep)  # the baseline run may leave files behind
    cascade = Cascade(job.policy, RouteTask(task.id, features), job.max_attempts)
    return _State(tree, baseline, context, cascade, keep=keep)


def _expected_cost(job: FixJob, state: _State, model: str) -> float | None:
    price = job.prices.get(model)
    if price is None:
        return None
    # Context + task + system prompt, plus the feedback each earlier attempt adds.
    feedback = sum(estimate_tokens(a.feedback) for a in state.attempts)
    prompt = state.context.tokens + estimate_tokens(job.task.text) + 1_000 + feedback
    # The worst case, not the typical reply: the cap must hold even for a maximal answer.
    return price.cost(prompt, job.max_output_tokens)


def _affordable(job: FixJob, state: _State) -> list[str]:
    """Models whose expected call cost still fits under the dollar cap."""
    out = []
    for model in job.models:
        if model in state.faulted:
            continue
        cost = _expected_cost(job, state, model)
        if state.spent + (cost or 0.0) <= job.max_cost_usd:
            out.append(model)
    return out


def _loop(job: FixJob, state: _State) -> Attempt | None:
    """Attempts until one passes, the attempt limit, the budget, or the router's stop."""
    while (decision := state.cascade.next(_affordable(job, state))) is not None:
        job.echo(f"attempt {len(state.attempts) + 1}: {decision.model} - {decision.reason}")
        attempt = _attempt(job, state, decision.model, len(state.attempts) + 1)
        _remember(job, state, attempt)
        if attempt.passed:
            return attempt
        state.worktree.restore(state.keep)
    return None


def _attempt(job: FixJob, state: _State, model: str, number: int) -> Attempt:
    messages = [
        {"role": "system", "content": prompts.SYSTEM.format(format=edits.FORMAT_INSTRUCTIONS)},
        {"role": "user", "content": prompts.task_message(
            job.task, state.context, job.test_command, run_summary(state.baseline),
            state.attempts)},
    ]
    started = time.monotonic()
    try:
        reply = job.llm.complete(model, messages)
    except LLMError as exc:
        state.faulted.add(model)
        return Attempt(number, model, "provider_fault", time.monotonic() - started,
                       detail=str(exc)[:200])
    return _apply_and_verify(job, state, reply, number, started)


def _apply_and_verify(job: FixJob, state: _State, reply: Reply, number: int,
                      started: float) -> Attempt:
    usage = {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
             "cost_usd": reply.cost_usd}
    try:
        blocks = edits.parse_edits(reply.text)
        if not blocks:
            return Attempt(number, reply.model, "no_edits", time.monotonic() - started, **usage,
                           detail="the reply held no edit blocks",
                           feedback="Your reply contained no SEARCH/REPLACE blocks, so nothing "
                                    "changed. Answer with edit blocks in the required format.")
        changed = edits.apply_to_tree(state.worktree.path, blocks, job.protected)
    except EditError as exc:
        return Attempt(number, reply.model, "apply_failed", time.monotonic() - started, **usage,
                       detail=str(exc).splitlines()[0][:200], feedback=str(exc)[:FEEDBACK_LIMIT])
    except OSError as exc:  # e.g. a 5,000-character file name: the reply's fault, not a crash
        message = f"The edits could not be written: {exc.strerror or exc} ({exc.filename!s:.120})."
        return Attempt(number, reply.model, "apply_failed", time.monotonic() - started, **usage,
                       detail=message[:200], feedback=message + " None of them was kept: use "
                       "short, ordinary paths relative to the repository root.")
    if not changed:  # every block's REPLACE equalled its SEARCH: nothing to test or commit
        return Attempt(number, reply.model, "no_edits", time.monotonic() - started, **usage,
                       detail="the edit blocks changed nothing",
                       feedback="Your edit blocks left every file as it was (each REPLACE equalled "
                                "its SEARCH), so nothing changed. Make the change the task needs.")
    diff = state.worktree.diff(changed)
    run = job.sandbox.run(job.test_command, state.worktree.path)
    verdict = judge(state.baseline, run)
    seconds = time.monotonic() - started
    if verdict.passed:
        state.final = run
        return Attempt(number, reply.model, "passed", seconds, **usage, counts=run.counts,
                       detail=verdict.reason, diff=diff, files=tuple(changed),
                       note=explanation(reply.text))
    feedback = (f"Your edits applied:\n```diff\n{diff[:2000]}\n```\nbut verification failed.\n"
                + failure_feedback(verdict, FEEDBACK_LIMIT))
    return Attempt(number, reply.model, "tests_failed", seconds, **usage, counts=run.counts,
                   detail=verdict.reason, feedback=feedback, diff=diff)


def explanation(reply: str, limit: int = 800) -> str:
    """The prose before the first edit block (minus the path line above the block)."""
    head = re.split(r"^\s*(?:```|~~~|<{5,9} ?SEARCH)", reply, maxsplit=1, flags=re.MULTILINE)[0]
    lines = head.rstrip().splitlines()
    if lines and re.fullmatch(r"\S+\.\w+:?", lines[-1].strip().strip("`*")):
        lines = lines[:-1]  # the path of the first block
    text = "\n".join(lines).strip()
    return text if len(text) <= limit else text[:limit].rstrip() + "..."


def _remember(job: FixJob, state: _State, attempt: Attempt) -> None:
    """Tell the policy (it learns within the task) and queue the memory record."""
    skill = attempt.outcome != "provider_fault"
    outcome = Outcome(1.0 if attempt.passed else 0.0, attempt.cost_usd, skill)
    state.cascade.record(attempt.model, outcome)
    state.attempts.append(attempt)
    job.echo(f"  -> {attempt.outcome}: {attempt.detail} ({attempt.seconds:.1f} s, "
             f"${attempt.cost_usd:.4f})")
    record = _record(job.task, state.route.features, attempt, job.run_id)
    state.records.append(record)
    job.on_record(record)


def _record(task: Task, features: Features, attempt: Attempt, run: str) -> Record:
    counts = attempt.counts
    return Record(id=new_id(), kind="attempt", ts=time.time(), task=task.id, model=attempt.model,
                  outcome=attempt.outcome, features=features.compact(), attempt=attempt.number,
                  cost_usd=attempt.cost_usd, tokens=attempt.prompt_tokens + attempt.completion_tokens,
                  seconds=attempt.seconds, run=run, harness="edit",
                  tests_passed=counts.passed if counts else None,
                  tests_failed=(counts.failed + counts.errors) if counts else None)


def _publish(job: FixJob, state: _State, winner: Attempt) -> tuple[str, str]:
    """Commit the fix in the worktree and point a new branch at it."""
    message = (f"{job.task.title}\n\nVerified by `{job.test_command}`: "
               f"{run_summary(state.final)}.\n\nAcr-Task: {job.task.id}\n"
               f"Acr-Model: {winner.model}\n")
    commit = state.worktree.commit(message, winner.files)
    branch = job.repo.free_branch_name(job.branch or f"acr/fix-{slugify(job.task.title)}")
    job.repo.create_branch(branch, commit)
    return branch, commit


def _give_up_reason(job: FixJob, state: _State) -> str:
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
                     state.final, records=tuple(state.records))
