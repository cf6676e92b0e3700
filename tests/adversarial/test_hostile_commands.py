"""Test commands that fight back. In a PR-less issue flow the repository's own test suite, and
the model's patch to it, run on the bot's machine: they may flood the output, print control
bytes and fake workflow commands, hang, fork, hunt for tokens, write outside the checkout or
leave daemons behind. Each is bounded, cleaned or contained, or (where the local sandbox cannot
help) pinned down as a known limit whose answer is `sandbox: docker` (acr_bot/sandbox.py: a
sibling container with a copy of the worktree, no .git, no network, no host environment).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from adversaries import (
    FILES,
    FIX,
    GREP,
    REPO,
    WRONG_FIX,
    FakeGitHub,
    World,
    fix,
    labeled,
    new_token,
    outcomes,
    settings_for,
    smuggled_commands,
    spy_prompts,
)

from acr_bot import app
from acr_bot.config import Settings
from acr_bot.memory.store import Memory

PY = sys.executable


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie is dead)."""
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (ProcessLookupError, OSError):
        return False
    return state not in ("Z", "X")


def _pids(path: Path) -> list[int]:
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.fixture
def repo(make_repo) -> Path:
    return make_repo(FILES)


@pytest.fixture
def survivors():
    """pids the test starts; any still alive at the end are killed (and fail the test)."""
    started: list[int] = []
    yield started
    for pid in started:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


# --- output -----------------------------------------------------------------------------------


def test_100_mb_of_output_is_bounded_everywhere(repo: Path, make_replay, monkeypatch) -> None:
    prompts = spy_prompts(monkeypatch)
    flood = f"head -c 100000000 /dev/zero | tr '\\0' 'x'; echo; {GREP}"
    replay = make_replay({"wrong": [WRONG_FIX], "good": [FIX]})
    started = time.monotonic()
    result = fix(repo, settings_for(replay, "wrong", "good", test_command=flood))

    assert time.monotonic() - started < 60
    assert outcomes(result) == ["tests_failed", "passed"]
    assert result.baseline is not None
    assert len(result.baseline.output) < 70_000
    assert "bytes omitted" in result.baseline.output
    assert len(result.attempts[0].feedback) < 9_000  # fed back to the next model, bounded
    assert len(prompts) == 2 and max(len(p) for p in prompts) < 60_000
    assert [r.outcome for r in Memory.load(repo / ".acr/memory.json").records] == [
        "tests_failed", "passed"]


HOSTILE_BYTES = (
    r"printf 'NUL\000BEL\007 \033[31mred\033[0m \033]0;title\007 CR\rbs\b\n';"
    r"printf '::set-output name=outcome::PWNED\n##[add-mask]PWNED\n::stop-commands::PWNED\n';"
    r"head -c 20000 /dev/urandom; echo; exit 1"
)


def test_binary_and_escape_sequences_in_output_are_cleaned(repo: Path, make_replay) -> None:
    replay = make_replay({"good": [FIX]})
    result = fix(repo, settings_for(replay, "good", test_command=HOSTILE_BYTES,
                                    max_attempts=1))

    assert result.baseline is not None
    out = result.baseline.output
    assert "red" in out and "PWNED" in out  # the output is there, as text
    assert not [c for c in out if (ord(c) < 32 and c not in "\n\t") or 0x7f <= ord(c) < 0xa0]
    assert "\x1b" not in out and "\x00" not in out
    out.encode("utf-8")  # always valid text


FORGE_JUNIT = textwrap.dedent('''\
    import os, re, sys
    path = re.search(r"--junitxml=(\\S+)", os.environ.get("PYTEST_ADDOPTS", "")).group(1)
    name = "evil&#10;::set-output name=outcome::PWNED&#13;##[add-mask]PWNED&#10;  ::stop-commands::PWNED"
    with open(path.strip("'"), "w") as out:
        out.write(f'<testsuite><testcase classname="t" name="{name}"><failure/></testcase></testsuite>')
    print("1 failed in 0.01s")
    sys.exit(1)
''')


