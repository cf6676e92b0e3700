"""One routing path: the bot's fix loop and the benchmark make the same decisions on the same
history, because both drive `routing.cascade.Cascade` (real git repo, real pytest, replayed
litellm calls on the bot's side; a benchmark row built from the bot's own outcomes)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import PYTEST

from acr_bot import app
from acr_bot.bench import runner as bench
from acr_bot.config import Settings
from acr_bot.errors import ConfigError
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
    tokens = [t for t in task_features(app.task_from_text(TASK)).tokens
              if not t.startswith("w:")]
    out = []
    for i in range(n):  # same kind of task, other words: similar, not the same text
        features = " ".join((*tokens, f"w:past{i}", f"w:other{i % 3}", "w:product"))
        for model, (rate, cost) in PAST.items():
            passed = (i * 7 + len(model)) % 10 < rate * 10
            out.append(Record(id=f"{model}-{i}", kind="attempt", ts=float(i), task=f"past-{i}",
                              model=model, outcome="passed" if passed else "tests_failed",
                              features=features, attempt=1, cost_usd=cost, run=f"r{i}-{model}"))
    return out


def bot_run(make_repo, make_replay, tmp_path: Path, weight: float) -> tuple[FixResult, Settings]:
    replay = make_replay({"cheap": [WRONG_FIX], "mid": [WRONG_FIX2], "pro": [FIX]})
    settings = replace(Settings(), models=MODELS, replay_file=replay, test_command=PYTEST,
                       policy="learned", cost_weight=weight, llm_retries=0, harness="edit")
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


# --- runs are runs: a task seen again goes to the model that fixed it -------------------------


def test_the_third_run_goes_straight_to_the_model_that_fixed_the_task(make_repo,
                                                                      make_replay) -> None:
    """A new user's session: `acr-bot fix` three times on one task, three replayed models
    (one hacks the test, one is wrong, one is right), the default policy."""
    from click.testing import CliRunner

    from acr_bot.cli import cli
    from tests.support.calc import TESTS, reply

    skipped = TESTS.replace("def test_mul():", "@pytest.mark.skip(reason='flaky')\ndef test_mul():")
    replay = make_replay({"hacker": [reply("tests/test_calc.py", TESTS, skipped)],
                          "wrong": [WRONG_FIX], "good": [FIX]})
    repo = make_repo(FILES)
    models = "replay/hacker,replay/wrong,replay/good"
    runs = []
    for _ in range(3):
        out = CliRunner().invoke(cli, ["fix", "--repo", str(repo), "--test-cmd", PYTEST,
                                       "--replay-file", str(replay), "--models", models,
                                       "--task", TASK, "--json", "--harness", "edit"])
        assert out.exit_code == 0, out.output
        runs.append(json.loads(out.stdout))

    first = [a["model"] for a in runs[0]["attempts"]]
    assert first[0] == "replay/hacker" and first[-1] == "replay/good"  # cold start: cheapest
    assert [[a["model"] for a in run["attempts"]] for run in runs[1:]] == [["replay/good"]] * 2
    assert "verified a fix for this same task before" in runs[2]["decisions"][0]["reason"]
    records = Memory.load(repo / ".acr" / "memory.json").records
    assert len({r.run for r in records}) == 3  # every record carries its run

    route = CliRunner().invoke(cli, ["route", "--repo", str(repo), "--models", models,
                                     "--task", TASK, "--harness", "edit"])
    assert route.exit_code == 0, route.output
    assert route.stdout.strip() == ("Chose replay/good (learned): it verified a fix for this "
                                    "same task before")


def test_the_demos_second_routing_goes_to_the_model_that_fixed_the_task(tmp_path: Path) -> None:
    from acr_bot.demo import run_demo

    lines: list[str] = []
    assert run_demo(tmp_path, lines.append) == 0
    text = "\n".join(lines)
    again = text[text.index("Routing the same task again"):]
    assert "Chose replay/pro (learned): it verified a fix for this same task before" in again


def test_a_cascade_is_the_attempts_of_one_run() -> None:
    def attempt(run: str, number: int, model: str, ok: bool) -> Record:
        return Record(id=f"{run}-{number}", kind="attempt", ts=float(number), task="t",
                      model=model, outcome="passed" if ok else "tests_failed",
                      features="lang:python", attempt=number, run=run)

    records = [attempt("r1", 1, "hacker", False), attempt("r1", 2, "good", True),
               attempt("r2", 1, "good", True)]
    assert [(o.model, o.after) for o in observations(records)] == [
        ("hacker", ()), ("good", ("hacker",)), ("good", ())]  # run 2's try is independent


# --- one registry ------------------------------------------------------------------------------


def test_a_policy_is_named_in_one_place_and_listing_names_needs_no_numpy(tmp_path: Path) -> None:
    import subprocess
    import sys

    from acr_bot.cli import cli
    from acr_bot.config import load_settings
    from acr_bot.routing import registry

    probe = ("import sys, acr_bot.cli, acr_bot.routing.registry as r; "
             "print(len(r.NAMES), 'numpy' in sys.modules)")  # the CLI starts without numpy
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [str(len(registry.NAMES)), "False"]

    from click.testing import CliRunner

    assert registry.HELP in " ".join(CliRunner().invoke(cli, ["fix", "--help"]).output.split())
    assert bench.LEARNING_POLICIES == registry.NAMES
    (tmp_path / ".github").mkdir()
    for name in registry.NAMES:  # every registered name is a valid setting, and no other
        (tmp_path / ".github" / "acr-bot.yml").write_text(f"policy: {name}\n")
        assert load_settings(tmp_path).policy == name
        assert make_policy(name, []).choose(RouteTask("t", Features(("w:x",))), ["a"]).model == "a"
    (tmp_path / ".github" / "acr-bot.yml").write_text("policy: nonesuch\n")
    with pytest.raises(ConfigError, match="nonesuch"):
        load_settings(tmp_path)


# --- features the bot really has ---------------------------------------------------------------


def test_the_bench_does_not_feed_a_label_the_bot_can_never_know() -> None:
    row = bench.Row("django-1", "QuerySet.union crashes on empty input", "python",
                    ("django/django", "15 min - 1 hour"), "stream", False, {"m": (1.0, 0.1)})
    seen = bench.visible_task(row, "t").features.tokens
    assert "tag:django/django" in seen  # the repository: the bot has it (Task.tags)
    assert not any("hour" in t for t in seen)
    compared = bench.visible_task(row, "t", human_labels=True).features.tokens
    assert "tag:15_min_-_1_hour" in compared


def test_near_identical_text_counts_as_the_same_task_only_when_long_enough() -> None:
    from acr_bot.routing.features import extract

    long = ("median() returns the upper middle value for lists with an even number of values; "
            "tests/test_core.py::test_median_even fails with assert 3 == 2.5 in stats/core.py")
    short = "code_generation task from bcb"
    records = []
    for i, text in enumerate((long, short)):
        for model, ok in (("cheap", False), ("good", True)):
            records.append(Record(id=f"{i}{model}", kind="attempt", ts=0.0, task=f"old-{i}",
                                  model=model, outcome="passed" if ok else "tests_failed",
                                  features=extract(text).compact(), attempt=1, run=f"r{i}{model}"))
    policy = make_policy("cheapest-first", observations(records), cost_hint={"cheap": 0.01,
                                                                           "good": 1.0}.get)
    again = policy.choose(RouteTask("new-0", extract(long + " (reported again)")),
                          ["cheap", "good"])
    assert again.model == "good"
    assert again.reason.startswith("it verified a fix for a near-identical task (old-0")
    other = policy.choose(RouteTask("new-1", extract(short)), ["cheap", "good"])
    assert other.model == "cheap"  # same words, but too short to be the same task


def test_a_command_line_task_carries_the_repository_tag_of_origin(make_repo) -> None:
    from click.testing import CliRunner

    from acr_bot.cli import cli
    from acr_bot.gitrepo import GitRepo, git

    repo = make_repo(FILES)
    assert GitRepo(repo).slug() is None  # no origin: no tag
    for url in ("https://github.com/octo/calc.git", "git@github.com:octo/calc.git",
                "https://x-access-token@ghe.example.com/octo/calc"):
        git(repo, "remote", "remove", "origin", check=False)
        git(repo, "remote", "add", "origin", url)
        assert GitRepo(repo).slug() == "octo/calc", url
    out = CliRunner().invoke(cli, ["route", "--repo", str(repo), "--models", "replay/a",
                                   "--task", TASK, "--json", "--memory", str(repo / "m.json")])
    assert out.exit_code == 0, out.output
    assert "tag:octo/calc" in json.loads(out.stdout)["features"]


def test_bench_human_labels_flag_reaches_the_report(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from acr_bot.cli import cli
    from tests.data import synth

    for flag, expected in (([], False), (["--human-labels"], True)):
        out = tmp_path / "doc.json"
        result = CliRunner().invoke(cli, ["bench", "--dataset", str(synth.GENERAL_FILE),
                                          "--policies", "cheapest-first", "--json", str(out),
                                          *flag])
        assert result.exit_code == 0, result.output
        assert json.loads(out.read_text())["human_labels"] is expected
