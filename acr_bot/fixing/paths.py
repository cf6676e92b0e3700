"""Which paths an edit may touch: inside the repo, not in .git, not through symlinks, not
protected. The rules are the first line of defence against a model told to escape the tree."""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from acr_bot.domain import Edit
from acr_bot.errors import EditRefused


def matches_glob(path: str, pattern: str) -> bool:
    """Gitignore-like match: `**` spans directories, a slash-less pattern matches any component.

    A pattern that matches a directory matches everything under it. Case is ignored, so that a
    case-insensitive filesystem cannot be used to slip past a protected path.
    """
    pattern = pattern.casefold().rstrip("/")
    parts = [p for p in path.casefold().split("/") if p]
    if "/" not in pattern:
        return any(fnmatch.fnmatchcase(part, pattern) for part in parts)
    pattern_parts = [p for p in pattern.split("/") if p]
    return any(_match_parts(parts[:k], pattern_parts) for k in range(1, len(parts) + 1))


def _match_parts(parts: list[str], pattern: list[str]) -> bool:
    """Match path components against pattern components, `**` standing for zero or more."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_match_parts(parts[k:], pattern[1:]) for k in range(len(parts) + 1))
    return (
        bool(parts)
        and fnmatch.fnmatchcase(parts[0], pattern[0])
        and _match_parts(parts[1:], pattern[1:])
    )


def check_paths(root: Path, edits: Sequence[Edit], protected: Sequence[str]) -> None:
    """Raise EditRefused, naming each path and the rule it breaks, if any edit may not be made.

    The first line holds every path and its reason: it is what the console, the JSON `detail`
    and the PR or issue comment show."""
    refusals = [
        f"{path!r}: {rule.rstrip('.')}"
        for path in dict.fromkeys(e.path for e in edits)
        if (rule := _refusal(root, path, protected))
    ]
    if refusals:
        raise EditRefused(
            "These edits were refused and nothing was applied: " + "; ".join(refusals) + ".\n"
            "Edit only files inside the repository, by paths relative to its root."
        )


def protected_reason(path: str, protected: Sequence[str]) -> str:
    """`path` with the protected glob it matches, worded as a refusal (agent reverts use it)."""
    pattern = next((p for p in protected if matches_glob(path, p)), None)
    return f"{path!r}: the path is protected (it matches {pattern!r})" if pattern else repr(path)


def _refusal(root: Path, path: str, protected: Sequence[str]) -> str:
    """The rule `path` breaks, or ''."""
    if not path.strip() or "\0" in path:
        return "the path is empty or contains a NUL byte."
    if re.search(r"[\x00-\x1f\x7f]", path):
        # A line break in a name would forge lines wherever paths are listed (the PR body).
        return "the path contains a control character."
    # A backslash is a separator on Windows and a name character here: refuse the ambiguity.
    if "\\" in path:
        return "backslashes are not allowed in paths; separate directories with '/'."
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        return "absolute paths are not allowed."
    parts = PurePosixPath(path).parts
    if not parts:
        return "the path names no file."
    if ".." in parts:
        return "'..' is not allowed in paths."
    if parts[0].startswith("~"):
        return "paths starting with '~' (a home directory) are not allowed."
    if any(part.casefold() == ".git" for part in parts):
        return "files inside .git may never be edited."
    if any(len(part.encode()) > 255 for part in parts) or len(path.encode()) > 1024:
        return "the path is too long (at most 255 bytes a name, 1024 in all)."
    normal = "/".join(parts)
    for pattern in protected:
        if matches_glob(normal, pattern):
            return f"the path is protected (it matches {pattern!r})."
    return _filesystem_refusal(root, parts)


def _filesystem_refusal(root: Path, parts: tuple[str, ...]) -> str:
    """The rule the existing files on the way to the target break, or ''."""
    for k in range(1, len(parts) + 1):
        here = root.joinpath(*parts[:k])
        if os.path.islink(here):
            return f"{'/'.join(parts[:k])!r} is a symbolic link; links are never followed."
        if not os.path.lexists(here):
            return ""
        if k < len(parts) and not here.is_dir():
            return f"{'/'.join(parts[:k])!r} is not a directory."
    return "" if root.joinpath(*parts).is_file() else "the path exists but is not a regular file."
