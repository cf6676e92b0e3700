"""The verdict: a patch's tests and code split apart, the original tests run against the patched
code, the tests a task names, a baseline that runs nothing, and detected commands on src/
layouts. Real git worktrees and real pytest runs throughout."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import PYTEST

from acr_bot import app
from acr_bot.config import Settings, load_settings
from acr_bot.domain import TestCounts, TestRun
from acr_bot.gitrepo import Worktree
from acr_bot.verify.local import LocalSandbox, detect_test_command
from acr_bot.verify.patch import PatchSplit, is_test_path, original_tests, split_patch
from acr_bot.verify.verdict import (
    baseline_problem,
    collection_errors,
    first_error,
    named_tests,
    verify_workspace,
)
from tests.support.calc import CALC, FILES, FIX, FIXED, TASK, TESTS, WRONG_FIX, reply

# --- which paths are tests ------------------------------------------------------------------------


@pytest.mark.parametrize("path", [
    "tests/test_calc.py", "test/helpers.py", "src/pkg/tests/data.json", "test_x.py",
    "pkg/x_test.py",
    "conftest.py", "sub/conftest.py", "pytest.ini", ".pytest.ini", "tox.ini", "setup.cfg", "noxfile.py",
    "pkg/x_test.go", "src/a.test.ts", "web/b.spec.js", "jest.config.js", "vitest.config.mts",
    "src/__tests__/x.js", ".gitignore",
])
def test_test_files_and_test_configuration_are_test_paths(path: str) -> None:
    assert is_test_path(path)


@pytest.mark.parametrize("path", ["calc.py", "src/pkg/core.py", "pkg/main.go", "src/a.ts",
                                  "pyproject.toml", "package.json", "README.md", "contest.py"])
def test_code_is_not_a_test_path(path: str) -> None:
    assert not is_test_path(path)


def test_test_paths_extend_the_defaults_from_settings_and_inputs(tmp_path: Path) -> None:
    assert is_test_path("qa/check_calc.py", ["qa/**"]) and not is_test_path("qa/check_calc.py")
    settings = load_settings(tmp_path, env={"INPUT_TEST-PATHS": "qa/**, specs"})
    assert settings.test_paths == ("qa/**", "specs")


# --- mixed files: pyproject.toml and package.json -------------------------------------------------

PYPROJECT = """\
[project]
name = "calc"
version = "1.0"

