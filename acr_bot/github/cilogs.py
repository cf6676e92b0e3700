"""Failed CI job logs -> a short task text: the failing tests and the errors around them.

Logs are untrusted and can be huge: everything here is bounded, and the text that comes out
is treated by the prompt as data, never as instructions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ?")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
GROUP = re.compile(r"^##\[(?:group|endgroup|section).*$|^::(?:group|endgroup)::.*$")
FAILING_TEST = re.compile(
    r"^(?:FAILED|ERROR) (\S+::\S+)"  # pytest short summary
    r"|^--- FAIL: (\S+)"  # go
    r"|^test (\S+) \.\.\. FAILED"  # cargo
    r"|^\s+[✕×] (.+?)(?: \(\d+ ?m?s\))?$"  # jest
    r"|^FAIL:? (\S+ \(\S+\))")  # unittest
MAX_SCAN = 2_000_000  # characters read from the end of each log (where runners report failures)
ERROR_LINE = re.compile(r"(?:^E\s{2,}|Error\b|Exception\b|error\[|panicked at|FAILED|"
                        r"AssertionError|Traceback \(most recent call last\)|##\[error\]|"
                        r"--- FAIL: |^\s*● )")  # go's failed test, jest's failure header


def clean(log: str) -> list[str]:
    """Log lines without timestamps, colour codes and group markers."""
    out = []
    for line in log.splitlines():
        line = ANSI.sub("", TIMESTAMP.sub("", line)).rstrip()
        if line and not GROUP.match(line):
            out.append(line)
    return out


def failing_tests(lines: Sequence[str], limit: int = 20) -> list[str]:
    found: dict[str, None] = {}
    for line in lines:
        match = FAILING_TEST.match(line)
        if match:
            found[next(g for g in match.groups() if g).strip()] = None
    return list(found)[:limit]


def error_excerpt(lines: Sequence[str], budget: int = 6_000, context: int = 3) -> str:
    """Lines around errors, merged into windows, until `budget` characters."""
    keep: set[int] = set()
    for i, line in enumerate(lines):
        if ERROR_LINE.search(line):
            keep.update(range(max(0, i - context), min(len(lines), i + context + 1)))
    chunks, size, last = [], 0, -2
    for i in sorted(keep):
        text = lines[i][:400]
        if size + len(text) > budget:
            break
        if i != last + 1 and chunks:
            chunks.append("...")
        chunks.append(text)
        size += len(text) + 1
        last = i
    return "\n".join(chunks)


def tail(log: str, limit: int = MAX_SCAN) -> str:
    """The last `limit` characters of `log`, from a line start: work stays bounded however
    big the log is."""
    if len(log) <= limit:
        return log
    end = log[-limit:]
    return end[end.find("\n") + 1:]


def fence(text: str) -> str:
    """A code fence longer than any run of backticks in `text`, so a log cannot close it and
    have the rest read as instructions rather than data."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def task_text(jobs: Sequence[tuple[str, str]], budget: int = 8_000) -> str:
    """The body of a CI-failure task from (job name, log) pairs."""
    parts = []
    per_job = max(1_000, budget // max(1, len(jobs)))
    for name, log in jobs:
        lines = clean(tail(log))
        tests = failing_tests(lines)
        head = f"## Job `{name}` failed"
        if tests:
            head += "\nFailing tests:\n" + "\n".join(f"- {t}" for t in tests)
        excerpt = error_excerpt(lines, per_job) or "\n".join(lines[-40:])[-per_job:]
        marks = fence(excerpt)
        parts.append(f"{head}\n\nLog excerpt:\n{marks}\n{excerpt}\n{marks}")
    return "\n\n".join(parts) or "The workflow failed, but no failed job log was available."
