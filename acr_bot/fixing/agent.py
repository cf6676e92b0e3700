"""The `agent` harness: the model works in the repository through a shell, one command a turn.

The bash-only protocol of mini-SWE-agent (see `agent_prompts.py`): each reply holds exactly one
fenced bash block; the command runs in the attempt's sandbox session; the return code and the
bounded output go back; the model ends by printing the submit sentinel. Every limit is checked
here, before it can be passed: steps, dollars (the worst case of the next call), seconds per
command and per attempt, output per observation, and the context window. After the submission
protected paths are put back and scratch files removed; the fix loop's verifier then decides.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from acr_bot.domain import Attempt, Reply, TestRun
from acr_bot.errors import LLMError
from acr_bot.fixing import agent_prompts as P
from acr_bot.fixing.harness import AttemptResult, Brief, Limits, Step
from acr_bot.fixing.paths import matches_glob, protected_reason
from acr_bot.gitrepo import git
from acr_bot.llm import estimate_tokens
from acr_bot.report import run_summary
from acr_bot.verify.reproduction import in_test_layout, layout_text

_BASH = re.compile(r"```bash\s*\n(.*?)\n```", re.DOTALL)
_OMITTED = re.compile(r"\n\.\.\. \[(\d+) bytes omitted\] \.\.\.\n")
_SHORTENED = "[output shortened to keep the conversation within the context window]"


@dataclass
class _Run:
    """One agent conversation in progress: messages, usage, steps, and why it stopped."""

    messages: list[dict[str, str]]
    limits: Limits
    started: float = field(default_factory=time.monotonic)
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    steps: list[Step] = field(default_factory=list)
    first_step: int = 1
    cost_base: float = 0.0  # what earlier rounds of the attempt spent (for the step lines)
    submitted: str | None = None  # the submit line, once the model submitted
    stop: str = ""  # why the loop ended without a submission
    fault: str = ""

    def stop_reason(self) -> str:
        """The limit that forbids the next call, or ''."""
        limits = self.limits
        if self.calls >= limits.steps:
            return f"step limit reached ({limits.steps} model calls)"
        if time.monotonic() - self.started >= limits.attempt_seconds:
            return f"time limit reached ({limits.attempt_seconds:.0f} s)"
        if limits.price is not None:
            worst = limits.price.cost(_tokens(self.messages), limits.max_output_tokens)
            if self.cost_usd + worst > limits.max_cost_usd:
                return (f"the next call could cost ${worst:.4f}, over the ${limits.max_cost_usd:.4f}"
                        " left under the dollar cap")
        if not _fit(self.messages, limits.context_tokens - limits.max_output_tokens):
            return "the conversation no longer fits the context window"
        return ""

    def charge(self, reply: Reply) -> None:
        self.calls += 1
        self.prompt_tokens += reply.prompt_tokens
        self.completion_tokens += reply.completion_tokens
        self.cost_usd += reply.cost_usd


class AgentHarness:
    """Runs the bash-only loop in a sandbox session on the workspace."""

    name = "agent"

    def __init__(self, llm: object, sandbox: object,
                 echo: Callable[[str], None] = lambda line: None) -> None:
        self.llm = llm
        self.sandbox = sandbox
        self.echo = echo

    def prompt_tokens(self, brief: Brief) -> int:
        return _tokens(opening(brief, 120.0))

    def attempt(self, model: str, brief: Brief, workspace: Path, limits: Limits) -> AttemptResult:
        resume: AttemptResult | None = brief.resume
        if resume is None:
            # docker cuts the agent's network; `sandbox: local` keeps the runner's (README).
            network = getattr(self.sandbox, "name", "local") != "docker"
            run = _Run(opening(brief, limits.command_seconds, network), limits)
        else:  # the same agent continues after the verifier rejected its submission
            run = _Run([*resume.transcript, {"role": "user", "content": resume.feedback}], limits,
                       first_step=len(resume.steps) + 1,
                       cost_base=resume.steps[-1].cost_usd if resume.steps else 0.0)
        head = git(workspace, "rev-parse", "HEAD")
        shell = self.sandbox.session(workspace)  # type: ignore[attr-defined]
        try:
            self._loop(model, run, shell)
        finally:
            shell.close()  # docker: the container's tree comes back to the workspace
            # A `git commit` or `git checkout` by the agent must not move the attempt's base:
            # HEAD goes back (detached, no branch touched); its changes stay in the tree.
            git(workspace, "update-ref", "--no-deref", "HEAD", head)
            git(workspace, "reset", "--quiet")
        return finish(run, brief, workspace, prior=resume)

    def _loop(self, model: str, run: _Run, shell: object) -> None:
        while not (run.submitted is not None or run.fault):
            run.stop = run.stop_reason()
            if run.stop:
                return
            try:
                reply: Reply = self.llm.complete(model, run.messages)  # type: ignore[attr-defined]
            except LLMError as exc:
                run.fault = str(exc)
                return
            run.charge(reply)
            run.messages.append({"role": "assistant", "content": reply.text})
            commands = _BASH.findall(reply.text)
            if len(commands) != 1:
                run.messages.append({"role": "user",
                                     "content": P.FORMAT_ERROR.format(found=len(commands))})
                self.echo(f"  step {run.first_step + len(run.steps)}: format error "
                          f"({len(commands)} bash blocks), "
                          f"${run.cost_base + run.cost_usd:.4f} so far")
                continue
            self._execute(run, shell, commands[0].strip())

    def _execute(self, run: _Run, shell: object, command: str) -> None:
        left = run.limits.attempt_seconds - (time.monotonic() - run.started)
        timeout = max(1.0, min(run.limits.command_seconds, left))
        result: TestRun = shell.exec(command, timeout, run.limits.observation_bytes)  # type: ignore[attr-defined]
        number = run.first_step + len(run.steps)
        spent = run.cost_base + run.cost_usd
        run.steps.append(Step(number, command, result.exit_code, result.seconds, spent))
        code = "killed" if result.timed_out else f"exit {result.exit_code}"
        self.echo(f"  step {number}: {_one_line(command)} -> {code} ({result.seconds:.1f} s, "
                  f"${spent:.4f} so far)")
        submitted = submission(result)
        if submitted is not None:
            run.submitted = submitted
            return
        run.messages.append({"role": "user", "content": observation(result, timeout)})


def opening(brief: Brief, command_seconds: float,
            network: bool = True) -> list[dict[str, str]]:
    """The system prompt and the task, with a short account of earlier attempts; `network`:
    whether the agent's commands can reach the network (the prompt says so only when not)."""
    protected = ", ".join(brief.protected) or "(none)"
    layout = layout_text(brief.test_dirs)
    boundaries, workflow = ((P.REPRODUCE_BOUNDARIES, P.REPRODUCE_WORKFLOW) if brief.reproduce
                            else (P.BOUNDARIES, P.WORKFLOW))
    text = P.INSTANCE.format(task=brief.task.text, protected=protected,
                             boundaries=boundaries.format(protected=protected, layout=layout),
                             workflow=workflow.format(layout=layout),
                             new_tests=P.NEW_TESTS.format(layout=layout),
                             test_command=brief.test_command,
                             baseline=f"before any change: {run_summary(brief.baseline)}",
                             command_seconds=command_seconds,
                             network="" if network else P.NO_NETWORK, submit=P.SUBMIT,
                             submit_naming=P.SUBMIT_NAMING, history=history(brief.previous))
    return [{"role": "system", "content": P.SYSTEM}, {"role": "user", "content": text}]


