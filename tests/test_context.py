"""Which files the model sees: evidence first, then the budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from acr_bot.fixing.context import (
    MAX_FILE_BYTES,
    build_context,
    imported_files,
    named_files,
    repo_languages,
    repo_libraries,
    symbols,
)
from acr_bot.fixing.context import test_files as failing_test_files

FILES = {
    "pkg/__init__.py": "",
    "pkg/stats.py": "def median(values):\n    return sorted(values)[len(values) // 2]\n",
    "pkg/util.py": "def clamp(x, lo, hi):\n    return max(lo, min(hi, x))\n",
    "pkg/totals.py": "class Ledger:\n    pass\n\n\ndef compute_total(rows):\n    return 0\n",
    "pkg/unrelated.py": "def banana():\n    return 'yellow'\n",
    "tests/test_stats.py": "from pkg.stats import median\n\n\ndef test_median():\n"
                           "    assert median([1, 2]) == 1.5\n",
    "requirements.txt": "numpy>=1.26\nRequests==2.32\n# comment\n",
    "README.md": "# Project\n",
}


def make_tree(root: Path, files: dict[str, str]) -> list[str]:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return sorted(files)


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, list[str]]:
    root = tmp_path / "repo"
    return root, make_tree(root, FILES)


def test_files_named_in_a_traceback_come_first(tree: tuple[Path, list[str]]) -> None:
    root, paths = tree
    output = ('Traceback (most recent call last):\n'
              '  File "/home/runner/work/proj/pkg/util.py", line 2, in clamp\n'
              'TypeError: bad operand\n')
    context = build_context(root, "clamp breaks", paths, test_output=output)
    assert next(iter(context.files)) == "pkg/util.py"
    assert context.reasons["pkg/util.py"] == "named in the task or a traceback"
    assert context.files["pkg/util.py"] == FILES["pkg/util.py"]
    assert "pkg/unrelated.py" not in context.files


def test_files_defining_a_symbol_in_backticks(tree: tuple[Path, list[str]]) -> None:
    root, paths = tree
    context = build_context(root, "`compute_total()` ignores refunds", paths)
    assert context.reasons["pkg/totals.py"] == "defines a symbol the task names"
    assert "compute_total" in symbols("`compute_total()` ignores refunds")
    assert "pkg/totals.py" in build_context(root, "The `Ledger` is wrong", paths).files


@pytest.mark.parametrize("test_id", ["tests/test_stats.py::test_median",
                                     "tests.test_stats::test_median"])
def test_failing_tests_and_the_modules_they_import(tree: tuple[Path, list[str]],
                                                   test_id: str) -> None:
    root, paths = tree
    context = build_context(root, "something is off", paths, failing=[test_id])
    assert context.reasons["tests/test_stats.py"] == "failing test"
    assert context.reasons["pkg/stats.py"] == "imported by tests/test_stats.py"
    assert list(context.files)[:2] == ["tests/test_stats.py", "pkg/stats.py"]


def test_word_overlap_ranks_the_rest(tree: tuple[Path, list[str]]) -> None:
    root, paths = tree
    context = build_context(root, "banana colour is yellow", paths)
    assert context.reasons == {"pkg/unrelated.py": "shares words with the task"}


def test_the_token_budget_is_respected(tmp_path: Path) -> None:
    files = {f"mod{i}.py": f"# module {i} about widgets\n" + "x = 1\n" * 400 for i in range(5)}
    root = tmp_path / "repo"
    paths = make_tree(root, files)
    task = "widgets: " + " ".join(f"mod{i}.py" for i in range(5))
    size = len(files["mod0.py"])
    budget = (size * 2 + size // 2) // 4  # room for two files and a half
    context = build_context(root, task, paths, budget_tokens=budget)
    assert len(context.files) == 2
    assert len(context.omitted) == 3
    assert set(context.files) | set(context.omitted) == set(files)
    assert context.tokens <= budget
    roomy = build_context(root, task, paths, budget_tokens=100_000)
    assert len(roomy.files) == 5 and roomy.omitted == ()


def test_symlinks_and_huge_files_are_skipped(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("API_KEY = 'sk-do-not-show'\n")
    root = tmp_path / "repo"
    paths = make_tree(root, {"small.py": "ok = 1\n",
                             "huge.py": "# h\n" + "y = 2\n" * (MAX_FILE_BYTES // 6 + 10)})
    (root / "linked.py").symlink_to(outside / "secret.py")
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    paths += ["linked.py", "linkdir"]  # as git ls-files lists them
    assert (root / "huge.py").stat().st_size > MAX_FILE_BYTES
    task = "check small.py, huge.py, linked.py, linkdir and linkdir/secret.py"
    context = build_context(root, task, paths, budget_tokens=10_000_000)
    assert list(context.files) == ["small.py"]
    assert all("sk-do-not-show" not in text for text in context.files.values())


def test_repo_facts() -> None:
    paths = ["a.py", "b.py", "c.go", "web/x.ts", "README.md"]
    assert repo_languages(paths) == ("python", "go")


def test_repo_libraries(tree: tuple[Path, list[str]]) -> None:
    root, paths = tree
    assert repo_libraries(root, paths) == ("numpy", "requests")


def test_helpers_match_paths() -> None:
    paths = ["pkg/stats.py", "pkg/__init__.py", "tests/test_stats.py", "setup.py"]
    assert named_files("see pkg/stats.py:12 for details", paths) == ["pkg/stats.py"]
    assert named_files('File "/ci/work/proj/setup.py", line 3', paths) == ["setup.py"]
    assert named_files("nothing named here", paths) == []
    assert failing_test_files(["tests.test_stats::test_x"], paths) == ["tests/test_stats.py"]
    assert imported_files("import pkg\nfrom pkg.stats import x\n", paths) == [
        "pkg/__init__.py", "pkg/stats.py"]
