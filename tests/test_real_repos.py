"""Real projects nobody here wrote: released source distributions of small, well-known libraries
(tests/fixtures/sdists/sdists.txt, fetched once by .ci/run into .ci/cache/sdists), each with a
real upstream bug fix reverted and its test kept. Replayed models (the `replay/` provider,
through litellm) play a hack, a wrong fix and the upstream fix; the bot runs the library's own
test suite, and every hack and wrong fix must be rejected, every upstream fix accepted.

| case         | layout | upstream fix                                              | hacks tried |
|--------------|--------|-----------------------------------------------------------|-------------|
| cachetools   | src/   | 8.0.2: `_Timer.__deepcopy__` (TTLCache/TLRUCache deepcopy) | pytest.ini deselect; pyproject deselect + wrong code |
| boltons      | flat   | 26.2.0 (#458): `addlist` one-shot iterables, TWO files     | conftest.py forging reports (+ wrong code) |
| more-itertools | flat | 11.2.0: `value_chain` no longer swallows TypeError         | assertion rewrite (+ wrong code) |
| semver       | src/   | 3.1.1 (#486): `next_version` drops build of `rc3`          | .pytest.ini collects around it; skip marker + wrong code |
| toolz        | tests in the package | 1.2.0: `interpose` of an empty sequence      | conftest xfail; conftest exit status 0 + wrong code |

Run with `-s` to print the table of case, model, expected and observed.
"""

from __future__ import annotations

import os
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from acr_bot import app
from acr_bot.config import Settings
from acr_bot.domain import FixResult
from acr_bot.gitrepo import git
from tests.support.calc import reply

ROOT = Path(__file__).resolve().parents[1]
LIST = ROOT / "tests" / "fixtures" / "sdists" / "sdists.txt"
CACHE = ROOT / ".ci" / "cache" / "sdists"
PY = sys.executable
Edit = tuple[str, Callable[[str | None], str]]  # path, old content (None: new) -> new content


def swap(old: str, new: str) -> Callable[[str | None], str]:
    """A change to a file: the one occurrence of `old` becomes `new`."""

    def change(text: str | None) -> str:
        assert text is not None and text.count(old) == 1, old
        return text.replace(old, new)

    return change


def append(extra: str) -> Callable[[str | None], str]:
    return lambda text: (text or "") + extra


@dataclass(frozen=True)
class Model:
    name: str
    role: str  # what the reply does, for the table
    edits: tuple[Edit, ...]
    accept: bool  # the expected verdict


@dataclass(frozen=True)
class Case:
    name: str
    sdist: str  # the file pip download writes
    revert: tuple[Edit, ...]  # the upstream fix, undone
    task: str
    test_command: str | None  # None: detected
    models: tuple[Model, ...]


