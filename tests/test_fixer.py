"""The fix loop end to end: real git repos, real pytest runs, real litellm calls (replayed)."""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import PYTEST

from acr_bot import app
from acr_bot.config import Settings
from acr_bot.domain import FixResult
from acr_bot.errors import ConfigError
from acr_bot.fixing.edits import format_edits, make_edits
from acr_bot.gitrepo import git
from acr_bot.memory.store import Memory
from acr_bot.routing.outcomes import observations
from tests.support.calc import (
    CALC,
    FILES,
    FIX,
    FIXED,
    TASK,
    TESTS,
    TITLE,
    WRONG_FIX,
    WRONG_FIX2,
    reply,
)

MEMORY = ".acr/memory.json"
STALE = ("Use the power operator.\n\ncalc.py\n<<<<<<< SEARCH\n    return a ** b\n=======\n"
         "    return a * b\n>>>>>>> REPLACE\n")


def settings_for(replay: Path, *names: str, **changes: object) -> Settings:
    """Replayed models, cheapest first (make_replay prices them in the order given)."""
    return replace(Settings(), models=tuple(f"replay/{n}" for n in names), replay_file=replay,
                   test_command=PYTEST, policy="cheapest-first", llm_retries=0,
                   **{"harness": "edit", **changes})


def run(repo: Path, settings: Settings, task: str = TASK, **kwargs: object) -> FixResult:
    return app.fix(repo, app.task_from_text(task), settings, **kwargs)  # type: ignore[arg-type]


def branches(repo: Path) -> list[str]:
    return sorted(git(repo, "branch", "--format=%(refname:short)").split())


def memory(repo: Path) -> Memory:
    return Memory.load(repo / MEMORY)


def outcomes(result: FixResult) -> list[str]:
    return [a.outcome for a in result.attempts]


def models(result: FixResult) -> list[str]:
    return [a.model for a in result.attempts]


@pytest.fixture
def repo(make_repo) -> Path:
    return make_repo(FILES)


# --- fixes and escalation ---------------------------------------------------------------------


def test_first_attempt_fix(repo: Path, make_replay) -> None:
    replay = make_replay({"cheap": [FIX], "strong": [WRONG_FIX]})
    result = run(repo, settings_for(replay, "cheap", "strong"))

    assert result.outcome == "fixed", result.reason
    assert outcomes(result) == ["passed"]
    assert models(result) == ["replay/cheap"]
    assert result.model == "replay/cheap"
    assert result.baseline is not None and result.baseline.counts is not None
    assert (result.baseline.counts.passed, result.baseline.counts.failed) == (2, 1)
    assert result.final is not None and result.final.counts is not None
    assert (result.final.counts.passed, result.final.counts.failed) == (3, 0)
    assert result.cost_usd > 0
    assert result.branch == "acr/fix-mul-returns-the-wrong-product"
    assert branches(repo) == sorted(["main", result.branch])
    assert git(repo, "show", f"{result.branch}:calc.py") == FIXED.rstrip("\n")
    assert git(repo, "rev-parse", result.branch) == result.commit
    assert git(repo, "rev-parse", f"{result.branch}~1") == git(repo, "rev-parse", "main")
    message = git(repo, "log", "-1", "--format=%B", result.branch)
    assert message.startswith(TITLE)
    assert "Acr-Model: replay/cheap" in message
    assert f"Acr-Task: {app.task_from_text(TASK).id}" in message
    # Only the fix is committed: no caches, no memory file.
    assert git(repo, "diff", "--name-only", "main", result.branch) == "calc.py"
    # The user's checkout is untouched.
    assert (repo / "calc.py").read_text() == CALC
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    records = memory(repo).records
    assert [(r.model, r.outcome, r.attempt) for r in records] == [("replay/cheap", "passed", 1)]
    assert records[0].task == result.task.id
    assert records[0].tests_passed == 3 and records[0].tests_failed == 0
    assert records[0].cost_usd == pytest.approx(result.cost_usd, rel=1e-3)
    assert "lang:python" in records[0].features.split()


