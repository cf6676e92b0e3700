"""What the Action does for each kind of event: fix an issue, fix CI, revise, explain, record.

Each handler gets the runner context, settings, a console and a GitHub client, and returns
an ActionOutcome. Memory is read from the memory branch and every new record is written
back to it, even when the handler fails half-way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from acr_bot import app
from acr_bot.config import ActionContext, Settings
from acr_bot.domain import FixResult, Record, Task
from acr_bot.errors import AcrError, GitError, GitHubError, MemoryFileError
from acr_bot.github.cilogs import task_text
from acr_bot.github.console import ActionOutcome, Console
from acr_bot.github.events import (
    BOT_BRANCH_PREFIX,
    Explain,
    FixCI,
    FixIssue,
    Ignore,
    RecordVerdict,
    Refuse,
    Revise,
    classify,
    load_payload,
    marker,
)
from acr_bot.gitrepo import GitRepo, Remote, fetch, git, push, slugify
from acr_bot.memory.branch import BranchMemory
from acr_bot.memory.migrations import SCHEMA_VERSION
from acr_bot.memory.store import Memory, new_id
from acr_bot.report import clip, explain_decision, gave_up_comment, job_summary, pr_body

BOT_LABEL = "acr-bot"
DAY = 86_400.0


class Job:
    """One event's work: the clients, the workspace and the memory it reads and writes."""

    def __init__(self, ctx: ActionContext, settings: Settings, console: Console,
                 github: Any, payload: dict[str, Any]) -> None:
        self.ctx, self.settings, self.console, self.gh = ctx, settings, console, github
        self.payload = payload
        self.repo = GitRepo(ctx.workspace)
        self.origin = Remote(git(self.repo.root, "remote", "get-url", "origin"), ctx.token)
        memory_url = (f"{ctx.server_url}/{settings.memory_repo}.git" if settings.memory_repo
                      else self.origin.url)
        self.store = BranchMemory(self.repo.root, Remote(memory_url, ctx.token),
                                  settings.memory_branch, settings.memory_path)
        self.memory = Memory(None)
        self.seed: Memory | None = None

    @property
    def default_branch(self) -> str:
        repo = self.payload.get("repository")
        branch = repo.get("default_branch") if isinstance(repo, dict) else None
        return branch if isinstance(branch, str) and branch else "main"

    def load_memory(self) -> None:
        """The memory branch; before it exists, the workspace file, if it is the default
        branch's (records on any other branch, e.g. a PR's, are never trusted)."""
        with self.console.group("memory"):
            found = self.store.read()
            if found is None and self.ctx.ref == f"refs/heads/{self.default_branch}":
                path = self.repo.root / self.settings.memory_path
                found = Memory.load(path) if path.is_file() else None
                self.seed = found
            if found is not None and found.version > SCHEMA_VERSION:
                # Before any model is paid for: its records could never be saved.
                raise MemoryFileError(
                    f"{self.settings.memory_branch}:{self.settings.memory_path}: written by a "
                    f"newer acr-bot (schema {found.version}, this one knows {SCHEMA_VERSION}); "
                    "upgrade acr-bot. Nothing was changed.")
            self.memory = Memory(None, found.records if found else (),
                                 found.summaries if found else ())
            self.console.line(f"{len(self.memory.records)} records from "
                              f"{self.settings.memory_branch}")

    def save_memory(self) -> None:
        if not self.memory.pending:
            return
        with self.console.group("memory: save"):
            total = self.store.append(self.memory.pending, self.seed,
                                      f"acr-bot: {len(self.memory.pending)} records "
                                      f"(run {self.ctx.run_id or 'local'})")
            self.console.line(f"{len(self.memory.pending)} records appended; "
                              f"{self.settings.memory_branch} holds {total}")
            self.memory.pending = []

    def spent_today(self) -> float:
        since = time.time() - DAY
        # A negative cost (a hand-edited record) must not buy back budget.
        return sum(max(r.cost_usd, 0.0) for r in self.memory.all_records()
                   if r.kind == "attempt" and r.ts >= since)

    def over_daily_cap(self) -> str | None:
        cap = self.settings.daily_max_cost_usd
        spent = self.spent_today()
        if cap is not None and spent >= cap:
            return (f"the daily budget is used up (${spent:.2f} of ${cap:.2f} in the last 24 h, "
                    "from the memory); try again later or raise daily-max-cost-usd")
        return None

    def fix(self, task: Task, base: str, branch: str) -> FixResult:
        # One log group per attempt (groups cannot nest), so each agent's steps fold away.
        self.console.line(f"fix: {clip(task.title, 80)}")
        return app.fix(self.repo.root, task, self.settings, branch=branch, base=base,
                       echo=self.console.line, memory=self.memory, group=self.console.group)

    def publish(self, result: FixResult, head: str, base: str, title: str,
                closes: int | None = None) -> str:
        """Push the fix branch (token explicit), then open or update its one draft PR."""
        with self.console.group(f"publish {head}"):
            current = fetch(self.repo.root, self.origin, head, "refs/acr/publish")
            push(self.repo.root, self.origin, result.commit or "", head, expect=current,
                 force=True)
            body = self.console.redact(pr_body(result, self._marker(result),
                                               self.settings.command_prefix, closes))
            # A change no test shows to fix the issue is only ever a marked draft.
            if not result.reproduced:
                title = f"[not reproduced] {title}"
            pull, created = self.gh.ensure_pull(head=head, base=base, title=title, body=body,
                                                draft=self.settings.draft or not result.reproduced)
            self.gh.add_label(pull.number, BOT_LABEL)
            self.console.line(f"{'opened' if created else 'updated'} {pull.url}")
            return pull.url

    def _marker(self, result: FixResult) -> str:
        passed = [r for r in result.records if r.passed]
        attempt = passed[-1].id if passed else ""
        return (f"<!-- acr-bot task={result.task.id} attempt={attempt} "
                f"model={result.model or ''} -->")

    def recover(self, head: str, task: Task, base: str, title: str,
                closes: int | None = None) -> str | None:
        """A fix branch an interrupted run pushed without its PR: open the PR now instead of
        paying for the fix again. Returns the PR URL, or None if there is nothing to recover."""
        sha = fetch(self.repo.root, self.origin, head, "refs/acr/recover")
        if sha is None:
            return None
        message = git(self.repo.root, "log", "-1", "--format=%B", sha)
        if f"Acr-Task: {task.id}" not in message:
            return None
        passed = [r for r in self.memory.records if r.task == task.id and r.passed]
        attempt = passed[-1] if passed else None
        if attempt is not None and any(r.kind == "verdict" and r.ref == attempt.id
                                       for r in self.memory.records):
            return None  # that fix already had its PR, closed or merged: never reopen it
        marker = (f"<!-- acr-bot task={task.id} attempt={attempt.id if attempt else ''} "
                  f"model={attempt.model if attempt else ''} -->")
        note = "(Opened after an interrupted run had pushed this branch.)"
        parts = [f"Fixes #{closes}" if closes else "", message.strip(), note, marker]
        body = "\n\n".join(p for p in parts if p)
        pull, _ = self.gh.ensure_pull(head=head, base=base, title=title,
                                      body=self.console.redact(body), draft=self.settings.draft)
        self.gh.add_label(pull.number, BOT_LABEL)
        return pull.url

    def comment(self, number: int, text: str) -> None:
        self.gh.comment(number, self.console.redact(text))


