"""`acr-bot init`: set a repository up the way a user would by hand.

Detects the language and the test command, takes the set-up steps from the repository's own
CI workflow (the steps before the one that runs the tests; the job's env and services too),
or uses the usual ones for the language when there is no CI, and writes
`.github/workflows/acr-bot.yml` (every trigger in one workflow) and `.github/acr-bot.yml`.
Never overwrites without `force`. Returns what is left for the user to do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acr_bot.config import CONFIG_FILE, DEFAULT_MODELS, dump_yaml, load_yaml
from acr_bot.errors import ConfigError
from acr_bot.verify.local import detect_test_command

WORKFLOW_FILE = ".github/workflows/acr-bot.yml"
ACTION = "acr-bot/acr-bot@v1"
# The command that runs the tests in a CI step (the set-up steps are the ones before it).
TEST_STEP = re.compile(r"\b(pytest|tox|nox|unittest|npm (run )?test|yarn test|pnpm test|"
                       r"go test|cargo test|make test|mvn test|gradle test)\b")
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


def detect_language(root: Path) -> str:
    for names, language in ((("pyproject.toml", "setup.py", "setup.cfg", "requirements.txt"),
                             "python"), (("package.json",), "node"), (("go.mod",), "go"),
                            (("Cargo.toml",), "rust")):
        if any((root / name).is_file() for name in names):
            return language
    return "unknown"


def detect(root: Path) -> Setup:
    language = detect_language(root)
    test_command = detect_test_command(root)
    if language == "python" and test_command is None:
        test_command = "python -m pytest -q"
    workflows = _ci_workflows(root)
    names = [str(data.get("name") or path.stem) for path, data in workflows]
    for path, data in workflows:
        for job_id, job in (data.get("jobs") or {}).items():
            found = _setup_steps(job)
            if found is not None:
                steps, ci_command = found
                return Setup(language, ci_command or test_command, steps,
                             f"{path.name}: job {job_id}", names,
                             dict(job.get("env") or {}), dict(job.get("services") or {}))
    return Setup(language, test_command, [dict(s) for s in DEFAULT_SETUP.get(language, [])],
                 f"defaults for {language}", names)


def _ci_workflows(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    folder = root / ".github" / "workflows"
    found = []
    for path in sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]):
        if path.name == Path(WORKFLOW_FILE).name:
            continue
        try:
            data = load_yaml(path)
        except ConfigError:
            continue  # a broken workflow is not a source of set-up steps
        if isinstance(data, dict) and isinstance(data.get("jobs"), dict):
            found.append((path, data))
    return found


def _setup_steps(job: Any) -> tuple[list[dict[str, Any]], str | None] | None:
    """The steps before the job's test step, without checkout, and the test step's command
    when it is one line; None if no step runs tests."""
    if not isinstance(job, Mapping) or not isinstance(job.get("steps"), list):
        return None
    steps = [s for s in job["steps"] if isinstance(s, Mapping)]
    index = next((i for i, s in enumerate(steps) if TEST_STEP.search(str(s.get("run", "")))),
                 None)
    if index is None:
        return None
    matrix = _first_matrix_values(job)
    command = str(_unmatrix(steps[index]["run"], matrix)).strip()
    return ([_unmatrix(dict(s), matrix) for s in steps[:index]
             if not str(s.get("uses", "")).startswith("actions/checkout@")],
            command if "\n" not in command and "${{" not in command else None)


def _first_matrix_values(job: Mapping[str, Any]) -> dict[str, str]:
    """One combination of the job's matrix: the bot runs once, not per combination."""
    matrix = (job.get("strategy") or {}).get("matrix") or {}
    if not isinstance(matrix, Mapping):
        return {}
    return {str(k): str(v[0]) for k, v in matrix.items() if isinstance(v, list) and v}


def _unmatrix(value: Any, matrix: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return re.sub(r"\$\{\{\s*matrix\.([\w-]+)\s*\}\}",
                      lambda m: matrix.get(m.group(1), m.group(0)), value)
    if isinstance(value, dict):
        return {k: _unmatrix(v, matrix) for k, v in value.items()}
    if isinstance(value, list):
        return [_unmatrix(v, matrix) for v in value]
    return value


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
name: acr-bot

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
                "with": {"fetch-depth": 0, "persist-credentials": False}}
    bot = {"id": "acr", "uses": ACTION,
           "with": {"github-token": "${{ secrets.ACR_BOT_TOKEN || github.token }}",
                    "models": ",".join(models)},
           "env": {key: f"${{{{ secrets.{key} }}}}" for key in secrets_for(models)}}
    if not bot["env"]:
        del bot["env"]
    job: dict[str, Any] = {"if": CONDITION.format(label=label, prefix=prefix),
                           "runs-on": "ubuntu-latest", "timeout-minutes": 45}
    if setup.job_env:
        job["env"] = setup.job_env
    if setup.services:
        job["services"] = setup.services
    job["steps"] = [checkout, *setup.steps, bot]
    workflows = "[" + ", ".join(f'"{n}"' for n in setup.ci_workflows or ["CI"]) + "]"
    header = HEADER.format(label=label, prefix=prefix, source=setup.source,
                           workflows=workflows)
    return header + dump_yaml({"jobs": {"acr-bot": job}})


def settings_text(setup: Setup, models: Sequence[str]) -> str:
    data: dict[str, Any] = {"models": list(models)}
    if setup.test_command:
        data["test_command"] = setup.test_command
    return ("# acr-bot's settings (README: Settings file). Written by `acr-bot init`.\n"
            + dump_yaml(data))


def init(root: Path, models: Sequence[str] = DEFAULT_MODELS, force: bool = False
         ) -> tuple[Setup, list[Path], list[str]]:
    """Write the workflow and the settings file; returns (what was detected, the files
    written, what is left to do). Nothing is written if either file exists without force."""
    setup = detect(root)
    files = {root / WORKFLOW_FILE: workflow_text(setup, models),
             root / CONFIG_FILE: settings_text(setup, models)}
    existing = [str(p.relative_to(root)) for p in files if p.exists()]
    if existing and not force:
        raise ConfigError(f"{', '.join(existing)} already exist(s); nothing was written "
                          "(use --force to overwrite)")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return setup, list(files), _todo(setup, models)


def _todo(setup: Setup, models: Sequence[str]) -> list[str]:
    todo = [f"add the repository secret {key} (Settings > Secrets and variables > Actions)"
            for key in secrets_for(models)]
    todo += [
        "allow Actions to open pull requests: Settings > Actions > General > Workflow "
        "permissions > 'Allow GitHub Actions to create and approve pull requests'",
        "optional: a secret ACR_BOT_TOKEN (a fine-grained PAT or GitHub App token) so the "
        "bot's PRs start CI (pushes with GITHUB_TOKEN start no workflow)",
        "create the label acr:fix, then commit and push the two files",
    ]
    if setup.test_command is None:
        todo.insert(0, f"set test_command in {CONFIG_FILE}: no test command was detected")
    if not setup.ci_workflows:
        todo.append(f"name your CI workflow under workflow_run.workflows in {WORKFLOW_FILE} "
                    "(no CI workflow found; \"CI\" assumed)")
    return todo
