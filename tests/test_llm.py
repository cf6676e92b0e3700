"""The LLM client and the replay provider, through litellm's real call path (offline)."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from acr_bot.domain import Price
from acr_bot.errors import LLMError, ReplayError
from acr_bot.llm import LLMClient, ReplayBook, resolve_prices, table_price


def write_replay(tmp_path: Path, models: dict, name: str = "replay.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"models": models}))
    return path


def client(path: Path, **kwargs: object) -> LLMClient:
    book = ReplayBook.load(path)
    names = [f"replay/{n}" for n in book.models]
    kwargs.setdefault("prices", resolve_prices(names, {}, book.prices()))
    kwargs.setdefault("backoff", 0.01)
    return LLMClient(replay_file=path, **kwargs)  # type: ignore[arg-type]


def ask(llm: LLMClient, prompt: str, model: str = "replay/m") -> str:
    return llm.complete(model, [{"role": "system", "content": "be brief"},
                                {"role": "user", "content": prompt}]).text


# --- loading the replay file -------------------------------------------------------------------


@pytest.mark.parametrize("content, words", [
    (None, "cannot read"),
    ("{not json", "not valid JSON"),
    ("[]", "non-empty \"models\""),
    ('{"models": {}}', "non-empty \"models\""),
    ('{"replies": []}', "non-empty \"models\""),
    ('{"models": {"m": {"input_cost_per_token": 1e-6}}}', "'m' needs a \"replies\" list"),
    ('{"models": {"m": {"replies": "hello"}}}', "'m' needs a \"replies\" list"),
    ('{"models": {"m": ["hello"]}}', "'m' needs a \"replies\" list"),
])
def test_bad_replay_files_are_replay_errors_naming_the_file(tmp_path: Path, content: str | None,
                                                           words: str) -> None:
    path = tmp_path / "models.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ReplayError) as info:
        ReplayBook.load(path)
    assert str(path) in str(info.value)
    assert words in str(info.value)
    # The client reports it at construction, before any call.
    with pytest.raises(ReplayError):
        LLMClient(replay_file=path)


def test_replay_prices_are_read_per_model(tmp_path: Path) -> None:
    path = write_replay(tmp_path, {"a": {"input_cost_per_token": 1e-6, "output_cost_per_token":
                                         3e-6, "replies": []},
                                   "b": {"replies": []}})
    assert ReplayBook.load(path).prices() == {"replay/a": Price(1e-6, 3e-6)}


# --- choosing replies ---------------------------------------------------------------------------


def test_the_first_matching_reply_wins(tmp_path: Path) -> None:
    llm = client(write_replay(tmp_path, {"m": {"replies": [
        {"match": r"alpha", "text": "A"},
        {"match": r"beta\d", "text": "B"},
        {"text": "default"},
        {"match": r"gamma", "text": "never: the default comes first"},
    ]}}))
    assert ask(llm, "this is beta7") == "B"
    assert ask(llm, "beta7 and alpha") == "A"
    assert ask(llm, "gamma") == "default"
    assert ask(llm, "beta without digit") == "default"


def test_match_sees_only_the_last_user_message(tmp_path: Path) -> None:
    llm = client(write_replay(tmp_path, {"m": {"replies": [
        {"match": "SYSTEM-ONLY", "text": "wrong"}, {"text": "right"}]}}))
    reply = llm.complete("replay/m", [{"role": "system", "content": "SYSTEM-ONLY"},
                                      {"role": "user", "content": "hello"}])
    assert reply.text == "right"


def test_times_uses_a_reply_up(tmp_path: Path) -> None:
    llm = client(write_replay(tmp_path, {"m": {"replies": [
        {"text": "first", "times": 2}, {"text": "then"}]}}))
    assert [ask(llm, "x") for _ in range(4)] == ["first", "first", "then", "then"]


def test_no_matching_reply_is_a_replay_error_at_once(tmp_path: Path) -> None:
    llm = client(write_replay(tmp_path, {"m": {"replies": [{"match": "alpha", "text": "A"}]}}),
                 retries=5, backoff=5.0)
    assert ask(llm, "alpha") == "A"  # warm: litellm's first call is slow
    started = time.monotonic()
    with pytest.raises(ReplayError) as info:
        ask(llm, "something else entirely")
    assert time.monotonic() - started < 2.0  # a retry would sleep 5 s
    assert "no reply matching" in str(info.value)
    assert "something else" in str(info.value)


def test_an_unknown_replay_model_is_a_replay_error(tmp_path: Path) -> None:
    llm = client(write_replay(tmp_path, {"m": {"replies": [{"text": "A"}]}}))
    with pytest.raises(ReplayError, match="no model 'other'"):
        ask(llm, "x", model="replay/other")


# --- usage and cost ----------------------------------------------------------------------------


def test_cost_is_tokens_times_prices(tmp_path: Path) -> None:
    path = write_replay(tmp_path, {"m": {
        "input_cost_per_token": 2e-6, "output_cost_per_token": 8e-6,
        "replies": [{"text": "done", "prompt_tokens": 1000, "completion_tokens": 500}]}})
    reply = client(path).complete("replay/m", [{"role": "user", "content": "x"}])
    assert (reply.prompt_tokens, reply.completion_tokens) == (1000, 500)
    assert reply.cost_usd == pytest.approx(1000 * 2e-6 + 500 * 8e-6)
    assert reply.model == "replay/m"
    assert reply.seconds >= 0


def test_a_price_override_changes_the_cost(tmp_path: Path) -> None:
    path = write_replay(tmp_path, {"m": {
        "input_cost_per_token": 2e-6, "output_cost_per_token": 8e-6,
        "replies": [{"text": "done", "prompt_tokens": 1000, "completion_tokens": 500}]}})
    prices = resolve_prices(["replay/m"], {"replay/m": Price(1e-5, 1e-5)},
                            ReplayBook.load(path).prices())
    reply = client(path, prices=prices).complete("replay/m", [{"role": "user", "content": "x"}])
    assert reply.cost_usd == pytest.approx(1500 * 1e-5)


def test_token_counts_default_to_litellm_counting(tmp_path: Path) -> None:
    path = write_replay(tmp_path, {"m": {
        "input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6,
        "replies": [{"match": "short", "text": "ok"},
                    {"text": "a much longer answer " * 20}]}})
    llm = client(path)
    short = llm.complete("replay/m", [{"role": "user", "content": "short"}])
    long = llm.complete("replay/m", [{"role": "user", "content": "long question " * 100}])
    assert short.prompt_tokens > 0 and short.completion_tokens > 0
    assert long.prompt_tokens > short.prompt_tokens + 100
    assert long.completion_tokens > short.completion_tokens + 50
    assert long.cost_usd == pytest.approx((long.prompt_tokens + long.completion_tokens) * 1e-6)


# --- faults ------------------------------------------------------------------------------------


def test_a_rate_limit_is_retried_then_succeeds(tmp_path: Path) -> None:
    llm = client(write_replay(tmp_path, {"m": {"replies": [
        {"fault": "rate_limit", "times": 2}, {"text": "after the storm"}]}}), retries=2)
    assert ask(llm, "x") == "after the storm"


def test_a_persistent_server_error_is_an_llm_error_after_the_retries(tmp_path: Path) -> None:
    path = write_replay(tmp_path, {"m": {"replies": [
        {"fault": "server_error", "times": 3}, {"text": "recovered"}]}})
    llm = client(path, retries=2)
    with pytest.raises(LLMError) as info:
        ask(llm, "x")
    assert not isinstance(info.value, ReplayError)
    assert "InternalServerError" in str(info.value) and "replay/m" in str(info.value)
    # Exactly retries + 1 calls were made: the scripted fault is used up, the next call works.
    assert ask(llm, "x") == "recovered"


def test_a_context_window_fault_is_not_retried(tmp_path: Path) -> None:
    llm = client(write_replay(tmp_path, {"m": {"replies": [
        {"fault": "context_window", "times": 1}, {"text": "fits now"}]}}), retries=3)
    with pytest.raises(LLMError, match="ContextWindowExceeded"):
        ask(llm, "x")
    assert ask(llm, "x") == "fits now"


def test_a_timeout_fault_is_retried(tmp_path: Path) -> None:
    llm = client(write_replay(tmp_path, {"m": {"replies": [
        {"fault": "timeout", "times": 1}, {"text": "in time"}]}}), retries=1)
    assert ask(llm, "x") == "in time"


def test_an_unknown_scripted_fault_is_a_replay_error(tmp_path: Path) -> None:
    llm = client(write_replay(tmp_path, {"m": {"replies": [{"fault": "gremlins"}]}}))
    with pytest.raises(ReplayError, match="gremlins"):
        ask(llm, "x")


@pytest.mark.parametrize("text", ["", "   \n"])
def test_an_empty_reply_is_an_llm_error(tmp_path: Path, text: str) -> None:
    llm = client(write_replay(tmp_path, {"m": {"replies": [{"text": text}]}}))
    with pytest.raises(LLMError, match="empty"):
        ask(llm, "x")


# --- prices ------------------------------------------------------------------------------------


def test_resolve_prices_prefers_override_then_replay_then_table(
        caplog: pytest.LogCaptureFixture) -> None:
    listed = table_price("gpt-4o")
    assert listed is not None and listed.input_per_token > 0
    override = Price(1.0, 2.0)
    replay = {"replay/a": Price(3.0, 4.0), "gpt-4o": Price(5.0, 6.0)}
    with caplog.at_level(logging.WARNING, logger="acr_bot.llm"):
        prices = resolve_prices(["gpt-4o", "replay/a", "openai/gpt-4o", "no-such-model-zz9"],
                                {"gpt-4o": override}, replay)
    assert prices["gpt-4o"] == override
    assert prices["replay/a"] == Price(3.0, 4.0)
    assert prices["openai/gpt-4o"] == listed  # the table, under its provider prefix
    assert prices["no-such-model-zz9"] is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no-such-model-zz9" in warnings[0]
    assert resolve_prices(["gpt-4o"], {}, replay)["gpt-4o"] == Price(5.0, 6.0)
    assert resolve_prices(["gpt-4o"], {})["gpt-4o"] == listed


def test_price_cost() -> None:
    assert Price(1e-6, 4e-6).cost(1000, 250) == pytest.approx(0.002)


# --- the async path, and import cost --------------------------------------------------------


def test_acompletion_on_a_replay_model(tmp_path: Path) -> None:
    path = write_replay(tmp_path, {"m": {"input_cost_per_token": 1e-6, "replies": [
        {"match": "async", "text": "awaited", "prompt_tokens": 7, "completion_tokens": 3}]}})
    litellm = client(path)._setup()
    response = asyncio.run(litellm.acompletion(
        model="replay/m", messages=[{"role": "user", "content": "an async call"}]))
    assert response.choices[0].message.content == "awaited"
    assert response.usage.prompt_tokens == 7 and response.usage.completion_tokens == 3


def test_the_cli_and_app_do_not_import_litellm() -> None:
    script = """
import sys
import acr_bot.app, acr_bot.cli
assert 'litellm' not in sys.modules, 'imported by import'
from acr_bot.cli import cli
names = sorted(cli.commands)
for args in [['--help'], *[[name, '--help'] for name in names]]:
    try:
        cli.main(args, prog_name='acr-bot', standalone_mode=True)
    except SystemExit as exc:
        assert exc.code == 0, (args, exc.code)
    assert 'litellm' not in sys.modules, args
print('commands:', ' '.join(names))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "commands:" in done.stdout
    assert " fix" in done.stdout and " route" in done.stdout
