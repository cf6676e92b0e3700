"""The verifier against real subprocesses and small real projects: no mocks."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acr_bot.domain import TestCounts as Counts
from acr_bot.domain import TestRun as Run
from acr_bot.domain import Verdict
from acr_bot.errors import VerifyError

# Aliased: names starting with "Test" would make pytest try to collect the dataclasses.
from acr_bot.report import run_summary
from acr_bot.secrets import scrub_env
from acr_bot.verify.local import (
    LocalSandbox,
    OutputBuffer,
    clean_output,
    detect_test_command,
    failure_feedback,
    judge,
    run_command,
)
from acr_bot.verify.testresults import parse_junit, parse_output

PY = shlex.quote(sys.executable)
PYTEST = f"{PY} -m pytest -q -p no:cacheprovider"
ADD_ID = "tests.test_calc::test_add"
ZERO_ID = "tests.test_calc::test_zero"

CALC_BUGGY = "def add(a, b):\n    return a - b\n"
CALC_FIXED = "def add(a, b):\n    return a + b\n"
TESTS = """\
import pytest
from calc import add


def test_add():
    assert add(2, 3) == 5


def test_zero():
    assert add(0, 0) == 0
"""


def _base_env() -> dict[str, str]:
    """The test process's environment, scrubbed, made for fast nested pytest runs."""
    clean = scrub_env(os.environ)
    clean.pop("PYTEST_ADDOPTS", None)
    # Installed plugins (hypothesis alone takes a second to import) are not needed here.
    clean["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return clean


@pytest.fixture
def env() -> dict[str, str]:
    return _base_env()


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny pytest project with one passing and one failing test."""
    root = tmp_path_factory.mktemp("calc")
    files = {"pytest.ini": "[pytest]\n", "calc.py": CALC_BUGGY, "tests/test_calc.py": TESTS}
    return _write(root, files)


@pytest.fixture(scope="module")
def baseline(pristine: Path) -> Run:
    return run_command(PYTEST, pristine, timeout=60, env=_base_env())


@pytest.fixture
def project(pristine: Path, tmp_path: Path) -> Path:
    """A private copy of the pristine project, for one test to patch."""
    return Path(shutil.copytree(pristine, tmp_path / "calc"))


def _alive(pid: int) -> bool:
    """Whether `pid` is a live process (zombies count as dead: this container's init never reaps)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


# --- pytest projects and judge ---------------------------------------------------------------


def test_baseline_reads_junit_ids(baseline: Run, pristine: Path) -> None:
    assert baseline.exit_code == 1
    assert baseline.counts == Counts(passed=1, failed=1)
    assert baseline.passed_ids == {ZERO_ID}
    assert baseline.failed_ids == {ADD_ID}
    assert "1 failed, 1 passed" in baseline.output
    assert not list(pristine.rglob("*.xml"))  # the JUnit file was written elsewhere


def test_judge_accepts_a_real_fix(baseline: Run, project: Path, env: dict[str, str]) -> None:
    (project / "calc.py").write_text(CALC_FIXED)
    verdict = judge(baseline, run_command(PYTEST, project, timeout=60, env=env))
    assert verdict.passed, verdict.reason
    assert verdict.reason == "exit 0; 2 passed (before: 1 passed, 1 failed)"
    assert verdict.run.passed_ids == {ADD_ID, ZERO_ID}


def test_judge_rejects_deleting_the_failing_test(
    baseline: Run, project: Path, env: dict[str, str]
) -> None:
    tests = project / "tests" / "test_calc.py"
    tests.write_text(TESTS.split("def test_add")[0] + "def test_zero" + TESTS.split("test_zero")[1])
    after = run_command(PYTEST, project, timeout=60, env=env)
    assert after.exit_code == 0
    verdict = judge(baseline, after)
    assert not verdict.passed
    assert verdict.reason == f"1 test that ran before was skipped or removed: {ADD_ID}"


def test_judge_rejects_skipping_the_failing_test(
    baseline: Run, project: Path, env: dict[str, str]
) -> None:
    tests = project / "tests" / "test_calc.py"
    tests.write_text(TESTS.replace("def test_add", "@pytest.mark.skip\ndef test_add"))
    after = run_command(PYTEST, project, timeout=60, env=env)
    assert after.exit_code == 0 and after.skipped_ids == {ADD_ID}
    verdict = judge(baseline, after)
    assert not verdict.passed
    assert "skipped or removed: " + ADD_ID in verdict.reason


def test_judge_rejects_a_conftest_that_skips_everything(
    baseline: Run, project: Path, env: dict[str, str]
) -> None:
    conftest = (
        "import pytest\n\n"
        "def pytest_collection_modifyitems(items):\n"
        "    for item in items:\n"
        "        item.add_marker(pytest.mark.skip(reason='fixed'))\n"
    )
    (project / "conftest.py").write_text(conftest)
    after = run_command(PYTEST, project, timeout=60, env=env)
    assert after.exit_code == 0 and after.counts == Counts(skipped=2)
    verdict = judge(baseline, after)
    assert not verdict.passed
    assert verdict.reason.startswith("2 tests that ran before were skipped or removed")


def test_judge_rejects_a_patch_that_breaks_a_passing_test(
    baseline: Run, project: Path, env: dict[str, str]
) -> None:
    (project / "calc.py").write_text("def add(a, b):\n    return 5\n")
    verdict = judge(baseline, run_command(PYTEST, project, timeout=60, env=env))
    assert not verdict.passed
    assert verdict.reason == f"exit 1; 1 failed: {ZERO_ID}"
    feedback = failure_feedback(verdict)
    assert f"- {ZERO_ID}" in feedback and "assert 5 == 0" in feedback


def test_existing_pytest_addopts_are_kept(pristine: Path, env: dict[str, str]) -> None:
    run = run_command(PYTEST, pristine, timeout=60, env={**env, "PYTEST_ADDOPTS": "-k zero"})
    assert run.exit_code == 0
    assert run.passed_ids == {ZERO_ID} and not run.failed_ids


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_junit_reaches_pytest_started_by_make(pristine: Path, env: dict[str, str]) -> None:
    (pristine / "Makefile").write_text(f"test:\n\t{PYTEST}\n")
    try:
        run = run_command("make test", pristine, timeout=60, env=env)
    finally:
        (pristine / "Makefile").unlink()
    assert run.exit_code != 0
    assert run.failed_ids == {ADD_ID} and run.passed_ids == {ZERO_ID}


def test_counts_alone_catch_fewer_tests_behind_exit_0(tmp_path: Path, env: dict[str, str]) -> None:
    summary = "printf 'test result: %s. %s passed; %s failed; 0 ignored; 0 measured;\\n' "
    baseline = run_command(summary + "FAILED 1 1; exit 101", tmp_path, timeout=10, env=env)
    fewer = run_command(summary + "ok 1 0", tmp_path, timeout=10, env=env)
    fixed = run_command(summary + "ok 2 0", tmp_path, timeout=10, env=env)
    assert baseline.counts == Counts(passed=1, failed=1) and not baseline.passed_ids
    verdict = judge(baseline, fewer)
    assert not verdict.passed and verdict.reason.startswith("fewer tests ran: 2 before, 1 after")
    assert judge(baseline, fixed).passed


def test_exit_code_alone_decides_without_counts(tmp_path: Path, env: dict[str, str]) -> None:
    baseline = run_command("echo broken; exit 3", tmp_path, timeout=10, env=env)
    assert baseline.counts is None and baseline.exit_code == 3
    assert judge(baseline, baseline).reason == "exit 3; no test results could be read"
    verdict = judge(baseline, run_command("echo fine", tmp_path, timeout=10, env=env))
    assert verdict.passed and "exit code alone" in verdict.reason


def test_unittest_summaries_are_shown_but_the_exit_code_judges() -> None:
    # Django's runtests.py: unittest's summary, which the verdict does not judge by
    red = Run("t", 1, 1.0, "F.s\n" + "-" * 70 + "\nRan 3 tests in 0.1s\n\n"
              "FAILED (failures=1, skipped=1)\n")
    green = Run("t", 0, 1.0, "..s\n" + "-" * 70 + "\nRan 3 tests in 0.1s\n\nOK (skipped=1)\n")
    assert red.counts is None and green.counts is None
    assert judge(red, red).reason == "exit 1; unittest's summary: 1 passed, 1 failed, 1 skipped"
    verdict = judge(red, green)
    assert verdict.passed and verdict.reason == (
        "exit 0 (unittest's summary: 2 passed, 1 skipped; judged by the exit code alone)")
    assert run_summary(green) == "exit 0; 2 passed, 1 skipped"


def test_judge_rejects_lost_results_and_masked_failures() -> None:
    baseline = Run("t", 1, 1.0, "", Counts(1, 1), frozenset({"a"}), frozenset({"b"}))
    unreadable = Run("t", 0, 1.0, "")
    assert judge(baseline, unreadable).reason == (
        "no test results could be read after the patch (2 tests ran before)"
    )
    masked = Run("t", 0, 1.0, "", Counts(1, 1), frozenset({"b"}), frozenset({"a"}))
    assert judge(baseline, masked).reason == "1 test that passed before now fails: a"


def test_failure_feedback_is_bounded_and_keeps_the_end() -> None:
    output = "".join(f"line {i}\n" for i in range(5000)) + "AssertionError: boom\n"
    failed = frozenset(f"t::test_{i}" for i in range(30))
    run = Run("t", 1, 1.0, output, Counts(failed=30), failed_ids=failed)
    verdict = Verdict(False, "exit 1; 30 failed: ...", run)
    message = failure_feedback(verdict, limit=2000)
    assert len(message) <= 2000
    assert message.startswith("The patch was rejected: exit 1; 30 failed")
    assert "- t::test_0" in message and "- ... and 10 more" in message
    assert message.rstrip().endswith("AssertionError: boom")


# --- processes: timeouts, leftovers, interrupts ----------------------------------------------


def test_timeout_kills_the_whole_process_group(tmp_path: Path, env: dict[str, str]) -> None:
    pidfile = tmp_path / "grandchild.pid"
    command = f"sh -c 'sleep 1000 & echo $! > {pidfile}; sleep 1000'"
    start = time.monotonic()
    run = run_command(command, tmp_path, timeout=1, env=env)
    assert time.monotonic() - start < 5
    assert run.exit_code is None and run.timed_out
    assert not _alive(int(pidfile.read_text()))
    # The measured time includes the kill grace: on a loaded runner 1 s can read as 2 s.
    assert re.fullmatch(r"timed out after [1-4] s", judge(run, run).reason)


def test_sigkill_follows_an_ignored_sigterm(tmp_path: Path, env: dict[str, str]) -> None:
    pidfile = tmp_path / "stubborn.pid"
    command = f"trap '' TERM; sleep 1000 & echo $! > {pidfile}; sleep 1000"
    start = time.monotonic()
    run = run_command(command, tmp_path, timeout=0.5, env=env)
    elapsed = time.monotonic() - start
    assert run.exit_code is None
    assert 2 <= elapsed < 6  # the grace period, then SIGKILL
    assert not _alive(int(pidfile.read_text()))


def test_background_leftovers_are_killed_without_waiting(
    tmp_path: Path, env: dict[str, str]
) -> None:
    pidfile = tmp_path / "server.pid"
    start = time.monotonic()
    run = run_command(f"sleep 1000 & echo $! > {pidfile}; echo done", tmp_path, timeout=60, env=env)
    assert time.monotonic() - start < 5  # not held up by the sleep keeping the pipe open
    assert run.exit_code == 0 and run.output == "done\n"
    assert not _alive(int(pidfile.read_text()))


def test_keyboard_interrupt_kills_the_group_and_propagates(
    tmp_path: Path, env: dict[str, str]
) -> None:
    pidfile = tmp_path / "child.pid"
    # A suite started as a background job (`cmd &` in a script) inherits SIGINT ignored: the
    # test needs Python's own Ctrl-C handler, whatever it inherited.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_command(f"sleep 1000 & echo $! > {pidfile}; wait", tmp_path, timeout=30, env=env)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, inherited)
    assert not _alive(int(pidfile.read_text()))


def test_a_missing_directory_raises_verify_error(tmp_path: Path, env: dict[str, str]) -> None:
    with pytest.raises(VerifyError, match="not a directory"):
        run_command("true", tmp_path / "gone", timeout=5, env=env)


# --- output ----------------------------------------------------------------------------------


def test_huge_output_is_bounded_with_a_marker(tmp_path: Path, env: dict[str, str]) -> None:
    command = f"{PY} -c \"import sys; sys.stdout.write('x'*50_000_000)\""
    run = run_command(command, tmp_path, timeout=30, env=env, max_output=64_000)
    assert run.exit_code == 0
    marker = f"\n... [{50_000_000 - 64_000} bytes omitted] ...\n"
    assert run.output == "x" * 32_000 + marker + "x" * 32_000


def test_binary_output_decodes_to_clean_text(tmp_path: Path, env: dict[str, str]) -> None:
    run = run_command("head -c 100000 /dev/urandom", tmp_path, timeout=10, env=env)
    assert run.exit_code == 0 and run.output
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", run.output)


def test_colour_codes_nuls_and_carriage_returns_are_cleaned(
    tmp_path: Path, env: dict[str, str]
) -> None:
    command = r"printf '\033[31mred\033[0m\000nul\tx\r\nbar 50%%\rbar 100%%\n'"
    run = run_command(command, tmp_path, timeout=10, env=env)
    assert run.output == "rednul\tx\nbar 50%\nbar 100%\n"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="ab\n", max_size=40), max_size=20), st.integers(0, 60))
