"""One attempt: the harness changes the worktree, the verifier judges it, and a rejected
agent may go on once with the verifier's output; what the attempt cost and why it ended.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

from acr_bot.domain import Attempt
from acr_bot.errors import ConfigError
from acr_bot.fixing import trajectory
from acr_bot.fixing.agent import AgentHarness
from acr_bot.fixing.agent_prompts import REJECTED, REVERTED, SENTINEL
from acr_bot.fixing.edit_harness import FEEDBACK_LIMIT, EditHarness
from acr_bot.fixing.harness import HARNESSES, AttemptResult, Brief, Harness, Limits, split_arm
from acr_bot.fixing.job import FixJob, RunState
from acr_bot.fixing.paths import protected_reason
from acr_bot.llm import table_context_window
from acr_bot.verify.local import failure_feedback
from acr_bot.verify.tiers import OutOfTime
from acr_bot.verify.verdict import verify_workspace


def run_attempt(job: FixJob, state: RunState, arm: str, number: int) -> Attempt:
    """One attempt: the harness changes the worktree, then the verifier judges it. A rejected
    agent may go on with the verifier's output while its steps and dollars last."""
    model, name = split_arm(arm, job.harness)
    harness = _harness(job, name)
    brief = _brief(job, state)
    started = time.monotonic()
    total: Attempt | None = None
    rounds = job.rounds if name == "agent" else 1  # only an agent goes on after a rejection
    for round_ in range(rounds):
        result = harness.attempt(model, brief, state.worktree.path,
                                 attempt_limits(job, state, model, total))
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
        if accepted(job, total) or round_ + 1 == rounds or \
                attempt_limits(job, state, model, total).steps < 2:
            break
        job.echo(f"  rejected: {total.detail}; the agent continues with the verifier's output")
        reverted = prompts_reverted(result.reverted, job.protected)
        brief = replace(brief, resume=replace(result, feedback=REJECTED.format(
            feedback=total.feedback, reverted=reverted, sentinel=SENTINEL)))
    assert total is not None
    total = replace(total, seconds=time.monotonic() - started)
    return _save_trajectory(job, total, result)


def accepted(job: FixJob, attempt: Attempt) -> bool:
    """A fix to publish: it passed or, with the reproduction rule off, it is unreproduced."""
    return attempt.passed or (attempt.outcome == "no_reproduction"
                              and not job.require_reproduction)


def _brief(job: FixJob, state: RunState) -> Brief:
    return Brief(job.task, job.test_command, state.baseline, state.context,
                 tuple(state.attempts), tuple(job.protected), state.keep,
                 reproduce=state.reproduce, test_dirs=state.test_dirs,
                 test_paths=tuple(job.test_paths))


def attempt_limits(job: FixJob, state: RunState, model: str, so_far: Attempt | None) -> Limits:
    """The job's limits, less what this attempt's earlier rounds used."""
    used_usd = so_far.cost_usd if so_far else 0.0
    used_steps = so_far.calls if so_far else 0
    limits = job.limits
    # The smaller of the setting and the window litellm lists for the model.
    window = min(limits.context_tokens, table_context_window(model) or limits.context_tokens)
    # The agent must leave the job time for the full suite (tiers.Deadline).
    left = job.tiers.deadline.seconds_for_work(state.baseline.seconds)
    seconds = limits.attempt_seconds if left is None else min(limits.attempt_seconds, left)
    return replace(limits, attempt_seconds=seconds,
                   max_cost_usd=max(job.max_cost_usd - state.spent - used_usd, 0.0),
                   steps=max(limits.steps - used_steps, 0), context_tokens=window,
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


def _verify(job: FixJob, state: RunState, result: AttemptResult, attempt: Attempt,
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


def expected_cost(job: FixJob, state: RunState, arm: str) -> float | None:
    """The worst case of `arm`'s next call: its first prompt and the longest reply."""
    model, name = split_arm(arm, job.harness)
    price = job.prices.get(model)
    if price is None:
        return None
    brief = Brief(job.task, job.test_command, state.baseline, state.context,
                  tuple(state.attempts), tuple(job.protected))
    return price.cost(_harness(job, name).prompt_tokens(brief), job.max_output_tokens)


