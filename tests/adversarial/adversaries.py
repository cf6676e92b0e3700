"""Shared pieces of the adversarial tests: a small buggy project, replayed models, an Action
"world" (a bare origin, the runner's checkout, a fake GitHub), and checks for leaks and for
workflow commands smuggled into the log.

Not a conftest.py on purpose: several modules in tests/ do `from conftest import ...`, and a
second conftest.py in this directory would take the name `conftest` from tests/conftest.py.
Fixtures therefore live in the test modules; this module holds plain helpers.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from acr_bot import app
from acr_bot.config import Settings, action_context, load_settings
from acr_bot.domain import FixResult
from acr_bot.github import action
from acr_bot.github.client import GitHub
from acr_bot.gitrepo import git
from acr_bot.memory.store import Memory

try:
    from tests.support.fake_github import FakeGitHub
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from support.fake_github import FakeGitHub  # type: ignore[no-redef]

__all__ = ["CALC", "CI", "FILES", "FIX", "FIXED", "GREP", "MAIN", "MEMORY", "PYTEST", "REPO", "TASK", "TESTS", "TITLE", "WRONG_FIX", "FakeGitHub", "World", "branches", "closed_pull", "comment", "failed_run", "fix", "labeled", "new_token", "outcomes", "reply", "settings_for", "smuggled_commands", "spy_prompts", "tree_state"]

PYTEST = f"{sys.executable} -m pytest -q -p no:cacheprovider"
# A test command that costs milliseconds: red until mul() multiplies. Judged by its exit code.
GREP = "grep -qx '    return a [*] b' calc.py"
REPO = "octo/hello"
MAIN = "main"
MEMORY = ".acr/memory.json"

from tests.support.calc import CALC, FIX, FIXED, TASK, TESTS, TITLE, WRONG_FIX, reply
from tests.support.calc import FILES as CALC_FILES

# Shared with the attack modules, which import these names from here.
__all__ = ["CALC", "CI", "FILES", "FIX", "FIXED", "GREP", "MAIN", "MEMORY", "PYTEST", "REPO", "TASK", "TESTS", "TITLE", "WRONG_FIX", "FakeGitHub", "World", "branches", "closed_pull", "comment", "failed_run", "fix", "labeled", "new_token", "outcomes", "reply", "settings_for", "smuggled_commands", "spy_prompts", "tree_state"]

CI = "name: ci\non: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - run: make\n"
FILES = {**CALC_FILES, ".github/workflows/ci.yml": CI}


def new_token() -> str:
    """A fresh GitHub-style installation token: each test proves its own value never leaks."""
    return "ghs_" + os.urandom(18).hex()


def settings_for(replay: Path, *names: str, **changes: Any) -> Settings:
    """Replayed models, cheapest first (make_replay prices them in the order given)."""
    base = {"models": tuple(f"replay/{n}" for n in names), "replay_file": replay,
            "test_command": GREP, "policy": "cheapest-first", "llm_retries": 0,
            "harness": "edit"}
    return replace(Settings(), **{**base, **changes})


def fix(repo: Path, settings: Settings, task: str = TASK) -> FixResult:
    return app.fix(repo, app.task_from_text(task), settings)


def outcomes(result: FixResult) -> list[str]:
    return [a.outcome for a in result.attempts]


def branches(repo: Path) -> list[str]:
    return sorted(git(repo, "branch", "--format=%(refname:short)").split())


def tree_state(root: Path) -> dict[str, bytes | str]:
    """Every file (and link target) under `root`, .git included: a fingerprint of a directory."""
    state: dict[str, bytes | str] = {}
    if not root.exists():
        return state
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            state[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            state[rel] = path.read_bytes()
    return state


# --- prompts the models saw ------------------------------------------------------------------


def spy_prompts(monkeypatch: Any) -> list[str]:
    """Every message list the replay provider receives (system prompt included), as JSON."""
    from acr_bot import llm

    seen: list[str] = []
    real = llm._last_user_text

    def recording(messages: list) -> str:
        seen.append(json.dumps(messages, ensure_ascii=False))
        return real(messages)

    monkeypatch.setattr(llm, "_last_user_text", recording)
    return seen


# --- workflow commands -----------------------------------------------------------------------

# The runner reads its output with .NET's ReadLine: \r, \n and \r\n end a line.
PHYSICAL_LINE = re.compile(r"\r\n|\r|\n")
BOT_COMMANDS = ("::group::", "::endgroup::", "::add-mask::", "::warning::", "::error::")


def physical_lines(lines: Sequence[str]) -> list[str]:
    return [part for line in lines for part in PHYSICAL_LINE.split(line)]


def smuggled_commands(lines: Sequence[str], marker: str) -> list[str]:
    """Lines the runner would execute as a workflow command carrying `marker`: `::cmd::` after
    optional leading whitespace (the runner trims it), or the legacy `##[cmd]` anywhere in a
    line. The bot's own `::group::` lines may carry untrusted titles as their data."""
    found = []
    for line in physical_lines(lines):
        if marker not in line:
            continue
        stripped = line.lstrip()
        bot_own = stripped.startswith(("::group::", "::warning::", "::error::"))
        if (stripped.startswith("::") and not bot_own) or "##[" in line:
            found.append(line)
    return found