def test_output_buffer_keeps_head_and_tail(chunks: list[str], limit: int) -> None:
    buffer = OutputBuffer(limit)
    for chunk in chunks:
        buffer.write(chunk.encode())
    whole = "".join(chunks)
    head, tail = limit // 2, limit - limit // 2
    if len(whole) <= limit:
        assert buffer.text() == whole
    else:
        marker = f"\n... [{len(whole) - limit} bytes omitted] ...\n"
        assert buffer.text() == whole[:head] + marker + (whole[-tail:] if tail else "")
    assert len(buffer.head) + len(buffer.tail) <= limit


def test_clean_output_replaces_invalid_utf8() -> None:
    assert clean_output(b"ok \xff\xfe done") == "ok \ufffd\ufffd done"


# --- secrets ---------------------------------------------------------------------------------


def test_the_test_command_sees_no_secrets(tmp_path: Path) -> None:
    token = "ghp_" + "abcdef0123456789" * 3
    secrets = {
        "FOO_TOKEN": "value-foo-token",
        "MY_API_KEY": "value-my-api-key",
        "GITHUB_TOKEN": "value-github-token",
        "INPUT_GITHUB-TOKEN": "value-input-token",
        "GREETING": token,
    }
    safe = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GITHUB_WORKSPACE": "/ws"}
    # Control: unscrubbed, the command does see them, so the checks below can fail. (dash, our
    # /bin/sh, drops names with a "-" by itself; bash would pass them on.)
    raw = run_command("env", tmp_path, timeout=10, env={**safe, **secrets})
    assert "FOO_TOKEN=value-foo-token" in raw.output and f"GREETING={token}" in raw.output
    assert "INPUT_GITHUB-TOKEN" not in scrub_env(secrets)

    sandbox = LocalSandbox(timeout=10, env={**safe, **secrets})
    shown = sandbox.run("env", tmp_path).output
    python = sandbox.run(f"{PY} -c 'import os; print(sorted(os.environ.items()))'", tmp_path)
    for output in (shown, python.output):
        for name, value in secrets.items():
            assert name not in output and value not in output
    assert f"PATH={os.environ['PATH']}" in shown
    assert "HOME=/tmp/acr-sandbox-" in shown  # the sandbox user's own home, not the bot's
    assert "GITHUB_WORKSPACE=/ws" in shown