def test_escalates_after_a_wrong_fix_with_the_failure_as_feedback(repo: Path, make_replay) -> None:
    # The wrong fix makes mul(3, 4) == 13: only the failure feedback can show that number, so
    # mid's matching reply proves the feedback reached its prompt; otherwise it answers WRONG2.
    replay = make_replay({
        "cheap": [WRONG_FIX],
        "mid": [{"match": r"assert 13 == 12", "text": FIX}, {"text": WRONG_FIX2}],
        "strong": [WRONG_FIX2],
    })
    result = run(repo, settings_for(replay, "cheap", "mid", "strong"))

    assert result.outcome == "fixed", result.reason
    assert outcomes(result) == ["tests_failed", "passed"]
    assert models(result) == ["replay/cheap", "replay/mid"]
    assert [d.model for d in result.decisions] == ["replay/cheap", "replay/mid"]
    first = result.attempts[0]
    assert "test_mul" in first.detail
    assert "assert 13 == 12" in first.feedback
    assert "a * b + 1" in first.diff
    assert git(repo, "show", f"{result.branch}:calc.py") == FIXED.rstrip("\n")
    assert "Acr-Model: replay/mid" in git(repo, "log", "-1", "--format=%B", result.branch)
    assert [r.outcome for r in memory(repo).records] == ["tests_failed", "passed"]


def test_escalates_after_an_edit_that_does_not_apply(repo: Path, make_replay) -> None:
    replay = make_replay({
        "cheap": [STALE],
        "mid": [{"match": r"closest lines", "text": FIX}, {"text": WRONG_FIX2}],
    })
    result = run(repo, settings_for(replay, "cheap", "mid"))

    assert result.outcome == "fixed", result.reason
    assert outcomes(result) == ["apply_failed", "passed"]
    assert models(result) == ["replay/cheap", "replay/mid"]
    assert "not found" in result.attempts[0].feedback
    assert "closest lines" in result.attempts[0].feedback
    assert git(repo, "show", f"{result.branch}:calc.py") == FIXED.rstrip("\n")
    assert [r.outcome for r in memory(repo).records] == ["apply_failed", "passed"]


def test_a_reply_without_edit_blocks_is_no_edits(repo: Path, make_replay) -> None:
    replay = make_replay({"cheap": ["I think mul should multiply."],
                          "mid": [{"match": r"no SEARCH/REPLACE blocks", "text": FIX}]})
    result = run(repo, settings_for(replay, "cheap", "mid"))
    assert outcomes(result) == ["no_edits", "passed"]
    assert result.outcome == "fixed"


# --- patches that cheat are rejected ----------------------------------------------------------

CONFTEST_SKIP_ALL = '''\
import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        item.add_marker(pytest.mark.skip(reason="later"))
'''


def test_patches_that_delete_or_skip_the_failing_test_are_rejected(repo: Path,
                                                                   make_replay) -> None:
    without = TESTS.replace("\n\ndef test_mul():\n    assert mul(3, 4) == 12\n", "")
    skipped = TESTS.replace("def test_mul():", "@pytest.mark.skip(reason='flaky')\ndef test_mul():")
    assert without != TESTS and skipped != TESTS
    # Each cheat comes with a wrong change to the code: the original tests judge that code.
    # The conftest cheat goes first: if the worktree were not restored after it, the real fix at
    # the end would be judged with every test skipped (in the second, whole-patch run).
    replay = make_replay({
        "a": [reply("conftest.py", None, CONFTEST_SKIP_ALL) + "\n" + WRONG_FIX],
        "b": [reply("tests/test_calc.py", TESTS, without) + "\n" + WRONG_FIX],
        "c": [reply("tests/test_calc.py", TESTS, skipped) + "\n" + WRONG_FIX],
        "d": [FIX],
    })
    result = run(repo, settings_for(replay, "a", "b", "c", "d", max_attempts=4))

    assert outcomes(result) == ["tests_failed", "tests_failed", "tests_failed", "passed"]
    assert models(result) == ["replay/a", "replay/b", "replay/c", "replay/d"]
    for attempt in result.attempts[:3]:
        assert attempt.detail.startswith("with the original tests: "), attempt.detail
        assert "test_mul" in attempt.detail
    # The branch holds the real fix only.
    assert git(repo, "show", f"{result.branch}:tests/test_calc.py") == TESTS.rstrip("\n")
    assert git(repo, "ls-tree", "--name-only", result.branch, "conftest.py") == ""
    assert git(repo, "diff", "--name-only", "main", result.branch) == "calc.py"


