"""Does the change carry a test that reproduces the issue?

When no test fails before any change (an issue, a `/acr fix` comment, a command-line task on a
green suite), the repository's tests passing only shows that the change broke nothing. So the
change must add or change a test that fails on the code before the change and passes with it,
as SWE-bench judges a fix by its FAIL_TO_PASS tests. The change's own tests run twice, both
times with the test configuration (conftest.py, ini files...) as at the base commit: with the
change's code part left out (they must fail in the test body, not while being collected), then
with the whole change (they must pass). For pytest only those tests run: their node ids go in
through PYTEST_ADDOPTS, which reaches pytest under tox or make too. Other runners run their
whole command.
"""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from acr_bot.domain import TestRun
from acr_bot.gitrepo import Worktree
from acr_bot.verify.judge import some
from acr_bot.verify.local import Sandbox
from acr_bot.verify.patch import PatchSplit, at_base, base_text, is_test_config, is_test_path
from acr_bot.verify.testresults import RAISED, in_module, node_ids

# An import that fails because the name the issue asks for is not there yet: that is the
# missing behaviour, so it counts (a syntax error, or any other import failure, does not).
_MISSING_NAME = re.compile(r"\b(?:ImportError: cannot import name|ModuleNotFoundError: No module "
                           r"named|AttributeError: module \S+ has no attribute)\b")
_MAX_NODES = 50  # more changed tests than this: run their files instead
_EXCERPT_LINES = 4


@dataclass(frozen=True)
class Reproduction:
    """The change's own tests that failed before it and pass with it."""

    tests: tuple[str, ...] = ()
    base_failure: str = ""  # how the first of them failed before the change
    problem: str = ""  # why nothing reproduces the issue, when `tests` is empty
    base_run: TestRun | None = None  # the change's tests on the code before it


def needs_reproduction(source: str, baseline: TestRun) -> bool:
    """Whether a fix must bring its own failing-before test: nothing fails before the change,
    and the task is neither a failed CI run (the failed job is its own reproduction) nor a
    maintainer's revision of the bot's PR (asked for, and reviewed, in the PR itself)."""
    counts = baseline.counts
    failing = bool(baseline.failed_ids) or bool(counts and (counts.failed or counts.errors))
    return source not in ("ci", "revise") and baseline.green and not failing


@dataclass(frozen=True)
class Probe:
    """The change's own tests, run on the code before it (None: the change has no test)."""

    files: tuple[str, ...]  # its test files (not test configuration)
    config: tuple[str, ...]  # the test configuration it changed: as at the base in both runs
    command: str  # the test command narrowed to those tests
    before: TestRun | None
    nodes: tuple[str, ...] = ()  # the pytest nodes of the tests it added or changed


def probe(tree: Worktree, sandbox: Sandbox, command: str, split: PatchSplit,
          keep: Sequence[str] = ()) -> Probe:
    """The first run: the change's tests with its code part left out."""
    files = tuple(p for p in split.tests if not is_test_config(p) and (tree.path / p).is_file())
    config = tuple(p for p in split.tests if is_test_config(p))
    nodes = tuple(selection(tree, files))
    narrowed = narrow(command, nodes)
    if not files:
        return Probe(files, config, narrowed, None, nodes)
    with at_base(tree, [*split.code, *config], keep):
        return Probe(files, config, narrowed, sandbox.run(narrowed, tree.path), nodes)


def early_problem(baseline: TestRun, found: Probe) -> str:
    """Why nothing can reproduce the issue, known before the suite runs: no test, or none of
    the change's tests fails on the old code (a later run cannot change that); '' otherwise."""
    if found.before is None:
        return NO_TEST
    before = only(found.before, found.nodes)
    verdict = judge_reproduction(baseline, before, before, found.files, fails_only=True)
    return "" if verdict.tests else verdict.problem


def finish(baseline: TestRun, found: Probe, tree: Worktree, sandbox: Sandbox,
           keep: Sequence[str] = (), whole: TestRun | None = None) -> Reproduction:
    """The second run: the change's tests with the whole change. `whole`, the suite's run with
    the whole change, serves when the change left the test configuration alone and that run
    ran the tests in question."""
    if found.before is None:
        return Reproduction(problem=NO_TEST)
    before = only(found.before, found.nodes)
    after = whole if whole is not None and not found.config and _covers(whole, before) else None
    if after is None:
        with at_base(tree, found.config, keep, keep_code=True):
            after = sandbox.run(found.command, tree.path)
    return judge_reproduction(baseline, before, only(after, found.nodes), found.files)


def reproduce(baseline: TestRun, tree: Worktree, sandbox: Sandbox, command: str,
              split: PatchSplit, keep: Sequence[str] = (),
              whole: TestRun | None = None) -> Reproduction:
    """Both runs (see the module's doc)."""
    return finish(baseline, probe(tree, sandbox, command, split, keep), tree, sandbox, keep,
                  whole)


