"""The memory file: union merges, concurrent writers, corrupt and future files, migrations,
compaction, size on disk, and the `acr-bot memory` commands."""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import random
import stat
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acr_bot.cli import cli
from acr_bot.domain import Record, Summary
from acr_bot.errors import MemoryFileError
from acr_bot.memory.migrations import (
    MIGRATIONS,
    SCHEMA_VERSION,
    m001_records_table,
    m002_record_kind,
    m003_runs_and_harness,
    migrate,
    version_of,
)
from acr_bot.memory.store import Memory, compact, decode, encode, merge, write
from acr_bot.routing.features import extract
from acr_bot.routing.outcomes import stats

MODELS = ("cheap", "mid", "strong")
OUTCOMES = ("passed", "tests_failed", "apply_failed", "no_edits", "provider_fault")
FEATURES = ("lang:python kind:bug err:KeyError w:parser", "lang:go kind:feature w:stream",
            "lang:python kind:test-failure tag:ci", "")


def rec(rid: str, model: str = "cheap", outcome: str = "passed", task: str = "t1",
        features: str = FEATURES[0], attempt: int = 1, cost: float = 0.01,
        ts: float = 1_700_000_000, **more: Any) -> Record:
    return Record(id=rid, kind="attempt", ts=ts, task=task, model=model, outcome=outcome,
                  features=features, attempt=attempt, cost_usd=cost, **more)


def verdict(rid: str, ref: Record, outcome: str, ts: int | None = None) -> Record:
    return Record(id=rid, kind="verdict", ts=ts or int(ref.ts) + 1, task=ref.task,
                  model=ref.model, outcome=outcome, ref=ref.id)


def canonical(seed: int, rid: str) -> Record:
    """A varied record whose values survive the file's rounding exactly."""
    r = random.Random(seed)
    kind = "verdict" if r.random() < 0.15 else "attempt"
    return Record(
        id=rid, kind=kind, ts=1_700_000_000 + r.randint(0, 10**6), task=f"t{r.randint(0, 30)}",
        model=r.choice(MODELS),
        outcome=r.choice(("accepted", "rejected")) if kind == "verdict" else r.choice(OUTCOMES),
        features=r.choice(FEATURES), attempt=r.randint(0, 3), cost_usd=round(r.random(), 6),
        tokens=r.randint(0, 9999), seconds=round(r.uniform(0, 99), 1),
        tests_passed=r.choice((None, 0, 7)), tests_failed=r.choice((None, 0, 2)),
        ref=f"x{r.randint(0, 9)}" if kind == "verdict" else "", repo=r.choice(("", "o/r")))


def ids(records: Iterable[Record]) -> list[str]:
    return [r.id for r in records]


def saved(path: Path, records: Sequence[Record], summaries: Sequence[Summary] = ()) -> Path:
    write(path, Memory(path, records, summaries))
    return path


def per_model(memory: Memory) -> dict[str, dict[str, float]]:
    return {m: {k: round(v, 9) if isinstance(v, float) else v for k, v in cell.items()}
            for m, cell in stats(memory)["model"].items()}


# --- union merge ---------------------------------------------------------------------------


@given(st.integers(0, 10**6))
def test_a_canonical_record_survives_the_file_encoding_exactly(seed: int) -> None:
    record = canonical(seed, "r1")
    assert decode(json.loads(json.dumps(encode(record)))) == record


def test_the_file_encoding_rounds_what_it_must() -> None:
    raw = rec("r1", cost=0.0123456789, ts=1_700_000_000.75, seconds=12.345)
    back = decode(encode(raw))
    assert (back.ts, back.cost_usd, back.seconds) == (1_700_000_000, 0.012346, 12.3)
    assert decode(encode(back)) == back  # canonical after one trip


# One step of the interleaving: (op, writer, other writer, batch size).
STEP = st.tuples(st.sampled_from(["add", "add", "save", "merge", "pull"]),
                 st.integers(0, 3), st.integers(0, 3), st.integers(1, 4))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(STEP, min_size=1, max_size=25), seed=st.integers(0, 2**16))
