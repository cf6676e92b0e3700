"""One routing path: the bot's fix loop and the benchmark make the same decisions on the same
history, because both drive `routing.cascade.Cascade` (real git repo, real pytest, replayed
litellm calls on the bot's side; a benchmark row built from the bot's own outcomes)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from conftest import PYTEST

from acr_bot import app
from acr_bot.bench import runner as bench
from acr_bot.config import Settings
from acr_bot.domain import Decision, Features, FixResult, Record
from acr_bot.memory.store import Memory
from acr_bot.routing.base import Policy, RouteTask
from acr_bot.routing.features import task_features
from acr_bot.routing.outcomes import observations
from acr_bot.routing.registry import make_policy
from tests.support.calc import FILES, FIX, TASK, WRONG_FIX, WRONG_FIX2

MODELS = ("replay/cheap", "replay/mid", "replay/pro")
# Past tasks like this one: (pass rate, $ per attempt) of each model.
PAST = {"replay/cheap": (0.3, 0.01), "replay/mid": (0.5, 0.8), "replay/pro": (0.9, 1.5)}


def past_records(n: int = 30) -> list[Record]:
    """Independent first tries on `n` past tasks that resemble the calc task."""
    tokens = task_features(app.task_from_text(TASK)).tokens
    out = []
    for i in range(n):
        features = " ".join((*tokens[:-2], f"w:past{i}"))
        for model, (rate, cost) in PAST.items():
            passed = (i * 7 + len(model)) % 10 < rate * 10
            out.append(Record(id=f"{model}-{i}", kind="attempt", ts=float(i), task=f"past-{i}",
                              model=model, outcome="passed" if passed else "tests_failed",
                              features=features, attempt=1, cost_usd=cost, run=f"r{i}-{model}"))
    return out


def bot_run(make_repo, make_replay, tmp_path: Path, weight: float) -> tuple[FixResult, Settings]:
    replay = make_replay({"cheap": [WRONG_FIX], "mid": [WRONG_FIX2], "pro": [FIX]})
    settings = replace(Settings(), models=MODELS, replay_file=replay, test_command=PYTEST,
                       policy="learned", cost_weight=weight, llm_retries=0)
    memory_file = tmp_path / "memory.json"
    Memory(memory_file, past_records()).save()
    result = app.fix(make_repo(FILES), app.task_from_text(TASK), settings,
                     memory_file=memory_file)
    return result, settings


def bench_replay(result: FixResult, settings: Settings) -> list[str]:
    """The benchmark's cascade on a row holding the outcomes the bot saw, same memory."""
    outcomes = {m: (0.0, 0.0) for m in MODELS}
    outcomes.update({a.model: (1.0 if a.passed else 0.0, a.cost_usd) for a in result.attempts})
    row = bench.Row("calc", TASK, None, (), "stream", False, outcomes)
    policy = make_policy("learned", observations(past_records()),
                         cost_hint=app.portfolio(settings).cost_hint,
                         cost_weight=settings.cost_weight)
    task = RouteTask(result.task.id, Features.parse(result.records[0].features))
    cfg = bench.BenchConfig("cascade", settings.max_attempts, settings.cost_weight)
    return [d.model for d in bench.play(policy, task, row, cfg).decisions]


def test_bot_and_bench_escalate_the_same_way(make_repo, make_replay, tmp_path: Path) -> None:
    result, settings = bot_run(make_repo, make_replay, tmp_path, weight=0.0)

    assert result.outcome == "fixed", result.reason
    chosen = [d.model for d in result.decisions]
    assert len(chosen) >= 2  # a real cascade: at least one escalation
    assert chosen == [a.model for a in result.attempts]
    assert bench_replay(result, settings) == chosen


def test_the_bot_stops_when_another_attempt_is_not_worth_its_cost(make_repo, make_replay,
                                                                  tmp_path: Path) -> None:
    # At a cost weight of 1, mid ($0.80 for 50%) and pro ($1.50 for 90%) cost more than a
    # solved task is worth: after cheap fails the router stops, in the bot as in the bench.
    result, settings = bot_run(make_repo, make_replay, tmp_path, weight=1.0)

    assert result.outcome == "gave_up"
    assert [a.model for a in result.attempts] == ["replay/cheap"]
    assert result.reason.startswith("stopped: the router judged another attempt worth less")
    assert bench_replay(result, settings) == ["replay/cheap"]


@pytest.mark.parametrize("mode, limit", [("oneshot", 1), ("cascade", 3)])
def test_the_cascade_passes_the_attempts_left_to_the_policy(mode: str, limit: int) -> None:
    seen: list[int] = []

    class Spy(Policy):
        def rank(self, task, pool, tried, attempts_left=1):  # type: ignore[no-untyped-def]
            seen.append(attempts_left)
            return Decision(sorted(pool)[0], "spy", "first")

    row = bench.Row("r", "text", None, (), "stream", False,
                    {"a": (0.0, 1.0), "b": (0.0, 1.0), "c": (0.0, 1.0), "d": (1.0, 1.0)})
    bench.play(Spy(), bench.visible_task(row, "t"), row, bench.BenchConfig(mode, 3))
    assert seen == list(range(limit, 0, -1))