def only(run: TestRun, nodes: Sequence[str]) -> TestRun:
    """`run` with the test results of `nodes` alone. The test command's own `-k` wins over the
    one `narrow` adds (pytest keeps the last), so the run may hold tests the change did not
    touch (`pytest tests/test_more.py -k ValueChain` ran the whole class): they are neither the
    change's tests nor a reproduction. Ids that match no node at all (a rootdir elsewhere)
    are kept as they are."""
    passed = {t for node in nodes for t in node_ids(node, run.passed_ids)}
    failed = {t for node in nodes for t in node_ids(node, run.failed_ids)}
    if not passed | failed:
        return run
    return replace(run, passed_ids=frozenset(passed), failed_ids=frozenset(failed))


def _covers(run: TestRun, before: TestRun) -> bool:
    """Whether `run` ran every test that failed `before` (and any ran at all)."""
    ran = run.passed_ids | run.failed_ids
    return bool(before.failed_ids) and before.failed_ids <= ran


def judge_reproduction(baseline: TestRun, before: TestRun, after: TestRun,
                       files: Sequence[str], fails_only: bool = False) -> Reproduction:
    """Which tests failed `before` (in their body, or importing a missing name) and pass
    `after`; or, for runners that name no tests, whether failures went away. `fails_only`:
    judge `before` alone (which tests could still reproduce the issue)."""
    messages = dict(before.messages)
    if not (before.passed_ids | before.failed_ids | after.passed_ids | after.failed_ids
            | messages.keys()):
        return _by_counts(before, before if fails_only else after, files, fails_only)
    missing = [m for m, text in messages.items() if "::" not in m and _MISSING_NAME.search(text)]
    failed = before.failed_ids - baseline.failed_ids
    if fails_only:
        shown = sorted(failed) or sorted(missing)
        return Reproduction(tuple(shown)) if shown else Reproduction(
            problem=_why_not(before, before, files, messages), base_run=before)
    shown = sorted(t for t in after.passed_ids if t in failed or _under(t, missing))
    if shown:
        first = next((messages[t] for t in shown if messages.get(t)), "")
        first = first or next((messages[m] for m in missing if any(_under(t, [m]) for t in shown)),
                              "")
        return Reproduction(tuple(shown), excerpt(first), base_run=before)
    return Reproduction(problem=_why_not(before, after, files, messages), base_run=before)


def _by_counts(before: TestRun, after: TestRun, files: Sequence[str],
               fails_only: bool = False) -> Reproduction:
    """A runner that names no tests: the counts decide, or the exit codes where there are
    none. (A test file that cannot even be loaded fails after the change too.)"""
    counts = before.counts
    failed = bool(counts.failed) if counts else before.exit_code not in (0, None)
    if failed and (fails_only or after.green):
        return Reproduction(tuple(files), excerpt(_first_raised(before.output)), base_run=before)
    return Reproduction(problem=(f"your tests ({_some(files)}) do not fail on the code before "
                                 "your change, so they do not reproduce the issue"),
                        base_run=before)


def _why_not(before: TestRun, after: TestRun, files: Sequence[str],
             messages: dict[str, str]) -> str:
    """One line for the model and the PR: what the change's tests did instead."""
    uncollected = [f"{m} ({_raised(text)})" for m, text in messages.items() if "::" not in m]
    if uncollected and not before.failed_ids:
        return (f"your test changes cannot be collected on the code before your change: "
                f"{_some(uncollected)}; a test must fail inside its body (an assertion, or the "
                "missing behaviour), not because the file cannot be imported")
    if before.failed_ids and not after.passed_ids & before.failed_ids:
        return (f"your tests fail with your change too ({_some(sorted(before.failed_ids))}), so "
                "they do not show that it fixes the issue")
    if before.passed_ids:
        return (f"your new or changed tests ({_some(sorted(before.passed_ids))}) pass on the code "
                "before your change too, so they do not reproduce the issue")
    return f"none of your test changes ran as tests ({_some(files)})"


NO_TEST = ("the change adds or changes no test: the tests passed before it, so a fix must bring "
           "a test that reproduces the issue (it fails without the change and passes with it)")


# --- where a reproduction belongs ------------------------------------------------------------


def folders_with_tests(tracked: Iterable[str], extra: Sequence[str] = ()) -> list[str]:
    """Folders holding the repository's tests ("" is the root), most tests first."""
    counts: dict[str, int] = {}
    for path in tracked:
        if is_test_path(path, extra) and not is_test_config(path):
            folder = path.rsplit("/", 1)[0] if "/" in path else ""
            counts[folder] = counts.get(folder, 0) + 1
    return sorted(counts, key=lambda folder: (-counts[folder], folder))