def _outcome(result: FixResult, title: str, pr_url: str = "") -> ActionOutcome:
    return ActionOutcome(result.outcome, result.reason, pr_url, result.model or "",
                         len(result.attempts), result.cost_usd, job_summary(title, result))


@contextmanager
def _saving(job: Job) -> Iterator[None]:
    """Whatever happens in the handler, the records of paid attempts reach the branch."""
    try:
        yield
    finally:
        job.save_memory()


def handle(ctx: ActionContext, settings: Settings, console: Console,
           github_factory: Callable[..., Any] | None = None) -> ActionOutcome:
    payload = load_payload(ctx.event_path)
    action = classify(ctx.event_name, payload, trigger_label=settings.trigger_label,
                      prefix=settings.command_prefix, bot_login=ctx.bot_login,
                      auto_revise=settings.auto_revise)
    if isinstance(action, Ignore):
        return ActionOutcome("ignored", action.reason)
    factory = github_factory or _github
    job = Job(ctx, settings, console, factory(ctx), payload)
    if isinstance(action, Refuse):
        job.comment(action.number, f"acr-bot: {action.reason}.")
        return ActionOutcome("refused", action.reason)
    denied = _not_permitted(job, action)
    if denied is not None:
        return denied
    handler = {FixIssue: fix_issue, Revise: revise, Explain: explain, FixCI: fix_ci,
               RecordVerdict: record_verdict}[type(action)]
    job.load_memory()
    with _saving(job):
        return handler(job, action)


