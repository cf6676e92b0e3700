"""Whether the sandbox user can run a command at all, checked before its first run.

A test command whose program or interpreter lives where the sandbox user cannot go (a venv in a
`0700` folder, a toolchain in a private home) would run as `exit 126` with no test results: a
baseline no one can read. So before a command first runs, its program and, for a script, its
`#!` interpreter are found the way the shell would find them (PATH of the command's own
environment), the sandbox keeps them (workspace `need`, isolation `kept_paths`), and a probe as
the sandbox user checks them; what it still cannot use stops the run with one line that names
the path and what to do.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from acr_bot.errors import VerifyError
from acr_bot.verify.isolation import SandboxUser

_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_WRAPPERS = {"env", "exec", "command", "nice", "time", "nohup"}
# For each path: usable (a file: executable, and readable when it is a script), else the first
# folder on the way that the user may not enter, or the path itself.
_PROBE = ('for p in "$@"; do f=${p#*:}; ok=1; [ -x "$f" ] || ok=0; '
          'case "$p" in r:*) [ -r "$f" ] || ok=0;; esac; [ $ok = 1 ] && continue; '
          'd=""; b="$f"; for part in $(printf %s "${f#/}" | tr / " "); do d="$d/$part"; '
          '[ "$d" = "$f" ] && break; [ -x "$d" ] || { b="$d"; break; }; done; '
          'echo "$f|$b"; done; exit 0')


def needed_paths(command: str, workdir: Path, env: Mapping[str, str]) -> list[Path]:
    """The program `command` starts (its first word after VAR=value assignments) and, for a
    script, its `#!` interpreter, as named and as resolved, where they lie outside `workdir`
    (the sandbox has its own copy of what is inside)."""
    program = _program(command)
    if program is None:
        return []
    found: list[Path] = []
    first = _locate(program, workdir, env)
    for path in [first, _interpreter(first, env)] if first else []:
        for candidate in _links(path) if path else []:
            if not candidate.is_relative_to(workdir) and candidate not in found:
                found.append(candidate)
    return found


def _links(path: Path) -> list[Path]:
    """`path` and every place its symbolic links lead through (a venv's python -> a uv
    Python -> the binary): the kernel must reach each of them."""
    hops = [path]
    while hops[-1].is_symlink() and len(hops) < 40:
        target = Path(os.readlink(hops[-1]))
        hops.append(Path(os.path.normpath(hops[-1].parent / target)))
    return [*hops, Path(os.path.realpath(path))]


def _program(command: str) -> str | None:
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    words = [w for w in words if not _ASSIGNMENT.match(w)]
    while words and words[0] in _WRAPPERS:
        words = [w for w in words[1:] if not w.startswith("-")]
    if not words or any(c in words[0] for c in "$`(){};|&<>*?"):
        return None  # shell syntax: the shell resolves it, nothing to find ahead
    return words[0]


def _locate(program: str, workdir: Path, env: Mapping[str, str]) -> Path | None:
    if "/" in program:
        path = Path(program) if program.startswith("/") else workdir / program
        return path if path.exists() else None
    found = shutil.which(program, path=env.get("PATH", os.defpath))
    return Path(found) if found else None


def _interpreter(path: Path, env: Mapping[str, str]) -> Path | None:
    """The `#!` interpreter of a script (`#!/usr/bin/env python3` looked up on PATH)."""
    try:
        if not path.is_file():
            return None
        with path.open("rb") as handle:
            head = handle.read(256)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].decode(errors="replace").split()
    if not words:
        return None
    if Path(words[0]).name == "env" and len(words) > 1:
        found = shutil.which(words[1], path=env.get("PATH", os.defpath))
        return Path(found) if found else None
    return Path(words[0])


def check_reach(user: SandboxUser, paths: Sequence[Path], prelude: str | None) -> None:
    """Stop with one line when the sandbox user cannot use one of `paths`."""
    if not paths:
        return
    args = [f"{'r' if _is_script(p) else 'x'}:{p}" for p in paths]
    proc = user.run(["/bin/sh", "-c", _PROBE, "sh", *args], stdout=subprocess.PIPE,
                    prelude=prelude)
    out, _ = proc.communicate(timeout=60)
    for line in out.decode(errors="replace").splitlines():
        path, _, blocker = line.partition("|")
        raise VerifyError(_message(user, Path(path), Path(blocker or path)))


def _is_script(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(2) == b"#!"
    except OSError:
        return False


def _message(user: SandboxUser, path: Path, blocker: Path) -> str:
    try:
        mode = stat.filemode(blocker.stat().st_mode)
    except OSError:
        mode = "missing"
    return (f"sandbox: local: the sandbox user {user.name} cannot run {path}: {blocker} "
            f"({mode}) is closed to it. Make it readable (chmod o+rx {shlex.quote(str(blocker))}"
            ", and each folder above it), move the toolchain out of it, or use sandbox: docker")
