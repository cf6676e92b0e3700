"""Fault tolerance: provider faults through litellm's real call path, GitHub faults on the
stateful fake, rejected pushes, and `acr-bot fix` killed with SIGTERM at each stage.

Already covered elsewhere, not repeated here: a 502 on a GET retried (test_github.py::
test_a_502_on_a_get_is_retried), 409 and 422 as clear errors (test_a_409_is_an_error,
test_a_422_on_create_is_a_clear_error), a PR POST failing with persistent 5xx after the branch
was pushed, then recovered by a re-run without a model call (test_action.py::
test_a_run_interrupted_before_its_pr_is_recovered_without_a_model_call).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import PYTEST
from test_action import REPO, RIGHT, World, labeled

from acr_bot import app
from acr_bot.config import Settings
from acr_bot.domain import FixResult, Record
from acr_bot.errors import GitHubError
from acr_bot.fixing.edits import format_edits, make_edits
from acr_bot.github.client import GitHub
from acr_bot.gitrepo import PushRejected, Remote, fetch, git, push
from acr_bot.llm import LLMClient
from acr_bot.memory import branch as memstore
from acr_bot.memory.branch import BranchMemory
from acr_bot.memory.store import Memory, new_id
from acr_bot.routing.outcomes import OutcomeTable, observations

try:
    from tests.support.fake_github import FakeGitHub
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from support.fake_github import FakeGitHub  # type: ignore[no-redef]

CALC = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a + b\n"
FIXED = CALC.replace("def mul(a, b):\n    return a + b", "def mul(a, b):\n    return a * b")
WRONG = CALC.replace("def mul(a, b):\n    return a + b", "def mul(a, b):\n    return a * b + 1")
HANGS = CALC.replace("def mul(a, b):\n    return a + b",
                     "def mul(a, b):\n    import time\n    time.sleep(60)\n    return a * b")
TESTS = ("from calc import add, mul\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
         "def test_mul():\n    assert mul(3, 4) == 12\n")
FILES = {"calc.py": CALC, "tests/test_calc.py": TESTS,
         "pytest.ini": "[pytest]\ntestpaths = tests\npythonpath = .\n",
         ".gitignore": "__pycache__/\n"}
TASK = "mul() returns the wrong product\n\ntest_mul fails: mul(3, 4) gives 7."


def reply(new: str, note: str = "Here is the change.") -> str:
    return f"{note}\n\n{format_edits(make_edits('calc.py', CALC, new))}"


FIX, WRONG_FIX, HANGING_FIX = reply(FIXED), reply(WRONG), reply(HANGS)


# --- LLM faults, through litellm ---------------------------------------------------------------


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """app.portfolio builds LLMClient without a backoff: make it 10 ms instead of 2 s."""
    monkeypatch.setattr(app, "LLMClient", functools.partial(LLMClient, backoff=0.01))


@pytest.fixture
def policies(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every policy app.fix builds, to look into its outcome table after the run."""
    built: list[Any] = []
    real = app.build_policy

    def build(*args: Any, **kwargs: Any) -> Any:
        built.append(real(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(app, "build_policy", build)
    return built


def fix(repo: Path, replay: Path, models: tuple[str, ...], memory: Path,
        **changes: Any) -> FixResult:
    settings = replace(Settings(), models=tuple(f"replay/{m}" for m in models),
                       replay_file=replay, test_command=PYTEST, policy="cheapest-first",
                       **{"llm_retries": 2, "harness": "edit", **changes})
    return app.fix(repo, app.task_from_text(TASK), settings, memory_file=memory)


def retries_logged(caplog: pytest.LogCaptureFixture, model: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "acr_bot.llm" and r.getMessage().startswith(f"{model}: ")
            and "retrying in" in r.getMessage()]


def test_a_rate_limit_is_retried_on_the_same_model_with_backoff(
        make_repo, make_replay, tmp_path: Path, fast_backoff: None,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="acr_bot.llm")
    replay = make_replay({"a": [{"fault": "rate_limit", "times": 1}, FIX], "b": [FIX]})
    started = time.monotonic()
    result = fix(make_repo(FILES), replay, ("a", "b"), tmp_path / "m.json")

    assert result.outcome == "fixed", result.reason
    assert [(a.model, a.outcome) for a in result.attempts] == [("replay/a", "passed")]
    assert retries_logged(caplog, "replay/a") == [
        "replay/a: RateLimitError, retrying in 0.0 s"]
    assert [r.outcome for r in Memory.load(tmp_path / "m.json").records] == ["passed"]
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("fault, retried", [
    ({"fault": "server_error"}, 2), ({"fault": "timeout"}, 2),
    ({"fault": "context_window"}, 0), ({"text": "   "}, 0)],
    ids=["server_error", "timeout", "context_window", "empty_reply"])
def test_a_persistent_fault_is_a_provider_fault_the_router_learns_nothing_from(
        make_repo, make_replay, tmp_path: Path, fast_backoff: None, policies: list[Any],
        caplog: pytest.LogCaptureFixture, fault: dict[str, Any], retried: int) -> None:
    caplog.set_level(logging.WARNING, logger="acr_bot.llm")
    replay = make_replay({"bad": [{**fault, "times": 99}], "ok": [FIX]})
    memory_file = tmp_path / "m.json"
    # max_attempts=1: the faulting model must not use up the only skill attempt.
    result = fix(make_repo(FILES), replay, ("bad", "ok"), memory_file, max_attempts=1)

    assert result.outcome == "fixed", result.reason
    assert [(a.model, a.outcome) for a in result.attempts] == [
        ("replay/bad", "provider_fault"), ("replay/ok", "passed")]
    assert len(retries_logged(caplog, "replay/bad")) == retried  # bounded: llm_retries=2
    assert result.attempts[0].cost_usd == 0
    detail = result.attempts[0].detail
    assert detail.startswith("replay/bad: ") and detail.count("replay/bad") == 1, detail
    records = Memory.load(memory_file).records
    assert [(r.model, r.outcome) for r in records] == [
        ("replay/bad", "provider_fault"), ("replay/ok", "passed")]
    # Neither the next run's router (built from the memory) nor this run's learned a thing.
    learned = OutcomeTable.build(observations(records))
    assert "replay/bad" not in learned.models and "replay/ok" in learned.models
    [policy] = policies
    assert "replay/bad" not in policy.table.models and "replay/ok" in policy.table.models


def test_every_model_faulting_spends_no_skill_attempt(make_repo, make_replay, tmp_path: Path,
                                                      fast_backoff: None) -> None:
    replay = make_replay({"a": [{"fault": "server_error", "times": 99}],
                          "b": [{"fault": "context_window", "times": 99}],
                          "c": [WRONG_FIX], "d": [FIX]})
    result = fix(make_repo(FILES), replay, ("a", "b", "c", "d"), tmp_path / "m.json",
                 max_attempts=2)
    assert result.outcome == "fixed", result.reason
    assert [a.outcome for a in result.attempts] == [
        "provider_fault", "provider_fault", "tests_failed", "passed"]


def test_a_reply_the_filesystem_cannot_write_is_a_failed_attempt_not_a_crash(
        make_repo, make_replay, tmp_path: Path) -> None:
    long_name = "x" * 300 + ".py"  # longer than any file name may be (ENAMETOOLONG)
    bad = f"A new module.\n\n{long_name}\n<<<<<<< SEARCH\n=======\nVALUE = 1\n>>>>>>> REPLACE\n"
    repo = make_repo(FILES)
    replay = make_replay({"bad": [bad], "ok": [FIX]})
    result = fix(repo, replay, ("bad", "ok"), tmp_path / "m.json", llm_retries=0)

    assert result.outcome == "fixed", result.reason
    assert [(a.model, a.outcome) for a in result.attempts] == [
        ("replay/bad", "apply_failed"), ("replay/ok", "passed")]
    # Refused up front by the path rules (paths.py), with a message for the model.
    assert "too long" in result.attempts[0].feedback
    assert git(repo, "status", "--porcelain") == ""


@pytest.mark.parametrize("reply, words", [
    ("just a string", "reply 1: must be an object"),
    ({"match": "(unclosed", "text": "x"}, "match is not a valid regular expression"),
    ({"text": "x", "times": "2"}, "times must be a whole number"),
    ({"text": ["x"]}, "text must be a string"),
    ({"text": "x", "delay": -1}, "delay must be a number of seconds"),
])
def test_a_malformed_scripted_reply_is_a_replay_error_at_load(tmp_path: Path, reply: Any,
                                                              words: str) -> None:
    from acr_bot.errors import ReplayError
    from acr_bot.llm import ReplayBook

    path = tmp_path / "replay.json"
    path.write_text(json.dumps({"models": {"m": {"replies": [reply]}}}))
    with pytest.raises(ReplayError, match=re.escape(words)):
        ReplayBook.load(path)
    path.write_text("[" * 100_000 + "]" * 100_000)  # nesting deeper than json can decode
    with pytest.raises(ReplayError, match="not valid JSON"):
        ReplayBook.load(path)


# --- GitHub faults -----------------------------------------------------------------------------

TOKEN = "ghs_" + "F" * 36


@pytest.fixture
def fake(httpserver: Any) -> FakeGitHub:
    return FakeGitHub(httpserver, REPO)


def client(fake: FakeGitHub, retries: int = 2) -> GitHub:
    return GitHub(TOKEN, REPO, fake.api_url, retries=retries, write_delay=0, read_delay=0,
                  timeout=10)


def test_persistent_5xx_names_the_call_that_failed(fake: FakeGitHub,
                                                  sleeps: list[float]) -> None:
    fake.fail("GET", r"/pulls/7$", 503, times=1000)
    with pytest.raises(GitHubError) as error:
        client(fake).pull(7)
    assert str(error.value).startswith("GitHub API: get pull request #7 failed")
    assert "503" in str(error.value)
    assert len(fake.calls("GET", r"/pulls/7$")) == 3
    fake.fail("POST", r"/issues/3/comments$", 502, times=1000)
    with pytest.raises(GitHubError, match=r"^GitHub API: comment on #3 failed with HTTP 502"):
        client(fake).comment(3, "hello")
    assert len(fake.calls("POST", r"/comments$")) == 1  # a POST is never repeated blindly


def test_a_secondary_rate_limit_on_a_comment_post_is_retried(fake: FakeGitHub,
                                                             sleeps: list[float]) -> None:
    fake.fail("POST", r"/issues/3/comments$", 403, headers={"Retry-After": "2"})
    url = client(fake).comment(3, "hello")
    assert url.endswith("#issuecomment-1")
    assert len(fake.calls("POST", r"/comments$")) == 2
    assert [c["body"] for c in fake.comments] == ["hello"]  # once, not twice
    assert 2.0 in sleeps  # waited as long as Retry-After said


@pytest.fixture
def world(tmp_path: Path, httpserver: Any, monkeypatch: pytest.MonkeyPatch) -> World:
    import acr_bot.github.client as gh_module

    # ensure_pull backs off for seconds between create attempts; not in these tests.
    monkeypatch.setattr(gh_module, "time", SimpleNamespace(
        sleep=lambda seconds: None, time=time.time, monotonic=time.monotonic))
    return World(tmp_path, FakeGitHub(httpserver, REPO))


def test_a_5xx_after_the_pr_post_succeeded_still_makes_one_pr(world: World, make_replay) -> None:
    world.fake.fail("POST", r"/pulls$", 502, after=True, times=10)
    replay = make_replay({"strong": [{"text": RIGHT, "times": 1}]})

    first = world.run("issues", labeled(), replay)

    assert first.outcome == "fixed", world.log
    assert len(world.fake.calls("POST", r"/pulls$")) == 1  # found on the second look
    [number] = world.fake.pulls
    assert first.pr_url.endswith(f"/pull/{number}")
    world.fake.faults.clear()
    again = world.run("issues", labeled(), replay)  # the replay would now raise if called
    assert again.outcome == "skipped", world.log
    assert list(world.fake.pulls) == [number] and len(world.fake.calls("POST", r"/pulls$")) == 1


def test_a_fix_branch_moved_by_another_writer_is_not_clobbered(
        world: World, make_replay, monkeypatch: pytest.MonkeyPatch) -> None:
    from acr_bot.github import flows

    head = "acr/issue-1"
    other = world.tmp / "other-writer"
    git(world.tmp, "clone", "--quiet", str(world.origin), str(other))
    git(other, "checkout", "--quiet", "-b", head)
    git(other, "commit", "--quiet", "--allow-empty", "-m", "another writer's commit")
    real_push = flows.push

    def racing_push(root: Path, remote: Remote, commit: str, branch: str, **kwargs: Any) -> None:
        if branch == head:  # between our fetch and our push, someone else pushes the branch
            git(other, "push", "--quiet", "origin", head)
        real_push(root, remote, commit, branch, **kwargs)

    monkeypatch.setattr(flows, "push", racing_push)
    outcome = world.run("issues", labeled(), make_replay({"strong": [RIGHT]}))

    assert outcome.outcome == "error", world.log
    assert outcome.message.startswith(f"push to {head} was rejected: the branch moved on"), \
        outcome.message
    assert "\n" not in outcome.message
    assert world.branch_sha(head) == git(other, "rev-parse", "HEAD")  # theirs survives
    assert world.fake.pulls == {}  # no PR for a branch we do not own
    [record] = world.memory().records  # the paid attempt is remembered anyway
    assert record.passed


def test_a_stale_lease_push_raises_push_rejected(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    git(src, "init", "--quiet", "--initial-branch=main")
    git(src, "commit", "--quiet", "--allow-empty", "-m", "initial")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(src), str(origin))
    remote = Remote(str(origin))
    ours = tmp_path / "ours"
    git(tmp_path, "clone", "--quiet", str(origin), str(ours))
    git(ours, "commit", "--quiet", "--allow-empty", "-m", "ours")
    expected = fetch(ours, remote, "main", "refs/acr/test")
    git(src, "commit", "--quiet", "--allow-empty", "-m", "theirs")
    git(src, "push", "--quiet", str(origin), "main")  # the branch moves on

    with pytest.raises(PushRejected):
        push(ours, remote, git(ours, "rev-parse", "HEAD"), "main", expect=expected, force=True)
    assert git(origin, "rev-parse", "main") == git(src, "rev-parse", "HEAD")


def test_the_memory_append_retries_when_another_writer_pushes_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    src.mkdir()
    git(src, "init", "--quiet", "--initial-branch=main")
    git(src, "commit", "--quiet", "--allow-empty", "-m", "initial")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(src), str(origin))
    stores = []
    for name in ("ours", "theirs"):
        git(tmp_path, "clone", "--quiet", str(origin), str(tmp_path / name))
        stores.append(BranchMemory(tmp_path / name, Remote(str(origin)), "acr-memory",
                                   ".acr/memory.json", base_delay=0.01))
    ours, theirs = stores
    mine = Record(new_id(), "attempt", time.time(), "t1", "m", "passed")
    other = Record(new_id(), "attempt", time.time(), "t2", "m", "tests_failed")
    real_push = memstore.push
    calls, rejected = [], []

    def push_after_a_competitor(root: Path, *args: Any, **kwargs: Any) -> None:
        calls.append(Path(root).name)
        if len(calls) == 1:  # once: the other writer gets there first
            theirs.append([other])
        try:
            real_push(root, *args, **kwargs)
        except PushRejected:
            rejected.append(Path(root).name)
            raise

    monkeypatch.setattr(memstore, "push", push_after_a_competitor)
    total = ours.append([mine])

    assert total == 2
    assert rejected == ["ours"] and calls == ["ours", "theirs", "ours"]
    text = git(origin, "show", "acr-memory:.acr/memory.json")
    assert {r.id for r in Memory.from_text(text, "origin").records} == {mine.id, other.id}
    assert int(git(origin, "rev-list", "--count", "acr-memory")) == 2  # linear, nothing forced


# --- acr-bot fix killed with SIGTERM -------------------------------------------------------------


def marked_processes(marker: str, bot: int = 0) -> list[int]:
    """Live processes, other than the bot itself, whose command line holds `marker`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return [pid for pid in found if pid not in (os.getpid(), bot)]


def user_state(repo: Path) -> dict[str, Any]:
    return {"head": git(repo, "rev-parse", "HEAD"),
            "branch": git(repo, "symbolic-ref", "--short", "HEAD"),
            "branches": git(repo, "branch", "--format=%(refname:short)"),
            "status": git(repo, "status", "--porcelain=v1", "--untracked-files=all"),
            "files": {str(p.relative_to(repo)): p.read_bytes() for p in sorted(repo.rglob("*"))
                      if p.is_file() and ".git" not in p.relative_to(repo).parts}}


def _until(condition: Callable[[], bool], proc: subprocess.Popen[bytes], lines: list[str],
           seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert proc.poll() is None, "\n".join(lines)
        assert time.monotonic() < deadline, "\n".join(lines)
        time.sleep(0.05)


@pytest.mark.parametrize("stage", ["baseline", "llm_call", "verify"])
def test_sigterm_at_any_stage_leaves_nothing_half_done(make_repo, make_replay, tmp_path: Path,
                                                       stage: str) -> None:
    marker = f"acrkill{uuid.uuid4().hex[:10]}"
    files = {**FILES, "calc.py": HANGS} if stage == "baseline" else FILES
    repo = make_repo(files)
    git(repo, "checkout", "--quiet", "-b", "feature")
    (repo / "tests" / "test_calc.py").write_text(TESTS + "\n# uncommitted work\n")
    (repo / "notes.txt").write_text("untracked\n")
    before = user_state(repo)
    replay = make_replay({"a": [WRONG_FIX],
                          "b": [{"delay": 30, "text": FIX}] if stage == "llm_call"
                          else [HANGING_FIX]})
    memory_file = tmp_path / "memory.json"
    command = f"{PYTEST} -k 'not {marker}'"  # the marker names every test process
    proc = subprocess.Popen(
        [sys.executable, "-m", "acr_bot", "fix", "--repo", str(repo), "--task", TASK,
         "--test-cmd", command, "--models", "replay/a,replay/b", "--replay-file", str(replay),
         "--policy", "cheapest-first", "--memory", str(memory_file), "--harness", "edit"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "LITELLM_OFFLINE_MODE": "true", "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    out = proc.stdout
    assert out is not None
    reader = threading.Thread(target=lambda: lines.extend(
        line.decode(errors="replace").rstrip() for line in out), daemon=True)
    reader.start()
    try:
        if stage != "baseline":
            _until(lambda: any(line.startswith("attempt 2: replay/b") for line in lines),
                   proc, lines)
        if stage == "llm_call":
            time.sleep(0.5)  # inside the 30 s reply
            assert not marked_processes(marker, proc.pid)  # no test runs: the model's turn
        else:
            _until(lambda: bool(marked_processes(marker, proc.pid)), proc, lines)
            time.sleep(0.3)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        seconds = time.monotonic() - sent
    finally:
        if proc.poll() is None:  # the test failed before its SIGTERM: still let it clean up
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    reader.join(timeout=5)
    log = "\n".join(lines)

    assert code == 128 + signal.SIGTERM, log
    assert seconds < 10, log
    assert marked_processes(marker) == [], "a test process outlived the bot"
    assert user_state(repo) == before
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    completed = [line.split()[1].rstrip(":") for line in lines if line.startswith("  -> ")]
    assert completed == ([] if stage == "baseline" else ["tests_failed"]), log
    if memory_file.exists():
        records = Memory.load(memory_file).records
        assert [(r.model, r.outcome) for r in records] == [("replay/a", "tests_failed")]
    else:
        assert completed == []