def test_a_cheating_patch_alone_is_not_a_fix(repo: Path, make_replay) -> None:
    replay = make_replay({"a": [reply("conftest.py", None, CONFTEST_SKIP_ALL)]})
    result = run(repo, settings_for(replay, "a", max_attempts=1))
    assert result.outcome == "gave_up"
    assert outcomes(result) == ["tests_failed"]
    assert result.branch is None and branches(repo) == ["main"]


# --- edits outside the repo's editable files are refused ---------------------------------------


def test_edits_to_protected_or_outside_paths_are_refused(make_repo, make_replay,
                                                         shared: Path) -> None:
    # Outside the repo, where the sandbox user may look (pytest follows the link when it
    # collects: a folder it cannot read would be a collection error at baseline).
    outside = shared / "outside"
    outside.mkdir()
    ci = "name: ci\non: push\n"
    repo = make_repo({**FILES, ".github/workflows/ci.yml": ci})
    (repo / "link").symlink_to(outside, target_is_directory=True)
    git(repo, "add", "link")
    git(repo, "commit", "--quiet", "-m", "add link")
    git_config = (repo / ".git" / "config").read_bytes()
    head = git(repo, "rev-parse", "HEAD")
    escaped = Path(tempfile.gettempdir()) / "outside.py"
    escaped_before = escaped.exists()

    evil = "import os\nos.system('echo pwned')\n"
    attacks = [
        (".github/workflows/ci.yml", reply(".github/workflows/ci.yml", ci, ci + "# pwned\n"),
         "protected"),
        (".git/config", reply(".git/config", None, "[core]\n\thooksPath = /tmp\n"), ".git"),
        ("../outside.py", reply("../outside.py", None, evil), "'..'"),
        ("link/evil.py", reply("link/evil.py", None, evil), "symbolic link"),
        (MEMORY, reply(MEMORY, None, "{}\n"), "protected"),
    ]
    replay = make_replay({"m": [{"text": text, "times": 1} for _, text, _ in attacks]})
    result = run(repo, settings_for(replay, "m", max_attempts=len(attacks)))

    assert result.outcome == "gave_up"
    assert outcomes(result) == ["apply_failed"] * len(attacks)
    for attempt, (path, _, rule) in zip(result.attempts, attacks):
        assert "refused" in attempt.detail, attempt.detail
        assert path in attempt.feedback and rule in attempt.feedback, attempt.feedback
    # Nothing changed anywhere.
    assert list(outside.iterdir()) == []
    assert escaped.exists() == escaped_before
    assert (repo / ".git" / "config").read_bytes() == git_config
    assert (repo / ".github/workflows/ci.yml").read_text() == ci
    assert git(repo, "rev-parse", "HEAD") == head
    assert branches(repo) == ["main"]
    assert [r.outcome for r in memory(repo).records] == ["apply_failed"] * len(attacks)


# --- hanging tests, the dollar cap ----------------------------------------------------------


HANG_TEST = '''\
import os
import time


def test_hang_when_asked():
    if os.path.exists("HANG"):
        with open({pid_file!r}, "w") as out:
            out.write(str(os.getpid()))
        os.execvp("sleep", ["sleep", "1000.424242"])
'''
HANG_MARK = b"sleep\x001000.424242"


def _running(mark: bytes) -> bool:
    """Whether a live process's command line holds `mark`."""
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if mark in (entry / "cmdline").read_bytes() and _alive(int(entry.name)):
                return True
        except OSError:
            continue
    return False


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie whose parent is a non-reaping init is dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_a_hanging_test_run_is_killed_at_the_timeout(make_repo, make_replay,
                                                     shared: Path) -> None:
    pid_file = shared / "hang.pid"
    repo = make_repo({**FILES, "tests/test_hang.py": HANG_TEST.format(pid_file=str(pid_file))})
    fix_and_hang = FIX + "\n" + format_edits(make_edits("HANG", None, "hang\n"))
    replay = make_replay({"m": [fix_and_hang]})
    started = time.monotonic()
    result = run(repo, settings_for(replay, "m", max_attempts=1, test_timeout=3))
    elapsed = time.monotonic() - started

    assert elapsed < 30
    assert result.outcome == "gave_up"
    assert outcomes(result) == ["tests_failed"]
    assert "timed out" in result.attempts[0].detail
    assert "timed out" in result.attempts[0].feedback
    # The hanging test really ran, and nothing it started survives (the pid it wrote is its
    # PID namespace's: find it by its start time's mark instead).
    assert pid_file.exists() and not _running(HANG_MARK)
    assert branches(repo) == ["main"]


