"""The memory branch: concurrent writers lose nothing, a new branch is seeded, a corrupt or
newer file is never overwritten, and the token travels only in the environment."""

from __future__ import annotations

import base64
import http.server
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from acr_bot.domain import Record, Summary
from acr_bot.errors import GitError, MemoryFileError
from acr_bot.gitrepo import Remote, git
from acr_bot.memory.branch import BranchMemory
from acr_bot.memory.store import Memory, write

BRANCH = "acr-memory"
PATH = ".acr/memory.json"
WRITERS, PER_WRITER, BATCHES = 8, 50, 3

WRITER = r"""
import sys, time
from pathlib import Path
from acr_bot.domain import Record
from acr_bot.gitrepo import Remote
from acr_bot.memory.branch import BranchMemory

clone, origin, writer, count, batches = sys.argv[1:6]
writer, count, batches = int(writer), int(count), int(batches)
store = BranchMemory(Path(clone), Remote(origin), "acr-memory", ".acr/memory.json")
records = [Record(f"{writer:08x}{i:08x}", "attempt", time.time(), f"task-{writer}", "m",
                  "passed", cost_usd=0.001) for i in range(count)]
for b in range(batches):
    store.append(records[b::batches], message=f"writer {writer} batch {b}")
"""


def record(rid: str, **kw: object) -> Record:
    return Record(rid, "attempt", kw.pop("ts", 1_700_000_000.0), "t", "m", "passed",  # type: ignore[arg-type]
                  **kw)  # type: ignore[arg-type]


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A bare repository with a default branch (and no memory branch yet)."""
    src = tmp_path / "src"
    src.mkdir()
    git(src, "init", "--quiet", "--initial-branch=main")
    (src / "README.md").write_text("project\n")
    git(src, "add", "-A")
    git(src, "commit", "--quiet", "-m", "initial")
    bare = tmp_path / "origin.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(src), str(bare))
    return bare


def clone(origin: Path, where: Path) -> Path:
    git(origin.parent, "clone", "--quiet", str(origin), str(where))
    return where


def put_branch(origin: Path, files: dict[str, str], tmp: Path) -> str:
    """Commit `files` as the whole tree of the memory branch on origin; returns its sha."""
    work = clone(origin, tmp / f"put-{time.monotonic_ns()}")
    git(work, "checkout", "--quiet", "--orphan", BRANCH)
    git(work, "rm", "-r", "--quiet", "--cached", ".")
    for rel, text in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)
    git(work, "add", *files)
    git(work, "commit", "--quiet", "-m", "memory")
    git(work, "push", "--quiet", "--force", "origin", BRANCH)
    return git(work, "rev-parse", "HEAD")


def on_branch(origin: Path, path: str = PATH) -> Memory:
    return Memory.from_text(git(origin, "show", f"{BRANCH}:{path}"), "origin")


def memory_text(memory: Memory, tmp: Path) -> str:
    file = tmp / f"m{time.monotonic_ns()}.json"
    write(file, memory)
    return file.read_text()


def test_concurrent_writers_lose_nothing(origin: Path, tmp_path: Path) -> None:
    existing = [record(f"e{i:015d}") for i in range(10)]
    summary = Summary("s" * 16, "m", "lang:python", 4, 2.0, 0.1, ("old1", "old2"))
    other = memory_text(Memory(None, [record("f" * 16)]), tmp_path)
    put_branch(origin, {PATH: memory_text(Memory(None, existing, [summary]), tmp_path),
                        "README.md": "The routing memory of acr-bot.\n",
                        "other-repo/memory.json": other}, tmp_path)
    clones = [clone(origin, tmp_path / f"writer{w}") for w in range(WRITERS)]

    started = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(c), str(origin), str(w),
                               str(PER_WRITER), str(BATCHES)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w, c in enumerate(clones)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]  # type: ignore[union-attr]

    assert [code for code, _ in results] == [0] * WRITERS, results
    memory = on_branch(origin)
    expected = {f"{w:08x}{i:08x}" for w in range(WRITERS) for i in range(PER_WRITER)}
    ids = {r.id for r in memory.records}
    assert ids - {r.id for r in existing} == expected
    assert len(memory.records) == WRITERS * PER_WRITER + len(existing)
    assert {r.id for r in existing} <= ids and memory.summaries == [summary]
    # the branch's other files are still there, unchanged
    assert git(origin, "show", f"{BRANCH}:README.md") == "The routing memory of acr-bot."
    assert git(origin, "show", f"{BRANCH}:other-repo/memory.json") == other.rstrip("\n")
    # every batch is one commit on one linear history (no force push dropped one)
    commits = int(git(origin, "rev-list", "--count", BRANCH))
    assert commits == 1 + WRITERS * BATCHES
    assert time.monotonic() - started < 90


def test_a_writer_seeds_a_branch_that_does_not_exist_yet(origin: Path, tmp_path: Path) -> None:
    seed = Memory(None, [record("a" * 16), record("b" * 16)])
    store = BranchMemory(clone(origin, tmp_path / "w"), Remote(str(origin)), BRANCH, PATH)
    assert store.read() is None

    total = store.append([record("c" * 16)], seed, "first records")

    assert total == 3
    assert {r.id for r in on_branch(origin).records} == {"a" * 16, "b" * 16, "c" * 16}
    assert git(origin, "log", "-1", "--format=%s", BRANCH) == "first records"
    assert git(origin, "ls-tree", "-r", "--name-only", BRANCH) == PATH
    # The seed is only for a new branch: a second writer does not add it again.
    other = Memory(None, [record("d" * 16)])
    assert store.append([record("e" * 16)], other) == 4
    assert "d" * 16 not in {r.id for r in on_branch(origin).records}


@pytest.mark.parametrize("text", ["{not json", "", "[]", json.dumps({"records": [1, 2]})])
def test_a_corrupt_file_on_the_branch_is_never_overwritten(origin: Path, tmp_path: Path,
                                                           text: str) -> None:
    if not text:
        before = put_branch(origin, {"README.md": "x\n", PATH: "\n"}, tmp_path)
    else:
        before = put_branch(origin, {PATH: text}, tmp_path)
    store = BranchMemory(clone(origin, tmp_path / "w"), Remote(str(origin)), BRANCH, PATH)

    if text:
        with pytest.raises(MemoryFileError):
            store.read()
        with pytest.raises(MemoryFileError):
            store.append([record("c" * 16)])
        assert git(origin, "rev-parse", BRANCH) == before
    else:  # a blank file is an empty memory, not a corrupt one
        assert store.read() is not None and store.append([record("c" * 16)]) == 1


def test_a_newer_schema_on_the_branch_is_refused_for_writing(origin: Path,
                                                            tmp_path: Path) -> None:
    newer = json.dumps({"meta": {"1": {"schema_version": 99}},
                        "records": {"1": {"id": "a" * 16, "k": "a", "ts": 1, "t": "t",
                                          "m": "m", "o": "passed", "future": True}}})
    before = put_branch(origin, {PATH: newer}, tmp_path)
    store = BranchMemory(clone(origin, tmp_path / "w"), Remote(str(origin)), BRANCH, PATH)

    found = store.read()
    assert found is not None and found.version == 99  # readable ...
    with pytest.raises(MemoryFileError, match="newer acr-bot"):
        store.append([record("c" * 16)])  # ... never written
    assert git(origin, "rev-parse", BRANCH) == before


# --- the token -------------------------------------------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recording_server() -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    seen: list[tuple[str, str | None]] = []
    handler = type("Handler", (_Recorder,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_the_token_goes_only_in_the_environment(origin: Path, tmp_path: Path, monkeypatch,
                                                recording_server) -> None:
    url, seen = recording_server
    token = "ghs_tok"
    argvs: list[list[str]] = []
    envs: list[dict[str, str]] = []
    real_run = subprocess.run

    def run(argv, *args, **kwargs):  # type: ignore[no-untyped-def]
        argvs.append(list(argv))
        envs.append(dict(kwargs.get("env") or {}))
        return real_run(argv, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", run)
    store = BranchMemory(clone(origin, tmp_path / "w"), Remote(f"{url}/x.git", token), BRANCH,
                         PATH)

    with pytest.raises(GitError) as error:
        store.read()

    basic = base64.b64encode(b"x-access-token:ghs_tok").decode()
    assert seen and seen[0][0].startswith("/x.git/info/refs")
    assert {header for _, header in seen} == {f"basic {basic}"}
    assert argvs and all(token not in arg and basic not in arg for a in argvs for arg in a)
    assert any(basic in value for env in envs for value in env.values())
    assert token not in str(error.value) and basic not in str(error.value)
    assert token not in repr(store.remote)
    # and nothing was written into the clone's config
    assert basic not in (tmp_path / "w" / ".git" / "config").read_text()