def test_interleaved_writers_never_lose_a_record(steps: list[tuple[str, int, int, int]],
                                                 seed: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "memory.json"
        writers = [Memory(path) for _ in range(4)]
        created: dict[str, Record] = {}
        in_file: set[str] = set()
        for op, w, v, size in steps:
            if op == "add":
                batch = [canonical(seed + len(created) + i, f"r{len(created) + i:04d}")
                         for i in range(size)]
                created.update((r.id, r) for r in batch)
                writers[w].add(batch)
            elif op == "save":
                writers[w].save()
                in_file |= set(ids(writers[w].records))
                on_disk = set(ids(Memory.load(path).records))
                assert in_file <= on_disk  # nothing saved earlier, by anyone, was dropped
                assert not writers[w].pending
            elif op == "merge":
                writers[w] = merge(writers[w], writers[v])
            else:  # pull what the others saved
                writers[w] = merge(writers[w], Memory.load(path))
        everything = Memory.load(path)
        for writer in writers:
            everything = merge(everything, writer)
        assert sorted(ids(everything.records)) == sorted(created)  # each exactly once
        assert all(created[r.id] == r for r in everything.records)  # and unchanged
        write(path, everything)
        assert Memory.load(path).records == everything.records


RECORD_POOL = [canonical(i, f"p{i:03d}") for i in range(40)]
SUBSET = st.lists(st.sampled_from(RECORD_POOL), max_size=25)


def _memory(records: Sequence[Record], pending: Sequence[Record]) -> Memory:
    memory = Memory(None, records)
    memory.add(pending)
    return memory


@given(SUBSET, SUBSET, SUBSET, SUBSET)
def test_merge_is_commutative_and_idempotent(a1: list[Record], a2: list[Record],
                                             b1: list[Record], b2: list[Record]) -> None:
    a, b = _memory(a1, a2), _memory(b1, b2)
    ab, ba = merge(a, b), merge(b, a)
    expected = {r.id for r in [*a1, *a2, *b1, *b2]}
    assert set(ids(ab.records)) == expected
    assert ab.records == ba.records  # same records, same order
    assert len(ids(ab.records)) == len(expected)
    assert merge(ab, ab).records == ab.records
    assert merge(merge(ab, a), b).records == ab.records
    assert set(ids(merge(a, a).records)) == {r.id for r in [*a1, *a2]}


def test_merge_drops_records_a_summary_covers_from_either_side() -> None:
    old = [rec("a"), rec("b", outcome="tests_failed"), rec("c")]
    summary = Summary("s1", "cheap", "lang:python kind:bug", 2, 1.0, 0.02, ("a", "b"))
    compacted, original = Memory(None, [old[2]], [summary]), Memory(None, old)
    for merged in (merge(compacted, original), merge(original, compacted)):
        assert ids(merged.records) == ["c"]
        assert [s.id for s in merged.summaries] == ["s1"]


# --- real concurrency ----------------------------------------------------------------------


def _writer(path: str, worker: int, rounds: int) -> None:
    for n in range(rounds):
        memory = Memory.load(Path(path))
        memory.add([rec(f"w{worker}-{n}-{i}", task=f"t{worker}") for i in range(5)])
        memory.save()


def test_processes_saving_to_one_file_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "acr" / "memory.json"
    workers, rounds = 4, 4
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), w, rounds)) for w in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert [p.exitcode for p in procs] == [0] * workers
    got = ids(Memory.load(path).records)
    expected = {f"w{w}-{n}-{i}" for w in range(workers) for n in range(rounds) for i in range(5)}
    assert len(got) == len(expected) and set(got) == expected
    assert os.listdir(path.parent) == ["memory.json"]  # no temp or lock file left behind


# --- corrupt and future files ---------------------------------------------------------------


def _good_file(path: Path) -> Path:
    return saved(path, [rec(f"r{i}", task=f"t{i}") for i in range(20)])


