"""The memory file: append-only attempt and verdict records in a tinydb JSON file.

Records have unique ids and are never edited, so two copies merge by union with nothing lost.
Writes are atomic (temp file + rename) and batched; a corrupt file or one from a newer schema
is never overwritten. `compact` folds old records into per-model, per-cluster summaries.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.middlewares import CachingMiddleware
from tinydb.storages import Storage

from acr_bot.domain import VERDICT_SCORES, Record, Summary
from acr_bot.errors import MemoryFileError
from acr_bot.memory.migrations import SCHEMA_VERSION, migrate

RECORDS, SUMMARIES, META = "records", "summaries", "meta"
# Short keys keep a record near 250 bytes; defaults are omitted on disk.
KEYS = {"id": "id", "kind": "k", "ts": "ts", "task": "t", "model": "m", "outcome": "o",
        "features": "f", "attempt": "n", "cost_usd": "c", "tokens": "tok", "seconds": "s",
        "tests_passed": "tp", "tests_failed": "tf", "ref": "ref", "repo": "r",
        "run": "ru", "harness": "h", "reproduction": "rp"}
LONG = {short: long for long, short in KEYS.items()}
KIND_CODES = {"attempt": "a", "verdict": "v"}
KIND_NAMES = {code: name for name, code in KIND_CODES.items()}
DEFAULTS = {f.name: f.default for f in fields(Record)}


def new_id() -> str:
    """16 hex chars: time-ordered prefix + randomness, unique across concurrent writers."""
    return f"{int(time.time()) & 0xFFFFFFFF:08x}{os.urandom(4).hex()}"


def encode(record: Record) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, short in KEYS.items():
        value = getattr(record, name)
        if name == "kind":
            value = KIND_CODES[value]
        elif name in ("cost_usd",) and value:
            value = round(value, 6)
        elif name == "seconds" and value:
            value = round(value, 1)
        elif name == "ts":
            value = int(value)
        if value != DEFAULTS.get(name) or name in ("id", "kind", "ts", "task", "model", "outcome"):
            out[short] = value
    return out


def decode(doc: dict[str, Any]) -> Record:
    values = {LONG[k]: v for k, v in doc.items() if k in LONG}
    values["kind"] = KIND_NAMES.get(values.get("kind", "a"), "attempt")
    return Record(**values)


def encode_summary(s: Summary) -> dict[str, Any]:
    doc = {"id": s.id, "m": s.model, "cl": s.cluster, "n": s.attempts, "p": s.passes,
           "c": round(s.cost_usd, 6), "cov": list(s.covers)}
    return doc | ({"fl": s.faults} if s.faults else {}) | ({"rp": s.reproduced}
                                                           if s.reproduced else {})


def decode_summary(doc: dict[str, Any]) -> Summary:
    return Summary(doc["id"], doc["m"], doc.get("cl", ""), int(doc["n"]), float(doc["p"]),
                   float(doc.get("c", 0.0)), tuple(doc.get("cov", ())), int(doc.get("fl", 0)),
                   int(doc.get("rp", 0)))


def summary_id(model: str, cluster: str, covers: Iterable[str]) -> str:
    """A summary's id follows from what it covers: two clones that compact the same records
    the same way write the same summary, and a merge keeps one of them."""
    digest = hashlib.sha1("\n".join([model, cluster, *sorted(covers)]).encode())
    return digest.hexdigest()[:16]


def parse_tables(text: str, origin: str) -> dict[str, Any]:
    """The raw tables of a memory file's text; MemoryFileError (naming `origin`) if corrupt."""
    if not text.strip():
        raise MemoryFileError(f"{origin}: the file is empty (truncated?); it was left "
                              "untouched. Restore it from git or move it away.")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise MemoryFileError(f"{origin}: not valid JSON ({exc}); the file was left "
                              "untouched. Restore it from git (git checkout -- <file>) "
                              "or move it away to start a fresh memory.") from None
    if not isinstance(data, dict):
        raise MemoryFileError(f"{origin}: expected a JSON object of tables")
    return data


class AtomicJSONStorage(Storage):
    """tinydb storage that validates on read and replaces the file atomically on write."""

    def __init__(self, path: str, **_: Any) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise MemoryFileError(f"{self.path}: cannot be read ({exc})") from None
        return parse_tables(text, str(self.path))

    def write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, separators=(",", ":"))
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; the memory is meant to be committed
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def close(self) -> None:
        pass