def test_test_names_cannot_issue_workflow_commands(tmp_path: Path, httpserver: Any,
                                                   make_replay) -> None:
    # The JUnit file's path is in the test command's environment: a hostile suite can write its
    # own, with test names that hold line breaks and workflow commands. They reach the log as
    # the attempt's detail.
    world = World(tmp_path, FakeGitHub(httpserver, REPO), {"forge.py": FORGE_JUNIT},
                  test_command=f"{PY} forge.py")
    outcome = world.run("issues", labeled(), make_replay({"strong": [FIX]}),
                        **{"INPUT_MAX-ATTEMPTS": "1"})

    assert outcome.outcome == "gave_up", world.log
    assert "PWNED" in world.log  # the name was logged ...
    assert smuggled_commands(world.lines, "PWNED") == []  # ... as text, not as a command
    assert world.outputs()["outcome"] == "gave_up"


# --- time and processes ------------------------------------------------------------------------


def test_a_hang_that_ignores_sigterm_is_killed_and_the_run_goes_on(
        repo: Path, make_replay, tmp_path: Path, survivors: list[int]) -> None:
    pid_file = tmp_path / "hang.pid"
    hang = (f"if grep -q 'a [*] b + 1' calc.py; then trap '' TERM; echo $$ > {pid_file}; "
            f"while :; do sleep 0.05; done; fi; {GREP}")
    replay = make_replay({"wrong": [WRONG_FIX], "good": [FIX]})
    started = time.monotonic()
    result = fix(repo, settings_for(replay, "wrong", "good", test_command=hang,
                                    test_timeout=1))
    survivors += _pids(pid_file)

    assert time.monotonic() - started < 30
    assert outcomes(result) == ["tests_failed", "passed"]
    assert "timed out" in result.attempts[0].detail
    assert survivors and not any(_alive(pid) for pid in survivors)


def test_a_fork_storm_is_stopped_at_the_timeout_and_leaves_nothing(
        repo: Path, make_replay, tmp_path: Path, survivors: list[int]) -> None:
    # Bounded (about 120 processes) so that a broken kill cannot take the CI machine down.
    pids = tmp_path / "storm.pids"
    storm = (f"for i in $(seq 40); do (sleep 1000 & echo $! >> {pids}; sleep 1000 & "
             f"echo $! >> {pids}; wait) & done; sleep 1000")
    replay = make_replay({"good": [{"fault": "server_error", "times": 9}]})
    started = time.monotonic()
    result = fix(repo, settings_for(replay, "good", test_command=storm, test_timeout=1))
    survivors += _pids(pids)

    assert time.monotonic() - started < 30
    assert result.outcome == "gave_up" and "timed out" in result.reason
    assert result.attempts == ()  # no model is paid for a suite that cannot finish
    assert len(survivors) >= 40 and not any(_alive(pid) for pid in survivors)


BACKGROUND = [
    pytest.param("sleep 1000 & echo $! > {pid}", id="plain-background"),
    pytest.param("nohup sleep 1000 >/dev/null 2>&1 & echo $! > {pid}; disown", id="nohup-disown"),
    pytest.param("setsid sh -c 'echo $$ > {pid}; exec sleep 1000' &", id="setsid-daemon"),
    pytest.param("setsid sh -c '(setsid sleep 1000 & echo $! > {pid}) &' &",
                 id="double-fork-daemon"),
]


@pytest.mark.parametrize("spawn", BACKGROUND)
def test_background_processes_are_killed_after_the_run(
        repo: Path, make_replay, tmp_path: Path, survivors: list[int], spawn: str) -> None:
    pid_file = tmp_path / "bg.pid"
    command = f"{spawn.format(pid=pid_file)}\nsleep 0.2; {GREP}"
    replay = make_replay({"good": [FIX]})
    result = fix(repo, settings_for(replay, "good", test_command=command))
    survivors += _pids(pid_file)

    assert result.outcome == "fixed", [a.detail for a in result.attempts]
    assert survivors, "the command did not start its background process"
    assert not any(_alive(pid) for pid in survivors)


# --- secrets -----------------------------------------------------------------------------------

