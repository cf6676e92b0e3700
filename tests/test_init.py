"""`acr-bot init` on real temporary repositories: the language, the test command and the set-up
steps (from the repository's own CI workflow when there is one), the two files it writes
(the workflow passes actionlint and the workflow schema), never overwriting without --force,
and what it says is left to do. docs/workflows/ is its output for a Python, a Node and a Go
project, so the examples are what users get."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from test_lint import load, run, tool

from acr_bot.cli import cli
from acr_bot.config import load_settings
from acr_bot.errors import ConfigError
from acr_bot.init import WORKFLOW_FILE, detect, init

DOCS = Path(__file__).resolve().parents[1] / "docs" / "workflows"
CI = """\
name: CI
on: [push, pull_request]
jobs:
  lint:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: pipx run ruff check .
  test:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        python-version: ["3.9", "3.12"]
    services:
      postgres:
        image: postgres:16
        env: {POSTGRES_PASSWORD: pw}
        ports: ["5432:5432"]
    env:
      DATABASE_URL: postgres://postgres:pw@localhost:5432/postgres
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: ${{ matrix.python-version }}
      - run: sudo apt-get install -y libpq-dev
      - run: pip install -e '.[test]'
      - run: pytest -q -x
      - run: echo done
"""
SAMPLES = {
    "python": {"pyproject.toml": "[project]\nname = 'calc'\nversion = '1.0'\n",
               "tests/test_calc.py": "def test_one():\n    assert 1\n"},
    "node": {"package.json": '{"name": "calc", "scripts": {"test": "node --test"}}\n'},
    "go": {"go.mod": "module example.com/calc\n\ngo 1.22\n", "calc_test.go": "package calc\n"},
}


def _lint(path: Path) -> None:
    done = run(tool("actionlint"), "-no-color", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    done = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_set_up_steps_come_from_the_repositorys_ci(make_repo) -> None:
    repo = make_repo({**SAMPLES["python"], ".github/workflows/ci.yml": CI})

    setup, written, todo = init(repo, ("gpt-5-mini", "claude-sonnet-4-6"))

    assert (setup.language, setup.test_command) == ("python", "pytest -q -x")
    assert setup.source == "ci.yml: job test" and setup.ci_workflows == ["CI"]
    workflow = load(repo / WORKFLOW_FILE)
    (job,) = workflow["jobs"].values()
    steps = job["steps"]
    assert steps[0]["uses"] == "actions/checkout@v4"
    assert steps[0]["with"] == {"fetch-depth": 0, "persist-credentials": False}
    # the CI's set-up steps, in order, for the newest Python of the matrix; not its test step
    assert steps[1] == {"uses": "actions/setup-python@v5", "with": {"python-version": "3.12"}}
    assert [s.get("run") for s in steps[2:4]] == ["sudo apt-get install -y libpq-dev",
                                                  "pip install -e '.[test]'"]
    assert steps[4]["uses"] == "acr-bot/acr-bot@v1" and len(steps) == 5
    assert steps[4]["env"] == {"OPENAI_API_KEY": "${{ secrets.OPENAI_API_KEY }}",
                               "ANTHROPIC_API_KEY": "${{ secrets.ANTHROPIC_API_KEY }}"}
    assert job["services"]["postgres"]["image"] == "postgres:16"
    assert job["env"]["DATABASE_URL"].startswith("postgres://")
    assert workflow["on"]["workflow_run"]["workflows"] == ["CI"]
    _lint(repo / WORKFLOW_FILE)
    settings = load_settings(repo, env={})
    assert settings.models == ("gpt-5-mini", "claude-sonnet-4-6")
    assert settings.test_command == "pytest -q -x"
    assert [str(p.relative_to(repo)) for p in written] == [WORKFLOW_FILE, ".github/acr-bot.yml"]
    assert any("OPENAI_API_KEY" in item for item in todo)
    assert any("Allow GitHub Actions to create and approve pull requests" in item
               for item in todo)


@pytest.mark.parametrize(("language", "test_command", "setup_uses"), [
    ("python", "python -m pytest -q", "actions/setup-python@v5"),
    ("node", "npm test", "actions/setup-node@v4"),
    ("go", "go test ./...", "actions/setup-go@v5"),
])
def test_without_ci_the_languages_usual_set_up(make_repo, language: str, test_command: str,
                                               setup_uses: str) -> None:
    repo = make_repo(SAMPLES[language])

    setup, _, todo = init(repo)

    assert (setup.language, setup.test_command) == (language, test_command)
    (job,) = load(repo / WORKFLOW_FILE)["jobs"].values()
    assert job["steps"][1]["uses"] == setup_uses
    assert job["steps"][-1]["uses"] == "acr-bot/acr-bot@v1"
    _lint(repo / WORKFLOW_FILE)
    assert any("no CI workflow found" in item for item in todo)


@pytest.mark.parametrize("language", sorted(SAMPLES))
def test_the_documented_workflows_are_what_init_writes(make_repo, language: str) -> None:
    repo = make_repo(SAMPLES[language])
    init(repo)
    assert (DOCS / f"{language}.yml").read_text() == (repo / WORKFLOW_FILE).read_text(), (
        f"regenerate docs/workflows/{language}.yml with acr-bot init on the SAMPLES project")


def test_never_overwrites_without_force(make_repo) -> None:
    repo = make_repo({**SAMPLES["node"], WORKFLOW_FILE: "# mine\n"})

    with pytest.raises(ConfigError, match="already exist.*--force"):
        init(repo)
    assert (repo / WORKFLOW_FILE).read_text() == "# mine\n"
    assert not (repo / ".github" / "acr-bot.yml").exists()  # nothing written at all

    result = CliRunner().invoke(cli, ["init", "--repo", str(repo)])
    assert result.exit_code == 1 and "nothing was written" in result.output
    result = CliRunner().invoke(cli, ["init", "--repo", str(repo), "--force",
                                      "--models", "claude-sonnet-4-6"])
    assert result.exit_code == 0, result.output
    assert "language: node; test command: npm test" in result.output
    assert "ANTHROPIC_API_KEY" in result.output and "OPENAI_API_KEY" not in result.output
    assert "create and approve pull requests" in result.output
    assert (repo / WORKFLOW_FILE).read_text() != "# mine\n"


def test_a_broken_ci_workflow_is_skipped_not_fatal(make_repo) -> None:
    repo = make_repo({**SAMPLES["go"], ".github/workflows/ci.yml": "jobs: [unclosed\n"})
    setup = detect(repo)
    assert setup.source == "defaults for go"
    assert yaml.safe_load((DOCS / "go.yml").read_text())["jobs"]