def test_a_test_command_that_hangs_at_baseline_gives_up_at_once(repo: Path,
                                                                make_replay) -> None:
    replay = make_replay({"m": [{"fault": "server_error", "times": 99}]})
    settings = replace(settings_for(replay, "m"), test_command="sleep 1000", test_timeout=1)
    started = time.monotonic()
    result = run(repo, settings)
    assert time.monotonic() - started < 30
    assert result.outcome == "gave_up"
    assert "timed out" in result.reason
    assert result.attempts == ()
    assert result.baseline is not None and result.baseline.timed_out


def test_the_dollar_cap_stops_before_an_unaffordable_call(repo: Path, make_replay) -> None:
    replay = make_replay({"cheap": [FIX], "strong": [FIX]})
    # Expected cost of one call is ~1k prompt tokens + 2k completion tokens: about a cent.
    result = run(repo, settings_for(replay, "cheap", "strong", max_cost_usd=0.0001))
    assert result.outcome == "gave_up"
    assert result.attempts == ()
    assert "cap" in result.reason and "$0.00" in result.reason
    assert not (repo / MEMORY).exists() or memory(repo).records == []


def test_the_real_cost_of_a_call_counts_against_the_cap(repo: Path, make_replay) -> None:
    # The first reply reports 100k prompt tokens at $1e-6: $0.10, over the $0.05 cap, so the
    # next model is never called although two attempts remain.
    replay = make_replay({
        "cheap": [{"text": WRONG_FIX, "prompt_tokens": 100_000, "completion_tokens": 10}],
        "strong": [FIX],
    })
    result = run(repo, settings_for(replay, "cheap", "strong", max_cost_usd=0.05))
    assert result.outcome == "gave_up"
    assert models(result) == ["replay/cheap"]
    assert len(result.attempts) < 3
    assert result.attempts[0].prompt_tokens == 100_000
    assert result.cost_usd == pytest.approx(100_000 * 1e-6 + 10 * 4e-6)
    assert "cap" in result.reason and "spent $0.1000" in result.reason
    records = memory(repo).records
    assert len(records) == 1 and records[0].cost_usd == pytest.approx(0.10004, rel=1e-3)


# --- secrets ----------------------------------------------------------------------------------


ENV_DUMP_TEST = '''\
import json
import os


def test_dump_environment():
    with open({dump!r}, "w") as out:
        json.dump(dict(os.environ), out)
'''


