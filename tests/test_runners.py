"""Narrowing a test command to the first tier's tests, and xdist workers (verify/runners.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from acr_bot.verify.runners import detect_workers, narrow, parse, with_workers

T = ["tests/test_a.py", "tests/test_b.py::test_x"]


@pytest.mark.parametrize("command, expected", [
    ("python -m pytest -q", "python -m pytest -q tests/test_a.py tests/test_b.py::test_x"),
    ("PYTHONPATH=src python -m pytest -q -p no:cacheprovider",
     "PYTHONPATH=src python -m pytest -q -p no:cacheprovider tests/test_a.py "
     "tests/test_b.py::test_x"),
    ("/usr/bin/python3.11 -m pytest -x", "/usr/bin/python3.11 -m pytest -x tests/test_a.py "
     "tests/test_b.py::test_x"),
    ("pytest -k 'a or b'", "pytest -k 'a or b' tests/test_a.py tests/test_b.py::test_x"),
    # The command's own paths: only the targets inside them, in their place.
    ("pytest -q -p no:cacheprovider tests/test_b.py tests/test_c.py",
     "pytest -q -p no:cacheprovider tests/test_b.py::test_x"),
    ("pytest -q tests", "pytest -q tests/test_a.py tests/test_b.py::test_x"),
    ("cd tests && pytest -q", "cd tests && pytest -q test_a.py test_b.py::test_x"),
])
def test_pytest_commands_get_the_targets(command: str, expected: str) -> None:
    assert narrow(command, T) == expected


@pytest.mark.parametrize("command", [
    "make test", "tox", "npm test", "pytest -q && echo done", "pytest | tee log",
    "python -m unittest", "pytest -q 'unterminated",
    "pytest -q src/other",  # none of the targets is among what it collects
    "pytest -q -o 'addopts=--x y' tests",  # would need re-quoting: left alone
])
def test_other_commands_are_not_narrowed(command: str) -> None:
    assert narrow(command, T) is None
    assert narrow("pytest -q", []) is None


@pytest.mark.parametrize("command, expected", [
    ("python tests/runtests.py --parallel 2", "python tests/runtests.py --parallel 2 "
     "files.tests utils_tests.test_text"),
    ("cd tests && python3 runtests.py -v 1", "cd tests && python3 runtests.py -v 1 files.tests "
     "utils_tests.test_text"),
    ("cd tests && python runtests.py files", "cd tests && python runtests.py files.tests"),
])
def test_django_runtests_gets_dotted_labels(command: str, expected: str) -> None:
    targets = ["tests/files/tests.py", "tests/utils_tests/test_text.py"]
    assert narrow(command, targets) == expected


def test_parse_keeps_the_environment_and_the_folder() -> None:
    parsed = parse("cd sub && A=1 B=2 python -m pytest -q x")
    assert parsed is not None and parsed.cd == "sub" and parsed.env == ("A=1", "B=2")
    assert parsed.runner == ("python", "-m", "pytest") and parsed.args == ("-q", "x")


def test_workers_are_added_to_pytest_only_when_not_chosen_already() -> None:
    assert with_workers("python -m pytest -q", "auto") == "python -m pytest -q -n auto"
    assert with_workers("python -m pytest -q -n 4", "auto") == "python -m pytest -q -n 4"
    assert with_workers("pytest -p no:xdist", "2") == "pytest -p no:xdist"
    assert with_workers("make test", "auto") == "make test"
    assert with_workers("pytest", None) == "pytest"


def test_a_project_that_runs_xdist_is_detected(tmp_path: Path) -> None:
    assert detect_workers(tmp_path) is None
    (tmp_path / "pyproject.toml").write_text('[project.optional-dependencies]\ntest = ["pytest"]\n')
    assert detect_workers(tmp_path) is None
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "ci.yml").write_text("steps:\n  - run: python -m pytest -n auto tests\n")
    assert detect_workers(tmp_path) == "auto"
    (workflows / "ci.yml").unlink()
    (tmp_path / "requirements-dev.txt").write_text("pytest-xdist>=3\n")
    assert detect_workers(tmp_path) == "auto"


def test_a_narrowed_command_runs_only_the_targets_for_real(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    for name in ("a", "b", "c"):
        (tmp_path / "tests" / f"test_{name}.py").write_text(
            f"def test_{name}():\n    assert True\n\ndef test_x():\n    assert True\n")
    command = narrow(f"{sys.executable} -m pytest -q -p no:cacheprovider",
                     ["tests/test_a.py", "tests/test_b.py::test_x"])
    assert command is not None
    out = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0 and "3 passed" in out.stdout, out.stdout


def test_parallel_command_follows_the_setting_then_the_project(tmp_path: Path) -> None:
    from acr_bot.verify.runners import parallel_command

    assert parallel_command("pytest -q", "2", tmp_path, detect=False) == (
        "pytest -q -n 2", "-n 2: test_workers")
    assert parallel_command("pytest -q", None, tmp_path, detect=True) == ("pytest -q", "")
    (tmp_path / "tox.ini").write_text("[testenv]\ndeps = pytest-xdist\n")
    assert parallel_command("pytest -q", None, tmp_path, detect=True) == (
        "pytest -q -n auto", "-n auto: the project runs pytest-xdist")
    # A command the user wrote is theirs: only the setting adds workers to it.
    assert parallel_command("pytest -q", None, tmp_path, detect=False) == ("pytest -q", "")
    assert parallel_command("pytest -q", "off", tmp_path, detect=True) == ("pytest -q", "")


def test_the_settings_of_large_repositories_parse(tmp_path: Path) -> None:
    from acr_bot.config import Settings, cache_dir, load_settings
    from acr_bot.errors import ConfigError

    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "acr-bot.yml").write_text(
        "test_workers: auto\nfirst_tier: false\ntime_limit_minutes: 40\nbaseline_cache: off\n")
    settings = load_settings(tmp_path, env={})
    assert (settings.test_workers, settings.first_tier, settings.time_limit_minutes,
            settings.baseline_cache) == ("auto", False, 40.0, False)
    (tmp_path / ".github" / "acr-bot.yml").write_text("test_workers: many\n")
    with pytest.raises(ConfigError, match="test_workers: expected auto, logical, off or a number"):
        load_settings(tmp_path, env={})
    assert cache_dir(Settings(), {"XDG_CACHE_HOME": "/c"}) == Path("/c/acr-bot")
    assert cache_dir(Settings(), {"HOME": "/h"}) == Path("/h/.cache/acr-bot")


def test_a_few_named_tests_run_in_one_process() -> None:
    from acr_bot.verify.runners import single_process

    assert single_process("pytest -q -n auto t.py::a") == "pytest -q -n auto t.py::a -n 0"
    assert single_process("pytest -q --numprocesses=2 t.py") == \
        "pytest -q --numprocesses=2 t.py -n 0"
    assert single_process("pytest -q t.py::a") == "pytest -q t.py::a"  # no xdist: unchanged
    assert single_process("python tests/runtests.py x") == "python tests/runtests.py x"