DROPPED = [
    "AWS_SECRET_ACCESS_KEY", "aws_session_token", "DB_PASSWORD", "SMTP_PASS", "GH_TOKEN",
    "GH_ENTERPRISE_TOKEN", "GITHUB_PAT", "ACTIONS_RUNTIME_TOKEN", "ACTIONS_CACHE_URL",
    "INPUT_MODEL", "ACR_MODELS", "GOOGLE_APPLICATION_CREDENTIALS", "DEPLOY_SECRETS", "MYSECRETTHING",
]  # fmt: skip
KEPT = ["PATH", "HOME", "GITHUB_WORKSPACE", "GITHUB_SHA", "LANG", "KEYBOARD", "PASSAGE", "CI"]
SECRET_VALUES = [
    "github_pat_11AAAAAAA0abcdefghijkl",
    "gho_abc",
    "sk-ant-api03-abcdef",
    "sk-proj-abc",
    "xoxb-123-456",
    "AKIAIOSFODNN7EXAMPLE",
    "https://x-access-token:ghs_" + "A1b2C3d4E5" * 4 + "@github.com/o/r.git",
]


def test_scrub_env_drops_secret_names_and_values() -> None:
    env = {name: "plain" for name in DROPPED + KEPT}
    env.update({f"INNOCENT_{i}": value for i, value in enumerate(SECRET_VALUES)})
    env["TASK"] = "task-force-abcdefghijklmnopqrstuvwxyz"  # "sk-" inside a word is no token
    scrubbed = scrub_env(env)
    assert sorted(scrubbed) == sorted([*KEPT, "TASK"])
    assert env["PATH"] == "plain" and scrubbed is not env