def history(previous: Sequence[Attempt], limit: int = 1_500) -> str:
    """What earlier attempts tried and how they failed, briefly (escalation starts clean)."""
    if not previous:
        return ""
    lines = []
    for a in previous:
        lines.append(f"- attempt {a.number} ({a.model}, {a.harness or 'edit'}): {a.outcome}: "
                     f"{a.detail}")
        if a.diff:
            lines.append("  its change was:\n" + _indent(a.diff[:limit]))
    return P.HISTORY.format(attempts="\n".join(lines))


def observation(result: TestRun, timeout: float) -> str:
    """What the model sees of one command: return code and bounded output."""
    if result.timed_out:
        return P.TIMEOUT.format(command=result.command, seconds=timeout, output=result.output)
    cut = _OMITTED.search(result.output)
    if cut is None:
        return P.OBSERVATION.format(returncode=result.exit_code, output=result.output)
    return P.LONG_OUTPUT.format(returncode=result.exit_code, head=result.output[:cut.start()],
                                elided=cut.group(1), tail=result.output[cut.end():])


def submission(result: TestRun) -> str | None:
    """The first line of a submission's output (the sentinel, then any files named after it),
    or None. As in the scaffold only that line counts: what follows it (the diff of the
    scaffold's own submission line) is never read as names."""
    lines = result.output.lstrip().splitlines()
    words = lines[0].split() if lines and not result.timed_out else []
    return " ".join(words) if words[:1] == [P.SENTINEL] else None


