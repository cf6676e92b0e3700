"""Which tests matter to a change: the verdict's first tier picks them, the full suite follows.

A static import graph of the tree's Python files, read with `ast` (no code of the repository
runs): the test modules that import a changed module, directly or through a package whose
`__init__.py` changed. Named tests come first, then the test module named after a changed module
(`test_<name>.py`, `<name>_test.py`), then the other importers. Nothing here decides a verdict:
a first tier only ever rejects early, and the full suite still runs before any acceptance, so a
test the graph misses (a dynamic import, a fixture) is caught there.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

DEFAULT_LIMIT = 40  # test modules in a first tier: past this, the full suite is the better buy


@dataclass(frozen=True)
class Selection:
    """The first tier: named tests (runner ids) and test modules (paths), most related first."""

    named: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()  # the changed modules' dotted names the modules import
    dropped: int = 0  # importers left out past the limit

    @property
    def empty(self) -> bool:
        return not self.named and not self.modules


def is_test_module(path: str) -> bool:
    """A file a Python runner collects: test*.py (pytest's and unittest's default patterns
    together) or *_test.py; conftest.py is configuration, not a test module."""
    name = PurePosixPath(path).name
    return name.endswith(".py") and (name.startswith("test") or name.endswith("_test.py"))


def module_index(paths: Iterable[str]) -> dict[str, str]:
    """Dotted module name -> path for every .py file, packages being the folders with an
    __init__.py (so src/pkg/x.py is pkg.x and tests/test_x.py without one is test_x)."""
    python = [p for p in paths if p.endswith(".py")]
    packages = {str(PurePosixPath(p).parent) for p in python if p.endswith("/__init__.py")}
    if any(p == "__init__.py" for p in python):
        packages.add(".")
    index: dict[str, str] = {}
    for path in python:
        index.setdefault(module_name(path, packages), path)
    return index


def module_name(path: str, packages: set[str]) -> str:
    """`path`'s dotted name: its folders from the outermost package down."""
    pure = PurePosixPath(path)
    parts = [] if pure.name == "__init__.py" else [pure.stem]
    folder = pure.parent
    while str(folder) in packages and str(folder) != ".":
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts)


# An import statement, wherever it stands (a function body too), with its parenthesised or
# backslash-continued lines: only these are parsed, not the whole file (10x faster on Django).
_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+[\w.]+[ \t]+import[ \t]*(?:\([^)]*\)|[^\n]*)"
                     r"|import[ \t]+[^\n]*)", re.MULTILINE)


def imported(source: str, name: str, is_package: bool) -> set[str]:
    """Every module a file named `name` may import, parents included (importing a.b.c runs
    a/__init__ and a/b/__init__). Statements that do not parse are left out."""
    found: set[str] = set()
    for statement in _IMPORT.findall(source):
        try:
            tree = ast.parse(statement.strip())
        except (SyntaxError, ValueError):
            continue
        found |= _names(tree, name, is_package)
    return {parent for module in found if module for parent in _parents(module)}


def _names(tree: ast.AST, name: str, is_package: bool) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, name, is_package)
            if base is None:
                continue
            found.add(base)
            found.update(f"{base}.{alias.name}" if base else alias.name for alias in node.names)
    return found


def _absolute(node: ast.ImportFrom, name: str, is_package: bool) -> str | None:
    """The module a `from X import` names, relative imports resolved; None past the top."""
    if not node.level:
        return node.module or ""
    package = name.split(".") if is_package else name.split(".")[:-1]
    if node.level - 1 > len(package):
        return None
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


Grep = Callable[[Sequence[str], Sequence[str]], "set[str] | None"]


def select_tests(paths: Sequence[str], changed: Sequence[str], read: Callable[[str], str], *,
                 named: Sequence[str] = (), limit: int = DEFAULT_LIMIT,
                 grep: Grep | None = None) -> Selection:
    """The first tier for a change to `changed` (code paths) in a tree of `paths`; `read`
    returns a file's text ("" when unreadable); `grep(words, files)`, when given, the files
    that hold any of the words (a fast first cut; None when it cannot tell)."""
    index = module_index(paths)
    by_path = {path: name for name, path in index.items()}
    targets = {by_path[p] for p in changed if p in by_path and not is_test_module(p)}
    if not targets:
        return Selection(named=tuple(named))
    # Any import of a module names its last part, so most files are skipped without a parse.
    words = sorted({t.rsplit(".", 1)[-1] for t in targets})
    tests = sorted(p for p in by_path if is_test_module(p))
    found = grep(words, tests) if grep is not None else None
    importers = []
    for path in tests if found is None else sorted(found & set(tests)):
        source = read(path)
        if not any(word in source for word in words):
            continue
        name = by_path[path]
        if imported(source, name, path.endswith("/__init__.py")) & targets:
            importers.append(path)
    ranked = sorted(importers, key=lambda p: (not _named_after(p, changed), p))
    return Selection(tuple(named), tuple(ranked[:limit]), tuple(sorted(targets)),
                     max(len(ranked) - limit, 0))


def _named_after(test: str, changed: Sequence[str]) -> bool:
    """Whether `test` is test_<stem>.py or <stem>_test.py of a changed file."""
    name = PurePosixPath(test).name
    stems = {PurePosixPath(p).stem for p in changed}
    return any(name in (f"test_{stem}.py", f"{stem}_test.py") for stem in stems)