[tool.pytest.ini_options]
testpaths = ["tests"]
"""


def _tree(make_repo, files: dict[str, str]) -> Worktree:
    return Worktree(make_repo(files))


def _write(tree: Worktree, path: str, text: str) -> None:
    target = tree.path / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def test_pyproject_is_split_by_its_tables(make_repo) -> None:
    tree = _tree(make_repo, {"pyproject.toml": PYPROJECT})
    deselect = PYPROJECT + 'addopts = "--deselect tests/test_calc.py::test_mul"\n'
    _write(tree, "pyproject.toml", deselect)
    assert split_patch(tree, ["pyproject.toml"]) == PatchSplit(("pyproject.toml",), ())
    _write(tree, "pyproject.toml", PYPROJECT.replace('"1.0"', '"1.1"'))
    assert split_patch(tree, ["pyproject.toml"]).tests == ()
    both = deselect.replace('"1.0"', '"1.1"')
    _write(tree, "pyproject.toml", both)
    split = split_patch(tree, ["pyproject.toml"])
    assert split.tests == ("pyproject.toml",) and split.code == ("pyproject.toml",)
    with original_tests(tree, split):  # the code table of the patch, the test table of the base
        inside = (tree.path / "pyproject.toml").read_text()
    assert 'version = "1.1"' in inside and "--deselect" not in inside
    assert 'testpaths = ["tests"]' in inside
    assert (tree.path / "pyproject.toml").read_text() == both  # the whole patch is back


def test_package_json_test_scripts_and_runner_keys_are_tests(make_repo) -> None:
    base = {"name": "x", "version": "1.0.0", "scripts": {"test": "jest", "build": "tsc"},
            "jest": {"testEnvironment": "node"}}
    tree = _tree(make_repo, {"package.json": json.dumps(base, indent=2) + "\n"})
    patched = {**base, "version": "1.0.1", "scripts": {"test": "jest -t nothing", "build": "tsc"}}
    _write(tree, "package.json", json.dumps(patched, indent=2) + "\n")
    split = split_patch(tree, ["package.json"])
    assert split.tests == ("package.json",) and split.code == ("package.json",)
    with original_tests(tree, split):
        inside = json.loads((tree.path / "package.json").read_text())
    assert inside["version"] == "1.0.1" and inside["scripts"]["test"] == "jest"


# --- verify_workspace on a real worktree with real pytest runs ------------------------------------


@pytest.fixture
def calc(make_repo) -> tuple[Worktree, TestRun, LocalSandbox]:
    tree = Worktree(make_repo(FILES))
    sandbox = LocalSandbox(timeout=60)
    return tree, sandbox.run(PYTEST, tree.path), sandbox


def _verify(calc: tuple[Worktree, TestRun, LocalSandbox], **kwargs: object):
    tree, baseline, sandbox = calc
    return verify_workspace(baseline, tree, sandbox, PYTEST, **kwargs)  # type: ignore[arg-type]


def test_a_patch_that_changes_only_tests_is_rejected_without_a_run(calc) -> None:
    tree = calc[0]
    _write(tree, "tests/test_calc.py", TESTS.replace("== 12", "== 7"))
    verdict = _verify(calc)
    assert not verdict.passed and verdict.run.exit_code == -1
    assert verdict.reason.startswith("the patch changes only tests (tests/test_calc.py)")


def test_the_original_test_judges_a_rewritten_assertion_next_to_wrong_code(calc) -> None:
    tree = calc[0]
    _write(tree, "tests/test_calc.py", TESTS.replace("== 12", "== 8"))
    _write(tree, "calc.py", CALC.replace("def mul(a, b):\n    return a + b",
                                         "def mul(a, b):\n    return a * b - 4"))
    verdict = _verify(calc)
    assert not verdict.passed
    # The first tier (the test module importing calc) rejects it; the full suite never runs.
    assert verdict.reason.startswith("with the original tests: the related tests failed first "
                                     "(1 test module importing calc): 1 failed: "
                                     "tests.test_calc::test_mul"), verdict.reason
    assert [t.name for t in verdict.tiers] == ["related tests"]
    # ... and the patch is back in place afterwards, for the next attempt's restore to handle.
    assert "== 8" in (tree.path / "tests/test_calc.py").read_text()


def test_a_conftest_hidden_by_a_changed_gitignore_does_not_judge(calc) -> None:
    tree = calc[0]
    forge = ("import pytest\n\n\n@pytest.hookimpl(hookwrapper=True)\n"
             "def pytest_runtest_makereport(item, call):\n    outcome = yield\n"
             "    outcome.get_result().outcome = 'passed'\n")
    _write(tree, ".gitignore", "__pycache__/\nconftest.py\n")
    _write(tree, "conftest.py", forge)
    _write(tree, "calc.py", CALC.replace("def mul(a, b):\n    return a + b",
                                         "def mul(a, b):\n    return a - b"))
    verdict = _verify(calc)
    assert not verdict.passed and "tests.test_calc::test_mul" in verdict.reason, verdict.reason
    assert (tree.path / "conftest.py").read_text() == forge


def test_a_fix_with_new_tests_passes_both_runs_and_lists_them(calc) -> None:
    tree = calc[0]
    _write(tree, "calc.py", FIXED)
    _write(tree, "tests/test_more.py", "from calc import mul\n\n\ndef test_zero():\n"
           "    assert mul(0, 3) == 0\n")
    verdict = _verify(calc)
    assert verdict.passed, verdict.reason
    assert verdict.tests_changed == ("tests/test_more.py",)
    assert "tests changed too (the changed tests also pass): tests/test_more.py" in verdict.reason
    assert verdict.run.counts == TestCounts(passed=3)  # the deciding run: the original tests


def test_a_fix_whose_own_new_test_fails_is_rejected(calc) -> None:
    tree = calc[0]
    _write(tree, "calc.py", FIXED)
    _write(tree, "tests/test_more.py", "from calc import mul\n\n\ndef test_wrong():\n"
           "    assert mul(2, 2) == 5\n")
    verdict = _verify(calc)
    assert not verdict.passed
    assert verdict.reason.startswith("the original tests pass, but with the patch's own test "
                                     "changes (tests/test_more.py) the tests fail"), verdict.reason
    assert "tests.test_more::test_wrong" in verdict.reason


def test_python_code_that_does_not_parse_is_rejected_with_the_line_before_any_run(calc) -> None:
    tree = calc[0]
    _write(tree, "calc.py", FIXED.replace("    return a * b", "return a * b"))
    verdict = _verify(calc)
    assert not verdict.passed and verdict.run.exit_code == -1
    assert "calc.py does not parse after the change: IndentationError" in verdict.reason
    assert "(line 10" in verdict.reason and "   10 | return a * b" in verdict.reason


# --- the tests the task names ---------------------------------------------------------------------


def test_named_tests_come_from_the_task_text_and_ci_logs() -> None:
    text = ("tests/test_calc.py::test_mul fails; see also `tests/test_b.py::TestX::test_y[1-2]`.\n"
            "FAILED tests/unit/test_c.py::test_z - AssertionError: boom\n"
            "ERROR tests/test_d.py - ModuleNotFoundError: No module named 'd'\n"
            "The code is in calc.py and src/pkg/core.py.\n")
    assert named_tests(text) == ("tests/test_calc.py::test_mul",
                                 "tests/test_b.py::TestX::test_y[1-2]",
                                 "tests/unit/test_c.py::test_z", "tests/test_d.py")


def test_named_tests_come_from_a_failed_ci_jobs_task_text() -> None:
    from acr_bot.github.cilogs import task_text

    log = ("tests/test_calc.py F.\n=========================== short test summary info "
           "===========================\nFAILED tests/test_calc.py::test_mul - assert 7 == 12\n"
           "1 failed, 1 passed in 0.01s\n")
    assert named_tests(task_text([("test", log)]))[0] == "tests/test_calc.py::test_mul"


SKIPPING = (CALC + "\n\nimport pytest  # noqa: E402\n\n"
            "pytest.skip('calc is broken', allow_module_level=True)\n")
TWO_MODULES = {**FILES, "tests/test_other.py": "def test_other():\n    assert True\n",
               "tests/test_calc.py": "from calc import add, mul, sub, div\n" + TESTS}


def test_a_module_that_failed_to_collect_must_run_and_pass_after_the_fix(make_repo,
                                                                       make_replay) -> None:
    repo = make_repo(TWO_MODULES)
    task = ("ImportError: cannot import name 'div' from 'calc'\n\n"
            "ERROR tests/test_calc.py - ImportError: cannot import name 'div' from 'calc'\n")
    # A patch that adds div, but makes the module that imports calc skip itself.
    dodge = reply("calc.py", CALC, SKIPPING.replace(
        "def mul", "def div(a, b):\n    return a / b\n\n\ndef mul"))
    real = reply("calc.py", CALC, FIXED + "\n\ndef div(a, b):\n    return a / b\n")
    settings = replace(Settings(), models=("replay/a", "replay/b"), policy="cheapest-first",
                       replay_file=make_replay({"a": [dodge], "b": [real]}), test_command=PYTEST,
                       llm_retries=0, harness="edit")
    result = app.fix(repo, app.task_from_text(task), settings)

    assert [a.outcome for a in result.attempts] == ["tests_failed", "passed"], result.reason
    assert result.attempts[0].detail == "tests/test_calc.py (the task names) did not run after " \
        "the patch"


# --- a baseline that runs no test -----------------------------------------------------------------

SRC_FILES = {
    "pyproject.toml": '[project]\nname = "calc"\nversion = "1.0"\n',
    "src/calc/__init__.py": CALC,
    "tests/test_calc.py": TESTS,
}


def test_a_baseline_that_cannot_import_the_package_stops_before_any_model_call(
        make_repo, make_replay) -> None:
    repo = make_repo(SRC_FILES)
    replay = make_replay({"a": [FIX]})
    lines: list[str] = []
    settings = replace(Settings(), models=("replay/a",), replay_file=replay, llm_retries=0,
                       test_command=f"{sys.executable} -m pytest -q -p no:cacheprovider",
                       harness="edit")
    result = app.fix(repo, app.task_from_text(TASK), settings, echo=lines.append)

    assert result.outcome == "gave_up" and result.attempts == ()
    assert result.reason.startswith("the tests ran nothing before any change (exit 2; 1 error "
                                    "while collecting): ModuleNotFoundError: No module named "
                                    "'calc' — this repo keeps its code in src/: pass --setup-cmd "
                                    "'pip install -e .'"), result.reason
    assert not any(line.startswith("attempt") for line in lines)


def test_the_detected_command_makes_a_src_layout_importable_and_the_fix_passes(
        make_repo, make_replay) -> None:
    repo = make_repo({**SRC_FILES, "tests/test_calc.py": TESTS.replace("import pytest\n\n", "")})
    assert detect_test_command(repo) == "PYTHONPATH=src python -m pytest -q"
    fixed = reply("src/calc/__init__.py", CALC, FIXED)
    settings = replace(Settings(), models=("replay/a",), replay_file=make_replay({"a": [fixed]}),
                       llm_retries=0, harness="edit")
    lines: list[str] = []
    result = app.fix(repo, app.task_from_text(TASK), settings, echo=lines.append)

    assert "test command (detected): PYTHONPATH=src python -m pytest -q" in lines
    assert result.outcome == "fixed", (result.reason, result.baseline and result.baseline.output)
    assert result.baseline is not None and result.baseline.counts == TestCounts(2, 1)


def test_src_layout_detection_respects_a_configured_pythonpath(tmp_path: Path) -> None:
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "__init__.py").write_text("")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_pkg.py").write_text("")
    assert detect_test_command(tmp_path) == "PYTHONPATH=src python -m pytest -q"
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["src"]\n')
    assert detect_test_command(tmp_path) == "python -m pytest -q"


def test_tox_or_nox_only_projects_get_tox_or_nox(tmp_path: Path) -> None:
    (tmp_path / "tox.ini").write_text("[tox]\nenvlist = py3\n\n[testenv]\ncommands = trial x\n")
    assert detect_test_command(tmp_path) == "tox"
    (tmp_path / "tox.ini").unlink()
    (tmp_path / "noxfile.py").write_text("import nox\n")
    assert detect_test_command(tmp_path) == "nox"


def test_baseline_problem_words_and_exceptions(tmp_path: Path) -> None:
    output = ("ERROR tests/test_calc.py - ModuleNotFoundError: No module named 'numpy'\n"
              "E   ModuleNotFoundError: No module named 'numpy'\n")
    run = TestRun("pytest", 2, 1.0, output, counts=TestCounts(errors=1))
    assert first_error(output) == "ModuleNotFoundError: No module named 'numpy'"
    assert collection_errors(run) == ("tests/test_calc.py",)
    problem = baseline_problem(run, tmp_path, "mul is wrong")
    assert problem is not None and "pip install -e '.[test]'" in problem
    # The task is about that error (a failing CI's log): go on, the module must pass after.
    assert baseline_problem(run, tmp_path, "CI: No module named 'numpy' in tests") is None
    nothing = TestRun("pytest", 5, 1.0, "no tests ran in 0.01s", counts=TestCounts())
    assert "no test was collected" in (baseline_problem(nothing, tmp_path, "x") or "")
    red = TestRun("pytest", 1, 1.0, "", counts=TestCounts(passed=2, failed=1))
    assert baseline_problem(red, tmp_path, "x") is None
    unknown = TestRun("grep", 1, 1.0, "", counts=None)  # a runner whose output is unread
    assert baseline_problem(unknown, tmp_path, "x") is None


def test_untracked_setup_output_is_not_part_of_the_patch(calc) -> None:
    tree = calc[0]
    _write(tree, "build/test_generated.py", "def test_x():\n    assert False\n")
    _write(tree, "calc.py", FIXED)
    verdict = _verify(calc, keep=("build/",))
    assert verdict.passed and verdict.tests_changed == (), verdict.reason


def test_the_loop_calls_the_verdict_with_the_original_tests(repo_with_fix_and_cheat) -> None:
    result = repo_with_fix_and_cheat
    assert [a.outcome for a in result.attempts] == ["tests_failed"]
    assert result.attempts[0].detail.startswith("with the original tests: ")


@pytest.fixture
def repo_with_fix_and_cheat(make_repo, make_replay):
    repo = make_repo(FILES)
    cheat = reply("pytest.ini", FILES["pytest.ini"], FILES["pytest.ini"]
                  + "addopts = --deselect tests/test_calc.py::test_mul\n") + "\n" + WRONG_FIX
    settings = replace(Settings(), models=("replay/a",), replay_file=make_replay({"a": [cheat]}),
                       test_command=PYTEST, llm_retries=0, max_attempts=1, harness="edit")
    return app.fix(repo, app.task_from_text(TASK), settings)


def test_an_agents_forging_conftest_is_not_in_the_run_that_decides(make_repo, tmp_path: Path,
                                                                   make_replay) -> None:
    # The verdict runs after any harness: an agent that plants a conftest.py rewriting every
    # report to "passed" (and keeps it, naming it after the sentinel) next to a wrong fix.
    from tests.support.agent import script, submit, turn

    forge = ("cat > conftest.py <<'EOF'\nimport pytest\n\n\n@pytest.hookimpl(hookwrapper=True)\n"
             "def pytest_runtest_makereport(item, call):\n    outcome = yield\n"
             "    outcome.get_result().outcome = 'passed'\nEOF")
    wrong = "sed -i '/def mul/{n;s/a + b/a * b + 1/}' calc.py"
    replies = [*script(forge, wrong, submit("conftest.py")),
               turn(submit("conftest.py"), times=None)]
    replay = make_replay({"agent": replies})
    repo = make_repo(FILES)
    settings = replace(Settings(), models=("replay/agent",), replay_file=replay,
                       test_command=PYTEST, llm_retries=0, max_attempts=1, harness="agent",
                       agent_steps=4)
    result = app.fix(repo, app.task_from_text(TASK), settings)

    [attempt] = result.attempts
    assert attempt.harness == "agent" and attempt.outcome == "tests_failed", attempt.detail
    # The task names test_mul: the first tier runs it alone, and it fails.
    assert attempt.detail.startswith("with the original tests: the named tests failed first "
                                     "(1 named test): 1 failed: tests.test_calc::test_mul"), \
        attempt.detail
    assert result.branch is None
