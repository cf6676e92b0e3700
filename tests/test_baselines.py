"""The baseline cache: once per base commit and command (verify/baselines.py)."""

from __future__ import annotations

import gzip
import json
import os
import time
from dataclasses import replace
from pathlib import Path

from acr_bot.domain import TestCounts, TestRun
from acr_bot.verify.baselines import KEEP_DAYS, BaselineCache, baseline_key, baseline_run

RUN = TestRun("python -m pytest -q", 1, 12.5, "1 failed, 2 passed", TestCounts(2, 1, 0, 0),
              frozenset({"t::a", "t::b"}), frozenset({"t::c"}), frozenset(),
              test_seconds=(("t", 0.25),))  # the first tier's budget reads them


def test_a_run_comes_back_as_it_was_stored(tmp_path: Path) -> None:
    cache = BaselineCache(tmp_path / "c")
    key = baseline_key("abc", "python -m pytest -q")
    assert cache.get(key) is None
    assert cache.put(key, RUN)
    assert cache.get(key) == RUN
    assert [p.name for p in (tmp_path / "c").iterdir()] == [f"{key}.json.gz"]  # no temp left


def test_an_entry_written_before_a_field_existed_still_loads(tmp_path: Path) -> None:
    """A cache kept between jobs (actions/cache) outlives a bot upgrade: an entry without
    test_seconds is a baseline without times (no first-tier budget), not a miss."""
    old = {"format": 1, "saved": time.time(), "command": RUN.command, "exit_code": 1,
           "seconds": 12.5, "output": RUN.output, "counts": {"passed": 2, "failed": 1},
           "passed_ids": ["t::a", "t::b"], "failed_ids": ["t::c"], "skipped_ids": []}
    (tmp_path / "k.json.gz").write_bytes(gzip.compress(json.dumps(old).encode()))
    assert BaselineCache(tmp_path).get("k") == replace(RUN, test_seconds=())


def test_the_key_is_the_commit_the_command_the_setup_and_the_sandbox() -> None:
    keys = {baseline_key("abc", "pytest"), baseline_key("abd", "pytest"),
            baseline_key("abc", "pytest -x"), baseline_key("abc", "pytest", setup="pip install ."),
            baseline_key("abc", "pytest", sandbox="docker")}
    assert len(keys) == 5
    assert baseline_key("abc", "pytest") == baseline_key("abc", "pytest", setup=None)


def test_broken_or_foreign_entries_are_misses_not_errors(tmp_path: Path) -> None:
    cache = BaselineCache(tmp_path)
    (tmp_path / "k1.json.gz").write_bytes(b"not gzip")
    (tmp_path / "k2.json.gz").write_bytes(gzip.compress(b'{"format": 999}'))
    (tmp_path / "k3.json.gz").write_bytes(gzip.compress(b'{"format": 1, "command": "x"}'))
    assert cache.get("k1") is None and cache.get("k2") is None and cache.get("k3") is None


def test_no_folder_or_a_timed_out_run_is_not_cached(tmp_path: Path) -> None:
    assert not BaselineCache(None).put("k", RUN) and BaselineCache(None).get("k") is None
    cache = BaselineCache(tmp_path)
    assert not cache.put("k", TestRun("pytest", None, 600.0, "killed"))
    assert cache.get("k") is None


def test_an_unwritable_folder_is_a_warning_and_a_miss(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    cache = BaselineCache(blocker / "sub")  # a file where the folder should be
    assert not cache.put("k", RUN) and cache.get("k") is None


def test_old_entries_are_pruned_when_a_new_one_is_written(tmp_path: Path) -> None:
    cache = BaselineCache(tmp_path)
    cache.put("old", RUN)
    stale = time.time() - (KEEP_DAYS + 1) * 86_400
    os.utime(tmp_path / "old.json.gz", (stale, stale))
    cache.put("new", RUN)
    assert cache.get("old") is None and cache.get("new") == RUN


def test_a_baseline_that_ran_no_test_is_not_kept_for_next_time(tmp_path: Path) -> None:
    cache = BaselineCache(tmp_path)
    broken = TestRun("pytest", 2, 1.0, "ModuleNotFoundError: No module named 'x'",
                     TestCounts(errors=1))
    assert not cache.put("k", broken)  # the job may install the module next time
    django = TestRun("python tests/runtests.py", 1, 9.0,
                     "Ran 12 tests in 8.1s\n\nFAILED (failures=1)\n")
    assert cache.put("d", django)  # the verdict reads no counts from unittest, the cache does


def test_baseline_run_runs_once_per_key(tmp_path: Path) -> None:
    cache = BaselineCache(tmp_path)
    calls = []

    def run() -> TestRun:
        calls.append(1)
        return RUN

    assert baseline_run(cache, "k", run) == (RUN, False)
    assert baseline_run(cache, "k", run) == (RUN, True)
    assert baseline_run(BaselineCache(None), "k", run) == (RUN, False)
    assert len(calls) == 2