def _not_permitted(job: Job, action: Any) -> ActionOutcome | None:
    """A comment command or a review counts only if the API says its author's role on the
    repository is allowed (author_association would let a read-only collaborator in)."""
    actor = getattr(action, "actor", None)
    if actor is None:
        return None
    allowed = job.settings.allowed_permission
    role = job.gh.permission(actor)
    if role in allowed:
        return None
    reason = (f"@{actor} has {role} permission on this repository; "
              f"{' or '.join(allowed)} is needed")
    if isinstance(action, RecordVerdict):  # a review: not worth a comment, just not counted
        return ActionOutcome("ignored", f"review not counted: {reason}")
    number = action.issue.number if isinstance(action, FixIssue) else (
        action.pr_number if isinstance(action, Revise) else action.number)
    job.comment(number, f"acr-bot: only users with {' or '.join(allowed)} permission can run "
                        f"{job.settings.command_prefix} commands here.")
    return ActionOutcome("refused", reason)


def _github(ctx: ActionContext) -> Any:
    from acr_bot.github.client import GitHub

    return GitHub(ctx.token, ctx.repository, ctx.api_url)


def fix_issue(job: Job, action: FixIssue) -> ActionOutcome:
    # A secret pasted into the issue (the reporter's mistake) goes no further: not to the
    # model, the commit, the PR title or the memory.
    issue = replace(action.issue, title=job.console.redact(action.issue.title),
                    body=job.console.redact(action.issue.body))
    head = f"{BOT_BRANCH_PREFIX}issue-{issue.number}"
    try:
        existing = job.gh.open_pull(head)
        if existing is not None:
            job.comment(issue.number, f"acr-bot: a fix is already open in {existing.url}.")
            return ActionOutcome("skipped", f"already open: {existing.url}", existing.url)
        blocked = job.over_daily_cap()
        if blocked:
            job.comment(issue.number, f"acr-bot: not starting: {blocked}.")
            return ActionOutcome("refused", blocked)
        labels = tuple(x for x in issue.labels if x != action.label)  # the trigger says nothing
        task = Task(f"gh:{job.ctx.repository}#{issue.number}", issue.title, issue.body,
                    "issue", url=issue.url, tags=(job.ctx.repository, *labels))
        title = f"Fix #{issue.number}: {issue.title}"
        recovered = job.recover(head, task, job.default_branch, title, issue.number)
        if recovered:
            job.comment(issue.number, f"acr-bot opened {recovered} (the fix was already "
                                      "pushed by an interrupted run).")
            return ActionOutcome("fixed", f"recovered {recovered}", recovered)
        result = job.fix(task, job.repo.head(), head)
        if result.outcome != "fixed":
            job.comment(issue.number, gave_up_comment(result))
            return _outcome(result, f"issue #{issue.number}")
        url = job.publish(result, head, job.default_branch, title, closes=issue.number)
        job.comment(issue.number, f"acr-bot opened {url}: a fix verified by the tests, by "
                    f"{result.model} in {len(result.attempts)} attempt(s) for "
                    f"${result.cost_usd:.4f}.")
        return _outcome(result, f"issue #{issue.number}", url)
    finally:
        if action.label:
            _quietly(job, lambda: job.gh.remove_label(issue.number, action.label))


def _quietly(job: Job, step: Callable[[], object]) -> None:
    """A clean-up step whose failure must not hide the handler's own result or error."""
    try:
        step()
    except AcrError as exc:
        job.console.warning(f"clean-up failed: {exc}")


def fix_ci(job: Job, action: FixCI) -> ActionOutcome:
    task_id = f"ci:{job.ctx.repository}@{action.head_branch}"
    if action.head_branch.startswith(BOT_BRANCH_PREFIX) and any(
            r.task == task_id for r in job.memory.records):
        return ActionOutcome("skipped", f"already tried once to fix CI on the bot's own branch "
                                        f"{action.head_branch}; not chasing it again")
    blocked = job.over_daily_cap()
    if blocked:
        return ActionOutcome("refused", blocked)
    with job.console.group(f"logs of run {action.run_id}"):
        logs = job.gh.failed_job_logs(action.run_id)
        body = task_text(logs)
        job.console.line(f"{len(logs)} failed job log(s); task text {len(body)} chars")
    git(job.repo.root, "fetch", "--quiet", "--no-tags", job.origin.url, action.head_sha,
        env=job.origin.env())
    task = Task(task_id, f"CI failure in {action.workflow} on {action.head_branch}", body, "ci",
                tags=(job.ctx.repository,), changed=_changed_files(job, action))
    head = f"{BOT_BRANCH_PREFIX}ci-{slugify(action.head_branch)}"
    result = job.fix(task, action.head_sha, head)
    if result.outcome != "fixed":
        return _outcome(result, f"CI on {action.head_branch}")
    url = job.publish(result, head, action.head_branch, f"Fix CI on {action.head_branch}: "
                      f"{action.workflow}")
    return _outcome(result, f"CI on {action.head_branch}", url)


