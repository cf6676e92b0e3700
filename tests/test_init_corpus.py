"""`acr-bot init` on the CI workflows of real projects (tests/fixtures/workflows/, SOURCES says
where each file comes from). For each one, EXPECTED.yml says by hand which job runs the tests,
which matrix entry to copy, the test command and the workflows `workflow_run` must name; init
must find exactly that, say so when it only assumed, and write a workflow actionlint passes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_lint import load, run, tool

from acr_bot.init import ACTIONLINT, WORKFLOW_FILE, init

CORPUS = Path(__file__).parent / "fixtures" / "workflows"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((CORPUS / "EXPECTED.yml").read_text())
LANGUAGES = {"pyproject.toml": "python", "package.json": "node", "go.mod": "go",
             "Cargo.toml": "rust"}


def _text(value: Any) -> Any:
    """Matrix values as text (YAML's 3.10 and '3.10' are one value to GitHub)."""
    if isinstance(value, dict):
        return {str(k): _text(v) for k, v in value.items()}
    return json.dumps(value) if isinstance(value, bool) else str(value)


def _repo(tmp_path: Path, name: str, expected: dict[str, Any]) -> Path:
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    for path in (CORPUS / expected.get("fixture", name)).iterdir():
        shutil.copy(path, folder / path.name)
    for root_file in expected["root"]:
        (tmp_path / root_file).write_text("")
    return tmp_path


def test_the_corpus_is_what_the_issue_asks_for() -> None:
    projects = {e.get("fixture", n) for n, e in EXPECTED.items()}
    assert len(projects) >= 20
    assert {d.name for d in CORPUS.iterdir() if d.is_dir()} == projects
    sources = {(line.split()[0], line.split()[2].rsplit("/", 1)[-1])
               for line in (CORPUS / "SOURCES").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    copied = {(folder, path.name) for folder in projects for path in (CORPUS / folder).iterdir()}
    assert copied == sources  # each file says where it comes from, and nothing else is listed
    languages = {LANGUAGES[e["root"][0]] for e in EXPECTED.values()}
    assert languages == {"python", "node", "go", "rust"}
    commands = " ".join(e["command"] for e in EXPECTED.values())
    for runner in ("tox", "nox", "uv run", "poetry run", "hatch run", "pnpm", "cargo test"):
        assert runner in commands or runner == "nox" and "NOX_SESSION" in commands, runner


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_init_finds_the_job_that_runs_the_tests(tmp_path: Path, name: str) -> None:
    expected = EXPECTED[name]
    repo = _repo(tmp_path, name, expected)

    setup, written, _ = init(repo, ("gpt-5-mini",), job=expected.get("choose"))

    assert setup.source == expected["job"]
    assert _text(setup.entry) == _text(expected["entry"])
    assert setup.test_command == expected["command"]
    assert setup.ci_workflows == expected["triggers"]
    assert bool(setup.assumed) == bool(expected.get("assumed")), setup.assumed
    assert setup.why and all(line.strip() for line in setup.why)
    workflow = load(repo / WORKFLOW_FILE)
    assert workflow["on"]["workflow_run"]["workflows"] == expected["triggers"]
    (job,) = workflow["jobs"].values()
    assert "strategy" not in job and "needs" not in job
    assert "matrix." not in json.dumps(job) and "inputs." not in json.dumps(job)
    settings = yaml.safe_load(written[1].read_text())
    assert settings["test_command"] == expected["command"]
    done = run(tool("actionlint"), *ACTIONLINT, WORKFLOW_FILE, cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