# --- the Action world ------------------------------------------------------------------------


class World:
    """One repository: a bare origin, the runner's checkout of it, its fake GitHub."""

    def __init__(self, tmp: Path, fake: FakeGitHub, files: Mapping[str, str] | None = None,
                 test_command: str = GREP) -> None:
        self.tmp = tmp
        self.fake = fake
        self.test_command = test_command
        project = tmp / "src"
        for rel, text in {**FILES, **(files or {})}.items():
            (project / rel).parent.mkdir(parents=True, exist_ok=True)
            (project / rel).write_text(text)
        git(project, "init", "--quiet", f"--initial-branch={MAIN}")
        git(project, "add", "-A")
        git(project, "commit", "--quiet", "-m", "calc with a bug")
        self.origin = tmp / "origin.git"
        git(tmp, "clone", "--quiet", "--bare", str(project), str(self.origin))
        self.workspace = tmp / "workspace"
        git(tmp, "clone", "--quiet", str(self.origin), str(self.workspace))
        self.lines: list[str] = []
        self.output = tmp / "github_output"
        self.summary = tmp / "step_summary"
        self.runs = 0
        self.token = new_token()

    def echo(self, line: str) -> None:
        # The runner's stdout is UTF-8: what cannot be encoded would crash a real print().
        line.encode("utf-8")
        self.lines.append(line)

    def env(self, event: str, payload: Mapping[str, Any] | str, replay: Path | None,
            **extra: str) -> dict[str, str]:
        self.runs += 1
        path = self.tmp / f"event{self.runs}.json"
        path.write_text(payload if isinstance(payload, str) else json.dumps(payload),
                        encoding="utf-8")
        env = {"GITHUB_EVENT_NAME": event, "GITHUB_EVENT_PATH": str(path),
               "GITHUB_REPOSITORY": REPO, "GITHUB_WORKSPACE": str(self.workspace),
               "GITHUB_API_URL": self.fake.api_url, "GITHUB_REF": f"refs/heads/{MAIN}",
               "GITHUB_OUTPUT": str(self.output), "GITHUB_STEP_SUMMARY": str(self.summary),
               "GITHUB_RUN_ID": str(1000 + self.runs), "INPUT_GITHUB-TOKEN": self.token,
               "INPUT_MODELS": "replay/strong", "INPUT_TEST-COMMAND": self.test_command,
               "INPUT_POLICY": "cheapest-first", "INPUT_LLM-RETRIES": "0",
               "INPUT_HARNESS": "edit"}
        if replay is not None:
            env["ACR_REPLAY_FILE"] = str(replay)
        env.update(extra)
        return env

    def run(self, event: str, payload: Mapping[str, Any] | str, replay: Path | None = None,
            **extra: str) -> action.ActionOutcome:
        self.output.unlink(missing_ok=True)
        self.summary.unlink(missing_ok=True)
        self.lines.clear()
        env = self.env(event, payload, replay, **extra)
        ctx = action_context(env)
        settings = load_settings(self.workspace, env=env)
        return action.run(ctx, settings, env, action.Console(self.echo),
                          lambda c: GitHub(c.token, c.repository, c.api_url, write_delay=0,
                                           read_delay=0, retries=1))

    # --- what the run left behind -------------------------------------------------------------

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def outputs(self) -> dict[str, str]:
        """GITHUB_OUTPUT's heredoc entries."""
        out, lines = {}, self.output.read_text().splitlines()
        i = 0
        while i < len(lines):
            key, _, delimiter = lines[i].partition("<<")
            end = lines.index(delimiter, i + 1)
            out[key] = "\n".join(lines[i + 1:end])
            i = end + 1
        return out

    def refs(self) -> dict[str, str]:
        """origin's refs: name -> sha."""
        out = git(self.origin, "for-each-ref", "--format=%(refname) %(objectname)")
        return dict(tuple(line.split(" ", 1)) for line in out.splitlines())  # type: ignore[misc]

    def memory_text(self) -> str | None:
        if not git(self.origin, "branch", "--list", "acr-memory"):
            return None
        return git(self.origin, "show", f"acr-memory:{MEMORY}")

    def memory(self) -> Memory | None:
        text = self.memory_text()
        return None if text is None else Memory.from_text(text, "origin acr-memory")

    def seed_memory_text(self, text: str) -> str:
        """Put `text` as the memory file on origin's acr-memory branch; returns its sha."""
        seed = self.tmp / "seed"
        git(self.tmp, "clone", "--quiet", str(self.origin), str(seed))
        git(seed, "checkout", "--quiet", "--orphan", "acr-memory")
        git(seed, "rm", "-r", "--quiet", "--cached", ".")
        (seed / MEMORY).parent.mkdir(parents=True, exist_ok=True)
        (seed / MEMORY).write_text(text)
        git(seed, "add", MEMORY)
        git(seed, "commit", "--quiet", "-m", "seed memory")
        git(seed, "push", "--quiet", "origin", "acr-memory")
        return git(seed, "rev-parse", "HEAD")

    def push_branch(self, branch: str, files: Mapping[str, str]) -> str:
        """A new branch on origin, one commit on top of main; returns its sha."""
        work = self.tmp / f"push-{branch.replace('/', '-')}"
        git(self.tmp, "clone", "--quiet", str(self.origin), str(work))
        git(work, "checkout", "--quiet", "-b", branch)
        for rel, text in files.items():
            (work / rel).write_text(text)
        git(work, "add", "-A")
        git(work, "commit", "--quiet", "-m", f"work on {branch}")
        git(work, "push", "--quiet", "origin", branch)
        return git(work, "rev-parse", "HEAD")

    def written(self) -> list[str]:
        """Everything the bot wrote to GitHub: PR titles and bodies, comments."""
        texts = [c["body"] for c in self.fake.comments]
        for pull in self.fake.pulls.values():
            texts += [pull["title"], pull["body"]]
        return texts

    def writes(self) -> list[tuple[str, str]]:
        """The write requests the bot made to the API."""
        return [(m, p) for m, p, _ in self.fake.requests if m in ("POST", "PATCH", "DELETE", "PUT")]

    def leaks(self, secret: str) -> list[str]:
        """Where `secret` shows up in anything the run left behind (its mask line aside)."""
        places = []
        lines = [line for line in physical_lines(self.lines)
                 if secret in line and not line.startswith("::add-mask::")]
        if lines:
            places.append(f"log: {lines[:3]}")
        if any(secret in text for text in self.written()):
            places.append("GitHub (PR or comment)")
        for name, path in (("outputs", self.output), ("summary", self.summary)):
            if path.exists() and secret in path.read_text():
                places.append(name)
        if secret in git(self.origin, "log", "--all", "-p", "--format=%B"):
            places.append("origin (commits, the memory branch)")
        return places


