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
import shutil
import signal
import sys
import tempfile
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


def _marked(marker: str) -> list[int]:
    """pids of the live (not zombie) processes whose command line holds `marker`: a pid the
    command prints is its own PID namespace's, so the test finds its processes by a mark."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            continue
        if marker.encode() in cmdline and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


@pytest.fixture
def repo(make_repo) -> Path:
    return make_repo(FILES)


@pytest.fixture
def marker():
    """A unique `sleep` duration that marks the test's processes; any left alive at the end
    are killed (and fail the test)."""
    mark = f"1000.{os.getpid()}{time.monotonic_ns() % 10**6}"
    yield mark
    for pid in _marked(f"sleep {mark}"):
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
        repo: Path, make_replay, shared: Path, marker: str) -> None:
    hang = (f"if grep -q 'a [*] b + 1' calc.py; then trap '' TERM; touch {shared}/hung; "
            f"while :; do sleep {marker}; done; fi; {GREP}")
    replay = make_replay({"wrong": [WRONG_FIX], "good": [FIX]})
    started = time.monotonic()
    result = fix(repo, settings_for(replay, "wrong", "good", test_command=hang,
                                    test_timeout=1))

    assert time.monotonic() - started < 30
    assert outcomes(result) == ["tests_failed", "passed"]
    assert "timed out" in result.attempts[0].detail
    assert (shared / "hung").exists() and _marked(f"sleep {marker}") == []


def test_a_fork_storm_is_stopped_at_the_timeout_and_leaves_nothing(
        repo: Path, make_replay, marker: str) -> None:
    # Bounded (about 120 processes) so that a broken kill cannot take the CI machine down.
    storm = (f"for i in $(seq 40); do (sleep {marker} & sleep {marker} & echo forked; wait) & "
             f"done; sleep {marker}")
    replay = make_replay({"good": [{"fault": "server_error", "times": 9}]})
    started = time.monotonic()
    result = fix(repo, settings_for(replay, "good", test_command=storm, test_timeout=1))

    assert time.monotonic() - started < 30
    assert result.outcome == "gave_up" and "timed out" in result.reason
    assert result.attempts == ()  # no model is paid for a suite that cannot finish
    assert result.baseline is not None and result.baseline.output.count("forked") >= 40
    assert _marked(f"sleep {marker}") == []


BACKGROUND = [
    pytest.param("sleep {mark} & touch {proof}", id="plain-background"),
    pytest.param("nohup sleep {mark} >/dev/null 2>&1 & touch {proof}; disown",
                 id="nohup-disown"),
    pytest.param("setsid sh -c 'touch {proof}; exec sleep {mark}' &", id="setsid-daemon"),
    pytest.param("setsid sh -c '(setsid sleep {mark} & touch {proof}) &' &",
                 id="double-fork-daemon"),
]


@pytest.mark.parametrize("spawn", BACKGROUND)
def test_background_processes_are_killed_after_the_run(
        repo: Path, make_replay, shared: Path, marker: str, spawn: str) -> None:
    proof = shared / "started"
    command = f"{spawn.format(mark=marker, proof=proof)}\nsleep 0.2; {GREP}"
    replay = make_replay({"good": [FIX]})
    result = fix(repo, settings_for(replay, "good", test_command=command))

    assert result.outcome == "fixed", [a.detail for a in result.attempts]
    assert proof.exists(), "the command did not start its background process"
    assert _marked(f"sleep {marker}") == []


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


# --- what untrusted commands cannot reach ---------------------------------------------------------
# sandbox: local runs them as the unprivileged acr-sandbox user, in their own PID and mount
# namespaces, on a copy of the tree (acr_bot/verify/isolation.py). The checkouts here sit in a
# world-readable directory, as a runner's workspace may: isolation must not depend on luck.


def exposed_repo(files: dict[str, str]) -> Path:
    """A committed repo in a directory every user may read."""
    root = Path(tempfile.mkdtemp(prefix="acr-test-exposed-")) / "repo"
    root.parent.chmod(0o755)
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    from acr_bot.gitrepo import git

    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "initial")
    return root


@pytest.fixture
def open_repo():
    root = exposed_repo(FILES)
    yield root
    shutil.rmtree(root.parent, ignore_errors=True)


def test_a_test_suite_cannot_write_outside_its_copy(open_repo: Path, make_replay,
                                                    tmp_path: Path, shared: Path) -> None:
    import acr_bot

    package = Path(acr_bot.__file__).parent
    before = {p: p.read_bytes() for p in package.glob("*.py")}
    targets = [open_repo / "dropped.txt", open_repo / "calc.py", open_repo / ".acr" / "memory.json",
               package / "pwned.py", package / "__init__.py", tmp_path / "dropped.txt"]
    tries = "; ".join(f"(mkdir -p {t.parent}; echo pwned >> {t}) 2>/dev/null" for t in targets)
    command = f"{tries}; echo x > {shared}/ran; {GREP}"
    replay = make_replay({"good": [FIX]})
    result = fix(open_repo, settings_for(replay, "good", test_command=command))

    assert result.outcome == "fixed"
    assert (shared / "ran").exists()  # the command ran, and could write where anyone may
    assert not (open_repo / "dropped.txt").exists() and not (package / "pwned.py").exists()
    assert not (tmp_path / "dropped.txt").exists()
    assert "pwned" not in (open_repo / "calc.py").read_text()
    assert {p: p.read_bytes() for p in package.glob("*.py")} == before
    records = Memory.load(open_repo / ".acr/memory.json").records  # valid, the bot's own
    assert [r.outcome for r in records] == ["passed"]


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


def test_the_token_checkout_persists_is_out_of_the_test_suites_reach(
        open_repo: Path, make_replay, shared: Path) -> None:
    # actions/checkout persists the token in the workspace's .git/config unless
    # `persist-credentials: false`; the copy the command runs on has no .git, and the checkout
    # itself is hidden from it.
    token = new_token()
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    from acr_bot.gitrepo import git

    git(open_repo, "config", "--local", "http.https://github.com/.extraheader",
        f"AUTHORIZATION: basic {basic}")
    loot = shared / "loot.txt"
    steal = (f"git config --get-regexp 'http.*extraheader' > {loot} 2>&1; "
             f"cat {open_repo}/.git/config >> {loot} 2>&1; "
             f"cat $(find / -name config -path '*.git/*' 2>/dev/null) >> {loot} 2>&1; {GREP}")
    replay = make_replay({"good": [FIX]})
    result = fix(open_repo, settings_for(replay, "good", test_command=steal))

    assert result.outcome == "fixed"
    assert loot.exists() and basic not in loot.read_text()
