"""Lint what GitHub and Docker read: action.yml, the example workflows, the Dockerfile, and
the CI scripts.

- The example workflows (docs/workflows/*.yml): actionlint (with shellcheck for `run:`
  blocks) and the workflow JSON schema.
- action.yml: actionlint checks workflows, not action metadata, so it is validated against
  the action metadata JSON schema (check-jsonschema's vendored copy of SchemaStore's) and
  against the code: every input reaches a Settings field through `action_inputs`, or is
  context (github-token); the outputs are the ones the action writes; the README documents
  exactly these inputs; every workflow passes only declared inputs.
- Dockerfile: hadolint. .ci/run and .ci/base-image.sh: shellcheck.

The linters come from the `test` extra (each wheel ships its binary). A missing one is a
loud skip, or a failure with ACR_REQUIRE_LINTERS=1 (which .ci/run sets).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from acr_bot.config import DEFAULT_MODELS, PARSERS, Settings, action_context, action_inputs
from acr_bot.github.action import ActionOutcome

REPO_ROOT = Path(__file__).resolve().parents[1]
ACTION = REPO_ROOT / "action.yml"
WORKFLOWS = sorted((REPO_ROOT / "docs" / "workflows").glob("*.yml"))
PUBLISHED = "acr-bot/acr-bot"
CONTEXT_INPUTS = {"github-token"}  # read by action_context, not Settings
PERMISSIONS = {"contents": "write", "pull-requests": "write", "issues": "write",
               "actions": "read"}
# One workflow per language (what `acr-bot init` writes), each with every trigger.
ALL_TRIGGERS = {"issues": ["labeled"], "issue_comment": ["created"],
                "workflow_run": ["completed"], "pull_request": ["closed"],
                "pull_request_review": ["submitted"]}
TRIGGERS = {f"{language}.yml": ALL_TRIGGERS for language in ("python", "node", "go")}


def tool(name: str) -> str:
    """The linter's path: this interpreter's scripts folder first (the venv), then PATH."""
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    reason = (f"LINT SKIPPED - {name} is not installed: pip install -e '.[test]' "
              "(the test extra pins it)")
    if os.environ.get("ACR_REQUIRE_LINTERS") == "1":
        pytest.fail(f"ACR_REQUIRE_LINTERS=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def run(*command: str, cwd: Path = REPO_ROOT, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=env, check=False)


def load(path: Path) -> dict[str, Any]:
    # PyYAML (YAML 1.1) reads the key `on` as True: give it back its name.
    data = yaml.safe_load(path.read_text())
    if True in data:
        data["on"] = data.pop(True)
    return data


ACTION_DATA = load(ACTION)
INPUTS: dict[str, dict[str, Any]] = ACTION_DATA["inputs"]
SETTINGS_INPUTS = sorted(set(INPUTS) - CONTEXT_INPUTS)


# --- linters ----------------------------------------------------------------------------------


def test_example_workflows_exist() -> None:
    assert sorted(p.name for p in WORKFLOWS) == sorted(TRIGGERS)


def test_actionlint_passes_on_the_example_workflows(tmp_path: Path) -> None:
    actionlint = tool("actionlint")
    shellcheck = tool("shellcheck")
    env = {**os.environ, "PATH": f"{Path(shellcheck).parent}{os.pathsep}{os.environ['PATH']}"}
    done = run(actionlint, "-no-color", "-verbose", *map(str, WORKFLOWS), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'Rule "shellcheck" was disabled' not in done.stderr, done.stderr
    # The linter is live: a broken workflow fails.
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\npermissions:\n  pull-request: write\njobs:\n  a:\n"
                      "    steps:\n      - run: echo $UNQUOTED\n")
    done = run(actionlint, "-no-color", str(broken), env=env)
    assert done.returncode == 1
    assert "runs-on" in done.stdout and "pull-request" in done.stdout, done.stdout


def test_action_metadata_matches_the_schema() -> None:
    checker = tool("check-jsonschema")
    done = run(checker, "--builtin-schema", "vendor.github-actions", str(ACTION))
    assert done.returncode == 0, done.stdout + done.stderr


def test_example_workflows_match_the_schema() -> None:
    checker = tool("check-jsonschema")
    done = run(checker, "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_passes_on_the_dockerfile(tmp_path: Path) -> None:
    hadolint = tool("hadolint")
    done = run(hadolint, "--no-color", "Dockerfile")
    assert done.returncode == 0, done.stdout + done.stderr
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN cd /tmp && apt-get install -y git\n")
    done = run(hadolint, "--no-color", str(bad))
    assert done.returncode == 1 and "DL3006" in done.stdout, done.stdout


def test_shellcheck_passes_on_the_ci_scripts() -> None:
    shellcheck = tool("shellcheck")
    done = run(shellcheck, ".ci/run", ".ci/base-image.sh")
    assert done.returncode == 0, done.stdout + done.stderr


# --- action.yml against the code -------------------------------------------------------------


def test_action_runs_on_the_runner_with_its_own_python() -> None:
    runs = ACTION_DATA["runs"]
    assert runs["using"] == "composite"
    steps = {step.get("id"): step for step in runs["steps"]}
    # its own Python, never put on the job's PATH; its venv cached by version and OS
    assert steps["python"]["uses"].startswith("actions/setup-python@")
    assert steps["python"]["with"]["update-environment"] is False
    assert steps["cache"]["uses"].startswith("actions/cache/restore@")
    # saved right after the install, before any code under test can change the venv
    order = [str(s.get("uses") or s.get("name")) for s in runs["steps"]]
    save = next(i for i, u in enumerate(order) if u.startswith("actions/cache/save@"))
    assert order[save - 1] == "Install acr-bot" and runs["steps"][save + 1].get("id") == "run"
    assert runs["steps"][save]["with"] == steps["cache"]["with"]
    script = (REPO_ROOT / "scripts" / "action.sh").read_text()
    assert "RUNNER_OS" in script and "requirements.lock" in script
    assert "--require-hashes" in script and '-E -s "$here/entrypoint.py"' in script
    for key in ("name", "description", "author"):
        assert isinstance(ACTION_DATA.get(key), str) and ACTION_DATA[key].strip(), key


def test_the_run_step_passes_every_input() -> None:
    """A composite action gets no INPUT_ variables from the runner: the run step maps each."""
    (step,) = [s for s in ACTION_DATA["runs"]["steps"] if s.get("id") == "run"]
    expected = {f"INPUT_{name.upper().replace('-', '_')}": f"${{{{ inputs.{name} }}}}"
                for name in INPUTS}
    passed = {k: v for k, v in step["env"].items() if k.startswith("INPUT_")}
    missing = {k: v for k, v in expected.items() if passed.get(k) != v}
    assert passed == expected, (
        f"action.yml's run step (id: run) must pass each input in env:, add {missing}; "
        "and docker/action.yml must declare the same inputs")
    for name, spec in ACTION_DATA["outputs"].items():
        assert spec["value"] == f"${{{{ steps.run.outputs.{name} }}}}", name
    assert action_inputs({"INPUT_MAX_ATTEMPTS": "4"}) == {"max_attempts": 4}
    assert action_context({"GITHUB_EVENT_NAME": "issues", "GITHUB_REPOSITORY": "o/r",
                           "INPUT_GITHUB_TOKEN": "ghs_x"}).token == "ghs_x"


def test_the_container_form_matches_the_composite_action() -> None:
    docker_action = load(REPO_ROOT / "docker" / "action.yml")
    assert docker_action["runs"]["using"] == "docker"
    assert docker_action["runs"]["image"].startswith("docker://ghcr.io/acr-bot/acr-bot:v")
    assert docker_action["inputs"] == INPUTS
    assert {k: v["description"] for k, v in docker_action["outputs"].items()} == {
        k: v["description"] for k, v in ACTION_DATA["outputs"].items()}
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert re.search(r'^ENTRYPOINT \[.*"/opt/acr-bot/entrypoint\.py"\]$', dockerfile, re.MULTILINE)
    assert re.search(r"^COPY .*\bentrypoint\.py\b", dockerfile, re.MULTILINE)
    release = load(REPO_ROOT / ".github" / "workflows" / "release.yml")
    assert release["on"]["push"]["tags"] == ["v*.*.*"]
    assert release["permissions"]["packages"] == "write"
    pushed = [s for s in release["jobs"]["image"]["steps"]
              if str(s.get("uses", "")).startswith("docker/build-push-action@")]
    assert pushed and pushed[0]["with"]["push"] is True


def test_the_lock_pins_every_dependency_with_hashes() -> None:
    lock = (REPO_ROOT / "requirements.lock").read_text()
    pinned = {re.sub(r"[-_.]+", "-", m.lower()) for m in re.findall(
        r"^([A-Za-z0-9_.-]+)==", lock, re.MULTILINE)}
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name = re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", requirement)[0].lower())
        assert name in pinned, f"{name} is a dependency but not in requirements.lock"
    blocks = re.split(r"\n(?=[A-Za-z0-9])", lock.split("\n\n", 1)[-1])
    assert all("--hash=sha256:" in b for b in blocks if "==" in b)


def test_release_workflow_and_action_metadata_pass_the_linters() -> None:
    done = run(tool("actionlint"), "-no-color", ".github/workflows/release.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    checker = tool("check-jsonschema")
    done = run(checker, "--builtin-schema", "vendor.github-actions", "docker/action.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    done = run(tool("shellcheck"), "scripts/action.sh")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_input_is_described_and_empty_by_default() -> None:
    for name, spec in INPUTS.items():
        assert re.fullmatch(r"[a-z][a-z0-9-]*", name), name
        assert str(spec.get("description", "")).strip(), f"{name}: no description"
        assert spec.get("required") is False, f"{name}: every input is optional"
        # "" means not set, so .github/acr-bot.yml and then the defaults apply.
        if name not in CONTEXT_INPUTS:
            assert spec.get("default") == "", f"{name}: default must be empty"
    assert INPUTS["github-token"]["default"] == "${{ github.token }}"


def _sample(field: str) -> str:
    """An input value that the field's parser accepts and that differs from the default."""
    default = DEFAULT_MODELS if field == "models" else getattr(Settings(), field)
    for candidate in ("4", "false", "true", "frozen", "docker", "o/r", "a/**,b/**", "admin",
                      "edit"):
        if field == "models":
            return "replay/a,replay/b"
        try:
            value = PARSERS[field](candidate)
        except (TypeError, ValueError):
            continue
        if value != default:
            return candidate
    raise AssertionError(f"no sample value for {field}")


