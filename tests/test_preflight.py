"""Provider problems are found before any work: no key, an unknown provider, a replay model
without its file or its name. Nothing here calls a model or reaches the network."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import PYTEST

from acr_bot.cli import cli
from acr_bot.llm import LLMClient
from tests.support import calc

KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEYS:
        monkeypatch.delenv(name, raising=False)


def test_each_problem_is_named_in_full(make_replay) -> None:
    replay = make_replay({"cheap": ["x"]})
    client = LLMClient(replay_file=replay)
    problems = client.unusable(["replay/cheap", "replay/gone", "openai/gpt-4o-mini",
                                "anthropic/claude-sonnet-4-5", "gpt-nonexistent-model"])
    assert problems == {
        "replay/gone": f"not in the replay file {replay} (it has: cheap)",
        "openai/gpt-4o-mini": "the openai provider needs OPENAI_API_KEY in the environment, "
                              "and it is not set",
        "anthropic/claude-sonnet-4-5": "the anthropic provider needs ANTHROPIC_API_KEY in the "
                                       "environment, and it is not set",
        "gpt-nonexistent-model": "litellm knows no provider for this model id; write it as "
                                 "provider/model, e.g. openai/gpt-4o-mini or "
                                 "anthropic/claude-sonnet-4-5",
    }


def test_a_set_key_or_a_local_api_base_makes_a_model_usable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    client = LLMClient(api_bases={"ollama/llama3": "http://127.0.0.1:9"})
    assert client.unusable(["openai/gpt-4o-mini", "ollama/llama3"]) == {}


def test_a_replay_model_without_a_replay_file() -> None:
    assert LLMClient().unusable(["replay/cheap"]) == {
        "replay/cheap": "a replay model needs a replay file (--replay-file or replay_file)"}


def _fix(repo: Path, models: str, *extra: str) -> tuple[object, float]:
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["fix", "--harness", "edit", "--repo", str(repo),
                                      "--test-cmd", PYTEST,
                                      "--task", calc.TASK, "--models", models,
                                      "--policy", "cheapest-first", *extra])
    return result, time.monotonic() - started


def test_no_callable_model_is_one_line_before_the_baseline(make_repo) -> None:
    repo = make_repo(calc.FILES)
    result, seconds = _fix(repo, "openai/gpt-4o-mini,replay/cheap")
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [
        "Error: no model can be called: openai/gpt-4o-mini: the openai provider needs "
        "OPENAI_API_KEY in the environment, and it is not set; replay/cheap: a replay model "
        "needs a replay file (--replay-file or replay_file)"]
    assert "baseline" not in result.output and seconds < 15


def test_an_unusable_model_is_dropped_with_a_warning_and_the_others_work(make_repo,
                                                                        make_replay) -> None:
    repo = make_repo(calc.FILES)
    replay = make_replay({"cheap": [calc.FIX]})
    result, _ = _fix(repo, "replay/cheap,anthropic/claude-sonnet-4-5",
                     "--replay-file", str(replay))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    warning = ("warning: anthropic/claude-sonnet-4-5 is dropped: the anthropic provider needs "
               "ANTHROPIC_API_KEY in the environment, and it is not set")
    assert warning in lines
    assert lines.index(warning) < next(i for i, line in enumerate(lines)
                                       if line.startswith("baseline"))
    assert "attempt 1: replay/cheap" in result.output
    assert "attempt 2" not in result.output


def test_a_harness_suffix_is_not_part_of_the_model_id(make_repo, make_replay) -> None:
    from acr_bot import app
    from acr_bot.config import load_settings

    replay = make_replay({"cheap": [calc.FIX]})
    settings = load_settings(make_repo(calc.FILES), {
        "models": ["replay/cheap@edit", "replay/cheap@agent", "replay/gone@agent"],
        "replay_file": replay})
    shown: list[str] = []
    folio = app.callable_models(app.portfolio(settings), shown.append)
    assert folio.models == ("replay/cheap@edit", "replay/cheap@agent")
    assert shown == [f"warning: replay/gone@agent is dropped: not in the replay file {replay} "
                     "(it has: cheap)"]
