"""Run the repo's own tests (locally, bounded in time and output) and judge a patch by them."""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from acr_bot.domain import TestRun
from acr_bot.errors import VerifyError
from acr_bot.gitrepo import base_repository
from acr_bot.secrets import is_credential, scrub_env
from acr_bot.verify.isolation import SandboxUser, protect, sandbox_user
from acr_bot.verify.judge import failure_feedback, judge
from acr_bot.verify.process import OutputBuffer, clean_output, run_command, run_shell, test_run
from acr_bot.verify.reach import check_reach, needed_paths
from acr_bot.verify.workspace import (
    PlainCopy,
    Workspace,
    copy_back,
    isolated_exec,
    isolated_run,
)

log = logging.getLogger(__name__)

# judge and failure_feedback live with the result parsing (pure functions on TestRuns) but are
# part of the verifier's interface.
__all__ = [
    "AGENT_ENV",
    "LocalSandbox",
    "OutputBuffer",
    "Sandbox",
    "Shell",
    "clean_output",
    "detect_test_command",
    "src_layout",
    "failure_feedback",
    "judge",
    "run_command",
    "test_run",
]

# --- which command runs the tests ------------------------------------------------------------

PYTEST_COMMAND = "python -m pytest -q"
_NPM_PLACEHOLDER = "no test specified"  # npm init's `echo "Error: no test specified" && exit 1`
_PYTEST_CONFIGS = (
    ("pyproject.toml", re.compile(r"^\s*\[tool\.pytest", re.MULTILINE)),
    ("setup.cfg", re.compile(r"^\s*\[tool:pytest\]", re.MULTILINE)),
    ("tox.ini", re.compile(r"^\s*\[pytest\]", re.MULTILINE)),
)
_PYTHONPATH = re.compile(r"^\s*pythonpath\s*=", re.MULTILINE)
# `test:` or `lint test:`, but not the assignments `test := x` or `test ::= x`.
_MAKE_TEST = re.compile(
    r"^(?:[\w./-]+[ \t]+)*test(?:[ \t]+[\w./-]+)*[ \t]*(?::(?![:=])|::(?!=))", re.MULTILINE
)


def detect_test_command(root: Path) -> str | None:
    """The command that runs the repo's tests, guessed from its files; None if none is known."""
    checks = (
        (_uses_pytest, _pytest_command(root)),
        (_has_npm_test, "npm test"),
        (lambda r: (r / "go.mod").is_file(), "go test ./..."),
        (lambda r: (r / "Cargo.toml").is_file(), "cargo test"),
        (_has_make_test, "make test"),
        (lambda r: "[testenv" in _read(r / "tox.ini"), "tox"),
        (lambda r: (r / "noxfile.py").is_file(), "nox"),
    )
    return next((command for check, command in checks if check(root)), None)


def _pytest_command(root: Path) -> str:
    """pytest, with src/ importable when the code lives there and nothing else says so."""
    configured = any(_PYTHONPATH.search(_read(root / name)) for name in
                     ("pyproject.toml", "pytest.ini", "setup.cfg", "tox.ini"))
    if configured or not src_layout(root):
        return PYTEST_COMMAND
    return f"PYTHONPATH=src {PYTEST_COMMAND}"


def src_layout(root: Path) -> bool:
    """Whether the Python code lives under src/ (src/<package>/__init__.py or src/<module>.py)."""
    src = root / "src"
    try:
        return src.is_dir() and any(
            (p / "__init__.py").is_file() or p.suffix == ".py" for p in src.iterdir())
    except OSError:
        return False


