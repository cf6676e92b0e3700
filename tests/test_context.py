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


def repo(tmp_path: Path, files: dict[str, str]) -> tuple[Path, list[str]]:
    return tmp_path / "repo", make_tree(tmp_path / "repo", files)


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, list[str]]:
    return repo(tmp_path, FILES)


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
    assert context.reasons["pkg/totals.py"] == "defines `compute_total`, named in the task"
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
    root, paths = repo(tmp_path, files)
    task = "widgets: " + " ".join(f"mod{i}.py" for i in range(5))
    size = len(files["mod0.py"])
    budget = (size * 2 + size // 2) // 4  # room for two files and a half
    context = build_context(root, task, paths, budget_tokens=budget)
    # The first fits in 2/3 of the room; the others would crowd out the rest: shown in part.
    [whole] = context.files
    assert context.files[whole] == files[whole]
    assert set(context.excerpts) == set(files) - {whole} and context.omitted == ()
    assert all(text.startswith("  1| # module") for text in context.excerpts.values())
    assert context.tokens <= budget
    for tight in (budget // 2, budget // 4):  # windows only, then not even those
        part = build_context(root, task, paths, budget_tokens=tight)
        assert part.files == {} and part.tokens <= tight
        assert set(part.shown) | set(part.omitted) == set(files)
    assert part.omitted and not part.excerpts
    roomy = build_context(root, task, paths, budget_tokens=100_000)
    assert len(roomy.files) == 5 and roomy.omitted == () and roomy.excerpts == {}


def test_symlinks_and_huge_files_are_skipped(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("API_KEY = 'sk-do-not-show'\n")
    root, paths = repo(tmp_path, {"small.py": "ok = 1\n",
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


# --- One test per ranking rule, on generated repositories ---------------------------------------

def _filler(i: int, lines: int = 30) -> str:
    """A plausible module that shares only everyday words with the tasks below."""
    body = "".join(f"    value = compute(value, {n})  # update the value and return it\n"
                   for n in range(lines))
    return f"def helper_{i}(value):\n{body}    return value\n"


def test_rare_words_outweigh_common_ones_and_length_is_normalised(tmp_path: Path) -> None:
    # The big file repeats every common word of the task; the small one holds the rare word.
    # Raw overlap (the old rule) put the big file first; BM25 puts the rare word first.
    common = "the parser reads the config value and returns the result\n"
    files = {"pkg/big.py": "".join(f"# {common}" for _ in range(400)) + "x = 1\n",
             "pkg/tokens.py": "def dequote(word):\n    '''Strip quotes.'''\n    return word\n"}
    files |= {f"pkg/mod{i}.py": f"# {i}: {common}" for i in range(20)}
    root, paths = repo(tmp_path, files)
    task = "The parser reads the config value and returns the result without dequote"
    context = build_context(root, task, paths, budget_tokens=100_000)
    assert next(iter(context.files)) == "pkg/tokens.py"
    assert context.reasons["pkg/tokens.py"] == "shares words with the task"


def test_a_bare_file_name_that_many_files_share_is_weak_evidence(tmp_path: Path) -> None:
    files = {f"tests/roots/test-{i}/conf.py": f"project = 'root {i}'\n" for i in range(40)}
    files["sphinx/theming.py"] = ("def load_theme_config(path):\n"
                                  "    '''Read html_theme_options for the theme.'''\n")
    root, paths = repo(tmp_path, files)
    task = "html_theme_options set in conf.py are ignored when the theme config is loaded"
    context = build_context(root, task, paths, budget_tokens=2_000)
    assert next(iter(context.files)) == "sphinx/theming.py"
    assert context.reasons["tests/roots/test-0/conf.py"] == "one of 40 files called conf.py"
    # A unique bare name is still strong evidence.
    unique = build_context(root, "see theming.py", paths)
    assert unique.reasons["sphinx/theming.py"] == "named in the task or a traceback"


def test_symbol_hits_are_ordered_by_score(tmp_path: Path) -> None:
    # `setUp` is defined in every test module; the one that matters also shares the task's words.
    files = {f"tests/test_{chr(97 + i)}.py": f"class T{i}:\n    def setUp(self):\n        pass\n"
             for i in range(25)}
    files["tests/test_zoneinfo.py"] = ("class TestZones:\n    def setUp(self):\n"
                                       "        self.zone = load_zoneinfo('Europe/Paris')\n")
    root, paths = repo(tmp_path, files)
    context = build_context(root, "`setUp` fails to load_zoneinfo for Europe/Paris", paths,
                            budget_tokens=100_000)
    assert next(iter(context.files)) == "tests/test_zoneinfo.py"
    assert context.reasons["tests/test_a.py"] == "defines `setUp`, named in the task"


@pytest.mark.parametrize("test_id", ["pkg.test_stats.TestMedian::test_even",
                                     "pkg.test_stats.TestMedian.test_even",
                                     "pkg/test_stats.py::TestMedian::test_even[1-2]"])
def test_junit_class_ids_map_to_their_module(tmp_path: Path, test_id: str) -> None:
    files = {"pkg/__init__.py": "", "pkg/stats.py": FILES["pkg/stats.py"],
             "pkg/test_stats.py": "from pkg.stats import median\n\n\nclass TestMedian:\n"
                                  "    def test_even(self):\n        assert median([1, 2]) == 1.5\n"}
    root, paths = repo(tmp_path, files)
    assert failing_test_files([test_id], paths) == ["pkg/test_stats.py"]
    context = build_context(root, "wrong result", paths, failing=[test_id])
    assert context.reasons["pkg/test_stats.py"] == "failing test"
    assert context.reasons["pkg/stats.py"] == "imported by pkg/test_stats.py"


def test_a_file_bigger_than_the_budget_is_shown_as_numbered_windows(tmp_path: Path) -> None:
    lines = [f"def step_{n}(x):\n    return x + {n}\n" for n in range(2_000)]
    lines[1_500] = "def parse_header(raw):\n    return raw.split(':')  # the bug\n"
    root, paths = repo(tmp_path, {"pkg/huge.py": "".join(lines)})
    output = 'Traceback (most recent call last):\n  File "/ci/pkg/huge.py", line 3002, in x\n'
    context = build_context(root, "`parse_header` splits on every colon", paths,
                            test_output=output, budget_tokens=4_000)
    assert context.files == {} and context.omitted == ()
    excerpt = context.excerpts["pkg/huge.py"]
    assert "3001| def parse_header(raw):" in excerpt
    assert "3002|     return raw.split(':')  # the bug" in excerpt
    assert excerpt.startswith("...") and "def step_0(" not in excerpt
    assert context.tokens <= 4_000


def test_the_repo_map_lists_further_files_and_their_definitions(tmp_path: Path) -> None:
    files = {f"pkg/ledger_{i}.py": f"class Ledger{i}:\n    pass\n\n\ndef post_ledger_{i}():\n"
             + "    pass\n" * 200 for i in range(12)}
    root, paths = repo(tmp_path, files)
    context = build_context(root, "ledger posting is wrong", paths, budget_tokens=1_500)
    assert context.repo_map
    for line in context.repo_map.splitlines():
        path, names = line.split(": ")
        assert path not in context.shown
        number = path.removeprefix("pkg/ledger_").removesuffix(".py")
        assert names == f"Ledger{number}, post_ledger_{number}"


def test_the_whole_tree_is_scanned(tmp_path: Path) -> None:
    # Beyond the first 3,000 files in path order, where the old scan stopped.
    files = {f"a/m{i:04}.py": f"def f{i}():\n    return {i}\n" for i in range(3_100)}
    files["zz/quaternion.py"] = "def conjugate_quaternion(q):\n    return q\n"
    root, paths = repo(tmp_path, files)
    context = build_context(root, "quaternion conjugate has the wrong sign", paths)
    assert next(iter(context.files)) == "zz/quaternion.py"


def test_the_prompt_shows_excerpts_and_the_map(tmp_path: Path) -> None:
    from acr_bot.domain import Task
    from acr_bot.fixing.context import Context
    from acr_bot.fixing.prompts import task_message

    context = Context(files={"a.py": "x = 1\n"}, excerpts={"b.py": "...\n10| y = 2\n...\n"},
                      repo_map="c.py: Thing, run")
    text = task_message(Task(id="t", title="fix y"), context, "pytest", "1 failed")
    assert "b.py (excerpt: numbered lines" in text and "10| y = 2" in text
    assert "# Other files (path: top-level definitions)\nc.py: Thing, run" in text
    assert context.shown == ("a.py", "b.py")
