"""Test results: read them from JUnit XML, or from the runners' summary lines.

Pure functions on text; running commands is acr_bot.verify.process's job, judging a run
against the baseline acr_bot.verify.judge's.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from acr_bot.domain import TestCounts

# A JUnit file larger than this is not worth holding in memory: fall back to the output.
MAX_JUNIT_BYTES = 50_000_000

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
# Worst status wins when one id is reported twice (a test that failed and then errored at teardown).
_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


@dataclass(frozen=True)
class Results:
    """What one run's tests did. Ids are empty when the runner does not name its tests."""

    counts: TestCounts
    passed_ids: frozenset[str] = frozenset()
    failed_ids: frozenset[str] = frozenset()  # failures and errors
    skipped_ids: frozenset[str] = frozenset()
    messages: tuple[tuple[str, str], ...] = ()  # (test id or uncollectable module, message)
    seconds: tuple[tuple[str, float], ...] = ()  # (JUnit classname, its tests' seconds)

    def __add__(self, other: Results) -> Results:
        """Both runs' results together (two runners in one command)."""
        a, b = self.counts, other.counts
        counts = TestCounts(
            a.passed + b.passed, a.failed + b.failed, a.skipped + b.skipped, a.errors + b.errors
        )
        return Results(
            counts,
            self.passed_ids | other.passed_ids,
            self.failed_ids | other.failed_ids,
            self.skipped_ids | other.skipped_ids,
            self.messages + other.messages,
            self.seconds + other.seconds,
        )


def parse_junit(path: Path) -> Results | None:
    """Results from a JUnit XML file; None when it is missing, too big, or not JUnit."""
    try:
        if path.stat().st_size > MAX_JUNIT_BYTES:
            return None
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError, ValueError):
        return None
    if root.tag not in ("testsuites", "testsuite"):
        return None
    statuses: dict[str, str] = {}
    messages: dict[str, str] = {}
    seconds: dict[str, float] = {}
    anonymous_errors = 0
    for case in root.iter("testcase"):
        status = _case_status(case)
        classname, name = case.get("classname", ""), case.get("name", "")
        if classname:
            seconds[classname] = seconds.get(classname, 0.0) + _seconds(case)
        test_id = f"{classname}::{name}" if classname else name
        if status in ("failed", "error") and len(messages) < _MAX_MESSAGES:
            messages.setdefault(test_id, _message(case))
        if not classname and status == "error":
            # pytest reports a module that failed to import as an error with no class: it is
            # not a test, so fixing the import must not count as "removing" it.
            anonymous_errors += 1
            continue
        old = statuses.get(test_id)
        if old is None or _RANK[status] > _RANK[old]:
            statuses[test_id] = status
    results = _from_statuses(statuses, anonymous_errors)
    return Results(results.counts, results.passed_ids, results.failed_ids, results.skipped_ids,
                   tuple(messages.items()), tuple((c, round(t, 3)) for c, t in seconds.items()))


def _seconds(case: ET.Element) -> float:
    """A <testcase>'s time attribute (0 when missing or not a finite number)."""
    try:
        value = float(case.get("time", "0"))
    except ValueError:
        return 0.0
    return value if 0 <= value < float("inf") else 0.0


_MAX_MESSAGES = 200  # failure messages kept per run (a run where everything fails has enough)
_MESSAGE_CHARS = 2_000
# The lines pytest writes for what was raised (`E   AssertionError: ...`).
RAISED = re.compile(r"^E\s+(\S.*)$", re.MULTILINE)


def _message(case: ET.Element) -> str:
    """A failure's own words: the `E ...` lines pytest wrote (the assertion, or the error a
    module failed to import with), else the element's message attribute."""
    for child in case:
        if child.tag in ("failure", "error"):
            text = child.text or ""
            raised = "\n".join(RAISED.findall(text))
            return (raised or child.get("message", "") or text).strip()[:_MESSAGE_CHARS]
    return ""


def _case_status(case: ET.Element) -> str:
    """passed, failed, error or skipped, from a <testcase>'s children."""
    tags = {child.tag for child in case}
    for tag, status in (("error", "error"), ("failure", "failed"), ("skipped", "skipped")):
        if tag in tags:
            return status
    return "passed"