SECRETS = [
    ("GITHUB_TOKEN", "ghs_" + "a1B2" * 9),
    ("INPUT_GITHUB-TOKEN", "ghs_" + "z9Y8" * 9),
    ("ACTIONS_RUNTIME_TOKEN", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJydW5uZXIifQ.c2lnbmF0dXJl"),
    ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "oidc-request-token-0123456789"),
    ("OPENAI_API_KEY", "sk-proj-" + "Q" * 40),
    ("AWS_ACCESS_KEY_ID", "AKIAABCDEFGHIJKLMNOP"),
    ("GH_PAT", "ghp_" + "k" * 36),
    ("GOOGLE_APPLICATION_CREDENTIALS", "/secrets/gcp-service-account.json"),
    ("DB_PASSWORD", "correct-horse-battery-staple"),
    ("DEPLOY_KEY", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END"),
]

DUMP_ENV = (f"{PY} -c \"import json, os; print(json.dumps(dict(os.environ))); "
            f"print(open('/proc/self/environ', 'rb').read().decode(errors='replace'))\"")


@pytest.mark.parametrize("name, value", SECRETS, ids=[n for n, _ in SECRETS])
def test_a_test_command_reading_its_environment_finds_no_secret(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    monkeypatch.setenv("PLAIN_SETTING", "visible-42")
    sandbox = app.sandbox_for(Settings(test_timeout=30))  # what every fix runs the tests in
    run = sandbox.run(DUMP_ENV, tmp_path)

    assert run.exit_code == 0, run.output
    seen = json.loads(run.output.splitlines()[0])
    assert seen.get("PLAIN_SETTING") == "visible-42"  # the dump is real
    assert name not in seen
    for part in value.splitlines():
        assert part not in run.output


# --- what the local sandbox cannot prevent -----------------------------------------------------


@pytest.mark.xfail(strict=True, reason=(
    "KNOWN LIMIT of sandbox: local: the test command runs as the bot's user with no filesystem "
    "isolation, so it can write anywhere that user can. sandbox: docker (acr_bot/sandbox.py) "
    "runs it in a container on a copy of the worktree."))
def test_a_test_suite_cannot_write_outside_the_checkout(repo: Path, make_replay,
                                                        tmp_path: Path) -> None:
    outside = tmp_path / "outside" / "dropped.txt"
    outside.parent.mkdir()
    replay = make_replay({"good": [FIX]})
    result = fix(repo, settings_for(replay, "good", test_command=f"echo x > {outside}; {GREP}"))
    assert result.outcome == "fixed"
    assert not outside.exists()


HOOK = "#!/bin/sh\nenv >> {dump}\n"
PLANT = {
    "post-commit-hook": "d=$(git rev-parse --git-common-dir)/hooks; mkdir -p $d; "
                        "printf '{hook}' > $d/post-commit; chmod +x $d/post-commit",
    "reference-transaction-hook": "d=$(git rev-parse --git-common-dir)/hooks; mkdir -p $d; "
                                  "printf '{hook}' > $d/reference-transaction; "
                                  "chmod +x $d/reference-transaction",
    "fsmonitor-in-git-config": "printf '{hook}' > {script}; chmod +x {script}; "
                               "git config core.fsmonitor {script}",
}


# Was a hole: the bot's own git commands ran hooks and core.fsmonitor planted by a test run,
# with the token in their environment. git() now disables both and scrubs its environment.
@pytest.mark.parametrize("plant", PLANT.values(), ids=list(PLANT))
def test_git_hooks_planted_by_a_test_never_see_the_token(
        repo: Path, make_replay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        plant: str) -> None:
    token = new_token()
    monkeypatch.setenv("GITHUB_TOKEN", token)  # as on a runner
    dump, script = tmp_path / "hook-env.txt", tmp_path / "monitor.sh"
    hook = HOOK.format(dump=dump).replace("\n", "\\n")
    command = f"{plant.format(hook=hook, script=script)}; {GREP}"
    replay = make_replay({"good": [FIX]})
    result = fix(repo, settings_for(replay, "good", test_command=command))

    assert result.outcome == "fixed"
    assert token not in (dump.read_text() if dump.exists() else "")


@pytest.mark.xfail(strict=True, reason=(
    "KNOWN LIMIT of sandbox: local: actions/checkout persists the token in the workspace's "
    ".git/config (http.<server>.extraheader) unless `persist-credentials: false`, and the test "
    "command can read the repository's git config. Use persist-credentials: false in the "
    "workflow (docs/workflows/ do), or sandbox: docker (no .git in the container)."))
def test_the_token_checkout_persists_is_out_of_the_test_suites_reach(
        repo: Path, make_replay, tmp_path: Path) -> None:
    token = new_token()
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    from acr_bot.gitrepo import git

    git(repo, "config", "--local", "http.https://github.com/.extraheader",
        f"AUTHORIZATION: basic {basic}")
    loot = tmp_path / "loot.txt"
    steal = f"git config --get-regexp 'http.*extraheader' > {loot}; {GREP}"
    replay = make_replay({"good": [FIX]})
    result = fix(repo, settings_for(replay, "good", test_command=steal))

    assert result.outcome == "fixed"
    assert basic not in (loot.read_text() if loot.exists() else "")