# --- detecting the test command --------------------------------------------------------------

NPM_DEFAULT = '{"scripts": {"test": "echo \\"Error: no test specified\\" && exit 1"}}'
NPM_JEST = '{"scripts": {"test": "jest"}}'


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"pytest.ini": "[pytest]\n"}, "python -m pytest -q"),
        ({"conftest.py": ""}, "python -m pytest -q"),
        ({"pyproject.toml": "[tool.pytest.ini_options]\n"}, "python -m pytest -q"),
        ({"setup.cfg": "[metadata]\n[tool:pytest]\n"}, "python -m pytest -q"),
        ({"tox.ini": "[tox]\n[pytest]\naddopts = -q\n"}, "python -m pytest -q"),
        ({"tests/unit/test_x.py": ""}, "python -m pytest -q"),
        ({"test/x_test.py": ""}, "python -m pytest -q"),
        ({"package.json": NPM_JEST}, "npm test"),
        ({"go.mod": "module example.com/x\n"}, "go test ./..."),
        ({"Cargo.toml": "[package]\nname = 'x'\n"}, "cargo test"),
        ({"Makefile": "build:\n\tcc x.c\ntest: build\n\t./x\n"}, "make test"),
        ({"Makefile": "lint test check:\n\t./check\n"}, "make test"),
        ({"package.json": NPM_JEST, "pytest.ini": ""}, "python -m pytest -q"),
        ({"go.mod": "module x\n", "Makefile": "test:\n\tgo test\n"}, "go test ./..."),
        ({"package.json": NPM_DEFAULT, "Cargo.toml": ""}, "cargo test"),
        ({"package.json": NPM_DEFAULT}, None),
        ({"package.json": "{not json"}, None),
        ({"Makefile": "test := unit\nall:\n\techo $(test)\n"}, None),
        ({"pyproject.toml": "[project]\nname = 'x'\n", "tests/helpers.py": ""}, None),
        ({"README.md": "hi\n"}, None),
    ],
)
def test_detect_test_command(tmp_path: Path, files: dict[str, str], expected: str | None) -> None:
    assert detect_test_command(_write(tmp_path, files)) == expected


