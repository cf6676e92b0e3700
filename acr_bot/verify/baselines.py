"""The baseline run, cached: the full suite runs once per base commit and test command.

A baseline depends only on the commit, the command, the setup command and where it ran, so a
second task (or a re-run) on the same base reads it back instead of running the suite again.
Entries are gzipped JSON files named by the hash of that key, written atomically; an entry that
cannot be read is a miss, never an error. In the Action the folder is kept between jobs with
actions/cache (action.yml); on the command line it is the user's cache folder.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from acr_bot.domain import TestCounts, TestRun, TierTime
from acr_bot.verify.testresults import parse_unittest
from acr_bot.verify.tiers import tier_result

log = logging.getLogger(__name__)

FORMAT = 1
KEEP_DAYS = 30  # older entries are pruned when a new one is written


def baseline_key(commit: str, command: str, *, setup: str | None = None,
                 sandbox: str = "local") -> str:
    """The cache key: what the baseline depends on, hashed."""
    parts = json.dumps([FORMAT, commit, command, setup or "", sandbox])
    return hashlib.sha256(parts.encode()).hexdigest()[:32]


class BaselineCache:
    """Baseline runs by key in `folder` (None: no cache, every lookup a miss)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def get(self, key: str) -> TestRun | None:
        """The cached run, or None (no entry, or one that cannot be read)."""
        if self.folder is None:
            return None
        path = self.folder / f"{key}.json.gz"
        try:
            data = json.loads(gzip.decompress(path.read_bytes()))
            return _run(data) if data.get("format") == FORMAT else None
        except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
            if path.exists():
                log.info("baseline cache: %s unreadable (%s): running the suite", path, exc)
            return None

    def put(self, key: str, run: TestRun) -> bool:
        """Store `run`; not a run that timed out or ran no test (a missing dependency the job
        may install next time, with the same commit and command)."""
        if self.folder is None or run.timed_out or not _ran_tests(run):
            return False
        data = {"format": FORMAT, "saved": time.time(), **_plain(run)}
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            _prune(self.folder)
            with tempfile.NamedTemporaryFile(dir=self.folder, suffix=".tmp", delete=False) as out:
                out.write(gzip.compress(json.dumps(data).encode(), compresslevel=6))
            os.replace(out.name, self.folder / f"{key}.json.gz")
            return True
        except OSError as exc:
            log.warning("baseline cache: cannot write to %s: %s", self.folder, exc)
            return False


def baseline_run(cache: BaselineCache, key: str,
                 run: Callable[[], TestRun]) -> tuple[TestRun, bool]:
    """The cached baseline for `key`, or `run()` (stored for next time); and whether it was
    cached."""
    if (hit := cache.get(key)) is not None:
        return hit, True
    fresh = run()
    cache.put(key, fresh)
    return fresh, False


def timed_baseline(cache: BaselineCache, key: str,
                   run: Callable[[], TestRun]) -> tuple[TestRun, TierTime]:
    """`baseline_run`, with its time for the job summary ("cached" when read)."""
    started = time.monotonic()
    baseline, cached = baseline_run(cache, key, run)
    result = "cached" if cached else tier_result(baseline)
    return baseline, TierTime("baseline", time.monotonic() - started, result)


def _ran_tests(run: TestRun) -> bool:
    counts = run.counts
    if run.green or run.passed_ids or run.failed_ids or (counts and counts.passed + counts.failed):
        return True
    unittest = parse_unittest(run.output)  # Django's runtests.py: the verdict reads no counts
    return unittest is not None and unittest.counts.ran > 0


def _plain(run: TestRun) -> dict[str, Any]:
    data = asdict(run)
    for name in ("passed_ids", "failed_ids", "skipped_ids"):
        data[name] = sorted(data[name])
    return data


def _run(data: dict[str, Any]) -> TestRun:
    """A TestRun from its JSON form: every field TestRun has, frozensets and tuples again."""
    values: dict[str, Any] = {}
    for spec in fields(TestRun):
        if spec.name not in data:
            continue  # a field added since the entry was written: its default
        value = data[spec.name]
        if spec.name == "counts":
            value = TestCounts(**value) if value is not None else None
        elif isinstance(value, list):
            value = frozenset(value) if spec.name.endswith("_ids") else _tuples(value)
        values[spec.name] = value
    return TestRun(**values)


def _tuples(value: list[Any]) -> tuple[Any, ...]:
    return tuple(_tuples(v) if isinstance(v, list) else v for v in value)


def _prune(folder: Path) -> None:
    """Drop entries older than KEEP_DAYS (bases nobody works on any more)."""
    cutoff = time.time() - KEEP_DAYS * 86_400
    for entry in folder.glob("*.json.gz"):
        try:
            if entry.stat().st_mtime < cutoff:
                entry.unlink()
        except OSError:
            pass
