"""What a CI `run:` script does: run tests (and with which runner), install, or check style.

Each shell command of the script is read for its program, after the wrappers that only start
another program (`uv run`, `poetry run`, `python -m`, `coverage run -m`, `npx`, `VAR=x`...).
A tox or nox run counts as tests unless every environment it names is a docs, lint, typing or
release one; `cargo test --no-run` only builds. Pure functions.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

# Environments, scripts and make targets that run something else than the tests.
NOT_TESTS = frozenset({
    "doc", "docs", "lint", "linting", "typing", "type", "types", "typecheck", "mypy", "pyright",
    "style", "format", "fmt", "release", "notes", "build", "pre-commit", "precommit", "spell",
    "spelling", "changelog", "publish", "bump", "linkcheck", "checklinks", "bench",
    "benchmark", "benchmarks", "deploy", "clean"})
CHECKERS = frozenset({
    "ruff", "flake8", "black", "isort", "mypy", "pyright", "pylint", "pre-commit", "prek",
    "eslint", "prettier", "tsc", "golangci-lint", "gofmt", "staticcheck", "shellcheck",
    "actionlint", "codespell", "typos", "stubtest", "sphinx-lint", "rstcheck", "twine"})
CHECK_NAME = re.compile(r"\b(lint|linters?|linting|format|formatting|typ(e|es|ing)|type.?check|"
                        r"static analysis|spell\w*|mypy|pyright|flake8|ruff|pre-commit|style|"
                        r"code quality)\b", re.IGNORECASE)
INSTALLERS = {"pip": {"install"}, "pip3": {"install"}, "pipx": {"install"},
              "npm": {"ci", "install", "i"}, "pnpm": {"install", "i", "add"},
              "yarn": {"install", "add"}, "bun": {"install"}, "poetry": {"install"},
              "pdm": {"install", "sync"}, "apt-get": {"install"}, "apt": {"install"},
              "brew": {"install"}, "go": {"install", "get"}, "cargo": {"install", "fetch"},
              "gem": {"install"}, "bundle": {"install"}, "conda": {"install"}}
FAMILIES = {"pytest": "python", "unittest": "python", "tox": "python", "nox": "python",
            "hatch test": "python", "npm test": "node", "jest": "node", "vitest": "node",
            "mocha": "node", "node --test": "node", "go test": "go", "cargo test": "rust",
            "cargo nextest": "rust"}
# Options of the wrappers that take a value (`uv run --with x pytest`).
VALUED = frozenset({"--with", "--group", "--extra", "--python", "-p", "--package", "--directory",
                    "--project", "--only-group", "--env-file", "--with-requirements", "-e",
                    "--env", "-a", "--auto-servernum", "-s", "--server-args", "-k", "--signal"})
WRAPPERS = frozenset({"sudo", "env", "time", "exec", "nice", "xvfb-run", "timeout", "then",
                      "do", "else", "{", "(", "!", "npx", "bunx", "command"})
RUN_WRAPPERS = frozenset({"uv", "poetry", "pdm", "pipenv", "rye", "pixi", "conda"})


@dataclass(frozen=True)
class Script:
    """What a script does."""

    runner: str | None  # "pytest", "tox", "npm test", "go test", "make test"... or None
    installs: bool  # its first command installs something
    checks: bool  # its first command is a linter, formatter or type checker

    @property
    def family(self) -> str:
        """The language of its test runner ("generic" for make and the like)."""
        return FAMILIES.get(self.runner or "", "generic")


def read_script(script: str) -> Script:
    programs = [_program(words) for words in commands(script)]
    programs = [p for p in programs if p]
    runner = next((r for r in map(_runner, programs) if r), None)
    first = programs[0] if programs else []
    installs = bool(first) and (first[0] in INSTALLERS and len(first) > 1 and
                                first[1] in INSTALLERS[first[0]] or first[:2] == ["uv", "sync"]
                                or first[:3] == ["uv", "pip", "install"])
    return Script(runner, installs, bool(first) and _checker(first))


def is_check(name: str, script: str) -> bool:
    """Whether a step lints, formats or type-checks (by its name or its first command)."""
    return bool(CHECK_NAME.search(name)) or read_script(script).checks


def commands(script: str) -> list[list[str]]:
    """The words of each simple command in a shell script (comments and `\\` joins removed)."""
    text = re.sub(r"\\\n", " ", script)
    found = []
    for line in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        for part in re.split(r"&&|\|\||;|\|", line):
            try:
                words = shlex.split(part)
            except ValueError:
                words = part.split()
            if words:
                found.append(words)
    return found


def _program(words: list[str]) -> list[str]:
    """The words from the program the command really starts (wrappers and VAR=x skipped)."""
    words = list(words)
    while words:
        head = words[0]
        if re.fullmatch(r"[A-Za-z_]\w*=.*", head) or head in WRAPPERS:
            words = words[1:]
            if head == "timeout" and words:
                words = words[1:]
        elif head in RUN_WRAPPERS and len(words) > 1 and words[1] in ("run", "exec"):
            words = _skip_options(words[2:])
        elif re.fullmatch(r"python[\d.]*|py", head) or head == "coverage" and "run" in words:
            module = _module(words)
            if module is None:
                return words
            words = module
        elif head in ("pnpm", "yarn", "bundle") and len(words) > 1 and words[1] == "exec":
            words = words[2:]
        else:
            return words
    return words


def _skip_options(words: list[str]) -> list[str]:
    while words and words[0].startswith("-"):
        words = words[2:] if words[0] in VALUED and "=" not in words[0] else words[1:]
    return words


def _module(words: list[str]) -> list[str] | None:
    """`python -X dev -m pytest -q` -> ["pytest", "-q"]; None when no -m module is run."""
    if "-m" not in words:
        return None
    index = words.index("-m")
    return words[index + 1:] if index + 1 < len(words) else None


def _runner(words: list[str]) -> str | None:
    head, args = words[0].rsplit("/", 1)[-1], words[1:]
    plain = [a for a in args if not a.startswith("-")]
    if head in ("pytest", "py.test"):
        return "pytest"
    if head == "unittest" or head in ("nose2", "nosetests", "trial"):
        return "unittest"
    if head in ("tox", "nox"):
        return head if _env_runs_tests(head, args) else None
    if head == "hatch":
        return "hatch test" if plain[:1] == ["test"] or (
            plain[:1] == ["run"] and len(plain) > 1 and _is_test_name(
                plain[1].split(":")[-1])) else None
    return _package_runner(head, args, plain) or _native_runner(head, args, plain)


def _package_runner(head: str, args: list[str], plain: list[str]) -> str | None:
    if head in ("jest", "vitest", "mocha", "ava"):
        return None if plain[:1] == ["bench"] else head
    if head == "node" and "--test" in args:
        return "node --test"
    if head not in ("npm", "pnpm", "yarn", "bun") or not plain:
        return None
    script = plain[1] if plain[0] in ("run", "run-script") and len(plain) > 1 else plain[0]
    if plain[0] in ("test", "t") or _is_test_name(script):
        return "npm test"
    return None


def _native_runner(head: str, args: list[str], plain: list[str]) -> str | None:
    if head == "go" and plain[:1] == ["test"]:
        return "go test"
    if head == "cargo" and plain[:1] == ["test"] and "--no-run" not in args:
        return "cargo test"
    if head == "cargo" and plain[:2] == ["nextest", "run"]:
        return "cargo nextest"
    if head in ("make", "gmake"):
        targets = [a for a in plain if "=" not in a]
        if any(t in ("check", "tests") or _is_test_name(t) for t in targets):
            return "make test"
    if head in ("ctest", "rspec", "phpunit") or (head in ("mvn", "gradle", "gradlew", "dotnet",
                                                          "swift", "mix", "rake")
                                                 and "test" in plain):
        return f"{head} test"
    return None


def _is_test_name(name: str) -> bool:
    """`test`, `test-ci`, `test:unit`, `unit-test`, not `test-docs`."""
    tokens = [t for t in re.split(r"[-_:.]", name.lower()) if t]
    return bool(tokens) and any(t in ("test", "tests") for t in tokens) and not (
        set(tokens) & NOT_TESTS)


def _env_runs_tests(tool: str, args: list[str]) -> bool:
    if tool == "tox" and (args[:1] and args[0] in ("list", "-l", "-a", "config", "--version",
                                                   "devenv", "legacy", "quickstart")):
        return False
    names: list[str] = []
    for index, arg in enumerate(args):
        flag = arg.split("=", 1)[0]
        if flag in ("-e", "--env", "-s", "--session", "--sessions", "-t", "--tags"):
            value = arg.split("=", 1)[1] if "=" in arg else (
                args[index + 1] if index + 1 < len(args) else "")
            names += [n for n in re.split(r"[,\s]", value) if n]
    return not names or any(not set(re.split(r"[-_.:]", n.lower())) & NOT_TESTS for n in names)


def _checker(words: list[str]) -> bool:
    head = words[0].rsplit("/", 1)[-1]
    plain = [w for w in words[1:] if not w.startswith("-")]
    if head in CHECKERS:
        return True
    if head == "go" and plain[:1] == ["vet"] or head == "cargo" and plain[:1] in (
            ["fmt"], ["clippy"]) or head == "hatch" and plain[:1] == ["fmt"]:
        return True
    return head in ("npm", "pnpm", "yarn") and any(
        p in ("lint", "typecheck", "format", "fmt") for p in plain[:2])