def _read(path: Path, limit: int = 1_000_000) -> str:
    """The start of a text file, or "" when it cannot be read."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return handle.read(limit)
    except OSError:
        return ""


def _uses_pytest(root: Path) -> bool:
    """Whether the repo is configured for pytest or has pytest-style test files."""
    if (root / "pytest.ini").is_file() or (root / "conftest.py").is_file():
        return True
    if any(pattern.search(_read(root / name)) for name, pattern in _PYTEST_CONFIGS):
        return True
    return any(_has_python_tests(root / folder) for folder in ("tests", "test")) or (
        _root_tests(root))


def _root_tests(root: Path) -> bool:
    """Whether test_*.py or *_test.py files sit at the top of the repository (a small
    project's layout: pytest collects them there too)."""
    try:
        return any(p.name.startswith("test_") or p.name.endswith("_test.py")
                   for p in root.glob("*.py") if p.is_file())
    except OSError:
        return False


def _has_python_tests(folder: Path) -> bool:
    """Whether `folder` holds a test_*.py or *_test.py file at any depth."""
    if not folder.is_dir():
        return False
    try:
        return any(
            p.name.startswith("test_") or p.name.endswith("_test.py") for p in folder.rglob("*.py")
        )
    except OSError:
        return False


def _has_npm_test(root: Path) -> bool:
    """Whether package.json has a real `scripts.test`, not npm init's placeholder."""
    try:
        data = json.loads(_read(root / "package.json") or "null")
    except ValueError:
        return False
    scripts = data.get("scripts") if isinstance(data, dict) else None
    test = scripts.get("test") if isinstance(scripts, dict) else None
    return isinstance(test, str) and bool(test.strip()) and _NPM_PLACEHOLDER not in test


def _has_make_test(root: Path) -> bool:
    """Whether a Makefile defines a `test` target."""
    names = ("GNUmakefile", "makefile", "Makefile")
    return any(_MAKE_TEST.search(_read(root / name)) for name in names)


# --- sandboxes -------------------------------------------------------------------------------


# What every agent command gets on top of the scrubbed environment: no pager or progress bar
# waiting on a terminal, and no hook or fsmonitor command the repository could plant for git.
AGENT_ENV = {
    "PAGER": "cat", "MANPAGER": "cat", "GIT_PAGER": "cat", "LESS": "-R", "PIP_PROGRESS_BAR": "off",
    "TQDM_DISABLE": "1", "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_COUNT": "2",
    "GIT_CONFIG_KEY_0": "core.hooksPath", "GIT_CONFIG_VALUE_0": "/dev/null",
    "GIT_CONFIG_KEY_1": "core.fsmonitor", "GIT_CONFIG_VALUE_1": "false",
}


class Shell(Protocol):
    """One agent attempt's place to run commands, from `Sandbox.session`."""

    def exec(self, command: str, timeout: float, limit: int) -> TestRun:
        """Run one shell command (killed with all it started after `timeout` s; output
        bounded to `limit` bytes, head and tail). A hang or crash is a result, not an error."""
        ...

    def close(self) -> None:
        """End the session: the workspace then holds what the commands left."""
        ...


class Sandbox(Protocol):
    """Where the setup and test commands run: this machine, or a container."""

    name: str

    def prepare(self, setup_command: str | None, workdir: Path) -> TestRun | None:
        """Run the setup command once (None: nothing to set up)."""
        ...

    def run(self, command: str, workdir: Path) -> TestRun:
        """Run `command` in `workdir` and return what happened."""
        ...

    def session(self, workdir: Path) -> Shell:
        """A shell for one agent attempt on `workdir`; close it to get the changes back."""
        ...

    def close(self) -> None:
        """Release whatever the sandbox holds (containers, images)."""
        ...


class LocalSandbox:
    """Runs untrusted commands as local subprocesses: as the unprivileged sandbox user on its
    own copy of the tree (isolation.py), with the bot's secrets scrubbed from the environment.
    Where no other user is available it runs them as the bot's user, and refuses to when the
    bot's environment holds credentials."""

    name = "local"

    def __init__(
        self,
        timeout: float = 600,
        max_output: int = 64_000,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_output = max_output
        self.env = scrub_env(os.environ if env is None else env)
        self._space: Workspace | None = None
        self._protected: set[Path] = set()  # workdirs whose repository was checked
        self._user: SandboxUser | None | bool = False  # False: not looked up yet
        self._reached: set[str] = set()  # commands whose program the sandbox user can run

    def prepare(self, setup_command: str | None, workdir: Path) -> TestRun | None:
        """Run the setup command in `workdir` (its effects stay there for the test runs)."""
        return self.run(setup_command, workdir) if setup_command else None

    def run(self, command: str, workdir: Path) -> TestRun:
        """Run `command` in `workdir` with this sandbox's limits."""
        space = self._workspace(workdir)
        if space is None:
            return run_command(
                command, workdir, timeout=self.timeout, env=self.env, max_output=self.max_output
            )
        self._reach(space, command, workdir)
        return isolated_run(space, command, workdir, timeout=self.timeout, env=self.env,
                            max_output=self.max_output)

    def _reach(self, space: Workspace, command: str, workdir: Path) -> None:
        """Before a command first runs: keep its program and interpreter usable by the sandbox
        user, or stop with one line that says which path and what to do."""
        if command in self._reached:
            return
        needed = needed_paths(command, workdir, self.env)
        if space.need(needed):  # a toolchain kept anew: what it exposes is checked again
            self._protected.discard(workdir)
            self._workspace(workdir)
        check_reach(space.user, needed, space.prelude)
        self._reached.add(command)

    def session(self, workdir: Path) -> LocalShell:
        """Agent commands run like the tests: on the sandbox user's copy of `workdir`."""
        return LocalShell(self._workspace(workdir), workdir, {**self.env, **AGENT_ENV})

    def close(self) -> None:
        """Delete the sandbox user's copy; every command's process group is already gone."""
        if self._space is not None:
            self._space.remove()
            self._space = None

    def _workspace(self, workdir: Path) -> Workspace | None:
        """The sandbox user's copy (None: run unisolated, allowed only without credentials)."""
        user = self._sandbox_user()
        if user is None:
            return None
        if self._space is None:
            self._space = Workspace(user, workdir)
        if workdir not in self._protected:
            space = self._space
            for change in protect(user, workdir, space.hidden, space.prelude):
                log.warning("sandbox: %s: no longer %s by other users", change.split(" ", 1)[1],
                            "readable" if change.startswith("read") else "writable")
            self._protected.add(workdir)
        return self._space

    def _sandbox_user(self) -> SandboxUser | None:
        if self._user is False:
            found = sandbox_user()
            if isinstance(found, str):
                held = sorted(n for n, v in os.environ.items() if is_credential(n, v))
                if held:
                    raise VerifyError(
                        f"sandbox: local cannot run untrusted code as another user here ({found})"
                        f" and the environment holds {', '.join(held)}: use sandbox: docker, "
                        "or run the bot as root or with passwordless sudo")
                log.warning("sandbox: local runs the tests as the bot's own user (%s); there "
                            "are no credentials in the environment to protect", found)
            self._user = None if isinstance(found, str) else found
        return self._user if isinstance(self._user, SandboxUser) else None


class LocalShell:
    """Runs each agent command like a test command (own session, killed whole, bounded), on a
    copy of the tree made at the start of the attempt and copied back by `close`: the sandbox
    user's, or a private one of the bot's user where there is no sandbox user. The copy is a
    git repository of its own at the attempt's base (`gitrepo.base_repository`), with the
    tree's changes as working-tree changes."""

    def __init__(self, space: Workspace | None, workdir: Path, env: Mapping[str, str]) -> None:
        self.space = space
        self.workdir = workdir
        self.env = dict(env)
        # bash where there is one, as in the scaffold the routing data comes from: models write
        # bash (`{1..3}`, `[[ ]]`, `<(...)`), and /bin/sh is often dash.
        self.bash = shutil.which("bash", path=self.env.get("PATH"))
        self.plain: PlainCopy | None = None
        with base_repository(workdir) as dot:
            if space is not None:
                space.sync_in(workdir, dot)
            else:
                self.plain = PlainCopy(workdir, dot)

    def exec(self, command: str, timeout: float, limit: int) -> TestRun:
        line = f"exec {shlex.quote(self.bash)} -c {shlex.quote(command)}" if self.bash else command
        if self.plain is not None:
            run = run_shell(line, self.plain.path, timeout=timeout, env=self.env,
                            max_output=limit)
        else:
            assert self.space is not None
            run = isolated_exec(self.space, line, timeout=timeout, env=self.env, max_output=limit)
        return replace(run, command=command)

    def close(self) -> None:
        """Hand what the commands left back to the workspace."""
        if self.plain is not None:
            self.plain.close()
        elif self.space is not None:
            copy_back(self.space, self.workdir)
