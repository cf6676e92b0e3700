"""The composite action (action.yml) run the way the runner runs it, after the job's own
set-up steps.

A job is the user's set-up step (it puts a tool on PATH through GITHUB_PATH, as
actions/setup-node or setup-go do) followed by `uses: ./`: the runner stand-in
(tests/support/runner.py) runs action.yml's steps in order with the runner's variables, an
actions/setup-python stand-in (this interpreter's python3) and an actions/cache stand-in
folder. acr-bot installs itself from requirements.lock into its own venv (a real pip install
from PyPI the first time in a session, the cache after that), then fixes a labelled issue
against the fake GitHub with a replayed model; the repository's tests need the tool only the
set-up step provided, so the fix is verified with it. Once for a Python project, once for a
Node project; and without the set-up step the same fix cannot be verified.

pip's and uv's downloads are kept in $ACR_PACKAGE_CACHE (default:
<tmp>/acr-bot-package-cache) between sessions; the venv cache stand-in is new in every session (so one job per session is cold).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from conftest import load_fixture

from acr_bot.fixing.edits import format_edits, make_edits
from acr_bot.gitrepo import git

try:
    from tests.support.fake_github import FakeGitHub, serve_fake_github
    from tests.support.runner import Job, StepFailed, StepResult
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from support.fake_github import FakeGitHub, serve_fake_github  # type: ignore[no-redef]
    from support.runner import Job, StepFailed, StepResult  # type: ignore[no-redef]

pytestmark = pytest.mark.slow

ACTION_PATH = Path(__file__).resolve().parents[1]
REPOSITORY = "Codertocat/Hello-World"  # the fixture's repository
TOKEN = "ghs_" + "RunnerStandInToken" + "x" * 18
PACKAGE_CACHE = Path(os.environ.get("ACR_PACKAGE_CACHE") or
                     Path(tempfile.gettempdir()) / "acr-bot-package-cache")
# The user's set-up step: a tool in the tool cache, put on PATH for the later steps.
SETUP = {"name": "Set up answer-tool", "run": (
    'dir="$RUNNER_TOOL_CACHE/answer-tool/1.0/bin"\n'
    'mkdir -p "$dir"\n'
    "printf '#!/bin/sh\\necho 42\\n' > \"$dir/answer-tool\"\n"
    'chmod +x "$dir/answer-tool"\n'
    'echo "$dir" >> "$GITHUB_PATH"\n'
    'echo "ANSWER_TOOL_HOME=$dir" >> "$GITHUB_ENV"\n')}

PY_CALC = "def mul(a, b):\n    return a + b\n"
PY_TESTS = """\
import os
import subprocess
import unittest

from calc import mul


class CalcTest(unittest.TestCase):
    def test_mul(self):
        self.assertEqual(mul(3, 4), 12)

    def test_the_tool_from_the_setup_step(self):
        self.assertTrue(os.environ["ANSWER_TOOL_HOME"])
        out = subprocess.run(["answer-tool"], capture_output=True, text=True, check=True)
        self.assertEqual(out.stdout.strip(), "42")
        # Code under test tries to write into acr-bot's venv: as acr-sandbox it cannot.
        folder = os.path.join(os.environ["RUNNER_TOOL_CACHE"], "acr-bot")
        for venv in os.listdir(folder):
            with self.assertRaises(PermissionError):
                open(os.path.join(folder, venv, "written-by-the-tests"), "w").close()
"""
JS_CALC = "exports.mul = (a, b) => a + b;\n"
JS_TESTS = """\
const test = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const { mul } = require('../calc');

test('mul', () => { assert.strictEqual(mul(3, 4), 12); });

