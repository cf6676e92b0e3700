"""Ordered, named schema steps for the memory file. Each takes and returns the raw tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from acr_bot.errors import MemoryFileError

Tables = dict[str, Any]


def m001_records_table(data: Tables) -> Tables:
    """Files without a schema (hand-written, or plain tinydb) kept records in `_default`."""
    records = dict(data.get("records", {}))
    for key, doc in data.get("_default", {}).items():
        records.setdefault(f"d{key}", doc)
    return {k: v for k, v in data.items() if k != "_default"} | {"records": records}


def m002_record_kind(data: Tables) -> Tables:
    """Every record names its kind; records before verdicts existed were all attempts."""
    records = {key: {"k": "a", **doc} for key, doc in data.get("records", {}).items()}
    return data | {"records": records}


def m003_runs_and_harness(data: Tables) -> Tables:
    """Records gained a run id and a harness; older attempts were all one-prompt edits.

    Older files kept no run id, so runs are recovered: a run numbers its attempts 1, 2, 3, so
    for one task (in time order) a number that does not grow starts a new run."""
    docs = data.get("records", {})
    attempts = sorted((doc.get("ts", 0), str(doc.get("id", key)), key) for key, doc in docs.items()
                      if doc.get("k", "a") == "a")
    runs: dict[str, str] = {}
    last: dict[str, tuple[int, str]] = {}  # task -> (attempt number, run id)
    for _, ident, key in attempts:
        task, number = str(docs[key].get("t", "")), int(docs[key].get("n", 0) or 0)
        previous = last.get(task)
        run = previous[1] if previous and number > previous[0] else f"legacy-{ident}"
        last[task] = (number, run)
        runs[key] = run
    records = {key: ({"h": "edit", "ru": runs[key], **doc} if key in runs else doc)
               for key, doc in docs.items()}
    return data | {"records": records}


MIGRATIONS: list[Callable[[Tables], Tables]] = [m001_records_table, m002_record_kind,
                                                m003_runs_and_harness]
SCHEMA_VERSION = len(MIGRATIONS)


# The tables a file from before schema versions (m001) could hold.
LEGACY_TABLES = frozenset({"_default", "records", "summaries", "meta"})


def version_of(data: Tables, origin: str) -> int:
    meta = data.get("meta") or {}
    docs = list(meta.values()) if isinstance(meta, dict) else []
    if not docs:
        _check_legacy(data, origin)
        return 0
    version = docs[0].get("schema_version") if isinstance(docs[0], dict) else None
    if not isinstance(version, int) or version < 0:
        raise MemoryFileError(f"{origin}: schema_version is {version!r}, expected an integer")
    return version


def _check_legacy(data: Tables, origin: str) -> None:
    """A file without meta.schema_version is a memory only if it holds nothing but memory
    tables: a package.json or a replay file must never be read (or rewritten) as an empty one."""
    unknown = sorted(set(data) - LEGACY_TABLES)
    if unknown:
        shown = ", ".join(repr(k) for k in unknown[:3]) + (", ..." if len(unknown) > 3 else "")
        raise MemoryFileError(f"{origin}: not an acr-bot memory (no meta.schema_version; "
                              f"keys {shown}); the file was left untouched")


def migrate(data: Tables, origin: str) -> tuple[int, Tables]:
    """Bring `data` up to SCHEMA_VERSION. A newer file is returned as is, with its version."""
    version = version_of(data, origin)
    for table in ("records", "summaries", "_default"):
        if table in data and not isinstance(data[table], dict):
            raise MemoryFileError(f"{origin}: table {table!r} is not a JSON object")
    for step in MIGRATIONS[version:]:
        data = step(data)
    return max(version, SCHEMA_VERSION), data