# --- reading results -------------------------------------------------------------------------

GO_VERBOSE = """\
=== RUN   TestAdd
--- PASS: TestAdd (0.00s)
=== RUN   TestSub
    calc_test.go:12: got 1, want 2
--- FAIL: TestSub (0.00s)
=== RUN   TestLater
    calc_test.go:16: not ready
--- SKIP: TestLater (0.00s)
=== RUN   TestTable
=== RUN   TestTable/one
--- PASS: TestTable (0.00s)
    --- PASS: TestTable/one (0.00s)
FAIL
FAIL\texample.com/calc\t0.002s
"""
CARGO = """\
running 3 tests
test tests::adds ... ok
test tests::subtracts ... FAILED
test tests::slow ... ignored, takes a minute

test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s

running 1 test
test src/lib.rs - add (line 3) ... ok

test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s
"""
JEST = """\
Test Suites: 1 failed, 1 passed, 2 total
Tests:       1 failed, 1 skipped, 1 todo, 3 passed, 6 total
Snapshots:   0 total
"""
MOCHA = "\n  calc\n    ok adds\n\n  3 passing (12ms)\n  2 pending\n  1 failing\n\n  1) calc\n"
PYTEST_SUMMARY = "==== 1 failed, 2 passed, 1 skipped, 1 xfailed, 1 error, 2 warnings in 0.12s ===="


