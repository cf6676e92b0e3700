"""What the generated job copies from the chosen CI job, and the test command.

The set-up is the steps before the test step, for the chosen matrix entry, less what the
generated job does itself or must not do: the checkout, lint/format/type checks and other test
runs (they would fail the job before the bot starts), artifacts of jobs that do not run, and
steps that read another job's outputs. The test command is the test step's script with its
own `env` and working directory, in a form /bin/sh runs the way the runner's bash did. What is
left out is said in a note. Pure functions.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from acr_bot.ci.choose import Candidate, script_of
from acr_bot.ci.commands import is_check
from acr_bot.ci.expressions import to_text
from acr_bot.ci.resolve import RUNTIME, shell_form
from acr_bot.ci.workflows import Job, JobSource, Step, is_linux, resolve_job

SH_SHELLS = (None, "", "bash", "sh")
CHECKOUT_KEEP = ("submodules", "lfs")  # checkout options the generated checkout takes over


@dataclass(frozen=True)
class Copied:
    steps: list[dict[str, Any]]
    test_command: str
    runs_on: str
    env: dict[str, Any]
    defaults: dict[str, Any]
    services: dict[str, Any]
    container: Any
    checkout: dict[str, Any] = field(default_factory=dict)  # submodules, lfs
    notes: list[str] = field(default_factory=list)  # what was left out, and why


def copy(candidate: Candidate) -> Copied:
    job = candidate.job
    notes = [f"left out env {key}: it reads another job's outputs or a call's inputs"
             for key in job.left_out]
    steps, checkout = _setup_steps(job, candidate.test, notes)
    command = test_command(job, candidate.test, notes)
    label = job.runs_on if isinstance(job.runs_on, str) and is_linux(job.runs_on) else (
        "ubuntu-latest")
    if label != job.runs_on:
        notes.append(f"runs on ubuntu-latest (the CI job runs on {to_text(job.runs_on)})")
    return Copied(steps, command, label, dict(job.env), dict(job.defaults), dict(job.services),
                  job.container, checkout, notes)


def _setup_steps(job: Job, test: Step, notes: list[str]
                 ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    own = [step for step in job.steps if step.index < test.index]
    needed = _needed_steps(job, notes) if any(map(_downloads, own)) else []
    steps, checkout = [], {}
    for step in [*needed, *own]:
        uses = str(step.data.get("uses", ""))
        if uses.startswith("actions/checkout@") and not _other_checkout(step.data):
            with_ = step.data.get("with") or {}
            checkout.update({k: with_[k] for k in CHECKOUT_KEEP if k in with_})
            continue
        reason = _left_out(job, step, uses, bool(needed))
        if reason:
            notes.append(f"left out step {_short(step.name)!r}: {reason}")
            continue
        steps.append(modernize(step.data, notes))
    return steps, checkout


def _downloads(step: Step) -> bool:
    return str(step.data.get("uses", "")).startswith("actions/download-artifact@")


def _needed_steps(job: Job, notes: list[str]) -> list[Step]:
    """The steps of the jobs this one `needs`, when it downloads their artifacts: artifacts
    uploaded earlier in the same run can be downloaded, so the generated job builds them."""
    source = job.source
    needs = source.job.get("needs") if source.caller is None else None
    steps: list[Step] = []
    for name in [needs] if isinstance(needs, str) else list(needs or []):
        other = source.workflow.jobs.get(name)
        if not isinstance(other, Mapping) or other.get("strategy") or other.get("needs") or (
                not isinstance(other.get("steps"), list)):
            notes.append(f"did not copy job {name}, which this job needs: it has a matrix, "
                         "needs of its own or no steps")
            return []
        inner = resolve_job(JobSource(source.workflow, str(name), other, source.workflow), {})
        steps += inner.steps
        notes.append(f"copied the steps of job {name} first: this job downloads its artifact")
    return steps


# The current major version of official actions: the CI of an old project may pin a version
# whose runtime (Node 12 or 16) GitHub no longer runs.
CURRENT = {"actions/checkout": 4, "actions/setup-python": 5, "actions/setup-node": 4,
           "actions/setup-go": 5, "actions/setup-java": 4, "actions/cache": 4,
           "actions/upload-artifact": 4, "actions/download-artifact": 4,
           "actions/setup-dotnet": 4, "actions/github-script": 7}
SET_OUTPUT = re.compile(r"""echo\s+(["']?)::(set-output|save-state) name=([\w-]+)::(.*?)\1\s*$""",
                        re.MULTILINE)


def modernize(data: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """An official action at a major version GitHub no longer runs moves to the current one;
    the removed `::set-output` and `::save-state` commands become file writes."""
    uses = str(data.get("uses", ""))
    action, _, ref = uses.partition("@")
    base = "/".join(action.split("/")[:2])
    major = re.fullmatch(r"v(\d+)(\.\d+)*", ref)
    if base in CURRENT and major and int(major.group(1)) < CURRENT[base]:
        data = {**data, "uses": f"{action}@v{CURRENT[base]}"}
        notes.append(f"updated {uses} to @v{CURRENT[base]} ({ref} runs on a Node.js that "
                     "GitHub's runners dropped)")
    run = data.get("run")
    if isinstance(run, str) and SET_OUTPUT.search(run):
        data = {**data, "run": SET_OUTPUT.sub(_file_command, run)}
        notes.append("rewrote ::set-output/::save-state in a copied step as writes to "
                     "$GITHUB_OUTPUT/$GITHUB_STATE (GitHub removed those commands)")
    return data


def _file_command(match: re.Match[str]) -> str:
    target = "GITHUB_OUTPUT" if match.group(2) == "set-output" else "GITHUB_STATE"
    return f'echo "{match.group(3)}={match.group(4)}" >> "${target}"'


def _other_checkout(data: Mapping[str, Any]) -> bool:
    with_ = data.get("with") or {}
    return isinstance(with_, Mapping) and bool(with_.get("repository") or with_.get("path"))


def _left_out(job: Job, step: Step, uses: str, built: bool) -> str | None:
    name = str(step.data.get("name") or "")
    if step.needs - RUNTIME:
        return "it reads " + " and ".join(sorted(step.needs - RUNTIME)) + (
            ", which the generated job does not have")
    if uses.startswith("actions/download-artifact@") and not built:
        return "it downloads an artifact of another job, which does not run here"
    if step.run and is_check(name, step.run):
        return "a lint, format or type check (it would stop the job before the bot starts)"
    if step.run and script_of(job, step).runner:
        return "it runs tests itself"
    return None


def _short(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else text
    return line if len(line) <= 60 else line[:57] + "..."


def test_command(job: Job, test: Step, notes: list[str]) -> str:
    """The test step's script as one command for /bin/sh, with its env and directory."""
    script, unknown = shell_form(test.run.strip(), job.env)
    for expression in unknown:
        notes.append(f"the test command keeps {expression}, which only a workflow run can "
                     "evaluate: check test_command")
    env = {}
    for key, value in (test.data.get("env") or {}).items():
        if "${{" in to_text(value):
            notes.append(f"left out the test step's env {key} (a GitHub expression)")
        else:
            env[str(key)] = to_text(value)
    directory = test.data.get("working-directory") or job.defaults.get("working-directory")
    shell = test.data.get("shell", job.defaults.get("shell"))
    if to_text(shell).split(" ")[0] not in SH_SHELLS:
        notes.append(f"the test step runs in {shell}; acr-bot runs test_command with /bin/sh")
    return render(script, env, to_text(directory) or None)


def render(script: str, env: Mapping[str, str], directory: str | None) -> str:
    """One line (`cd d && A=1 cmd`) when that keeps the meaning, else a `set -e` script."""
    reads_env = any(re.search(rf"\${{?{re.escape(k)}\b", script) for k in env)
    if "\n" not in script and not reads_env:
        assignments = [f"{k}={shlex.quote(v)}" for k, v in env.items()]
        line = " ".join([*assignments, script])
        return f"cd {shlex.quote(directory)} && {line}" if directory else line
    lines = ["set -e"]
    if directory:
        lines.append(f"cd {shlex.quote(directory)}")
    lines += [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    return "\n".join([*lines, script])
