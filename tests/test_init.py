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
from acr_bot.init import WORKFLOW_FILE, detect, init, lint, workflow_text
from acr_bot.verify.local import detect_test_command

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


# --- choosing, saying why, asking -------------------------------------------------------------

RELEASE_FIRST = {  # a release workflow sorts first and runs tox too; a lint job runs pytest
    ".github/workflows/a-release.yml": """\
name: release
on: {push: {tags: ['*']}}
jobs:
  notes:
    runs-on: ubuntu-latest
    steps:
      - run: pip install tox
      - run: tox -e generate-release-notes
""",
    ".github/workflows/checks.yml": """\
name: Checks
on: [push, pull_request]
jobs:
  spelling:
    runs-on: ubuntu-latest
    steps:
      - run: pytest tests/ -k spelling
  unit:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        python: ['3.11', '3.13', '3.14-dev']
        os: [ubuntu-latest, windows-latest]
    steps:
      - uses: actions/setup-python@v5
        with: {python-version: '${{ matrix.python }}'}
      - run: pip install -e . tox
      - run: tox run
        env:
          TOX_ENV: py${{ matrix.python }}
""",
}


def test_dry_run_prints_both_files_and_why_and_writes_nothing(make_repo) -> None:
    repo = make_repo({**SAMPLES["python"], **RELEASE_FIRST})

    result = CliRunner().invoke(cli, ["init", "--repo", str(repo), "--dry-run"])

    assert result.exit_code == 0, result.output
    assert not (repo / WORKFLOW_FILE).exists() and not (repo / ".github/acr-bot.yml").exists()
    out = result.output
    assert "job: checks.yml: job unit: runs tox on Linux" in out
    assert "matrix entry {python: 3.13, os: ubuntu-latest}" in out and "newest CPython" in out
    assert "test command: TOX_ENV=py3.13 tox run" in out  # the step's env is kept
    assert "--- .github/workflows/acr-bot.yml (not written: --dry-run) ---" in out
    assert "--- .github/acr-bot.yml (not written: --dry-run) ---" in out
    assert 'workflows: ["Checks"]' in out  # not the release workflow
    assert "python-version: '3.13'" in out and "matrix." not in out.split("---", 1)[1]
    assert "actionlint: no problems" in out or "actionlint: not installed" in out


def test_job_option_picks_another_job_and_a_wrong_name_is_one_line(make_repo) -> None:
    repo = make_repo({**SAMPLES["python"], **CI_TWO_JOBS})

    setup = detect(repo, job="ci.yml:other")
    assert setup.source == "ci.yml: job other" and setup.test_command == "pytest -q tests/b"

    result = CliRunner().invoke(cli, ["init", "--repo", str(repo), "--job", "ci.yml:nope"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "--job ci.yml:nope" in result.output
    assert "ci.yml:first" in result.output  # the names it could have been


CI_TWO_JOBS = {".github/workflows/ci.yml": """\
name: CI
on: [push]
jobs:
  first:
    runs-on: ubuntu-latest
    steps:
      - run: pytest -q tests/a
  other:
    runs-on: ubuntu-latest
    steps:
      - run: pytest -q tests/b
"""}


def test_a_tie_is_said_in_one_line_or_asked_on_a_terminal(make_repo, monkeypatch) -> None:
    repo = make_repo({**SAMPLES["python"], **CI_TWO_JOBS})

    setup = detect(repo)
    assert setup.assumed and setup.assumed.count("\n") == 0
    assert "ci.yml: job first" in setup.assumed and "--job" in setup.assumed
    result = CliRunner().invoke(cli, ["init", "--repo", str(repo), "--dry-run"])
    assert setup.assumed in result.output and "Which job" not in result.output

    monkeypatch.setattr("acr_bot.cli._interactive", lambda: True)
    result = CliRunner().invoke(cli, ["init", "--repo", str(repo), "--dry-run"], input="2\n")
    assert result.exit_code == 0, result.output
    assert "1. ci.yml:first" in result.output and "2. ci.yml:other" in result.output
    assert "test command: pytest -q tests/b" in result.output


def test_init_runs_actionlint_and_reports_what_it_finds(make_repo, monkeypatch) -> None:
    tool("actionlint")  # skips loudly (or fails under ACR_REQUIRE_LINTERS=1) when missing
    repo = make_repo(SAMPLES["go"])
    assert lint(repo, workflow_text(detect(repo), ["gpt-5-mini"])) == []
    broken = "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n" \
             "      - run: echo ${{ matrix.python }}\n"
    problems = lint(repo, broken)
    assert problems and 'property "python" is not defined' in problems[0]  # flask's bug
    monkeypatch.setattr("acr_bot.init.actionlint", lambda: None)
    assert lint(repo, broken) is None
    result = CliRunner().invoke(cli, ["init", "--repo", str(repo)])
    assert "actionlint: not installed" in result.output


def test_root_level_test_files_are_a_pytest_project(make_repo) -> None:
    """A small project keeps test_*.py next to its code: init and fix both find pytest."""
    repo = make_repo({"calc.py": "def add(a, b):\n    return a + b\n",
                      "test_calc.py": "from calc import add\n\ndef test_add():\n"
                                      "    assert add(1, 2) == 3\n"})
    assert detect_test_command(repo) == "python -m pytest -q"
    assert detect(repo).test_command == "python -m pytest -q"
    other = make_repo({"calc.py": "", "helpers.py": "", "calc_test.py": ""})
    assert detect_test_command(other) == "python -m pytest -q"
    assert detect_test_command(make_repo({"calc.py": "", "testing.py": ""})) is None