@pytest.mark.parametrize("name", SETTINGS_INPUTS)
def test_every_settings_input_reaches_its_setting(name: str) -> None:
    field = name.replace("-", "_")
    assert field in PARSERS or field == "models", (
        f"input {name!r} has no Settings field (fields: {sorted(PARSERS)})")
    assert field in {f.name for f in dataclasses.fields(Settings)}
    value = _sample(field)
    # The runner passes input `max-attempts` as INPUT_MAX-ATTEMPTS (upper case, '-' kept).
    parsed = action_inputs({f"INPUT_{name.upper()}": value})
    assert field in parsed, f"INPUT_{name.upper()} is ignored by action_inputs"
    if field != "models":
        assert parsed[field] == PARSERS[field](value)
    assert action_inputs({f"INPUT_{name.upper()}": ""}) == {}  # empty means not set


def test_github_token_input_is_the_context_token() -> None:
    env = {"GITHUB_EVENT_NAME": "issues", "GITHUB_REPOSITORY": "o/r",
           "INPUT_GITHUB-TOKEN": "ghs_fromtheinput", "GITHUB_TOKEN": "ghs_fromtheenv"}
    assert action_context(env).token == "ghs_fromtheinput"


def test_outputs_are_the_ones_the_action_writes() -> None:
    written = set(ActionOutcome("fixed", "").outputs())
    assert set(ACTION_DATA["outputs"]) == written
    for name, spec in ACTION_DATA["outputs"].items():
        assert str(spec.get("description", "")).strip(), name