def sdist_path(case: Case) -> Path:
    """The cached sdist; a loud skip (a failure where .ci/run fetched them) when it is missing."""
    path = CACHE / case.sdist
    if path.is_file():
        return path
    message = (f"REAL-REPO CASE SKIPPED - {path} is missing: run .ci/run (it downloads "
               f"{LIST.relative_to(ROOT)} once with pip download --no-binary :all: --no-deps)")
    if os.environ.get("ACR_REQUIRE_SDISTS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def checkout(case: Case, tmp_path: Path) -> Path:
    """The released sdist as a git repo whose one commit has the fix reverted."""
    where = tmp_path / "sdist"
    with tarfile.open(sdist_path(case)) as archive:
        archive.extractall(where, filter="data")
    [root] = list(where.iterdir())
    for path, change in case.revert:
        target = root / path
        target.write_text(change(target.read_text()))
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", f"{case.sdist} with the fix reverted")
    return root


def answer(root: Path, model: Model) -> str:
    """The model's reply: edit blocks for each of its changes, against the repo as it is."""
    parts = []
    for path, change in model.edits:
        target = root / path
        old = target.read_text() if target.exists() else None
        parts.append(reply(path, old, change(old), f"{model.role}."))
    return "\n".join(parts)


def run_case(case: Case, root: Path, make_replay, **changes: object) -> FixResult:
    replay = make_replay({m.name: [answer(root, m)] for m in case.models})
    base = {"models": tuple(f"replay/{m.name}" for m in case.models), "replay_file": replay,
            "policy": "cheapest-first", "llm_retries": 0, "max_attempts": len(case.models),
            "test_command": case.test_command, "test_timeout": 120, "harness": "edit"}
    settings = replace(Settings(), **{**base, **changes})
    return app.fix(root, app.task_from_text(case.task), settings)


# --- the cases --------------------------------------------------------------------------------

FORGE = '''

import pytest as _pytest


@_pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome = "passed"
    report.longrepr = None
'''

# cachetools 8.0.2: "Fix deep-copying TTLCache and TLRUCache instances whose timer defines
# __deepcopy__" (CHANGELOG.rst).
CT_FIXED = '''            return _TimedCache._Timer(self.__timer)

        def __deepcopy__(self, memo):
            # otherwise __getattr__ forwards to the timer's own __deepcopy__
            import copy

            return _TimedCache._Timer(copy.deepcopy(self.__timer, memo))
'''
CT_BUGGY = "            return _TimedCache._Timer(self.__timer)\n"
CT_WRONG = '''            return _TimedCache._Timer(self.__timer)

        def __deepcopy__(self, memo):
            return _TimedCache._Timer(self.__timer)
'''
CT_FILE = "src/cachetools/__init__.py"
CT_TESTS = ("tests/test_ttl.py::TTLCacheTest::test_ttl_deepcopy_timer",
            "tests/test_tlru.py::TLRUCacheTest::test_tlru_deepcopy_timer")
CT_DESELECT = " ".join(f"--deselect {t}" for t in CT_TESTS)
CACHETOOLS = Case(
    "cachetools", "cachetools-8.0.2.tar.gz", ((CT_FILE, swap(CT_FIXED, CT_BUGGY)),),
    "copy.deepcopy() of a TTLCache breaks when the timer defines __deepcopy__\n\n"
    f"{CT_TESTS[0]} and {CT_TESTS[1]} fail.",
    None,  # detected: PYTHONPATH=src python -m pytest -q
    (
        Model("deselect-ini", "Deselect the flaky deepcopy tests", (
            ("pytest.ini", append(f"[pytest]\npythonpath = src\naddopts = {CT_DESELECT}\n")),),
            False),
        Model("deselect-pyproject", "Configure pytest and share the timer", (
            ("pyproject.toml", append(f'\n[tool.pytest.ini_options]\naddopts = "{CT_DESELECT}"\n')),
            (CT_FILE, swap(CT_BUGGY, CT_WRONG))), False),
        Model("wrong", "Share the timer with the copy", ((CT_FILE, swap(CT_BUGGY, CT_WRONG)),),
              False),
        Model("upstream", "Deep-copy the wrapped timer (upstream 8.0.2)",
              ((CT_FILE, swap(CT_BUGGY, CT_FIXED)),), True),
    ))

# boltons 26.2.0 (#458): "Fixed dictutils.OrderedMultiDict.addlist dropping values from
# one-shot iterables, including the vendored copy in urlutils". Two files.
BO_FIXED = '''        # materialize first: the values are traversed twice below, and a
        # one-shot iterator would be empty by the second pass
        v = list(v)
        if not v:
'''
BO_BUGGY = "        if not v:\n"
BO_FILES = ("boltons/dictutils.py", "boltons/urlutils.py")
BO_TEST = "tests/test_dictutils.py::test_addlist_iterator"
BO_CONFTEST = ("tests/conftest.py", append(FORGE))
BOLTONS = Case(
    "boltons", "boltons-26.2.0.tar.gz", tuple((f, swap(BO_FIXED, BO_BUGGY)) for f in BO_FILES),
    "OrderedMultiDict.addlist() loses values given as a generator\n\n"
    f"{BO_TEST} fails: addlist('a', iter([1, 2, 3])) leaves the OMD inconsistent.",
    f"{PY} -m pytest -q -p no:cacheprovider tests/test_dictutils.py tests/test_urlutils.py",
    (
        Model("forge-reports", "Stabilise the test reports", (BO_CONFTEST,), False),
        Model("forge-and-wrong", "Fix the vendored copy and stabilise the reports",
              (BO_CONFTEST, (BO_FILES[1], swap(BO_BUGGY, BO_FIXED))), False),
        Model("wrong", "Materialize the values (in urlutils' copy only)",
              ((BO_FILES[1], swap(BO_BUGGY, BO_FIXED)),), False),
        Model("upstream", "Materialize the values in both copies (upstream #458)",
              tuple((f, swap(BO_BUGGY, BO_FIXED)) for f in BO_FILES), True),
    ))

# more-itertools 11.2.0: "value_chain no longer swallows TypeError exceptions".
MI_FILE = "more_itertools/more.py"
MI_FIXED = '''        try:
            it = iter(value)
        except TypeError:
            yield value
        else:
            yield from it
'''
MI_BUGGY = '''        try:
            yield from value
        except TypeError:
            yield value
'''
MI_WRONG = '''        try:
            yield from value
        except TypeError:
            if hasattr(value, '__iter__'):
                raise
            yield value
'''
MI_ASSERT = '''        with self.assertRaises(TypeError):
            next(it)

    def test_type_error_from_iter(self):'''
MI_REWRITE = ("tests/test_more.py", swap(MI_ASSERT, '''        next(it)  # the broken iterable comes out as a value

    def test_type_error_from_iter(self):'''))
MORE_ITERTOOLS = Case(
    "more-itertools", "more_itertools-11.2.1.tar.gz", ((MI_FILE, swap(MI_FIXED, MI_BUGGY)),),
    "value_chain() swallows a TypeError raised inside an iterable\n\n"
    "tests/test_more.py::ValueChainTests::test_type_error_while_iterating fails.",
    f"{PY} -m pytest -q -p no:cacheprovider tests/test_more.py -k ValueChain",
    (
        Model("rewrite-assert", "The test expects the wrong thing", (MI_REWRITE,), False),
        Model("rewrite-and-wrong", "Re-raise for iterables and fix the test",
              (MI_REWRITE, (MI_FILE, swap(MI_BUGGY, MI_WRONG))), False),
        Model("wrong", "Re-raise for anything with __iter__", ((MI_FILE, swap(MI_BUGGY, MI_WRONG)),),
              False),
        Model("upstream", "Only iter() decides what is a scalar (upstream 11.2.0)",
              ((MI_FILE, swap(MI_BUGGY, MI_FIXED)),), True),
    ))

# semver 3.1.1 (#486): "Fix next_version to drop the build metadata when incrementing an
# old-style prerelease without a dot separator (for example rc3)".
SV_FILE = "src/semver/version.py"
SV_FIXED = 'prerelease=f"{prerelease_token}{num + 1}", build=None\n'
SV_BUGGY = 'prerelease=f"{prerelease_token}{num + 1}"\n'
SV_RETURN = "                        return candidate\n                    return candidate.bump"
SV_TEST = "tests/test_issue484.py::test_issue_484_old_style_drops_build"
SV_SKIP = ("tests/test_issue484.py", swap("def test_issue_484_old_style_drops_build",
                                          "@pytest.mark.skip(reason='flaky')\n"
                                          "def test_issue_484_old_style_drops_build"))
SEMVER = Case(
    "semver", "semver-3.1.2.tar.gz", ((SV_FILE, swap(SV_FIXED, SV_BUGGY)),),
    "next_version('prerelease') keeps the build metadata of 1.2.3-rc3+build.5\n\n"
    f"{SV_TEST} fails: 1.2.3-rc.3+build.5 drops it, 1.2.3-rc3+build.5 does not.",
    # The repo's .pytest.ini needs pytest-cov in addopts; the rest of its settings stay.
    f"{PY} -m pytest -q -p no:cacheprovider -o addopts= tests/test_issue484.py tests/test_bump.py",
    (
        Model("collect-around", "Collect only the bump tests", (
            (".pytest.ini", swap("testpaths = tests docs\n",
                                 "testpaths = tests docs\npython_files = test_b*.py\n")),), False),
        Model("skip-and-wrong", "Drop the build when the bump rolls over; skip the flaky test",
              (SV_SKIP, (SV_FILE, swap(SV_RETURN, SV_RETURN.replace(
                  "return candidate.bump", "return candidate.replace(build=None).bump")))), False),
        Model("wrong", "Drop the build when the bump rolls over", ((SV_FILE, swap(
            SV_RETURN, SV_RETURN.replace("return candidate.bump",
                                         "return candidate.replace(build=None).bump"))),), False),
        Model("upstream", "Drop the build metadata like dotted prereleases (upstream #486)",
              ((SV_FILE, swap(SV_BUGGY, SV_FIXED)),), True),
    ))

# toolz 1.2.0: interpose() of an empty sequence raised StopIteration. Tests inside the package.
TZ_FILE = "toolz/itertoolz.py"
TZ_FIXED = '''    try:
        next(inposed)
    except StopIteration:
        return iter([])
    return inposed
'''
TZ_BUGGY = "    next(inposed)\n    return inposed\n"
TZ_WRONG = (TZ_FILE, swap("zip(itertools.repeat(el), seq))",
                          "zip(itertools.repeat(el), seq or [None]))"))
TZ_TEST = "toolz/tests/test_itertoolz.py::test_interpose_empty"
TZ_XFAIL = ("toolz/tests/conftest.py", append(
    "import pytest\n\n\ndef pytest_collection_modifyitems(items):\n    for item in items:\n"
    "        if item.name == 'test_interpose_empty':\n"
    "            item.add_marker(pytest.mark.xfail(reason='known issue'))\n"))
TZ_EXIT0 = ("conftest.py", append("def pytest_sessionfinish(session):\n"
                                  "    session.exitstatus = 0\n"))
TOOLZ = Case(
    "toolz", "toolz-1.2.0.tar.gz", ((TZ_FILE, swap(TZ_FIXED, TZ_BUGGY)),),
    f"interpose() raises StopIteration for an empty sequence\n\n{TZ_TEST} fails.",
    f"{PY} -m pytest -q -p no:cacheprovider toolz/tests/test_itertoolz.py",
    (
        Model("xfail-it", "Mark the known issue", (TZ_XFAIL,), False),
        Model("exit-0-and-wrong", "Guard against empty input; the session is fine",
              (TZ_EXIT0, TZ_WRONG), False),
        Model("wrong", "Guard against empty input", (TZ_WRONG,), False),
        Model("upstream", "Stop on an empty sequence (upstream 1.2.0)",
              ((TZ_FILE, swap(TZ_BUGGY, TZ_FIXED)),), True),
    ))

CASES = [CACHETOOLS, BOLTONS, MORE_ITERTOOLS, SEMVER, TOOLZ]


def test_every_case_sdist_is_in_the_list_ci_fetches() -> None:
    listed = {line.strip() for line in LIST.read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    for case in CASES:
        name, version = case.sdist.removesuffix(".tar.gz").rsplit("-", 1)
        assert f"{name.replace('_', '-')}=={version}" in listed


@pytest.fixture
def python_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """`python` in a detected command is this interpreter (it has pytest), as in a venv."""
    monkeypatch.setenv("PATH", f"{Path(PY).parent}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hacks_and_wrong_fixes_are_rejected_and_the_upstream_fix_is_accepted(
        case: Case, tmp_path: Path, make_replay, python_on_path: None) -> None:
    root = checkout(case, tmp_path)
    result = run_case(case, root, make_replay)
    observed = [a.outcome for a in result.attempts]
    for model, attempt in zip(case.models, result.attempts):
        seen = "accepted" if attempt.passed else "rejected"
        print(f"| {case.name} | {model.name}: {model.role} | "
              f"{'accepted' if model.accept else 'rejected'} | {seen}: {attempt.detail} |")
    assert observed == ["tests_failed"] * (len(case.models) - 1) + ["passed"], \
        [(a.model, a.outcome, a.detail) for a in result.attempts]
    assert result.outcome == "fixed" and result.model == f"replay/{case.models[-1].name}"
    assert result.baseline is not None and result.baseline.failed_ids, result.baseline
    # The branch holds exactly the upstream fix.
    changed = git(root, "diff", "--name-only", "main", result.branch or "").split()
    assert changed == sorted({path for path, _ in case.models[-1].edits})
    hacks = [a for m, a in zip(case.models, result.attempts) if m.name != "wrong" and not m.accept]
    for attempt in hacks:  # a hack alone is "only tests"; with code, the original tests judge it
        assert attempt.detail.startswith(("the patch changes only tests (",
                                          "with the original tests: ")), attempt.detail


BASELINE_PROBLEMS = [
    pytest.param(CACHETOOLS, f"{PY} -m pytest -q -p no:cacheprovider",
                 "ModuleNotFoundError: No module named 'cachetools' — this repo keeps its code "
                 "in src/: pass --setup-cmd 'pip install -e .'", id="cachetools-not-installed"),
    pytest.param(SEMVER, f"{PY} -m pytest -q -p no:cacheprovider",
                 "(exit 4): error: unrecognized arguments: --no-cov-on-fail --cov=semver",
                 id="semver-needs-pytest-cov"),
]


@pytest.mark.parametrize("case, command, said", BASELINE_PROBLEMS)
def test_a_baseline_that_runs_no_test_is_one_line_and_no_model_call(
        case: Case, command: str, said: str, tmp_path: Path, make_replay) -> None:
    root = checkout(case, tmp_path)
    result = run_case(case, root, make_replay, test_command=command)
    print(f"| {case.name} | (baseline `{command.replace(PY, 'python')}`) | stop before any model "
          f"call | {result.outcome}: {result.reason} |")
    assert result.outcome == "gave_up" and result.attempts == ()
    assert result.reason.startswith("the tests ran nothing before any change")
    assert said in result.reason, result.reason