def _from_statuses(statuses: dict[str, str], extra_errors: int = 0) -> Results:
    """Results from a map of test id to status."""

    def having(*wanted: str) -> frozenset[str]:
        return frozenset(t for t, s in statuses.items() if s in wanted)

    values = list(statuses.values())
    counts = TestCounts(
        passed=values.count("passed"),
        failed=values.count("failed"),
        skipped=values.count("skipped"),
        errors=values.count("error") + extra_errors,
    )
    return Results(counts, having("passed"), having("failed", "error"), having("skipped"))


def parse_output(text: str) -> Results | None:
    """Results from a runner's console output; None when no known summary is found.

    Every recognised format is added up, so `make test` running two runners counts both.
    """
    text = _ANSI.sub("", text)
    found = [r for parse in _PARSERS if (r := parse(text)) is not None]
    if not found:
        return None
    total = found[0]
    for more in found[1:]:
        total = total + more
    return total


# pytest: "3 passed, 1 failed, 2 skipped in 0.12s", with or without the "===" rule around it.
_PYTEST_WORDS = r"passed|failed|skipped|errors?|xfailed|xpassed|deselected|warnings?|rerun"
_PYTEST_LINE = re.compile(
    rf"^=*[ \t]*(?P<body>(?:\d+ (?:{_PYTEST_WORDS})(?:, )?)+|no tests ran)"
    rf" in [\d.]+s\b[^\n]*$",
    re.MULTILINE,
)
_PYTEST_ITEM = re.compile(r"(\d+) (\w+)")
_PYTEST_KINDS = {
    "passed": "passed",
    "xpassed": "passed",
    "failed": "failed",
    "skipped": "skipped",
    "xfailed": "skipped",
    "error": "errors",
    "errors": "errors",
}


def parse_pytest(text: str) -> Results | None:
    """Counts from pytest's last summary line (earlier ones may come from nested runs)."""
    lines = list(_PYTEST_LINE.finditer(text))
    if not lines:
        return None
    return Results(_tally(_PYTEST_ITEM.findall(lines[-1]["body"]), _PYTEST_KINDS))


def _tally(items: Iterable[tuple[str, str]], kinds: dict[str, str]) -> TestCounts:
    """TestCounts from ("3", "passed") pairs; words not in `kinds` are ignored."""
    totals = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0}
    for number, word in items:
        if word in kinds:
            totals[kinds[word]] += int(number)
    return TestCounts(**totals)


_GO_RUN = re.compile(r"^=== RUN", re.MULTILINE)
_GO_RESULT = re.compile(r"^[ \t]*--- (PASS|FAIL|SKIP): (\S+)", re.MULTILINE)
_GO_STATUS = {"PASS": "passed", "FAIL": "failed", "SKIP": "skipped"}


def parse_go(text: str) -> Results | None:
    """Results from `go test -v` output (`--- PASS: TestX`), subtests included."""
    # Without -v go prints only failures, so a fixed test would look "removed": do not guess.
    if not _GO_RUN.search(text):
        return None
    statuses: dict[str, str] = {}
    for word, name in _GO_RESULT.findall(text):
        statuses[name] = _GO_STATUS[word]
    return _from_statuses(statuses) if statuses else None


_CARGO_TOTAL = re.compile(
    r"^test result: (?:ok|FAILED)\. (\d+) passed; (\d+) failed; (\d+) ignored;", re.MULTILINE
)
_CARGO_TEST = re.compile(r"^test (.+?) \.\.\. (ok|FAILED|ignored)\b", re.MULTILINE)
_CARGO_STATUS = {"ok": "passed", "FAILED": "failed", "ignored": "skipped"}