# --- README and the example workflows --------------------------------------------------------


def _readme_section(title: str) -> str:
    text = (REPO_ROOT / "README.md").read_text()
    start = text.index(f"\n### {title}\n")
    end = text.find("\n#", start + 5)
    return text[start:end if end != -1 else None]


def test_readme_documents_exactly_the_inputs_and_outputs() -> None:
    section = _readme_section("Inputs")
    documented = re.findall(r"^\| `([a-z0-9-]+)` \|", section, re.MULTILINE)
    assert sorted(documented) == sorted(INPUTS), "README inputs table != action.yml inputs"
    for output in ACTION_DATA["outputs"]:
        assert f"`{output}`" in section, f"output {output} not in the README"
    # The README's workflow snippets pass only declared inputs.
    text = (REPO_ROOT / "README.md").read_text()
    for block in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL):
        data = yaml.safe_load(block)
        if isinstance(data, dict) and "jobs" in data:
            _check_acr_steps(data, "README.md")


def _acr_steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])
            if str(step.get("uses", "")).split("@")[0] in (PUBLISHED, "./")]


def _check_acr_steps(workflow: dict[str, Any], where: str) -> list[dict[str, Any]]:
    steps = _acr_steps(workflow)
    assert steps, f"{where}: no `uses: {PUBLISHED}@...` step"
    for step in steps:
        unknown = set(step.get("with", {})) - set(INPUTS)
        assert not unknown, f"{where}: unknown acr-bot inputs {sorted(unknown)}"
    return steps


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_example_workflow_is_complete(path: Path) -> None:
    workflow = load(path)
    assert set(workflow["on"]) == set(TRIGGERS[path.name])
    for event, types in TRIGGERS[path.name].items():
        assert workflow["on"][event]["types"] == types
    assert workflow["on"]["workflow_run"]["workflows"] == ["CI"]
    assert workflow["permissions"] == PERMISSIONS
    (job,) = workflow["jobs"].values()
    uses = [str(step.get("uses", "")) for step in job["steps"]]
    assert uses[0] == "actions/checkout@v4"
    # The bot fetches other commits (a PR branch, a failing run's head) and pushes branches
    # built on them: full history.
    assert job["steps"][0].get("with", {}).get("fetch-depth") == 0
    (step,) = _check_acr_steps(workflow, path.name)
    assert step["uses"] == f"{PUBLISHED}@v1"
    assert {"github-token", "models"} <= set(step["with"])
    keys = step.get("env", {})
    assert keys, "LLM API keys come from secrets through env:"
    for name, value in keys.items():
        assert name.endswith("_API_KEY"), name
        assert value == f"${{{{ secrets.{name} }}}}", f"{name} must come from secrets"