def _changed_files(job: Job, action: FixCI) -> tuple[str, ...]:
    """What the failing change touched, for routing; without it the fix goes on."""
    try:
        files = job.gh.changed_files(action.head_sha, action.pulls)
    except GitHubError as exc:
        job.console.warning(f"changed files of the run unknown: {exc}")
        return ()
    job.console.line(f"{len(files)} changed file(s) in the failing change")
    return tuple(files)


def revise(job: Job, action: Revise) -> ActionOutcome:
    pull = job.gh.pull(action.pr_number)
    fields = marker(pull.body)
    if not pull.head.startswith(BOT_BRANCH_PREFIX) or not fields.get("task") or (
            pull.head_repo and pull.head_repo != job.ctx.repository):
        job.comment(action.pr_number, "acr-bot: `revise` works only on pull requests that "
                                      "acr-bot opened in this repository.")
        return ActionOutcome("refused", "not a bot pull request")
    head_sha = fetch(job.repo.root, job.origin, pull.head, "refs/acr/revise")
    if head_sha is None:
        raise GitError(f"branch {pull.head} of #{action.pr_number} no longer exists")
    feedback = "\n".join(f"- {line}" for line in job.gh.review_feedback(action.pr_number))
    body = (f"Revise the change on this branch.\n\nInstructions from the maintainer:\n"
            f"{action.instructions}\n\nReview feedback:\n{feedback or '(none)'}\n\n"
            f"The pull request being revised:\n{pull.title}")
    task = Task(fields["task"], f"Revise #{action.pr_number}: {pull.title}", body, "revise",
                tags=(job.ctx.repository,))
    result = job.fix(task, head_sha, pull.head + "-revision")
    if result.outcome != "fixed":
        job.comment(action.pr_number, gave_up_comment(result))
        return _outcome(result, f"revise #{action.pr_number}")
    push(job.repo.root, job.origin, result.commit or "", pull.head)  # fast-forward only
    job.comment(action.pr_number, f"acr-bot pushed a revision verified by the tests "
                f"({result.model}, ${result.cost_usd:.4f}).")
    return _outcome(result, f"revise #{action.pr_number}", pull.url)


def explain(job: Job, action: Explain) -> ActionOutcome:
    if action.is_pr:
        pull = job.gh.pull(action.number)
        fields = marker(pull.body)
        title, body = pull.title, pull.body
        task_id = fields.get("task") or f"gh:{job.ctx.repository}#{action.number}"
    else:
        title, body = action.title, action.body
        task_id = f"gh:{job.ctx.repository}#{action.number}"
    task = Task(task_id, title, body, "issue", tags=(job.ctx.repository,))
    _, decision = app.route(task, job.settings, job.memory, repo=job.repo.root)
    text = "**acr-bot routing explanation**\n\n" + explain_decision(decision, markdown=True)
    job.comment(action.number, text)
    return ActionOutcome("explained", f"explained routing for #{action.number}: "
                         f"{decision.model}", model=decision.model, summary=text)


def record_verdict(job: Job, action: RecordVerdict) -> ActionOutcome:
    fields = action.marker
    attempt = fields.get("attempt", "")
    already = any(r.kind == "verdict" and r.ref == attempt and r.outcome == action.verdict
                  for r in job.memory.records)
    if not already:  # re-running the same event adds nothing
        job.memory.add([Record(new_id(), "verdict", time.time(), fields.get("task", ""),
                               fields.get("model", ""), action.verdict, ref=attempt,
                               repo=job.ctx.repository)])
    message = f"#{action.pr_number} {action.verdict}" + (" (already recorded)" if already
                                                          else "")
    if action.revise:
        outcome = revise(job, Revise(action.pr_number, action.review_body or
                                     "Address the requested changes."))
        return replace(outcome, message=f"{message}; {outcome.message}")
    return ActionOutcome("recorded", message)
