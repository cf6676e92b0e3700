"""How to tell a test command to run fewer tests, or on more cores, without changing what it is.

`narrow` turns the repository's own test command into one that runs only the given test files
or ids, for the runners whose command line says what to collect: pytest (paths and node ids)
and Django's tests/runtests.py (dotted labels). Anything else (make, tox, npm, a shell
pipeline) is not rewritten: the verdict then has no first tier and runs the full suite. The
options, environment assignments and a leading `cd DIR &&` are kept as written.

`with_workers` adds pytest-xdist's `-n` when the project uses xdist or opts in (`test_workers`).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# pytest options whose value is the next word (`-k expr`); `--opt=value` needs no entry.
_PYTEST_VALUED = frozenset({
    "-p", "-k", "-m", "-o", "-c", "-W", "-n", "-r", "--deselect", "--ignore", "--ignore-glob",
    "--rootdir", "--confcutdir", "--maxfail", "--tb", "--junitxml", "--junit-xml", "--basetemp",
    "--durations", "--import-mode", "--log-level", "--dist", "--override-ini", "--cov",
    "--numprocesses", "--timeout", "--config-file", "--capture", "--color", "--log-file",
    "--cov-report", "--maxprocesses", "--tx", "--rsyncdir", "--pyargs",
})
# Django's runtests.py options whose value is the next word.
_DJANGO_VALUED = frozenset({"--settings", "-v", "--verbosity", "-k", "--tag", "--exclude-tag",
                            "--start-after", "--start-at", "--selenium", "--parallel"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_XDIST_OPTION = re.compile(r"(?:^|\s)(?:-n\s*\S|--numprocesses\b|-p\s*no:xdist)")


@dataclass(frozen=True)
class Command:
    """A test command taken apart: `cd DIR &&`, VAR=value words, the runner, its arguments."""

    cd: str | None
    env: tuple[str, ...]
    runner: tuple[str, ...]  # python -m pytest | pytest | python path/runtests.py
    args: tuple[str, ...]
    kind: str  # "pytest" or "django"


def parse(command: str) -> Command | None:
    """`command` as a runner we can narrow; None for anything else."""
    words = _words(command)
    if words is None:
        return None
    cd = None
    if words[:1] == ["cd"] and len(words) > 3 and words[2] == "&&":
        cd, words = words[1], words[3:]
    if any(w in ("&&", "||", ";", "|", "&", "(", ")", "<", ">", ">>") for w in words):
        return None
    env = tuple(w for w in _leading(words))
    rest = words[len(env):]
    for kind, size in (("pytest", _pytest_runner(rest)), ("django", _django_runner(rest))):
        if size:
            return Command(cd, env, tuple(rest[:size]), tuple(rest[size:]), kind)
    return None


def _words(command: str) -> list[str] | None:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:
        return None


def _leading(words: list[str]) -> list[str]:
    out = []
    for word in words:
        if not _ASSIGNMENT.match(word):
            break
        out.append(word)
    return out


def _pytest_runner(words: list[str]) -> int:
    """How many words start pytest: `pytest`, `py.test`, `python -m pytest` (0: not pytest)."""
    if words and PurePosixPath(words[0]).name in ("pytest", "py.test"):
        return 1
    if len(words) >= 3 and _is_python(words[0]) and words[1:3] == ["-m", "pytest"]:
        return 3
    return 0


def _django_runner(words: list[str]) -> int:
    if len(words) >= 2 and _is_python(words[0]) and PurePosixPath(words[1]).name == "runtests.py":
        return 2
    return 0


def _is_python(word: str) -> bool:
    return re.fullmatch(r"python(?:\d+(?:\.\d+)?)?", PurePosixPath(word).name) is not None


def narrow(command: str, targets: Sequence[str]) -> str | None:
    """`command` running only `targets` (repository-relative test files or pytest ids); None
    when it cannot be narrowed, or when none of `targets` is among what it already collects."""
    parsed = parse(command)
    if parsed is None or not targets:
        return None
    valued = _PYTEST_VALUED if parsed.kind == "pytest" else _DJANGO_VALUED
    options, positional = _split_args(parsed.args, valued)
    base = PurePosixPath(parsed.cd or ".")
    if parsed.kind == "django":
        wanted = _django_labels(parsed, targets)
    else:
        wanted = [_relative(t, base) for t in targets]
    wanted = [w for w in wanted if w is not None]
    if positional:  # the command already chooses what runs: stay within it
        wanted = [w for w in wanted if any(_within(w, p, parsed.kind) for p in positional)]
    if not wanted:
        return None
    words = [*parsed.env, *parsed.runner, *options, *wanted]
    if positional and not all(shlex.quote(w) == w for w in words):
        return None  # options re-quoted could expand differently: leave the command alone
    head = f"cd {shlex.quote(parsed.cd)} && " if parsed.cd else ""
    if not positional:  # the original text as written, the targets appended
        return f"{command} {' '.join(shlex.quote(w) for w in wanted)}"
    return head + " ".join(words)


def _split_args(args: Sequence[str], valued: frozenset[str]) -> tuple[list[str], list[str]]:
    """Options (with their values) and positional words."""
    options: list[str] = []
    positional: list[str] = []
    take = False
    for word in args:
        if take:
            options.append(word)
            take = False
        elif word.startswith("-"):
            options.append(word)
            take = word in valued
        else:
            positional.append(word)
    return options, positional


def _relative(target: str, base: PurePosixPath) -> str | None:
    """A repository-relative target as seen from the command's folder."""
    path, sep, rest = target.partition("::")
    if str(base) in ("", "."):
        return target
    try:
        return str(PurePosixPath(path).relative_to(base)) + sep + rest
    except ValueError:
        return None


