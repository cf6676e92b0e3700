"""The agent harness end to end: real git repos, real shell commands, real pytest runs, real
litellm calls answered by the replay provider one turn at a time."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import PYTEST

from acr_bot import app
from acr_bot.config import Settings
from acr_bot.domain import FixResult
from acr_bot.fixing.harness import Limits
from acr_bot.gitrepo import git
from acr_bot.memory.store import Memory
from acr_bot.report import pr_body
from tests.support.agent import SUBMIT, agent_model, script, submit, turn
from tests.support.calc import FILES, TASK, WRONG_FIX

FIX_MUL = "sed -i '/def mul/{n;s/a + b/a * b/}' calc.py"


def agent_settings(replay: Path, *names: str, **changes: object) -> Settings:
    return replace(Settings(), models=tuple(f"replay/{n}" for n in names), replay_file=replay,
                   test_command=PYTEST, policy="cheapest-first", llm_retries=0,
                   harness="agent", **changes)


def write_replay(tmp_path: Path, models: dict[str, list[dict]], **prices: float) -> Path:
    path = tmp_path / "agent-replay.json"
    spec = {name: agent_model(replies, prices.get(name, 1e-6 * (i + 1)))
            for i, (name, replies) in enumerate(models.items())}
    path.write_text(json.dumps({"models": spec}))
    return path


def fix(repo: Path, settings: Settings, task: str = TASK, **kwargs: object) -> FixResult:
    return app.fix(repo, app.task_from_text(task), settings, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def repo(make_repo) -> Path:
    return make_repo(FILES)


def test_agent_reads_edits_tests_and_submits_a_verified_fix(repo: Path, tmp_path: Path) -> None:
    replay = write_replay(tmp_path, {"cheap": script(
        "cat calc.py", FIX_MUL, f"{PYTEST} 2>&1 | tail -3", SUBMIT)})
    lines: list[str] = []
    result = fix(repo, agent_settings(replay, "cheap", trajectory_dir=tmp_path / "traj"),
                 echo=lines.append)

    assert result.outcome == "fixed", result.reason
    attempt = result.attempts[0]
    assert (attempt.harness, attempt.steps, attempt.calls) == ("agent", 4, 4)
    assert attempt.commands[1] == FIX_MUL
    assert attempt.files == ("calc.py",)
    assert "return a * b" in git(repo, "show", f"{result.branch}:calc.py")
    assert any(line.startswith("  step 2: sed -i") and "exit 0" in line for line in lines)
    record = Memory.load(repo / ".acr/memory.json").records[0]
    assert (record.model, record.harness, record.outcome) == ("replay/cheap", "agent", "passed")
    doc = json.loads(Path(attempt.trajectory).read_text())
    assert doc["harness"] == "agent" and len(doc["steps"]) == 4
    assert "<returncode>0</returncode>" in doc["messages"][3]["content"]  # cat's observation
    body = pr_body(result, "<!-- acr -->")
    assert "<summary>Commands the agent ran (4)</summary>" in body and f"2. `{FIX_MUL}`" in body
    assert "-    return a + b\n+    return a * b" in body.split("<summary>Diff</summary>")[1]


def test_agent_finds_the_bug_with_grep_in_a_thousand_file_repo(make_repo, tmp_path: Path) -> None:
    files = {f"pkg/m{i:03d}/core.py": f"def helper_{i}(x):\n    return x + {i}\n"
             for i in range(1000)}
    files["pkg/m421/core.py"] += "\n\ndef checksum(data):\n    return sum(data) % 255\n"
    files["tests/test_checksum.py"] = (
        "from pkg.m421.core import checksum\n\n\ndef test_checksum():\n"
        "    assert checksum([200, 100]) == 44\n")
    files["pytest.ini"] = "[pytest]\ntestpaths = tests\npythonpath = .\n"
    files["pkg/__init__.py"] = ""
    repo = make_repo(files)
    task = "checksum() is wrong\n\nIt should be the byte sum modulo 256 (RFC 1071-ish)."
    replay = write_replay(tmp_path, {"agent": [
        turn("grep -rn 'def checksum' --include=*.py .", times=1),
        # Only the grep's real output names the file: the edit depends on the observation.
        turn("sed -i 's/% 255/% 256/' pkg/m421/core.py",
             match=r"\./pkg/m421/core\.py:\d+:def checksum", times=1),
        turn(f"{PYTEST} 2>&1 | tail -2", times=1),
        turn(SUBMIT, match=r"1 passed", times=1)]})
    result = fix(repo, agent_settings(replay, "agent"), task)

    assert result.outcome == "fixed", result.reason
    assert result.attempts[0].files == ("pkg/m421/core.py",)
    assert result.attempts[0].commands[0].startswith("grep -rn")


def test_protected_paths_are_put_back_and_scratch_files_left_out(repo: Path,
                                                                 tmp_path: Path) -> None:
    replay = write_replay(tmp_path, {"agent": script(
        "mkdir -p .github/workflows && echo 'on: push' > .github/workflows/evil.yml",
        "printf 'from calc import mul\\nprint(mul(3, 4))\\n' > reproduce.py && python reproduce.py",
        FIX_MUL, "printf 'def div(a, b):\\n    return a / b\\n' > ops.py",
        submit("ops.py"))})
    result = fix(repo, agent_settings(replay, "agent"))

    assert result.outcome == "fixed", result.reason
    attempt = result.attempts[0]
    assert sorted(attempt.files) == ["calc.py", "ops.py"]  # named after the sentinel: kept
    tree = git(repo, "ls-tree", "-r", "--name-only", result.branch).split()
    assert "reproduce.py" not in tree and ".github/workflows/evil.yml" not in tree
    # Each path put back says why (issue #9: every refusal says why).
    assert ("put back: '.github/workflows/evil.yml': the path is protected (it matches "
            "'.github/**').") in attempt.note


def test_rejected_agent_continues_with_the_verifiers_output(repo: Path, tmp_path: Path) -> None:
    wrong = "sed -i '/def mul/{n;s/a + b/a * b + 1/}' calc.py"
    replay = write_replay(tmp_path, {"agent": [
        *script(wrong, SUBMIT),
        turn("sed -i 's/a \\* b + 1/a * b/' calc.py", match="rejected it", times=1),
        turn(SUBMIT, times=1)]})
    result = fix(repo, agent_settings(replay, "agent"))

    assert result.outcome == "fixed", result.reason
    assert len(result.attempts) == 1  # one attempt, two submissions
    assert result.attempts[0].steps == 4


def test_escalation_starts_from_a_clean_tree_with_an_account_of_the_failure(
        repo: Path, tmp_path: Path) -> None:
    wrong = "sed -i '/def mul/{n;s/a + b/a * b + 1/}' calc.py"
    replay = write_replay(tmp_path, {
        "cheap": script(wrong, SUBMIT, "true", "true"),
        # The strong model's first reply is given only if it sees the cheap attempt's story,
        # and its check proves the tree is clean again.
        "strong": [turn("grep -c 'a + b' calc.py", match=r"attempt 1 \(replay/cheap", times=1),
                   turn(FIX_MUL, match=r"<output>\n2\n", times=1), turn(SUBMIT, times=1)]})
    result = fix(repo, agent_settings(replay, "cheap", "strong", max_attempts=2, agent_steps=3))

    assert result.outcome == "fixed", result.reason
    assert [a.outcome for a in result.attempts] == ["tests_failed", "passed"]


# --- limits ------------------------------------------------------------------------------------


def test_step_limit_stops_an_agent_that_never_submits(repo: Path, tmp_path: Path) -> None:
    replay = write_replay(tmp_path, {"agent": [turn("ls", times=None)]})
    result = fix(repo, agent_settings(replay, "agent", agent_steps=5, max_attempts=1))

    assert result.outcome == "gave_up"
    attempt = result.attempts[0]
    assert (attempt.outcome, attempt.calls, attempt.steps) == ("no_submit", 5, 5)
    assert "step limit" in attempt.detail


def test_format_errors_are_corrected_and_count_as_steps(repo: Path, tmp_path: Path) -> None:
    two = {"text": "```bash\nls\n```\nand\n```bash\npwd\n```", "times": 1}
    replay = write_replay(tmp_path, {"agent": [
        two, {"text": "I will just think.", "times": 1},
        turn(FIX_MUL, match="found 0 actions"), turn(SUBMIT)]})
    result = fix(repo, agent_settings(replay, "agent", trajectory_dir=tmp_path / "t"))

    assert result.outcome == "fixed", result.reason
    assert (result.attempts[0].calls, result.attempts[0].steps) == (4, 2)
    messages = json.loads(Path(result.attempts[0].trajectory).read_text())["messages"]
    assert "found 2 actions" in messages[3]["content"]


def test_dollar_cap_is_checked_before_every_call(repo: Path, tmp_path: Path) -> None:
    replay = write_replay(tmp_path, {"agent": [turn("ls", times=None)]}, agent=1e-4)
    # Each call's worst case: ~1,600 prompt tokens x 1e-4 + 8,192 x 4e-4 = ~$3.4, so the
    # fourth call (after ~$0.5 spent) could pass $4: it is never made.
    result = fix(repo, agent_settings(replay, "agent", max_cost_usd=4.0, max_attempts=1))

    attempt = result.attempts[0]
    assert attempt.outcome == "no_submit" and "dollar cap" in attempt.detail
    assert attempt.cost_usd <= 4.0 and 1 <= attempt.calls < 10


def test_old_observations_are_shortened_before_the_context_window_is_hit(
        repo: Path, tmp_path: Path) -> None:
    big = "python -c \"print('x' * 6000)\""
    replay = write_replay(tmp_path, {"agent": [*script(big, big, big, big), turn(SUBMIT)]})
    result = fix(repo, agent_settings(replay, "agent", context_window=6_000,
                                      max_output_tokens=1_000, trajectory_dir=tmp_path / "t",
                                      max_attempts=1))

    messages = json.loads(Path(result.attempts[0].trajectory).read_text())["messages"]
    observations = [m["content"] for m in messages if m["role"] == "user"][1:]
    assert any("shortened" in text for text in observations[:2])
    assert "x" * 5000 in observations[-1]  # the latest stays whole
    assert result.attempts[0].outcome == "no_edits"  # it submitted without a change


# --- hostile commands, local sandbox ------------------------------------------------------------


def _running(mark: bytes) -> bool:
    """Whether a live process's command line holds `mark` (pids the command sees are its PID
    namespace's, so the test finds its processes by a mark)."""
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
            if mark in (entry / "cmdline").read_bytes() and state not in ("Z", "X"):
                return True
        except (OSError, IndexError):
            continue
    return False