def test_secrets_are_not_visible_to_the_test_command(make_repo, make_replay, shared: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    dump = shared / "env.json"
    repo = make_repo({**FILES, "tests/test_env.py": ENV_DUMP_TEST.format(dump=str(dump))})
    secrets = {
        "OPENAI_API_KEY": "sk-proj-abcdefghijklmnopqrstuvwxyz0123",
        "GITHUB_TOKEN": "ghs_0123456789abcdefghijklmnopqrstuv",
        "MY_SECRET": "correct-horse-battery-staple",
        "ANTHROPIC_API_KEY": "sk-ant-api03-zyxwvutsrqponmlkjihg",
        "INNOCENT_LOOKING": "ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PLAIN_SETTING", "visible-value-42")
    replay = make_replay({"m": [FIX]})
    result = run(repo, settings_for(replay, "m"))

    assert result.outcome == "fixed", result.reason
    seen = json.loads(dump.read_text())
    assert seen.get("PLAIN_SETTING") == "visible-value-42"  # the dump is real
    text = dump.read_text()
    for name, value in secrets.items():
        assert name not in seen
        assert value not in text, name


# --- the user's checkout is never touched --------------------------------------------------


def _snapshot(repo: Path) -> dict[str, object]:
    status = [line for line in git(repo, "status", "--porcelain=v1",
                                   "--untracked-files=all").splitlines()
              if not line[3:].startswith(".acr/")]
    files = {str(p.relative_to(repo)): p.read_bytes() for p in sorted(repo.rglob("*"))
             if p.is_file() and ".git" not in p.relative_to(repo).parts
             and ".acr" not in p.relative_to(repo).parts}
    return {"head": git(repo, "rev-parse", "HEAD"),
            "branch": git(repo, "symbolic-ref", "--short", "HEAD"),
            "branches": branches(repo), "status": status, "files": files,
            "staged": git(repo, "diff", "--cached", "--name-only"),
            "worktrees": git(repo, "worktree", "list", "--porcelain").count("worktree ")}


def test_a_failed_run_leaves_the_checkout_as_it_was(repo: Path, make_replay) -> None:
    git(repo, "checkout", "--quiet", "-b", "feature")
    before = _snapshot(repo)
    replay = make_replay({"cheap": [WRONG_FIX], "strong": [STALE]})
    result = run(repo, settings_for(replay, "cheap", "strong", max_attempts=3))

    assert result.outcome == "gave_up"
    assert "3 attempt" in result.reason
    assert outcomes(result) == ["tests_failed", "apply_failed", "tests_failed"]
    assert result.branch is None and result.commit is None
    assert _snapshot(repo) == before
    assert before["branches"] == ["feature", "main"]
    # The memory file is the one change, and it holds every attempt.
    assert (repo / MEMORY).is_file()
    records = memory(repo).records
    assert [(r.attempt, r.model, r.outcome) for r in records] == [
        (1, "replay/cheap", "tests_failed"), (2, "replay/strong", "apply_failed"),
        (3, "replay/cheap", "tests_failed")]


def test_uncommitted_work_survives_a_fix(repo: Path, make_replay) -> None:
    (repo / "calc.py").write_text("# work in progress\n" + CALC)
    (repo / "notes.txt").write_text("staged notes\n")
    git(repo, "add", "notes.txt")
    (repo / "scratch.py").write_text("print('untracked')\n")
    before = _snapshot(repo)
    assert before["staged"] == "notes.txt" and len(before["status"]) == 3

    replay = make_replay({"m": [FIX]})
    result = run(repo, settings_for(replay, "m"))

    assert result.outcome == "fixed", result.reason
    after = _snapshot(repo)
    assert after["branches"] == sorted(["main", result.branch])
    after["branches"] = before["branches"]
    assert after == before
    # The fix starts from HEAD, not from the uncommitted edits.
    fixed = git(repo, "show", f"{result.branch}:calc.py")
    assert fixed == FIXED.rstrip("\n") and "work in progress" not in fixed
    assert git(repo, "ls-tree", "--name-only", result.branch, "notes.txt") == ""


def test_a_second_fix_gets_a_fresh_branch_name(repo: Path, make_replay) -> None:
    replay = make_replay({"m": [FIX]})
    first = run(repo, settings_for(replay, "m"))
    second = run(repo, settings_for(replay, "m"))
    assert first.branch == "acr/fix-mul-returns-the-wrong-product"
    assert second.branch == first.branch + "-2"
    assert len(memory(repo).records) == 2


# --- provider faults, dry runs ------------------------------------------------------------------


def test_a_provider_fault_moves_on_and_is_not_a_skill_attempt(repo: Path, make_replay) -> None:
    replay = make_replay({"flaky": [{"fault": "rate_limit", "times": 1000}], "ok": [FIX]})
    # max_attempts=1: the fault must not use up the only attempt.
    result = run(repo, settings_for(replay, "flaky", "ok", max_attempts=1))

    assert result.outcome == "fixed", result.reason
    assert outcomes(result) == ["provider_fault", "passed"]
    assert models(result) == ["replay/flaky", "replay/ok"]
    assert "RateLimitError" in result.attempts[0].detail
    assert result.attempts[0].cost_usd == 0
    records = memory(repo).records
    assert [(r.model, r.outcome) for r in records] == [("replay/flaky", "provider_fault"),
                                                      ("replay/ok", "passed")]
    # The router learns nothing about the faulty model's skill.
    assert [(o.model, o.score) for o in observations(records)] == [("replay/ok", 1.0)]


def test_every_model_faulting_gives_up_with_that_reason(repo: Path, make_replay) -> None:
    replay = make_replay({"a": [{"fault": "server_error", "times": 99}],
                          "b": [{"fault": "timeout", "times": 99}]})
    result = run(repo, settings_for(replay, "a", "b"))
    assert result.outcome == "gave_up"
    assert outcomes(result) == ["provider_fault", "provider_fault"]
    assert result.reason == "every model failed at the provider"
    assert branches(repo) == ["main"]


def test_dry_run_calls_no_model(repo: Path, make_replay) -> None:
    # Were the model called, the scripted fault would show up as a provider_fault attempt.
    replay = make_replay({"m": [{"fault": "server_error", "times": 99}]})
    result = run(repo, settings_for(replay, "m"), dry_run=True)
    assert result.outcome == "dry_run"
    assert result.attempts == ()
    assert [d.model for d in result.decisions] == ["replay/m"]
    assert result.baseline is not None and result.baseline.counts is not None
    assert result.baseline.counts.failed == 1
    assert not (repo / MEMORY).exists()
    assert branches(repo) == ["main"]


def test_dry_run_when_no_model_is_affordable(repo: Path, make_replay) -> None:
    replay = make_replay({"m": [FIX]})
    result = run(repo, settings_for(replay, "m", max_cost_usd=0.00001), dry_run=True)
    assert result.outcome == "dry_run"
    assert "cap" in result.reason
    assert result.attempts == () and result.decisions == ()


def test_an_edit_that_changes_nothing_is_not_a_fix(make_repo, make_replay) -> None:
    # The tests already pass, so a no-op edit would be "verified": it must not become a commit.
    repo = make_repo({**FILES, "calc.py": FIXED})
    noop = "calc.py\n<<<<<<< SEARCH\n    return a * b\n=======\n    return a * b\n>>>>>>> REPLACE\n"
    replay = make_replay({"m": [noop]})
    result = run(repo, settings_for(replay, "m", max_attempts=1))
    assert result.outcome == "gave_up"
    assert outcomes(result) == ["no_edits"]
    assert "changed nothing" in result.attempts[0].detail
    assert branches(repo) == ["main"]


def test_a_failing_setup_command_gives_up_before_any_call(repo: Path, make_replay) -> None:
    replay = make_replay({"m": [FIX]})
    result = run(repo, settings_for(replay, "m", setup_command="exit 3"))
    assert result.outcome == "gave_up"
    assert "setup command failed" in result.reason and "exit 3" in result.reason
    assert result.attempts == ()
    assert not (repo / MEMORY).exists()


def test_files_the_setup_command_makes_survive_between_attempts(make_repo, make_replay) -> None:
    # No .gitignore covers generated.py: restoring the worktree must still keep it.
    gen_test = "import generated\n\n\ndef test_generated():\n    assert generated.VALUE == 12\n"
    repo = make_repo({**FILES, "tests/test_gen.py": gen_test})
    replay = make_replay({"cheap": [WRONG_FIX], "strong": [FIX]})
    result = run(repo, settings_for(replay, "cheap", "strong",
                                    setup_command="echo 'VALUE = 12' > generated.py"))
    assert result.outcome == "fixed", [a.detail for a in result.attempts]
    assert outcomes(result) == ["tests_failed", "passed"]
    assert "test_mul" in result.attempts[0].detail
    assert "test_generated" not in result.attempts[0].detail
    assert git(repo, "diff", "--name-only", "main", result.branch) == "calc.py"
    assert not (repo / "generated.py").exists()


def test_no_test_command_is_a_config_error(make_repo, make_replay) -> None:
    repo = make_repo({"calc.py": CALC, "README.md": "# calc\n"})
    replay = make_replay({"m": [FIX]})
    with pytest.raises(ConfigError, match="no test command detected"):
        run(repo, replace(settings_for(replay, "m"), test_command=None))
    assert branches(repo) == ["main"]
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
