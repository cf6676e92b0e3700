"""What changed in a tree since it was last synced, and a copy's changes applied back to it:
the sandbox's copy of the tree is made once and then synced incrementally (verify/workspace.py).

A manifest is every entry's type, mode, size, times, inode and link target, links not
followed. An entry written within `RACY_S` seconds before its manifest was taken counts as
changed whatever its signature (a same-size rewrite in the same clock tick leaves the times
equal: git's "racy clean" problem), so a sync can copy too much, never too little.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

RACY_S = 0.1  # well over a tick of the kernel's coarse clock (at most 10 ms)
Signature = tuple[str, int, int, int, int, int, str]  # kind, mode, size, mtime, ctime, ino, link


@dataclass(frozen=True)
class Manifest:
    entries: dict[str, Signature]
    taken_ns: int = field(default_factory=time.time_ns)


def manifest(tree: Path) -> Manifest:
    """Every entry under `tree` but its top-level .git."""
    taken = time.time_ns()
    entries: dict[str, Signature] = {}
    for path, rel in walk(tree):
        try:
            entries[rel] = _signature(path)
        except OSError:
            continue  # gone while walking: the next sync sees it
    return Manifest(entries, taken)


def walk(tree: Path) -> Iterable[tuple[Path, str]]:
    """Every entry under `tree` but its top-level .git, parents first; links not followed."""
    for folder, dirs, files in os.walk(tree):
        here = Path(folder)
        if here == tree:
            dirs[:] = [d for d in dirs if d != ".git"]
            files = [f for f in files if f != ".git"]
        dirs.sort()
        for name in sorted(dirs) + sorted(files):
            yield here / name, str((here / name).relative_to(tree))


def _signature(path: Path) -> Signature:
    info = path.lstat()
    kind = "d" if stat.S_ISDIR(info.st_mode) else "l" if stat.S_ISLNK(info.st_mode) else "f"
    link = os.readlink(path) if kind == "l" else ""
    return (kind, stat.S_IMODE(info.st_mode), info.st_size if kind == "f" else 0,
            info.st_mtime_ns, info.st_ctime_ns, info.st_ino, link)


def changes(old: Manifest, new: Manifest) -> tuple[list[str], list[str]]:
    """(entries to copy, parents first; entries to remove first, their type changed too)."""
    racy = old.taken_ns - int(RACY_S * 1e9)
    copy, remove = [], []
    for rel, sig in new.entries.items():
        before = old.entries.get(rel)
        if before is not None and before[0] != sig[0]:
            remove.append(rel)  # a file became a folder (or a link): make room first
        if before != sig or sig[3] >= racy or sig[4] >= racy:
            copy.append(rel)
    remove += [rel for rel in old.entries if rel not in new.entries]
    return sorted(copy), _outermost(remove)


def _outermost(paths: Iterable[str]) -> list[str]:
    """`paths` without those under another one of them (removing the folder removes them)."""
    out: list[str] = []
    for rel in sorted(set(paths)):
        if not out or not rel.startswith(out[-1] + "/"):
            out.append(rel)
    return out


def apply_back(tree: Path, staged: Path, present: set[str]) -> None:
    """Make `tree` (but its .git) hold what a copy holds: the entries `staged` has (changed in
    the copy, already checked) moved into place; entries of `tree` the copy no longer has
    (`present`: every path in the copy) removed."""
    for rel in _outermost(r for _, r in walk(tree) if r not in present):
        _remove(tree / rel)
    for path, rel in walk(staged) if staged.is_dir() else ():
        target = tree / rel
        if path.is_dir() and not path.is_symlink():
            if target.is_symlink() or (target.exists() and not target.is_dir()):
                _remove(target)
            target.mkdir(exist_ok=True)
            continue
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(path, target)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