def test_hostile_commands_are_contained_and_reported(repo: Path, tmp_path: Path,
                                                     shared: Path) -> None:
    pidfile = shared / "daemon.pid"  # where the sandbox user may write
    replay = write_replay(tmp_path, {"agent": script(
        "sleep 600",
        "yes acr-flood | head -c 20000000",
        f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 600.4242' > /dev/null 2>&1 & sleep 0.5; "
        "echo forked",
        FIX_MUL, SUBMIT)})
    started = time.monotonic()
    result = fix(repo, agent_settings(replay, "agent", command_timeout=2,
                                      observation_bytes=2_000, trajectory_dir=tmp_path / "t"))

    assert result.outcome == "fixed", result.reason
    assert time.monotonic() - started < 60
    doc = json.loads(Path(result.attempts[0].trajectory).read_text())
    steps, messages = doc["steps"], doc["messages"]
    assert steps[0]["exit_code"] is None and "timed out after 2 seconds" in messages[3]["content"]
    flood = messages[5]["content"]
    assert "too long" in flood and len(flood) < 3_000
    assert pidfile.exists()  # the daemon started ...
    assert not _running(b"sleep\x00600.4242")  # ... and died with its command


def test_agent_commands_do_not_see_the_bots_secrets(repo: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-abcdefghijklmnopqrstuvwx")
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_abcdefghijklmnopqrstuvwxyz0123")
    replay = write_replay(tmp_path, {"agent": script(
        "env | grep -c -E 'OPENAI_API_KEY|GITHUB_TOKEN' ; git config --get core.hooksPath",
        FIX_MUL, SUBMIT)})
    result = fix(repo, agent_settings(replay, "agent", trajectory_dir=tmp_path / "t"))

    doc = json.loads(Path(result.attempts[0].trajectory).read_text())
    assert "<output>\n0\n/dev/null" in doc["messages"][3]["content"]


def test_a_cascade_opens_with_a_cheap_single_prompt_and_escalates_to_an_agent(
        repo: Path, tmp_path: Path) -> None:
    replay = tmp_path / "arms.json"
    replay.write_text(json.dumps({"models": {
        "cheap": {"input_cost_per_token": 1e-7, "output_cost_per_token": 4e-7,
                  "replies": [{"text": WRONG_FIX}]},
        "strong": agent_model(script(FIX_MUL, SUBMIT), price=1e-6)}}))
    settings = agent_settings(replay, "cheap@edit", "strong")
    result = fix(repo, settings)

    assert result.outcome == "fixed", result.reason
    assert [(a.model, a.harness, a.outcome) for a in result.attempts] == [
        ("replay/cheap@edit", "edit", "tests_failed"), ("replay/strong", "agent", "passed")]
    memory = Memory.load(repo / ".acr/memory.json")
    assert [(r.model, r.harness) for r in memory.records] == [
        ("replay/cheap", "edit"), ("replay/strong", "agent")]
    # The router knows each (model, harness) arm by its own record.
    other = app.task_from_text("sub() crashes on floats\n\nsub(0.5, 0.25) raises TypeError.")
    _, decision = app.route(other, replace(settings, policy="learned"), memory)
    records = {e.model: e.records for e in decision.estimates}
    assert records["replay/cheap@edit"] == 1 and "replay/strong" in records


def test_the_attempt_time_limit_ends_an_agent_and_caps_its_last_command(
        repo: Path, tmp_path: Path) -> None:
    replay = write_replay(tmp_path, {"agent": [turn("sleep 30", times=None)]})
    started = time.monotonic()
    result = fix(repo, agent_settings(replay, "agent", attempt_timeout=4, command_timeout=60,
                                      max_attempts=1))

    attempt = result.attempts[0]
    assert attempt.outcome == "no_submit" and "time limit" in attempt.detail
    assert attempt.steps == 1  # the one `sleep 30` was cut at the attempt's 4 s
    assert time.monotonic() - started < 30


def test_an_agent_that_commits_or_switches_branches_does_not_move_the_base(
        repo: Path, tmp_path: Path) -> None:
    replay = write_replay(tmp_path, {"agent": script(
        FIX_MUL, "git add -A && git commit -qm 'agent commit' && git checkout -q -b agent-branch",
        SUBMIT)})
    result = fix(repo, agent_settings(replay, "agent"))

    assert result.outcome == "fixed", result.reason
    assert result.attempts[0].files == ("calc.py",)
    log = git(repo, "log", "--format=%s", result.branch).splitlines()
    assert "agent commit" not in log and len(log) == 2  # the base, then the bot's fix commit


def test_the_context_window_comes_from_litellms_table_when_it_is_smaller() -> None:
    from acr_bot.fixing.attempt import attempt_limits
    from acr_bot.verify.tiers import TierOptions

    job = SimpleNamespace(limits=Limits(max_cost_usd=0, context_tokens=1_000_000),
                          max_cost_usd=2.0, max_output_tokens=8_192, prices={},
                          tiers=TierOptions())
    state = SimpleNamespace(spent=0.0, baseline=SimpleNamespace(seconds=1.0))
    assert attempt_limits(job, state, "gpt-4o", None).context_tokens == 128_000  # type: ignore[arg-type]
    assert attempt_limits(job, state, "openai/gpt-4o", None).context_tokens == 128_000  # type: ignore[arg-type]
    assert attempt_limits(job, state, "replay/x", None).context_tokens == 1_000_000  # type: ignore[arg-type]


def test_agent_commands_run_in_bash(repo: Path, tmp_path: Path) -> None:
    replay = write_replay(tmp_path, {"agent": script(
        "echo {1..3} && [[ -f calc.py ]] && echo bash-ok", FIX_MUL, SUBMIT)})
    result = fix(repo, agent_settings(replay, "agent", trajectory_dir=tmp_path / "t"))

    doc = json.loads(Path(result.attempts[0].trajectory).read_text())
    assert "<output>\n1 2 3\nbash-ok\n</output>" in doc["messages"][3]["content"]
    assert doc["steps"][0]["command"] == "echo {1..3} && [[ -f calc.py ]] && echo bash-ok"
