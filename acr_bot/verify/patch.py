"""The two parts of a patch: *tests* (what decides which tests run and how they report) and
*code* (everything else), and a way to run the original tests against the patched code.

A patch that may change the tests that judge it can always pass: it deselects, rewrites an
assertion, or adds a conftest.py that forges reports. So the verdict runs the repository's own
test files and test configuration, as they were at the base commit, against the patched code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from acr_bot.fixing.paths import matches_glob
from acr_bot.gitrepo import Worktree

# Slash-less globs match any path component (fixing.paths.matches_glob), so `tests` is every
# folder named tests and `conftest.py` every conftest. Case is ignored.
DEFAULT_TEST_PATHS: tuple[str, ...] = (
    # Python: test files, and every file that decides what pytest, tox or nox collects and how
    "tests", "test", "testing", "test_*.py", "*_test.py", "conftest.py", "pytest.ini",
    ".pytest.ini", "tox.ini", "setup.cfg", "noxfile.py", ".coveragerc",
    # Go and Rust
    "*_test.go", "testdata", "benches",
    # JavaScript and TypeScript
    "__tests__", "__mocks__", "*.test.[jt]s", "*.test.[mc][jt]s", "*.test.[jt]sx", "*.spec.[jt]s",
    "*.spec.[mc][jt]s", "*.spec.[jt]sx", "jest.config.*", "vitest.config.*", "vitest.workspace.*",
    ".mocharc*", "karma.conf.*", "playwright.config.*",
    # What git shows the verifier: a changed .gitignore could hide a new conftest.py
    ".gitignore",
)
# The test paths that configure how tests run rather than being tests: a change's own test
# is judged with these as at the base commit (verify/reproduction.py).
TEST_CONFIG: tuple[str, ...] = (
    "conftest.py", "pytest.ini", ".pytest.ini", "tox.ini", "setup.cfg", "noxfile.py", ".coveragerc",
    "jest.config.*", "vitest.config.*", "vitest.workspace.*", ".mocharc*", "karma.conf.*",
    "playwright.config.*", ".gitignore", "pyproject.toml", "package.json",
)
# pyproject.toml tables that configure tests (a prefix of the table name decides).
_PYPROJECT_TEST_TABLES = ("tool.pytest", "tool.tox", "tool.coverage", "tool.hatch.envs",
                          "tool.nox")
# package.json keys that configure tests.
_PACKAGE_TEST_KEYS = ("jest", "mocha", "vitest", "ava", "c8", "nyc")
_TOML_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")


def is_test_path(path: str, extra: Sequence[str] = ()) -> bool:
    """Whether `path` (relative, with /) is a test file or test configuration."""
    return any(matches_glob(path, glob) for glob in (*DEFAULT_TEST_PATHS, *extra))


def is_test_config(path: str) -> bool:
    """Whether `path` configures the tests (conftest.py, pytest.ini, ...) rather than being one."""
    return any(matches_glob(path, glob) for glob in TEST_CONFIG)


@dataclass(frozen=True)
class PatchSplit:
    """A patch's changed paths by part. A mixed file (pyproject.toml, package.json) whose
    test sections and other sections both changed is in both."""

    tests: tuple[str, ...]
    code: tuple[str, ...]

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.tests) | set(self.code)))


def changed_paths(tree: Worktree, keep: Sequence[str] = ()) -> list[str]:
    """Paths the workspace changed since its commit: edited, deleted, and new (not ignored)
    files, except what the setup command made (`keep`)."""
    tracked = tree.run("diff", "--name-only", "--no-renames", "-z", "HEAD").split("\0")
    new = tree.run("ls-files", "--others", "--exclude-standard", "-z").split("\0")
    kept = tuple(k.rstrip("/") for k in keep)
    return sorted({p for p in [*tracked, *new] if p and not _under(p, kept)})


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path == root or path.startswith(root + "/") for root in roots)


def split_patch(tree: Worktree, paths: Sequence[str], extra: Sequence[str] = ()) -> PatchSplit:
    """Sort `paths` into tests and code; mixed files by which of their sections changed."""
    tests, code = [], []
    for path in paths:
        if is_test_path(path, extra):
            tests.append(path)
            continue
        mixer = _MIXERS.get(path.rsplit("/", 1)[-1])
        if mixer is None:
            code.append(path)
            continue
        base, now = base_text(tree, path), _read(tree.path / path)
        if base is None or now is None:  # created or deleted: it is code that changed
            code.append(path)
            continue
        (base_tests, base_code), (tests_now, code_now) = mixer.parts(base), mixer.parts(now)
        if tests_now != base_tests:
            tests.append(path)
        if code_now != base_code:
            code.append(path)
    return PatchSplit(tuple(tests), tuple(code))


@contextmanager
def original_tests(tree: Worktree, split: PatchSplit, keep: Sequence[str] = (),
                   extra: Sequence[str] = ()) -> Iterator[None]:
    """Inside: the workspace with every test path as at the base commit (mixed files get the
    patched code sections and the base's test sections); afterwards the whole patch again."""
    saved = {path: _read_bytes(tree.path / path) for path in split.tests}
    try:
        for path in split.tests:
            _put_back(tree, path)
        # A .gitignore the patch changed may have hidden a new test file (a conftest.py) from
        # git: with the base's .gitignore back, it shows, and goes too.
        for path in changed_paths(tree, keep):
            if path not in saved and is_test_path(path, extra) and base_text(tree, path) is None:
                saved[path] = _read_bytes(tree.path / path)
                (tree.path / path).unlink(missing_ok=True)
        yield
    finally:
        _write_back(tree, saved)


@contextmanager
def at_base(tree: Worktree, paths: Sequence[str], keep: Sequence[str] = (), *,
            keep_code: bool = False) -> Iterator[None]:
    """Inside: `paths` as at the base commit (absent where it had none; with `keep_code`, mixed
    files keep their changed code sections), and no new test configuration anywhere (a new
    conftest.py a changed .gitignore hid from git goes too); afterwards every file as it was."""
    saved = {path: _read_bytes(tree.path / path) for path in paths}
    try:
        for path in paths:
            (_put_back if keep_code else _restore)(tree, path)
        for path in changed_paths(tree, keep):
            if path not in saved and is_test_config(path) and base_text(tree, path) is None:
                saved[path] = _read_bytes(tree.path / path)
                (tree.path / path).unlink(missing_ok=True)
        yield
    finally:
        _write_back(tree, saved)


def _restore(tree: Worktree, path: str) -> None:
    """`path` as at the base commit, whole."""
    if base_text(tree, path) is None:
        (tree.path / path).unlink(missing_ok=True)
    else:
        tree.run("checkout", "HEAD", "--", path)


def _write_back(tree: Worktree, saved: dict[str, bytes | None]) -> None:
    for path, content in saved.items():
        target = tree.path / path
        if content is None:
            target.unlink(missing_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)


def _put_back(tree: Worktree, path: str) -> None:
    """Make `path` what the base had (absent if it had none), code sections of mixed files kept."""
    target = tree.path / path
    base = base_text(tree, path)
    mixer = _MIXERS.get(path.rsplit("/", 1)[-1])
    if base is None:
        target.unlink(missing_ok=True)
    elif mixer is not None and (now := _read(target)) is not None:
        target.write_text(mixer.merge(now, base), encoding="utf-8")
    else:
        tree.run("checkout", "HEAD", "--", path)


def base_text(tree: Worktree, path: str) -> str | None:
    """The file's text at the base commit; None when it did not exist there."""
    listed = tree.run("ls-tree", "--name-only", "HEAD", "--", path)
    return tree.run("show", f"HEAD:{path}") + "\n" if listed else None


def _read(path: Path) -> str | None:
    content = _read_bytes(path)
    return None if content is None else content.decode("utf-8", errors="replace")


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes() if path.is_file() else None
    except OSError:
        return None


# --- mixed files: a test part and a code part in one file ----------------------------------------


class _Mixer(Protocol):
    def parts(self, text: str) -> tuple[object, object]:
        """(test part, code part), comparable with ==."""
        ...

    def merge(self, code_from: str, tests_from: str) -> str:
        """`code_from` with its test part replaced by `tests_from`'s."""
        ...


class _Pyproject:
    """pyproject.toml: the [tool.pytest...], [tool.tox], [tool.coverage...] ... tables."""

    def parts(self, text: str) -> tuple[object, object]:
        tables = _toml_tables(text)
        tests = sorted(t for t in tables if _is_test_table(t[0]))
        return tests, [t for t in tables if not _is_test_table(t[0])]

    def merge(self, code_from: str, tests_from: str) -> str:
        keep = [text for name, text in _toml_tables(code_from) if not _is_test_table(name)]
        tests = [text for name, text in _toml_tables(tests_from) if _is_test_table(name)]
        merged = "".join(keep)
        if tests and merged and not merged.endswith("\n"):
            merged += "\n"
        return merged + "".join(tests)


def _toml_tables(text: str) -> list[tuple[str, str]]:
    """The file cut at table headers: (table name, its text); the top before any header is ""."""
    tables: list[tuple[str, list[str]]] = [("", [])]
    for line in text.splitlines(keepends=True):
        header = _TOML_HEADER.match(line)
        if header:
            tables.append((header[1].strip().strip('"'), []))
        tables[-1][1].append(line)
    return [(name, "".join(lines)) for name, lines in tables if name or lines]


def _is_test_table(name: str) -> bool:
    return any(name == t or name.startswith(t + ".") or name.startswith(t + "_")
               for t in _PYPROJECT_TEST_TABLES)


class _PackageJson:
    """package.json: scripts.test (pretest, test:unit, ...) and the runners' own keys."""

    def parts(self, text: str) -> tuple[object, object]:
        data = _json_object(text)
        if data is None:
            return None, text
        scripts = data.get("scripts") if isinstance(data.get("scripts"), dict) else {}
        tests = {k: v for k, v in data.items() if k in _PACKAGE_TEST_KEYS}
        tests["scripts"] = {k: v for k, v in scripts.items() if _test_script(k)}
        code = {k: v for k, v in data.items() if k not in _PACKAGE_TEST_KEYS and k != "scripts"}
        code["scripts"] = {k: v for k, v in scripts.items() if not _test_script(k)}
        return tests, code

    def merge(self, code_from: str, tests_from: str) -> str:
        code, tests = _json_object(code_from), _json_object(tests_from)
        if code is None or tests is None:
            return tests_from  # not JSON: cannot tell the parts apart, so keep the base's
        merged = {k: v for k, v in code.items() if k not in _PACKAGE_TEST_KEYS}
        merged.update({k: v for k, v in tests.items() if k in _PACKAGE_TEST_KEYS})
        scripts = {k: v for k, v in _scripts(code).items() if not _test_script(k)}
        scripts.update({k: v for k, v in _scripts(tests).items() if _test_script(k)})
        if scripts or "scripts" in code:
            merged["scripts"] = scripts
        return json.dumps(merged, indent=2) + "\n"


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _scripts(data: dict[str, Any]) -> dict[str, Any]:
    scripts = data.get("scripts")
    return scripts if isinstance(scripts, dict) else {}


def _test_script(name: str) -> bool:
    return re.fullmatch(r"(pre|post)?test(:.*)?", name) is not None


_MIXERS: dict[str, _Mixer] = {"pyproject.toml": _Pyproject(), "package.json": _PackageJson()}