def _tokens(messages: Sequence[dict[str, str]]) -> int:
    return sum(estimate_tokens(m["content"]) + 4 for m in messages)


def _fit(messages: list[dict[str, str]], budget: int) -> bool:
    """Shorten the oldest observations until the conversation fits `budget` tokens; False
    when even that is not enough. The opening and the latest observation stay whole."""
    for index in range(2, len(messages) - 1):
        if _tokens(messages) <= budget:
            return True
        message = messages[index]
        if message["role"] == "user" and not message["content"].endswith(_SHORTENED):
            message["content"] = message["content"][:200] + "\n" + _SHORTENED
    return _tokens(messages) <= budget


def _one_line(command: str, limit: int = 80) -> str:
    text = " ".join(command.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


# --- after the agent stops: what counts as its change ----------------------------------------


def finish(run: _Run, brief: Brief, workspace: Path,
           prior: AttemptResult | None = None) -> AttemptResult:
    """The attempt's result; after a submission, protected paths are put back and scratch
    files removed, so the workspace holds exactly what the verifier should judge."""
    usage = {"calls": run.calls, "prompt_tokens": run.prompt_tokens,
             "completion_tokens": run.completion_tokens, "cost_usd": run.cost_usd,
             "steps": (*(prior.steps if prior else ()), *run.steps),
             "transcript": tuple(run.messages)}
    if run.fault:
        return AttemptResult("provider_fault", detail=run.fault, **usage)
    if run.submitted is None:
        return AttemptResult("no_submit", detail=f"no submission: {run.stop}",
                             feedback=f"The agent stopped without submitting: {run.stop}.",
                             **usage)
    files, reverted = settle(workspace, brief, run.submitted)
    note = f"The agent ran {len(usage['steps'])} command(s) and submitted."
    if reverted:
        note += (" Protected paths it changed were put back: "
                 + "; ".join(protected_reason(p, brief.protected) for p in reverted) + ".")
    if not files:
        return AttemptResult("no_edits", detail="the agent submitted without changing a file",
                             feedback="You submitted, but no file was changed.", note=note,
                             reverted=tuple(reverted), **usage)
    return AttemptResult("edited", files=tuple(files), note=note, reverted=tuple(reverted),
                         **usage)


def settle(workspace: Path, brief: Brief, submit_line: str) -> tuple[list[str], list[str]]:
    """(paths that make up the change, protected paths put back).

    The rule for new files: a file the agent created is scratch (a reproduction script, say)
    and is deleted, unless the agent named it after the sentinel or it is a new test where the
    repository keeps its tests (a reproduction). Changed tracked files always count. Untracked
    files that existed before the attempt (the setup's) are not the agent's.
    """
    named = {name.removeprefix("./") for name in submit_line.split()[1:]}
    before = set(brief.untracked)
    changed, reverted = [], []
    for status, path in _status(workspace):
        new = status == "??"
        if new and (path in before or any(path.startswith(d) for d in before if d.endswith("/"))):
            continue
        if any(matches_glob(path, glob) for glob in brief.protected):
            _put_back(workspace, path, new)
            reverted.append(path)
        elif new and path not in named and not in_test_layout(path, brief.test_dirs,
                                                              brief.test_paths):
            (workspace / path).unlink(missing_ok=True)
        else:
            changed.append(path)
    return changed, reverted


def _status(workspace: Path) -> list[tuple[str, str]]:
    """(two-letter status, path) of every changed, deleted or new (not ignored) file."""
    out = git(workspace, "status", "--porcelain=v1", "-z", "--untracked-files=all",
              "--no-renames")
    entries = [e for e in out.split("\0") if e]
    return [(e[:2], e[3:]) for e in entries]


def _put_back(workspace: Path, path: str, new: bool) -> None:
    if new:
        (workspace / path).unlink(missing_ok=True)
    else:
        git(workspace, "checkout", "--quiet", "HEAD", "--", path)