def _truncated(path: Path) -> None:
    text = _good_file(path).read_text()
    path.write_text(text[: len(text) // 2])


def _tables(path: Path, **tables: object) -> None:
    doc = json.loads(_good_file(path).read_text())
    doc.update(tables)
    path.write_text(json.dumps(doc))


CORRUPTIONS = {
    "invalid json": lambda p: p.write_text('{"records": {"1": {"id": "a",,}}}'),
    "truncated": _truncated,
    "empty": lambda p: p.write_text(""),
    "only whitespace": lambda p: p.write_text("\n  \n"),
    "not an object": lambda p: p.write_text("[1, 2]"),
    "records is a list": lambda p: _tables(p, records=[{"id": "a"}]),
    "record missing its id": lambda p: _tables(p, records={"1": {
        "k": "a", "ts": 1, "t": "t1", "m": "cheap", "o": "passed"}}),
    "record not an object": lambda p: _tables(p, records={"1": "passed"}),
    "bad schema version": lambda p: _tables(p, meta={"1": {"schema_version": "two"}}),
    "summary missing its model": lambda p: _tables(p, summaries={"1": {"id": "s", "n": 3}}),
    "not utf-8": lambda p: p.write_bytes(b'{"records": {"1": "\xff\xfe"}}'),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_a_corrupt_file_is_named_and_never_overwritten(tmp_path: Path, corruption: str) -> None:
    path = tmp_path / "acr" / "memory.json"
    path.parent.mkdir()
    CORRUPTIONS[corruption](path)
    before = path.read_bytes()
    with pytest.raises(MemoryFileError) as err:
        Memory.load(path)
    assert str(path) in str(err.value)
    mine = Memory(path, [rec("new")])
    with pytest.raises(MemoryFileError) as err:
        mine.save()
    assert str(path) in str(err.value)
    result = CliRunner().invoke(cli, ["memory", "compact", "--memory", str(path), "--keep", "1"])
    assert result.exit_code == 1 and str(path) in result.output
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == ["memory.json"]


def _future_file(path: Path) -> Path:
    doc = json.loads(saved(path, [rec("r1"), rec("r2", outcome="tests_failed")]).read_text())
    doc["meta"] = {"1": {"schema_version": SCHEMA_VERSION + 1}}
    doc["records"]["1"]["new_field"] = {"from": "the future"}
    path.write_text(json.dumps(doc))
    return path


def test_a_newer_schema_is_readable_but_never_written(tmp_path: Path) -> None:
    path = _future_file(tmp_path / "memory.json")
    before = path.read_bytes()
    memory = Memory.load(path)
    assert ids(memory.records) == ["r1", "r2"] and memory.version == SCHEMA_VERSION + 1
    assert per_model(memory)["cheap"]["attempts"] == 2
    memory.add([rec("r3")])
    with pytest.raises(MemoryFileError, match="newer") as err:
        memory.save()
    assert str(path) in str(err.value)
    assert path.read_bytes() == before


def test_save_refuses_when_the_file_became_newer_since_it_was_read(tmp_path: Path) -> None:
    path = saved(tmp_path / "memory.json", [rec("r1")])
    memory = Memory.load(path)
    memory.add([rec("r2")])
    _future_file(path)
    before = path.read_bytes()
    with pytest.raises(MemoryFileError, match="newer"):
        memory.save()
    assert path.read_bytes() == before


def test_memory_commands_refuse_to_write_a_newer_schema(tmp_path: Path) -> None:
    future = _future_file(tmp_path / "future.json")
    other = saved(tmp_path / "other.json", [rec("o1")])
    before = future.read_bytes()
    runner = CliRunner()
    compacted = runner.invoke(cli, ["memory", "compact", "--memory", str(future), "--keep", "0"])
    assert compacted.exit_code == 1 and "newer" in compacted.output
    out = tmp_path / "out.json"
    merged = runner.invoke(cli, ["memory", "merge", str(other), str(future), "-o", str(out)])
    assert merged.exit_code == 1 and "newer" in merged.output
    assert not out.exists() and future.read_bytes() == before
    shown = runner.invoke(cli, ["memory", "stats", "--memory", str(future), "--json"])
    assert shown.exit_code == 0 and json.loads(shown.output)["model"]["cheap"]["attempts"] == 2


# --- migrations ----------------------------------------------------------------------------

HAND_WRITTEN = {"_default": {
    "1": {"id": "h1", "ts": 1_700_000_000, "t": "task-1", "m": "cheap", "o": "tests_failed",
          "f": "lang:python kind:bug", "n": 1, "c": 0.01},
    "2": {"id": "h2", "ts": 1_700_000_100, "t": "task-1", "m": "strong", "o": "passed",
          "f": "lang:python kind:bug", "n": 2, "c": 0.2},
}}


def test_a_hand_written_tinydb_file_migrates(tmp_path: Path) -> None:
    path = tmp_path / "memory.json"
    path.write_text(json.dumps(HAND_WRITTEN))
    memory = Memory.load(path)
    assert [(r.id, r.kind, r.model, r.outcome) for r in memory.records] == [
        ("h1", "attempt", "cheap", "tests_failed"), ("h2", "attempt", "strong", "passed")]
    assert memory.version == SCHEMA_VERSION
    assert per_model(memory)["strong"]["pass_rate"] == 1.0
    memory.add([rec("r3")])
    assert memory.save() == 3
    doc = json.loads(path.read_text())
    assert list(doc["meta"].values()) == [{"schema_version": SCHEMA_VERSION}]
    assert "_default" not in doc
    assert sorted(d["id"] for d in doc["records"].values()) == ["h1", "h2", "r3"]
    assert ids(Memory.load(path).records) == ids(memory.records)


def test_m001_moves_default_documents_into_records() -> None:
    data = {"_default": {"1": {"id": "a"}}, "records": {"1": {"id": "b"}}, "other": {}}
    out = m001_records_table(data)
    assert out == {"records": {"1": {"id": "b"}, "d1": {"id": "a"}}, "other": {}}
    assert "_default" in data  # the input is not mutated
    assert m001_records_table({}) == {"records": {}}


def test_m002_marks_old_records_as_attempts_and_keeps_verdicts() -> None:
    data = {"records": {"1": {"id": "a"}, "2": {"id": "b", "k": "v"}}, "meta": {}}
    out = m002_record_kind(data)
    assert out["records"] == {"1": {"k": "a", "id": "a"}, "2": {"k": "v", "id": "b"}}
    assert out["meta"] == {} and "k" not in data["records"]["1"]


def test_m003_recovers_runs_from_attempt_numbers() -> None:
    def doc(ident: str, task: str, number: int, ts: int, kind: str = "a") -> dict:
        return {"id": ident, "k": kind, "t": task, "n": number, "ts": ts}

    # Task x: a run of 1, 2, 3, then a second run starting again at 1; task y interleaved.
    docs = [doc("a", "x", 1, 1), doc("b", "y", 1, 2), doc("c", "x", 2, 3), doc("d", "x", 3, 4),
            doc("e", "x", 1, 5), doc("f", "y", 2, 6), doc("g", "x", 2, 7), doc("v", "x", 0, 8, "v")]
    out = m003_runs_and_harness({"records": {str(i): d for i, d in enumerate(docs)}})
    runs = {d["id"]: d.get("ru") for d in out["records"].values()}
    assert runs == {"a": "legacy-a", "c": "legacy-a", "d": "legacy-a", "e": "legacy-e",
                    "g": "legacy-e", "b": "legacy-b", "f": "legacy-b", "v": None}
    assert {d.get("h") for d in out["records"].values() if d["k"] == "a"} == {"edit"}


def test_migrate_runs_only_the_missing_steps() -> None:
    assert SCHEMA_VERSION == len(MIGRATIONS) == 3
    assert version_of({}, "f") == 0
    v1 = {"meta": {"1": {"schema_version": 1}}, "_default": {"1": {"id": "left"}},
          "records": {"1": {"id": "a"}}}
    version, out = migrate(v1, "f")
    assert version == SCHEMA_VERSION
    # m002 and m003 ran, m001 did not
    assert out["records"] == {"1": {"k": "a", "id": "a", "h": "edit", "ru": "legacy-a"}}
    assert out["_default"] == {"1": {"id": "left"}}
    future = {"meta": {"1": {"schema_version": 9}}, "records": {"1": {"id": "a"}}}
    assert migrate(future, "f") == (9, future)
    with pytest.raises(MemoryFileError, match="f: schema_version"):
        version_of({"meta": {"1": {"schema_version": -1}}}, "f")


# --- compaction ----------------------------------------------------------------------------


def history(tasks: int = 40, seed: int = 3) -> list[Record]:
    """Cascades over two clusters, with faults that cost money and verdicts of every kind."""
    r = random.Random(seed)
    out: list[Record] = []
    ts = 1_700_000_000
    for t in range(tasks):
        features = FEATURES[t % 2]
        for number, model in enumerate(MODELS, start=1):
            ts += 10
            if r.random() < 0.1:
                out.append(rec(f"f{t}{model}", model, "provider_fault", f"t{t}", features,
                               number, cost=0.003, ts=ts))
            ok = r.random() < 0.3 * number
            attempt = rec(f"a{t}{model}", model, "passed" if ok else "tests_failed", f"t{t}",
                          features, number, cost=round(0.01 * number * r.uniform(1, 2), 6),
                          ts=ts)
            out.append(attempt)
            if ok:
                if t % 3 == 0:
                    out.append(verdict(f"v{t}", attempt, ("rejected", "accepted",
                                                          "changes_requested")[t % 9 // 3]))
                break
    return out


def test_compact_keeps_the_newest_and_preserves_every_models_record() -> None:
    records = history()
    original = Memory(None, records)
    small = compact(original, keep=10)
    attempts = sorted((r for r in records if r.kind == "attempt"), key=lambda r: (r.ts, r.id))
    kept = sorted((r for r in small.records if r.kind == "attempt"), key=lambda r: (r.ts, r.id))
    assert kept == attempts[-10:]
    covered = [rid for s in small.summaries for rid in s.covers]
    assert len(covered) == len(set(covered))
    assert set(covered) | set(ids(small.records)) == set(ids(records))
    assert per_model(small) == per_model(original)
    for group in stats(original):
        assert stats(small)[group].keys() == stats(original)[group].keys()
    # a rejected PR's attempt counts as a miss, a change request as half a pass
    folded = {r.id for r in attempts[:-10]}
    judged = {v.ref: v.outcome for v in records if v.kind == "verdict" and v.ref in folded}
    assert {"rejected", "accepted", "changes_requested"} <= set(judged.values())
    weight = {"accepted": 1.0, "changes_requested": 0.5, "rejected": 0.0}
    expected = sum(weight.get(judged.get(r.id, ""), 1.0) for r in attempts[:-10] if r.passed)
    assert sum(s.passes for s in small.summaries) == expected
    assert expected < sum(r.passed for r in attempts[:-10])
    assert sum(s.faults for s in small.summaries) == sum(
        r.outcome == "provider_fault" for r in attempts[:-10]) > 0


def test_compact_counts_verdicts_and_costs_like_the_router() -> None:
    a = rec("a1", "cheap", "passed", ts=1)
    b = rec("a2", "cheap", "passed", task="t2", ts=2, cost=0.03)
    c = rec("a3", "cheap", "provider_fault", task="t3", ts=3, cost=0.5)
    memory = Memory(None, [a, b, c, verdict("v1", a, "rejected"), rec("keep", ts=9)])
    before = per_model(memory)["cheap"]
    small = compact(memory, keep=1)
    (summary,) = small.summaries
    assert (summary.attempts, summary.passes) == (2, 1.0)
    assert summary.cost_usd == pytest.approx(0.04)  # the fault's $ is not skill evidence
    assert per_model(small)["cheap"] == before
    assert before["faults"] == 1 and before["pass_rate"] == pytest.approx(2 / 3)


def test_a_model_that_only_faulted_is_listed_and_its_faults_survive_compaction() -> None:
    records = [rec("f1", "down", "provider_fault", ts=1), rec("f2", "down", "provider_fault",
                                                                ts=2), rec("ok", ts=3)]
    memory = Memory(None, records)
    assert per_model(memory)["down"] == {"attempts": 0.0, "passes": 0.0, "cost_usd": 0.0,
                                         "pass_rate": 0.0, "usd_per_pass": None, "faults": 2.0,
                                         "reproduced": 0.0}
    assert per_model(compact(memory, keep=0)) == per_model(memory)


def test_reproduced_passes_survive_compaction_and_a_file_round_trip(tmp_path: Path) -> None:
    records = [rec("a", ts=1, reproduction=2), rec("b", ts=2),
               rec("c", outcome="no_reproduction", ts=3)]
    memory = Memory(None, records)
    assert per_model(memory)["cheap"]["reproduced"] == 1.0
    small = compact(memory, keep=0)
    assert per_model(small)["cheap"]["reproduced"] == 1.0
    path = tmp_path / "memory.json"
    write(path, small)
    assert per_model(Memory.load(path)) == per_model(memory)
    write(path, memory)
    assert [r.reproduction for r in Memory.load(path).records] == [2, 0, 0]


def test_a_summary_round_trips_through_the_file(tmp_path: Path) -> None:
    small = compact(Memory(None, history()), keep=3)
    path = tmp_path / "memory.json"
    write(path, small)
    stored = [replace(s, cost_usd=round(s.cost_usd, 6)) for s in small.summaries]
    assert Memory.load(path).summaries == stored
    assert any(s.faults for s in small.summaries)


def test_compact_with_nothing_old_is_a_no_op() -> None:
    memory = Memory(None, history(5))
    assert compact(memory, keep=1000) is memory


def test_merging_a_compacted_copy_with_the_original_does_not_double_count(
        tmp_path: Path) -> None:
    original = Memory(None, history())
    small = compact(original, keep=7)
    expected = per_model(original)
    assert per_model(merge(small, original)) == expected
    assert per_model(merge(original, small)) == expected
    # through files, both ways
    a, b = saved(tmp_path / "a.json", original.records), tmp_path / "b.json"
    write(b, small)
    assert per_model(Memory.load(b)) == expected
    assert per_model(merge(Memory.load(a), Memory.load(b))) == expected
    # a clone that compacted the same history the same way
    assert per_model(merge(small, compact(original, keep=7))) == expected
    # new records on each side still count
    fresh = rec("late", "strong", "passed", task="t99", ts=1_800_000_000)
    grown = merge(small, Memory(None, [*original.records, fresh]))
    assert per_model(grown)["strong"]["attempts"] == expected["strong"]["attempts"] + 1


def test_save_after_someone_compacted_the_file_keeps_counts(tmp_path: Path) -> None:
    records = history()
    path = saved(tmp_path / "memory.json", records)
    mine = Memory.load(path)
    write(path, compact(Memory.load(path), keep=5))  # another run compacted meanwhile
    mine.add([rec("late", "mid", "passed", task="t77", ts=1_800_000_000)])
    mine.save()
    after = per_model(Memory.load(path))
    assert after["mid"]["attempts"] == per_model(Memory(None, records))["mid"]["attempts"] + 1
    assert sum(r.kind == "attempt" for r in Memory.load(path).records) == 6


# --- size, file mode ------------------------------------------------------------------------

WORDS = ["parser", "tokenizer", "cache", "config", "loader", "socket", "thread", "buffer", "index",
         "matrix", "graph", "lexer", "widget", "schema", "cursor", "render", "layout",
         "session", "cookie", "router", "handler", "logger", "metric", "encoder",
         "decoder", "stream", "channel", "worker", "queue", "scheduler"]


def realistic(n: int, seed: int = 0) -> list[Record]:
    """Records as the fixer writes them: features extracted from varied issue texts."""
    r = random.Random(seed)
    out: list[Record] = []
    task = 0
    while len(out) < n:
        task += 1
        w = r.sample(WORDS, 6)
        err = r.choice(("KeyError", "ValueError", "TypeError", "panic", "IndexError"))
        text = (f"{w[0]} {w[1]} fails with {err} in src/{w[2]}/{w[3]}.py\n\nWhen the {w[4]} "
                f"is empty the {w[5]} crashes.\nimport {r.choice(('numpy', 'yaml', 'click'))}")
        features = extract(text, tags=r.sample(("bug", "ci", "bcb"), r.randint(0, 2))).compact()
        for number in range(1, r.randint(2, 3) + 1):
            ok = r.random() < 0.4
            out.append(Record(
                id=f"{r.getrandbits(64):016x}", kind="attempt",
                ts=1_700_000_000.0 + len(out) * 97.3,
                task=f"issue:{seed}:{task}", model=r.choice(MODELS),
                outcome="passed" if ok else "tests_failed", features=features, attempt=number,
                cost_usd=r.uniform(0.001, 0.4), tokens=r.randint(1000, 90000),
                seconds=r.uniform(3, 900), tests_passed=r.randint(0, 500),
                tests_failed=0 if ok else r.randint(1, 20)))
            if ok:
                break
    return out[:n]


def test_ten_thousand_records_fit_in_400_bytes_each(tmp_path: Path) -> None:
    records = realistic(10_000)
    assert len({r.features for r in records}) > 2000
    path = tmp_path / "memory.json"
    memory = Memory(path)
    memory.add(records)
    assert memory.save() == 10_000
    size = path.stat().st_size
    assert size / 10_000 <= 400, f"{size / 10_000:.0f} bytes per record"
    assert [decode(encode(r)) for r in records] == Memory.load(path).records


def test_the_file_is_world_readable_and_leaves_no_lock_behind(tmp_path: Path) -> None:
    path = tmp_path / ".acr" / "memory.json"
    old = os.umask(0o077)
    try:
        memory = Memory(path)
        memory.add([rec("r1")])
        memory.save()
        memory.add([rec("r2")])
        memory.save()
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert os.listdir(path.parent) == ["memory.json"]
    assert ids(Memory.load(path).records) == ["r1", "r2"]


def test_a_memory_without_a_file_cannot_be_saved() -> None:
    memory = Memory(None, [rec("r1")])
    with pytest.raises(MemoryFileError, match="no file"):
        memory.save()


# --- the `acr-bot memory` commands ----------------------------------------------------------


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["memory", *args])
    return result.exit_code, result.output


@pytest.fixture
def memory_file(tmp_path: Path) -> Path:
    return saved(tmp_path / "memory.json", history())


def test_memory_stats_as_text_and_json(memory_file: Path) -> None:
    code, text = _cli("stats", "--memory", str(memory_file))
    assert code == 0
    assert text.startswith("Per model") and "lang:python" in text and "kind:bug" in text
    expected = per_model(Memory.load(memory_file))
    for model in MODELS:
        assert any(line.split()[:2] == [model, f"{expected[model]['attempts']:.0f}"]
                   for line in text.splitlines())
    code, out = _cli("stats", "--memory", str(memory_file), "--json")
    assert code == 0
    doc = json.loads(out)
    assert set(doc["model"]) == set(MODELS)
    assert doc["model"]["strong"]["pass_rate"] == pytest.approx(expected["strong"]["pass_rate"])
    assert doc["model"]["cheap"]["faults"] == expected["cheap"]["faults"]


def test_memory_stats_of_an_empty_file(tmp_path: Path) -> None:
    path = saved(tmp_path / "memory.json", [])
    assert _cli("stats", "--memory", str(path)) == (0, "The memory is empty.\n")


def test_memory_show_last(memory_file: Path) -> None:
    code, out = _cli("show", "--memory", str(memory_file), "--last", "3")
    assert code == 0
    lines = out.splitlines()
    newest = Memory.load(memory_file).records[-3:]
    assert len(lines) == 2 + 3 and lines[0].split()[:2] == ["id", "time"]
    assert [line.split()[0] for line in lines[2:]] == ids(newest)
    code, out = _cli("show", "--memory", str(memory_file), "--task", "t1")
    assert code == 0 and all(" t1 " in line for line in out.splitlines()[2:])


def test_memory_export_csv_parses_back(memory_file: Path) -> None:
    code, out = _cli("export", "--csv", "--memory", str(memory_file))
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    records = Memory.load(memory_file).records
    assert [row["id"] for row in rows] == ids(records)
    assert {row["kind"] for row in rows} == {"attempt", "verdict"}
    first = next(r for r in records if r.kind == "attempt")
    row = next(row for row in rows if row["id"] == first.id)
    assert (row["model"], row["outcome"], float(row["cost_usd"]), int(row["attempt"])) == (
        first.model, first.outcome, first.cost_usd, first.attempt)
    assert row["features"] == first.features


def test_memory_merge_unions_two_files(tmp_path: Path) -> None:
    shared = [rec(f"s{i}", ts=i) for i in range(3)]
    a = saved(tmp_path / "a.json", [*shared, rec("a1", ts=10)])
    b = saved(tmp_path / "b.json", [*shared, rec("b1", ts=11), rec("b2", ts=12)])
    out = tmp_path / "sub" / "out.json"
    code, text = _cli("merge", str(a), str(b), "-o", str(out))
    assert code == 0 and "6 records" in text
    assert ids(Memory.load(out).records) == ["s0", "s1", "s2", "a1", "b1", "b2"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_memory_compact_keeps_stats(memory_file: Path) -> None:
    before = per_model(Memory.load(memory_file))
    code, text = _cli("compact", "--memory", str(memory_file), "--keep", "4")
    assert code == 0 and "summaries" in text
    after = Memory.load(memory_file)
    assert sum(r.kind == "attempt" for r in after.records) == 4
    assert after.summaries and per_model(after) == before
    code, _ = _cli("compact", "--memory", str(memory_file), "--keep", "-1")
    assert code == 2


@pytest.mark.parametrize("args", [["stats"], ["show"], ["export", "--csv"],
                                  ["compact", "--keep", "1"]])
def test_a_missing_memory_file_is_a_usage_error(tmp_path: Path, args: list[str]) -> None:
    missing = tmp_path / "nope.json"
    code, out = _cli(*args, "--memory", str(missing))
    assert code == 2 and "does not exist" in out and str(missing) in out
    assert not missing.exists()


def test_merge_with_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    a = saved(tmp_path / "a.json", [rec("a")])
    code, out = _cli("merge", str(a), str(tmp_path / "nope.json"), "-o", str(tmp_path / "o"))
    assert code == 2 and "does not exist" in out


def test_records_compare_by_value() -> None:
    """The writers test relies on dataclass equality seeing every field."""
    assert replace(rec("a"), tokens=5) != rec("a")


# --- files that are not memories ---------------------------------------------------------------

NOT_MEMORIES = {
    "package.json": '{"name": "web", "version": "1.0.0", "scripts": {"test": "jest"}}\n',
    "replay.json": '{"models": {"replay/cheap": {"replies": [{"text": "hi"}]}}}\n',
}


@pytest.mark.parametrize("name", sorted(NOT_MEMORIES))
@pytest.mark.parametrize("args", [["compact", "--keep", "10", "--memory", "BAD"],
                                  ["stats", "--memory", "BAD"], ["show", "--memory", "BAD"],
                                  ["export", "--csv", "--memory", "BAD"],
                                  ["merge", "OTHER", "BAD", "-o", "OUT"],
                                  ["merge", "OTHER", "OTHER", "-o", "BAD"]])
def test_memory_commands_refuse_a_file_that_is_not_a_memory(tmp_path: Path, name: str,
                                                            args: list[str]) -> None:
    path = tmp_path / name
    path.write_text(NOT_MEMORIES[name])
    before = path.read_bytes()
    other = saved(tmp_path / "other.json", [rec("o1")])
    files = {"BAD": path, "OTHER": other, "OUT": tmp_path / "out.json"}
    argv = [str(files.get(a, a)) for a in args]
    code, out = _cli(*argv)
    assert code == 1, out
    assert out.strip() == (f"Error: {path}: not an acr-bot memory (no meta.schema_version; "
                           f"keys {', '.join(repr(k) for k in sorted(json.loads(before)))}); "
                           "the file was left untouched")
    assert path.read_bytes() == before
    assert not (tmp_path / "out.json").exists()


def test_a_legacy_memory_without_schema_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"_default": {"1": encode(rec("old"))}}))
    assert [r.id for r in Memory.load(path).records] == ["old"]