def labeled(title: str = TITLE, body: str = TASK, number: int = 1) -> dict[str, Any]:
    return {"action": "labeled", "label": {"name": "acr:fix"},
            "issue": {"number": number, "title": title, "body": body,
                      "html_url": f"https://github.test/{REPO}/issues/{number}"},
            "repository": {"full_name": REPO, "default_branch": MAIN},
            "sender": {"login": "octocat", "type": "User"}}


def comment(body: str, association: str = "MEMBER", title: str = TITLE, issue_body: str = TASK,
            on_pr: bool = False, number: int = 1) -> dict[str, Any]:
    issue: dict[str, Any] = {"number": number, "title": title, "body": issue_body,
                             "html_url": f"https://github.test/{REPO}/issues/{number}"}
    if on_pr:
        issue["pull_request"] = {"url": f"https://api.github.test/repos/{REPO}/pulls/{number}"}
    return {"action": "created", "issue": issue,
            "comment": {"id": 77, "body": body, "author_association": association,
                        "user": {"login": "maintainer", "type": "User"}},
            "repository": {"full_name": REPO, "default_branch": MAIN}}


def closed_pull(number: int, body: str, merged: bool, head: str = "acr/issue-1"
                ) -> dict[str, Any]:
    repo = {"full_name": REPO}
    return {"action": "closed", "number": number,
            "pull_request": {"number": number, "body": body, "merged": merged,
                             "head": {"ref": head, "repo": repo}, "base": {"ref": MAIN}},
            "repository": {"full_name": REPO, "default_branch": MAIN}}


def failed_run(branch: str, sha: str, run_id: int) -> dict[str, Any]:
    return {"action": "completed",
            "workflow_run": {"id": run_id, "conclusion": "failure", "head_branch": branch,
                             "head_sha": sha, "name": "CI",
                             "head_repository": {"full_name": REPO}},
            "repository": {"full_name": REPO, "default_branch": MAIN}}