test('the tool from the setup step', () => {
  assert.strictEqual(execFileSync('answer-tool').toString().trim(), '42');
  // Code under test runs as acr-bot's user and can write into its venv.
  const fs = require('node:fs');
  const folder = `${process.env.RUNNER_TOOL_CACHE}/acr-bot`;
  for (const venv of fs.readdirSync(folder)) {
    assert.throws(() => fs.writeFileSync(`${folder}/${venv}/written-by-the-tests`, ''),
                  /EACCES/);  // as acr-sandbox, the tests cannot write into acr-bot's venv
  }
});
"""
PROJECTS = {
    "python": ({"calc.py": PY_CALC, "test_calc.py": PY_TESTS, ".gitignore": "__pycache__/\n"},
               "calc.py", PY_CALC, PY_CALC.replace("a + b", "a * b"), "python3 -m unittest -v"),
    "node": ({"calc.js": JS_CALC, "test/calc.test.js": JS_TESTS, "package.json": json.dumps(
        {"name": "calc", "version": "1.0.0", "private": True,
         "scripts": {"test": "node --test"}}, indent=2) + "\n"},
             "calc.js", JS_CALC, JS_CALC.replace("a + b", "a * b"), "npm test"),
}


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """The job's folders where every user may traverse them, as on a runner (whose tool cache,
    /opt/hostedtoolcache, is world-readable): the tests run as the unprivileged sandbox user,
    and pytest's own temporary folders are root's alone. The bot hides its home, RUNNER_TEMP
    and the checkout from them all the same."""
    path = Path(tempfile.mkdtemp(prefix="acr-test-job-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def action_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The actions/cache stand-in: shared by the session's jobs, so only the first is cold."""
    return tmp_path_factory.mktemp("actions-cache")


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    with serve_fake_github(REPOSITORY) as github:
        yield github


def _project(tmp: Path, files: Mapping[str, str]) -> tuple[Path, Path]:
    """origin (bare) and the runner's checkout of it, on branch main."""
    src = tmp / "src"
    for rel, text in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    git(src.parent, "init", "--quiet", "--initial-branch=main", str(src))
    git(src, "add", "-A")
    git(src, "commit", "--quiet", "-m", "initial")
    origin = tmp / "origin.git"
    git(tmp, "clone", "--quiet", "--bare", str(src), str(origin))
    workspace = tmp / "work" / "repo"
    git(tmp, "clone", "--quiet", str(origin), str(workspace))
    return origin, workspace


def _job(tmp: Path, workspace: Path, cache: Path, fake: FakeGitHub) -> Job:
    payload = load_fixture("issues/labeled.payload.json")
    payload["label"]["name"] = "acr:fix"
    payload["issue"].update(number=1, title="mul() adds instead of multiplying",
                            body="mul(3, 4) should be 12.")
    payload["repository"]["default_branch"] = "main"
    event = tmp / "event.json"
    event.write_text(json.dumps(payload))
    # The machine's own settings pass (TLS certificates, proxies), as on a runner; conftest
    # has already removed every GITHUB_, INPUT_ and ACR_ variable.
    env = {**os.environ, "HOME": str(tmp / "home"), "LANG": "C.UTF-8",
           "GITHUB_EVENT_NAME": "issues", "GITHUB_EVENT_PATH": str(event),
           "GITHUB_REPOSITORY": REPOSITORY, "GITHUB_API_URL": fake.api_url,
           "GITHUB_SERVER_URL": "https://github.test", "GITHUB_REF": "refs/heads/main",
           "GITHUB_RUN_ID": "77", "GITHUB_ACTOR": "Codertocat", "GITHUB_TOKEN": TOKEN,
           "GITHUB_STEP_SUMMARY": str(tmp / "summary.md"),
           "PIP_CACHE_DIR": str(PACKAGE_CACHE / "pip"), "UV_CACHE_DIR": str(PACKAGE_CACHE / "uv"),
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    (tmp / "home").mkdir(exist_ok=True)
    # actions/setup-python's stand-in: a base interpreter (not this venv's python).
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or sys.executable
    return Job(tmp / "runner", ACTION_PATH, workspace, cache, python, env)


def _bot_step(replay: Path, test_command: str) -> dict[str, Any]:
    return {"id": "acr", "uses": "./", "with": {
        "models": "replay/strong", "test-command": test_command, "max-attempts": "1",
        "harness": "edit"},  # the replayed reply is SEARCH/REPLACE edits
            "env": {"ACR_REPLAY_FILE": str(replay)}}


def _bot(job: Job) -> StepResult:
    """The bot's own step (the baseline cache is saved after it)."""
    return [r for r in job.results if r.name == "acr-bot"][-1]


def _run(job: Job, steps: list[dict[str, Any]], request: pytest.FixtureRequest) -> None:
    try:
        job.run(steps)
    except StepFailed as exc:
        pytest.fail(str(exc), pytrace=False)
    finally:
        timings = ", ".join(f"{r.name[:24]} {r.seconds:.1f} s" for r in job.results)
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"\n[runner] {request.node.name}: {timings}")


