"""Inputs nobody should send, sent anyway: giant and oddly encoded issues, malformed and
truncated event payloads, memory files planted on a PR branch or corrupted on the memory
branch, records that claim absurd costs, and model replies that are 20 MB or binary garbage.
Each ends in a clear outcome (no traceback), bounded in time and size, with nothing lost.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from adversaries import (
    FILES,
    FIX,
    MAIN,
    MEMORY,
    REPO,
    TASK,
    TITLE,
    FakeGitHub,
    World,
    closed_pull,
    comment,
    failed_run,
    fix,
    labeled,
    outcomes,
    settings_for,
    spy_prompts,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from acr_bot.domain import Record
from acr_bot.github import action
from acr_bot.gitrepo import git
from acr_bot.memory.store import Memory, encode, new_id, write


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    import acr_bot.github.client as gh_module

    monkeypatch.setattr(gh_module, "time", SimpleNamespace(
        sleep=lambda seconds: None, time=time.time, monotonic=time.monotonic))


@pytest.fixture
def world(tmp_path: Path, httpserver: Any) -> World:
    return World(tmp_path, FakeGitHub(httpserver, REPO))


# --- huge and odd issues ------------------------------------------------------------------------


def test_a_5_mb_issue_is_cut_and_stays_bounded_end_to_end(world: World, make_replay,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    prompts = spy_prompts(monkeypatch)
    title = TITLE + " " + "T" * 5_000_000
    body = TASK + "A" * 2_500_000 + "\n" + "calc.py:1 word " * 170_000
    started = time.monotonic()
    outcome = world.run("issues", labeled(title=title, body=body), make_replay({"strong": [FIX]}))

    assert time.monotonic() - started < 30
    assert outcome.outcome == "fixed", world.log[-2000:]
    assert len(prompts) == 1 and len(prompts[0]) < 200_000
    [pull] = world.fake.pulls.values()
    assert pull["title"].startswith(f"Fix #1: {TITLE}") and len(pull["title"]) <= 300
    assert len(pull["body"]) < 20_000
    assert max(len(line) for line in world.lines) < 1_000
    message = git(world.origin, "log", "-1", "--format=%B", "acr/issue-1")
    assert len(message) < 2_000
    [record] = world.memory().records
    assert len(record.features.encode()) <= 200


ODD = {
    "rtl-override": "mul\u202e)(lum\u202c is \u2066wrong\u2069",
    "zero-width-and-emoji": "mul\u200b\u200d() 👩\u200d💻 is wrong 🧮\ufe0f",
    "lone-surrogate": "mul\ud800() is \udfffwrong",
    "nul-bytes": "mul\x00() is\x00 wrong",
    "combining-marks": "mu" + "\u0301" * 200 + "l() is wrong",
    "c1-and-escapes": "mul\x85() \x1b[31mis\x1b[0m wrong\x9b",
}


@pytest.mark.parametrize("text", ODD.values(), ids=list(ODD))
def test_odd_unicode_goes_through_to_the_pr_without_crashing(world: World, make_replay,
                                                            text: str) -> None:
    outcome = world.run("issues", labeled(title=text, body=f"{text}\n\n{TASK}\n{text}"),
                        make_replay({"strong": [FIX]}))

    assert outcome.outcome == "fixed", world.log
    [pull] = world.fake.pulls.values()
    assert pull["title"].startswith("Fix #1: mu") and len(pull["title"]) <= 300
    assert not [c for c in pull["title"] if ord(c) < 32 or 0x7f <= ord(c) < 0xa0]
    for written in world.written():
        written.encode("utf-8")  # valid text, whatever came in
    message = git(world.origin, "log", "-1", "--format=%B", "acr/issue-1")
    assert message.startswith("mu")
    assert len(world.memory().records) == 1


# --- malformed and truncated payloads ---------------------------------------------------------

PAYLOADS = {
    "issues": labeled(),
    "issue_comment": comment("/acr fix"),
    "pull_request": closed_pull(101, "<!-- acr-bot task=gh:octo/hello#1 attempt=0123456789abcdef "
                                     "model=replay/strong -->", merged=True),
    "workflow_run": failed_run("feature", "a" * 40, 501),
}
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=3),
    max_leaves=6)


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _paths(value, prefix + (key,))
    return out


@st.composite
def mangled(draw: Any) -> tuple[str, dict[str, Any]]:
    event = draw(st.sampled_from(sorted(PAYLOADS)))
    payload = copy.deepcopy(PAYLOADS[event])
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(payload) or [("action",)]))
        parent = payload
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict):
            continue
        if draw(st.booleans()):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = draw(JSON_VALUES)
    return event, payload


OUTCOMES = {"fixed", "gave_up", "refused", "ignored", "explained", "recorded", "skipped", "error"}


def _with(event: str, path: tuple, value: Any) -> tuple[str, dict[str, Any]]:
    payload = copy.deepcopy(PAYLOADS[event])
    parent = payload
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return event, payload


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=mangled())
@example(case=_with("issues", ("repository",), "octo/hello"))  # found by this test, once
@example(case=_with("issues", ("repository", "default_branch"), ["main"]))
@example(case=_with("issue_comment", ("comment", "user"), "octocat"))
@example(case=_with("issue_comment", ("issue", "pull_request"), "yes"))
@example(case=_with("pull_request", ("pull_request", "head", "repo"), "octo/hello"))
def test_mangled_payloads_end_in_a_clear_outcome_never_a_traceback(world: World, make_replay,
                                                                  case: Any) -> None:
    event, payload = case
    world.fake.requests.clear()
    world.fake.comments.clear()
    world.fake.pulls.clear()
    never = make_replay({"strong": [{"match": "no prompt contains this", "text": FIX}]})
    outcome = world.run(event, payload, never, **{"INPUT_MAX-COST-USD": "0"})  # never raises

    assert outcome.outcome in OUTCOMES
    if outcome.outcome == "error":
        assert "Traceback" not in outcome.message and 0 < len(outcome.message) < 2_000
        assert [line for line in world.lines if line.startswith("::error::")]
        if "event payload" in outcome.message:  # refused at the door: GitHub never heard of it
            assert world.fake.requests == []
    assert world.outputs()["outcome"] == outcome.outcome


def test_a_head_sha_that_is_a_git_option_runs_nothing(world: World, tmp_path: Path) -> None:
    # `git fetch <url> <head_sha>`: "--upload-pack=<cmd>" there would run <cmd> on the runner.
    dropped = tmp_path / "PWNED"
    payload = failed_run("feature", f"--upload-pack=touch {dropped}", 501)
    outcome = world.run("workflow_run", payload)

    assert outcome.outcome == "error"
    assert "workflow_run.head_sha is not a commit sha" in outcome.message
    assert not dropped.exists()
    assert world.fake.requests == []


TEXT = json.dumps(labeled()).encode()


def _an_object(raw: bytes) -> bool:
    try:
        return isinstance(json.loads(raw), dict)
    except (ValueError, RecursionError):
        return False


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(
    st.integers(0, len(TEXT) - 1).map(lambda cut: TEXT[:cut]),  # truncated
    st.binary(max_size=200).filter(lambda b: not _an_object(b)),  # garbage, not UTF-8 either
    st.sampled_from([b"[" * 100_000, b'{"a":' * 50_000, b"null", b"[]", b'"just a string"',
                     b"1e999", b"\xef\xbb\xbf[", "{\"issue\": \"\ud800\"".encode(
                         "utf-8", "surrogatepass")]),
))
def test_truncated_or_garbage_payloads_exit_1_with_one_error_line(world: World, capsys,
                                                                  raw: bytes) -> None:
    world.fake.requests.clear()
    env = world.env("issues", "", None)
    Path(env["GITHUB_EVENT_PATH"]).write_bytes(raw)

    assert action.main(env) == 1

    out, err = capsys.readouterr()
    errors = [line for line in out.splitlines() if line.startswith("::error::")]
    assert len(errors) == 1 and "event payload" in errors[0], out[-500:]
    assert "Traceback" not in out + err
    assert world.fake.requests == []
    assert world.outputs()["outcome"] == "error"


# --- the memory ---------------------------------------------------------------------------------


def _planted(model: str, n: int = 30) -> str:
    """A memory file whose records say `model` always fixes tasks like this one."""
    path = Path(f"/tmp/acr-planted-{new_id()}.json")
    records = [Record(new_id(), "attempt", time.time() - 100, f"gh:{REPO}#{i}", model, "passed",
                      features="lang:python kind:bug w:mul w:product w:wrong file:calc.py",
                      cost_usd=0.001) for i in range(n)]
    write(path, Memory(None, records))
    try:
        return path.read_text()
    finally:
        path.unlink()


def test_a_memory_file_planted_on_a_pr_branch_does_not_change_routing(world: World,
                                                                       make_replay) -> None:
    replay = make_replay({"cheap": [], "pricey": []})  # prices only: nothing is called
    models = {"INPUT_MODELS": "replay/cheap,replay/pricey", "INPUT_POLICY": "learned"}
    explain = comment("/acr explain")

    def routing(ref: str) -> str:
        world.fake.comments.clear()
        assert world.run("issue_comment", explain, replay, GITHUB_REF=ref,
                         **models).outcome == "explained", world.log
        return world.fake.comments[0]["body"]

    clean = routing("refs/pull/9/merge")
    (world.workspace / MEMORY).parent.mkdir(parents=True, exist_ok=True)
    (world.workspace / MEMORY).write_text(_planted("replay/pricey"))

    assert routing("refs/pull/9/merge") == clean  # the PR's records are never read
    assert "0 records from acr-memory" in world.log
    assert routing(f"refs/heads/{MAIN}") != clean  # (they would matter if they were trusted)
    assert world.memory_text() is None  # explaining writes nothing


CORRUPT = {
    "not-json": ("{not json", "not valid JSON"),
    "truncated": (_planted("replay/strong", 3)[:150], "not valid JSON"),
    "not-an-object": ("[1, 2, 3]", "expected a JSON object"),
    "records-not-a-table": ('{"records": [1, 2]}', "not a JSON object"),
    "ts-is-a-string": (json.dumps({"records": {"1": {"id": "x", "k": "a", "ts": "yesterday",
                                                      "t": "t", "m": "m", "o": "passed"}}}),
                       "ts"),
    "cost-is-a-string": (json.dumps({"records": {"1": {"id": "x", "k": "a", "ts": 1, "t": "t",
                                                        "m": "m", "o": "passed", "c": "lots"}}}),
                         "cost_usd"),
    "cost-is-nan": (('{"records": {"1": {"id": "x", "k": "a", "ts": 1, "t": "t", "m": "m", '
                     '"o": "passed", "c": NaN}}}'), "cost_usd"),
    "newer-schema": ('{"meta": {"1": {"schema_version": 999}}, "records": {}}', "newer"),
}


@pytest.mark.parametrize("text, says", CORRUPT.values(), ids=list(CORRUPT))
def test_a_corrupt_memory_branch_is_a_clear_error_and_is_never_overwritten(
        world: World, make_replay, monkeypatch: pytest.MonkeyPatch, text: str, says: str) -> None:
    prompts = spy_prompts(monkeypatch)
    sha = world.seed_memory_text(text)
    outcome = world.run("issues", labeled(), make_replay({"strong": [FIX]}))

    assert outcome.outcome == "error", world.log
    assert "acr-memory" in outcome.message and says in outcome.message, outcome.message
    assert len(outcome.message.splitlines()) == 1
    assert prompts == []  # nothing paid for
    assert world.refs()["refs/heads/acr-memory"] == sha  # not overwritten
    assert world.writes() == []  # no PR, no comment, the label stays for a re-run


@pytest.mark.parametrize("cost", [-1000.0, -1e300], ids=["negative", "hugely-negative"])
def test_negative_costs_in_the_memory_cannot_lift_the_daily_cap(world: World, make_replay,
                                                               cost: float) -> None:
    now = time.time()
    records = [Record(new_id(), "attempt", now - 60, "gh:o/r#5", "replay/strong", "passed",
                      cost_usd=cost),
               Record(new_id(), "attempt", now - 600, "gh:o/r#6", "replay/strong", "passed",
                      cost_usd=1.5)]
    sha = world.seed_memory_text(json.dumps({"records": {str(i): encode(r) for i, r in
                                                         enumerate(records, 1)}}))
    outcome = world.run("issues", labeled(), make_replay({"strong": [FIX]}),
                        **{"INPUT_DAILY-MAX-COST-USD": "1"})

    assert outcome.outcome == "refused", world.log
    assert "$1.50 of $1.00" in outcome.message
    assert world.fake.pulls == {} and "daily budget" in world.fake.comments[0]["body"]
    assert world.refs()["refs/heads/acr-memory"] == sha


def test_absurd_records_are_kept_and_do_not_stall_the_run(world: World, make_replay) -> None:
    now = time.time()
    huge = "w:" + "x" * 10_000_000
    dup = new_id()
    docs = {
        "1": encode(Record(dup, "attempt", now - 90_000, "gh:o/r#1", "replay/strong", "passed",
                           cost_usd=0.01)),
        "2": encode(Record(dup, "attempt", now - 80_000, "gh:o/r#2", "replay/other",
                           "tests_failed", cost_usd=0.02)),  # same id, other content
        "3": encode(Record("z" * 10_000, "attempt", now - 70_000, "gh:o/r#3", "replay/strong",
                           "passed", features=huge, cost_usd=0.0)),
        "4": encode(Record(new_id(), "attempt", now - 60_000, "gh:o/r#4", "replay/strong",
                           "passed", features="lang:python " * 100_000, tokens=10**15)),
    }
    world.seed_memory_text(json.dumps({"records": docs}))
    started = time.monotonic()
    outcome = world.run("issues", labeled(), make_replay({"strong": [FIX]}),
                        **{"INPUT_DAILY-MAX-COST-USD": "5", "INPUT_POLICY": "learned"})

    assert time.monotonic() - started < 60
    assert outcome.outcome == "fixed", world.log[-2000:]
    ids = [r.id for r in world.memory().records]
    assert set(ids) >= {dup, "z" * 10_000, docs["4"]["id"]}  # every distinct id survives
    assert len(ids) == len(set(ids)) == 4  # ... plus this run's attempt, once


# --- model replies -------------------------------------------------------------------------------

GARBAGE = {
    "20-mb-reply": "x" * 20_000_000,
    "binary-garbage": bytes(range(256)).decode("latin-1") * 20_000,
    "markers-without-blocks": "<<<<<<< SEARCH\n" * 50_000,
}


@pytest.mark.parametrize("text", GARBAGE.values(), ids=list(GARBAGE))
def test_a_giant_or_garbage_reply_is_a_bounded_failed_attempt(make_repo, make_replay,
                                                             text: str) -> None:
    repo = make_repo(FILES)
    replay = make_replay({"junk": [{"text": text, "prompt_tokens": 1000,
                                    "completion_tokens": 100_000}], "good": [FIX]})
    started = time.monotonic()
    result = fix(repo, settings_for(replay, "junk", "good", max_attempts=2, max_cost_usd=100.0))

    assert time.monotonic() - started < 30
    assert outcomes(result) in (["no_edits", "passed"], ["apply_failed", "passed"])
    assert len(result.attempts[0].feedback) < 10_000 and len(result.attempts[0].detail) <= 200
    assert result.outcome == "fixed"
    assert [r.outcome for r in Memory.load(repo / MEMORY).records] == outcomes(result)