@pytest.mark.parametrize(
    ("text", "counts"),
    [
        (GO_VERBOSE, Counts(passed=3, failed=1, skipped=1)),
        (CARGO, Counts(passed=2, failed=1, skipped=1)),
        (JEST, Counts(passed=3, failed=1, skipped=2)),
        (" ✓ a\n Tests  1 failed | 3 passed (4)\n", Counts(passed=3, failed=1)),
        (MOCHA, Counts(passed=3, failed=1, skipped=2)),
        (PYTEST_SUMMARY, Counts(passed=2, failed=1, skipped=2, errors=1)),
        ("\x1b[32m3 passed\x1b[0m in 0.01s\n", Counts(passed=3)),
        ("no tests ran in 0.01s\n", Counts()),
        (GO_VERBOSE + CARGO, Counts(passed=5, failed=2, skipped=2)),
    ],
)
def test_parse_output_counts(text: str, counts: Counts) -> None:
    results = parse_output(text)
    assert results is not None and results.counts == counts


def test_parse_output_ids_for_go_and_cargo() -> None:
    go = parse_output(GO_VERBOSE)
    assert go is not None
    assert go.failed_ids == {"TestSub"} and go.skipped_ids == {"TestLater"}
    assert go.passed_ids == {"TestAdd", "TestTable", "TestTable/one"}
    cargo = parse_output(CARGO)
    assert cargo is not None
    assert cargo.failed_ids == {"tests::subtracts"} and cargo.skipped_ids == {"tests::slow"}
    assert cargo.passed_ids == {"tests::adds", "src/lib.rs - add (line 3)"}


@pytest.mark.parametrize(
    "text",
    [
        "--- FAIL: TestSub (0.00s)\nFAIL\texample.com/calc\t0.002s\n",  # go without -v
        "Ran 3 tests in 0.001s\n\nOK\n",  # unittest
        "built 12 items in 3.2s\n",
        "",
    ],
)
def test_parse_output_refuses_to_guess(text: str) -> None:
    assert parse_output(text) is None


def test_output_counts_when_there_is_no_junit(tmp_path: Path, env: dict[str, str]) -> None:
    run = run_command("echo '2 passed, 1 skipped in 0.01s'", tmp_path, timeout=10, env=env)
    assert run.counts == Counts(passed=2, skipped=1) and not run.passed_ids


def test_parse_junit_handles_broken_files_and_collection_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_text("<testsuites><testsuite><testcase name='a'")
    assert parse_junit(broken) is None
    assert parse_junit(tmp_path / "missing.xml") is None
    good = tmp_path / "junit.xml"
    good.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="" name="tests.test_bad"><error message="collection failure"/>'
        "</testcase>"
        '<testcase classname="tests.test_a" name="test_x"><skipped type="pytest.xfail"/>'
        "</testcase>"
        '<testcase classname="tests.test_a" name="test_y"><failure/></testcase>'
        '<testcase classname="tests.test_a" name="test_y"><error/></testcase>'
        "</testsuite></testsuites>"
    )
    results = parse_junit(good)
    assert results is not None
    assert results.counts == Counts(skipped=1, errors=2)
    assert results.failed_ids == {"tests.test_a::test_y"}
    assert results.skipped_ids == {"tests.test_a::test_x"}


def test_parse_junit_sums_each_classnames_time(tmp_path: Path) -> None:
    """What the first tier's budget reads: seconds per JUnit classname; a time that is missing
    or not a finite number counts as 0."""
    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<testsuite><testcase classname="t.test_a" name="x" time="0.5"/>'
        '<testcase classname="t.test_a" name="y" time="1.25"/>'
        '<testcase classname="t.test_a.TestC" name="z" time="nan"/>'
        '<testcase classname="t.test_b" name="w" time="soon"/>'
        '<testcase classname="t.test_b" name="v"/></testsuite>'
    )
    results = parse_junit(junit)
    assert results is not None
    assert dict(results.seconds) == {"t.test_a": 1.75, "t.test_a.TestC": 0.0, "t.test_b": 0.0}