def _django_labels(parsed: Command, targets: Sequence[str]) -> list[str | None]:
    """tests/files/tests.py -> files.tests: labels relative to runtests.py's folder."""
    script = PurePosixPath(parsed.cd or ".") / parsed.runner[1]
    folder = PurePosixPath(*[p for p in script.parent.parts if p != "."]) if script.parent.parts \
        else PurePosixPath(".")
    out: list[str | None] = []
    for target in targets:
        path = PurePosixPath(target.split("::", 1)[0])
        try:
            inner = path.relative_to(folder) if str(folder) != "." else path
        except ValueError:
            out.append(None)
            continue
        out.append(".".join(inner.with_suffix("").parts) if path.suffix == ".py" else None)
    return out


def _within(target: str, chosen: str, kind: str) -> bool:
    """Whether `target` lies inside what the command's own positional `chosen` collects."""
    if kind == "django":
        return target == chosen or target.startswith(chosen + ".")
    path, chosen_path = target.split("::", 1)[0], chosen.split("::", 1)[0]
    if "::" in chosen:
        return target == chosen or target.startswith(chosen + "::")
    return path == chosen_path or path.startswith(chosen_path.rstrip("/") + "/")


# --- parallel runs -------------------------------------------------------------------------


def with_workers(command: str, workers: str | None) -> str:
    """`command` with pytest-xdist's `-n workers` when it is a pytest command that does not
    choose its workers already; otherwise unchanged."""
    parsed = parse(command)
    if not workers or parsed is None or parsed.kind != "pytest":
        return command
    if _XDIST_OPTION.search(" " + " ".join(parsed.args)):
        return command
    return f"{command} -n {shlex.quote(workers)}"


def single_process(command: str) -> str:
    """`command` without pytest-xdist's workers (`-n 0`) when it has them: a few tests run
    faster in one process than in workers that each import the project first."""
    parsed = parse(command)
    if parsed is None or parsed.kind != "pytest":
        return command
    if not re.search(r"(?:^|\s)(?:-n\s*\S|--numprocesses\b)", " " + " ".join(parsed.args)):
        return command
    return f"{command} -n 0"


_XDIST_FILES = ("pyproject.toml", "setup.cfg", "tox.ini", "pytest.ini", ".pytest.ini",
                "requirements-dev.txt", "requirements-test.txt", "requirements_dev.txt",
                "test-requirements.txt", "dev-requirements.txt", "noxfile.py")


def detect_workers(root: Path) -> str | None:
    """"auto" when the project already runs pytest-xdist (it lists it, or its CI passes -n),
    so its tests are known to run in parallel; None otherwise."""
    texts = [_read(root / name) for name in _XDIST_FILES]
    workflows = root / ".github" / "workflows"
    if workflows.is_dir():
        texts += [_read(p) for p in sorted(workflows.glob("*.y*ml"))]
    joined = "\n".join(texts)
    if "pytest-xdist" in joined or re.search(r"pytest\b[^\n]*\s(?:-n\s*(?:auto|\d)|--numprocesses)",
                                             joined):
        return "auto"
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[:500_000]
    except OSError:
        return ""


def parallel_command(command: str, chosen: str | None, root: Path, *,
                     detect: bool) -> tuple[str, str]:
    """The test command with pytest-xdist workers, and why ('' when unchanged): `chosen` is
    the `test_workers` setting ("off": never); else, when `detect`, the project's own use."""
    if chosen == "off":
        return command, ""
    workers = chosen or (detect_workers(root) if detect else None)
    widened = with_workers(command, workers)
    if widened == command:
        return command, ""
    why = "test_workers" if chosen else "the project runs pytest-xdist"
    return widened, f"-n {workers}: {why}"