class Memory:
    """Records in memory plus the file they came from; `save` writes them back in one batch."""

    def __init__(self, path: Path | None, records: Sequence[Record] = (),
                 summaries: Sequence[Summary] = (), version: int = SCHEMA_VERSION) -> None:
        self.path = Path(path) if path else None
        self.records: list[Record] = list(records)
        self.summaries: list[Summary] = list(summaries)
        self.version = version
        self.pending: list[Record] = []

    @classmethod
    def load(cls, path: Path) -> Memory:
        """Read `path` (a missing file is an empty memory). Raises MemoryFileError if corrupt."""
        data = AtomicJSONStorage(str(path)).read()
        if data is None:
            return cls(path)
        return cls.from_tables(data, str(path), path)

    @classmethod
    def from_text(cls, text: str, origin: str, path: Path | None = None) -> Memory:
        """A memory from a file's text (e.g. read from a git branch)."""
        return cls.from_tables(parse_tables(text, origin), origin, path)

    @classmethod
    def from_tables(cls, data: dict[str, Any], origin: str, path: Path | None) -> Memory:
        version, data = migrate(data, origin)
        records = [_decode_checked(doc, origin) for doc in data.get(RECORDS, {}).values()]
        summaries = [_decode_summary_checked(doc, origin)
                     for doc in data.get(SUMMARIES, {}).values()]
        return cls(path, records, summaries, version)

    def add(self, records: Iterable[Record]) -> None:
        """Queue records; `save` writes them (one write per run, not one per record)."""
        self.pending.extend(records)

    def all_records(self) -> list[Record]:
        return self.records + self.pending

    def save(self) -> int:
        """Union this memory (and pending records) with the file on disk; write atomically.

        Returns how many records are in the file afterwards.
        """
        if self.path is None:
            raise MemoryFileError("this memory has no file to save to")
        self._check_writable()
        with _locked(self.path):
            on_disk = Memory.load(self.path)
            if on_disk.version > SCHEMA_VERSION:
                self.version = on_disk.version
                self._check_writable()
            merged = merge(on_disk, self)
            write(self.path, merged)
        self.records, self.summaries, self.pending = merged.records, merged.summaries, []
        return len(self.records)

    def _check_writable(self) -> None:
        if self.version > SCHEMA_VERSION:
            raise MemoryFileError(
                f"{self.path}: written by a newer acr-bot (schema {self.version}, this one "
                f"knows {SCHEMA_VERSION}); upgrade acr-bot to write to it. It was not changed.")


# What each field must hold: the memory branch is writable by anyone who can push, and one
# record with a string cost (or NaN) would crash routing or lift the daily cap.
_TEXT = (str,)
_NUMBER = (int, float)
_FIELD_TYPES = {"id": _TEXT, "task": _TEXT, "model": _TEXT, "outcome": _TEXT,
                "features": _TEXT, "ref": _TEXT, "repo": _TEXT, "ts": _NUMBER,
                "cost_usd": _NUMBER, "seconds": _NUMBER, "attempt": (int,), "tokens": (int,), "reproduction": (int,),
                "tests_passed": (int, type(None)), "tests_failed": (int, type(None))}


def _decode_checked(doc: Any, path: Path | str) -> Record:
    try:
        record = decode(doc)
    except (TypeError, KeyError, AttributeError) as exc:
        raise MemoryFileError(f"{path}: a record is malformed ({exc}): {str(doc)[:120]}") from None
    for name, kinds in _FIELD_TYPES.items():
        value = getattr(record, name)
        if not isinstance(value, kinds) or isinstance(value, bool) or (
                isinstance(value, float) and not math.isfinite(value)):
            raise MemoryFileError(f"{path}: a record is malformed ({name} is {value!r:.40}): "
                                  f"{str(doc)[:120]}")
    return record