@pytest.mark.parametrize("language", sorted(PROJECTS))
def test_the_composite_action_verifies_with_the_jobs_set_up_tools(
        language: str, tmp_path: Path, action_cache: Path, fake_github: FakeGitHub,
        make_replay, request: pytest.FixtureRequest) -> None:
    files, path, before, after, test_command = PROJECTS[language]
    origin, workspace = _project(tmp_path, files)
    head = git(workspace, "rev-parse", "HEAD")
    replay = make_replay({"strong": ["Multiply.\n\n" + format_edits(
        make_edits(path, before, after))]})
    job = _job(tmp_path, workspace, action_cache, fake_github)
    warm = any(action_cache.iterdir())

    _run(job, [SETUP, _bot_step(replay, test_command)], request)

    outputs = job.steps["acr"]
    assert outputs["outcome"] == "fixed", _bot(job).output[-6000:]
    assert outputs["model"] == "replay/strong" and outputs["pr-url"].endswith("/pull/101")
    bot = _bot(job).output
    assert "baseline: exit 1" in bot, bot[-4000:]
    # the fix is on origin, and the PR from it
    fix = git(tmp_path, "--git-dir", str(origin), "rev-parse", "refs/heads/acr/issue-1")
    assert git(tmp_path, "--git-dir", str(origin), "rev-parse", f"{fix}^") == head
    assert git(tmp_path, "--git-dir", str(origin), "show", f"{fix}:{path}") == after.rstrip()
    [pull] = fake_github.calls("POST", rf"^/repos/{REPOSITORY}/pulls$")
    assert pull["head"] == "acr/issue-1" and pull["base"] == "main"
    # acr-bot ran from its own venv, installed from the lock once, restored after that
    names = [r.name for r in job.results]
    assert ("Install acr-bot" in names) is not warm, names
    assert any(action_cache.iterdir())
    [venv] = [r.outputs["venv"] for r in job.results if "venv" in r.outputs]
    assert Path(venv, "bin", "python").exists() and not venv.startswith(sys.prefix)
    # ... the tests could not write into it (they run as acr-sandbox), and the cache, saved
    # before they ran, holds nothing of theirs either
    assert not Path(venv, "written-by-the-tests").exists()
    assert not list(action_cache.glob("*/written-by-the-tests"))
    assert bot.count(TOKEN) == 1 and f"::add-mask::{TOKEN}" in bot  # masked, then never


def test_without_the_set_up_step_the_fix_cannot_be_verified(
        tmp_path: Path, action_cache: Path, fake_github: FakeGitHub, make_replay,
        request: pytest.FixtureRequest) -> None:
    files, path, before, after, test_command = PROJECTS["python"]
    origin, workspace = _project(tmp_path, files)
    replay = make_replay({"strong": ["Multiply.\n\n" + format_edits(
        make_edits(path, before, after))]})
    job = _job(tmp_path, workspace, action_cache, fake_github)

    _run(job, [_bot_step(replay, test_command)], request)

    assert job.steps["acr"]["outcome"] == "gave_up", _bot(job).output[-4000:]
    assert fake_github.calls("POST", rf"^/repos/{REPOSITORY}/pulls$") == []