def parse_cargo(text: str) -> Results | None:
    """Results from `cargo test`: every "test result:" line (one per test binary) added up."""
    totals = _CARGO_TOTAL.findall(text)
    if not totals:
        return None
    passed, failed, ignored = (sum(int(t[i]) for t in totals) for i in range(3))
    ids = Results(TestCounts())
    if tests := _CARGO_TEST.findall(text):
        ids = _from_statuses({name: _CARGO_STATUS[word] for name, word in tests})
    return Results(
        TestCounts(passed=passed, failed=failed, skipped=ignored),
        ids.passed_ids,
        ids.failed_ids,
        ids.skipped_ids,
    )


_JEST_LINE = re.compile(r"^Tests:[ \t]+([^\n]*\d+ total)[ \t]*$", re.MULTILINE)
_VITEST_LINE = re.compile(
    r"^[ \t]*Tests[ \t]{2,}((?:\d+ \w+(?: \| )?)+)[ \t]*\(\d+\)", re.MULTILINE
)
_JS_KINDS = {"passed": "passed", "failed": "failed", "skipped": "skipped", "todo": "skipped"}


def parse_jest(text: str) -> Results | None:
    """Counts from jest's "Tests: 1 failed, 3 passed, 4 total" (or vitest's "Tests  3 passed")."""
    lines = _JEST_LINE.findall(text) or _VITEST_LINE.findall(text)
    if not lines:
        return None
    return Results(_tally(_PYTEST_ITEM.findall(lines[-1]), _JS_KINDS))


_MOCHA_PASSING = re.compile(r"^[ \t]*(\d+) passing\b", re.MULTILINE)
_MOCHA_OTHER = re.compile(r"^[ \t]*(\d+) (failing|pending)[ \t]*$", re.MULTILINE)


def parse_mocha(text: str) -> Results | None:
    """Counts from mocha's "3 passing (5ms)", "1 failing", "2 pending"."""
    passing = list(_MOCHA_PASSING.finditer(text))
    if not passing:
        return None
    last = passing[-1]
    items = [(last[1], "passing"), *_MOCHA_OTHER.findall(text, last.end())]
    kinds = {"passing": "passed", "failing": "failed", "pending": "skipped"}
    return Results(_tally(items, kinds))


_UNITTEST_RAN = re.compile(
    r"^Ran (\d+) tests? in [\d.]+s[ \t]*\n\s*\n(OK|FAILED)\b(?: \(([^)\n]*)\))?", re.MULTILINE)
_UNITTEST_KINDS = {"failures": "failed", "errors": "errors", "skipped": "skipped"}


def parse_unittest(text: str) -> Results | None:
    """Counts from unittest's "Ran 12 tests in 0.5s" and "FAILED (failures=1, skipped=2)"
    (Django's runtests.py too). Not one of parse_output's formats (the verdict judges unittest
    runs by their exit code): the first tier reads it to see that a test failed."""
    runs = list(_UNITTEST_RAN.finditer(text))
    if not runs:
        return None
    last = runs[-1]
    details = [(n, w) for w, n in re.findall(r"([a-z][a-z ]*)=(\d+)", last[3] or "")]
    counts = _tally(details, _UNITTEST_KINDS)
    passed = max(int(last[1]) - counts.failed - counts.errors - counts.skipped, 0)
    return Results(TestCounts(passed, counts.failed, counts.skipped, counts.errors))


_PARSERS: tuple[Callable[[str], Results | None], ...] = (
    parse_pytest,
    parse_go,
    parse_cargo,
    parse_jest,
    parse_mocha,
)


def node_ids(node: str, ids: Iterable[str]) -> set[str]:
    """The JUnit ids (classname::name) that are the pytest node `node` or lie under it:
    tests/test_x.py::C::t is tests.test_x.C::t (and its parameters), tests/test_x.py every
    test of that module."""
    path, _, rest = node.partition("::")
    module = path.removesuffix(".py").replace("/", ".")
    want = f"{module}.{rest.replace('::', '.')}" if rest else module
    out = set()
    for test_id in ids:
        dotted = test_id.replace("::", ".")
        if dotted == want or dotted.startswith((want + ".", want + "[")):
            out.add(test_id)
    return out


def in_module(classname: str, module: str) -> bool:
    """Whether a JUnit classname (`tests.test_x.TestC`) is the dotted `module` or lies in it."""
    return classname == module or classname.startswith(module + ".")