def _decode_summary_checked(doc: Any, origin: Path | str) -> Summary:
    try:
        return decode_summary(doc)
    except (TypeError, KeyError, AttributeError, ValueError) as exc:
        raise MemoryFileError(f"{origin}: a summary is malformed ({exc!r}): "
                              f"{str(doc)[:120]}") from None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An advisory lock so two local runs do not interleave their read-merge-write.

    It locks the memory file's directory, so no lock file is left in the user's checkout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write(path: Path, memory: Memory) -> None:
    """Replace `path` with exactly `memory`'s records, through tinydb, in one atomic write."""
    # The caching middleware holds every change in memory; close() flushes them in one write.
    db = TinyDB(str(path), storage=CachingMiddleware(AtomicJSONStorage))
    try:
        db.drop_tables()
        db.table(META).insert({"schema_version": SCHEMA_VERSION})
        db.table(RECORDS).insert_multiple(encode(r) for r in memory.all_records())
        db.table(SUMMARIES).insert_multiple(encode_summary(s) for s in memory.summaries)
    finally:
        db.close()


def merge(a: Memory, b: Memory) -> Memory:
    """Union by id: nothing is lost; records folded into a summary are not counted twice."""
    summaries = {s.id: s for s in [*a.summaries, *b.summaries]}
    covered = {rid for s in summaries.values() for rid in s.covers}
    records: dict[str, Record] = {}
    for record in [*a.all_records(), *b.all_records()]:
        if record.id not in covered:
            records.setdefault(record.id, record)
    ordered = sorted(records.values(), key=lambda r: (r.ts, r.id))
    return Memory(a.path or b.path, ordered, sorted(summaries.values(), key=lambda s: s.id),
                  max(a.version, b.version))


def cluster_of(features: str) -> str:
    """The coarse cluster a record is summarised under: its languages and task kind."""
    tokens = features.split()
    return " ".join(t for t in tokens if t.startswith(("lang:", "kind:"))) or "unknown"


def compact(memory: Memory, keep: int) -> Memory:
    """Keep the newest `keep` attempts; fold older ones into per-model, per-cluster summaries.

    Verdicts on folded attempts are applied before folding (a rejected PR counts as a miss)
    and folded with them, so a model's track record survives exactly as the router sees it.
    """
    records = memory.all_records()
    attempts = sorted((r for r in records if r.kind == "attempt"), key=lambda r: (r.ts, r.id))
    old = attempts[: max(len(attempts) - keep, 0)]
    if not old:
        return memory
    verdicts: dict[str, list[Record]] = {}
    for r in records:
        if r.kind == "verdict":
            verdicts.setdefault(r.ref, []).append(r)
    groups: dict[tuple[str, str], list[Record]] = {}
    for r in old:
        groups.setdefault((r.model, cluster_of(r.features)), []).append(r)
    summaries, dropped = [], set()
    for (model, cluster), group in sorted(groups.items()):
        judged = [v for r in group for v in verdicts.get(r.id, [])]
        score = {v.ref: VERDICT_SCORES.get(v.outcome, 1.0) for v in judged}
        covers = tuple(r.id for r in group) + tuple(v.id for v in judged)
        skill = [r for r in group if r.outcome != "provider_fault"]
        # $ of skill attempts only, as `observations` counts it for raw records.
        summaries.append(Summary(
            summary_id(model, cluster, covers), model, cluster, len(skill),
            sum(score.get(r.id, 1.0) for r in group if r.passed),
            sum(r.cost_usd for r in skill), covers, len(group) - len(skill),
            sum(1 for r in group if r.passed and r.reproduction)))
        dropped.update(covers)
    kept = [r for r in records if r.id not in dropped]
    return Memory(memory.path, kept, [*memory.summaries, *summaries], memory.version)


def compact_file(path: Path, keep: int) -> tuple[int, Memory]:
    """Compact the file in place, under the same lock `save` uses (no concurrent loss)."""
    with _locked(path):
        memory = Memory.load(path)
        memory._check_writable()
        before = len(memory.records)
        smaller = compact(memory, keep)
        write(path, smaller)
    return before, smaller


def merge_files(paths: Sequence[Path], out: Path) -> Memory:
    """Union of the files (and of `out`, if it exists: nothing already there is lost)."""
    with _locked(out):
        sources = [Memory.load(p) for p in paths]
        if out.exists():
            sources.append(Memory.load(out))
        merged = sources[0]
        for other in sources[1:]:
            merged = merge(merged, other)
        merged.path = out
        merged._check_writable()
        write(out, merged)
    return merged