def in_test_layout(path: str, dirs: Sequence[str], extra: Sequence[str] = ()) -> bool:
    """Whether a new file is a test where the repository keeps its tests: a reproduction
    to keep, not a scratch script (a `test_repro.py` at the root of a repo whose tests live
    in tests/ is scratch)."""
    if not is_test_path(path, extra) or is_test_config(path):
        return False
    folder = path.rsplit("/", 1)[0] if "/" in path else ""
    return any(folder == d or (d and folder.startswith(d + "/")) for d in dirs)


def layout_text(dirs: Sequence[str]) -> str:
    """The test folders, for a prompt: "tests/, src/pkg/tests/"."""
    shown = [f"{d}/" if d else "the repository root" for d in dirs[:3]]
    return ", ".join(shown) or "a tests/ folder"


# --- which tests to run ------------------------------------------------------------------------


def selection(tree: Worktree, files: Sequence[str]) -> list[str]:
    """pytest node ids of the tests the change added or changed (a whole file when it is new,
    or when only its helpers changed); [] when the change's tests are not Python files."""
    nodes: list[str] = []
    for path in files:
        if not path.endswith(".py"):
            continue
        old = base_text(tree, path)
        new = (tree.path / path).read_text(encoding="utf-8", errors="replace")
        nodes += changed_tests(path, old, new) if old is not None else [path]
    if len(nodes) > _MAX_NODES:
        return sorted({n.split("::", 1)[0] for n in nodes})
    return nodes


def changed_tests(path: str, old: str, new: str) -> list[str]:
    """Node ids (`path::Class::test`) of test functions that are new or differ in `new`."""
    try:
        before, after = _tests_in(ast.parse(old)), _tests_in(ast.parse(new))
    except (SyntaxError, ValueError):
        return [path]
    changed = [name for name, tree in after.items() if before.get(name) != tree]
    return [f"{path}::{name}" for name in changed] or [path]


def _tests_in(module: ast.Module) -> dict[str, str]:
    """pytest's default test functions (`test*`, also in classes), as `Class::name` -> AST."""
    found: dict[str, str] = {}

    def visit(body: Iterable[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                visit(node.body, f"{prefix}{node.name}::")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                    node.name.startswith("test"):
                found[prefix + node.name] = ast.dump(node)

    visit(module.body, "")
    return found


def narrow(command: str, nodes: Sequence[str]) -> str:
    """`command` running only `nodes` under pytest; the command as is without nodes.

    Through PYTEST_ADDOPTS, which reaches pytest under tox, nox or make too. Its arguments come
    before the command's own: the node ids are collected even outside the command's test
    paths, and a `-k` of their names deselects the rest of whatever else the command names
    (unless the command has a `-k` of its own, which wins: `only` keeps their results alone).
    A module that cannot be imported must not stop the others from running."""
    if not nodes:
        return command
    extra = " ".join(["--continue-on-collection-errors", "-k", shlex.quote(keywords(nodes)),
                      *map(shlex.quote, nodes)])
    return (f'export PYTEST_ADDOPTS="${{PYTEST_ADDOPTS:+$PYTEST_ADDOPTS }}"{shlex.quote(extra)}; '
            f"{command}")


def keywords(nodes: Sequence[str]) -> str:
    """A pytest `-k` expression matching the node ids by their names: module, class, test."""
    terms = []
    for node in nodes:
        path, *names = node.split("::")
        words = [path.rsplit("/", 1)[-1].removesuffix(".py"), *names]
        terms.append("(" + " and ".join(w for w in words if w.isidentifier()) + ")")
    return " or ".join(terms)


# --- text ------------------------------------------------------------------------------------


def excerpt(text: str, lines: int = _EXCERPT_LINES) -> str:
    """The first lines of a failure message, each cut short."""
    kept = [line.rstrip()[:160] for line in text.strip().splitlines() if line.strip()]
    return "\n".join(kept[:lines])


def _raised(message: str) -> str:
    """The exception a module failed to import with: the last `...Error: ...` line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"[\w.]*(Error|Exception)\b", line)]
    return (errors or lines or [""])[-1][:160]


def _first_raised(output: str) -> str:
    match = RAISED.search(output) or re.search(
        r"^\s*(?:Error|AssertionError|expected)\b.*$", output, re.MULTILINE)
    return match[1] if match and match.groups() else (match[0] if match else "")


def _under(test_id: str, modules: Sequence[str]) -> bool:
    """Whether a JUnit id (`tests.test_x.TestC::test_y`) is in one of the dotted `modules`."""
    classname = test_id.split("::", 1)[0]
    return any(in_module(classname, m) for m in modules)


def _some(items: Sequence[str]) -> str:
    return some(items, shown=3)
