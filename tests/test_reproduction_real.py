"""Issue #16 on real code: a fix to an issue is published only with a test that reproduces it.

The five real bugs of tests/test_real_repos.py (released sdists, fetched once by .ci/run), each
with the upstream fix reverted AND the fix's own upstream test removed: the suite is green before
any change, and the task is the issue's text, naming no test. Replayed models, cheapest first:

| model             | harness | submits                                              | expected |
|-------------------|---------|------------------------------------------------------|----------|
| wrong-no-test     | edit    | a wrong fix, no test                                 | no_reproduction |
| wrong-weak-test   | edit    | a wrong fix + a test that passes on the unchanged code | no_reproduction |
| wrong-syntax-test | agent   | a wrong fix + a new test file with a syntax error (sent back, it submits again) | rejected |
| upstream          | edit    | the upstream fix + the upstream test                 | passed |
| agent             | agent   | the upstream fix, no test; sent back, it adds the upstream test | passed |

Each wrong fix breaks none of the remaining tests: before issue #16, the cascade published
wrong-no-test's fix in all five cases, and wrong-weak-test alone was published in all five too.
The syntax-error test is a new file (the edit harness refuses a Python file that does not
parse, so an agent writes it); before the rule it was published in four cases, where the test
command names its test files and so never collects it (in cachetools the whole suite runs, and
the broken file failed the run with the whole patch).

Run with `-s` to print the table of case, model, expected and observed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from acr_bot import app
from acr_bot.config import Settings
from acr_bot.domain import Attempt, FixResult
from acr_bot.gitrepo import git
from acr_bot.memory.store import Memory
from acr_bot.routing.features import task_kind
from acr_bot.verify.verdict import named_tests
from tests.support.agent import SUBMIT, agent_model, submit, turn
from tests.test_real_repos import (
    BO_BUGGY,
    BO_FILES,
    BO_FIXED,
    BOLTONS,
    CACHETOOLS,
    CT_BUGGY,
    CT_FILE,
    CT_FIXED,
    CT_WRONG,
    MI_BUGGY,
    MI_FILE,
    MI_FIXED,
    MORE_ITERTOOLS,
    SEMVER,
    SV_BUGGY,
    SV_FILE,
    SV_FIXED,
    SV_RETURN,
    TOOLZ,
    TZ_BUGGY,
    TZ_FILE,
    TZ_FIXED,
    Case,
    Edit,
    Model,
    answer,
    checkout,
    python_on_path,  # noqa: F401  (a fixture: `python` is this interpreter)
    swap,
)

# What the agent is told when its submission is sent back for want of a reproduction
# (fixing/loop.py): the replayed agent adds its test only after reading it.
SENT_BACK = r"(?i)reproduc"

Snippet = tuple[str, str, str]  # path, old text, new text: one replacement in one file


def edit(snippet: Snippet) -> Edit:
    path, old, new = snippet
    return path, swap(old, new)


def undo(snippet: Snippet) -> Edit:
    path, old, new = snippet
    return path, swap(new, old)


def python_edit(*snippets: Snippet) -> str:
    """The agent's edit: a `python - <<'EOF'` script making each replacement."""
    return ("python - <<'EOF'\nfrom pathlib import Path\n\n"
            f"for name, old, new in {list(snippets)!r}:\n"
            "    path = Path(name)\n    text = path.read_text()\n"
            "    assert text.count(old) == 1, name\n"
            "    path.write_text(text.replace(old, new))\nEOF")


def added_test(snippet: Snippet) -> str:
    """The name of the test function a snippet adds."""
    [name] = set(re.findall(r"def (test_\w+)", snippet[2])) - set(re.findall(
        r"def (test_\w+)", snippet[1]))
    return name


@dataclass(frozen=True)
class Issue:
    """A real bug as an issue, with what each replayed model submits."""

    case: Case  # sdist, test command; its revert undoes the fix (the tests are taken out below)
    task: str  # the issue's text: it names no test
    fix: tuple[Snippet, ...]  # the upstream fix
    tests: tuple[Snippet, ...]  # the upstream tests, where they were
    wrong: Snippet  # a wrong fix that breaks none of the remaining tests
    weak: Snippet  # a test that passes on the unchanged code
    broken: tuple[str, str]  # a new test file (path, text) that has a syntax error
    look: tuple[str, str]  # the agent's (thought, command) to read the code
    check: tuple[str, str]  # the agent's (thought, command) to run the issue's example

    @property
    def base(self) -> Case:
        """The case as the repository is before any change: fix reverted, tests removed."""
        return replace(self.case, task=self.task, models=self.edit_models,
                       revert=(*self.case.revert, *map(undo, self.tests)))

    @property
    def edit_models(self) -> tuple[Model, ...]:
        return (
            Model("wrong-no-test", "a wrong fix, no test", (edit(self.wrong),), False),
            Model("wrong-weak-test", "a wrong fix + a test that passes on the unchanged code",
                  (edit(self.wrong), edit(self.weak)), False),
            Model("upstream", "the upstream fix + the upstream test",
                  (*map(edit, self.fix), *map(edit, self.tests)), True),
        )

    def syntax_agent(self) -> list[dict[str, Any]]:
        """wrong-syntax-test: the wrong fix and a new test file that does not parse, named
        after the sentinel so it is kept; sent back, it submits the same again."""
        path, text = self.broken
        return [turn(python_edit(self.wrong), "Fix the code."),
                turn(f"cat <<'EOF' > {path}\n{text}EOF", "Add a regression test."),
                turn(submit(path), "Submit the fix and its new test."),
                turn(submit(path), "The fix is right; submit it again.", times=None)]

    def fixing_agent(self) -> list[dict[str, Any]]:
        """The upstream fix without a test; after the send-back, the first upstream test."""
        return [turn(self.look[1], self.look[0]),
                turn(python_edit(*self.fix), "Fix it as the issue describes."),
                turn(self.check[1], self.check[0]),
                turn(SUBMIT, "The example works now; submit the fix."),
                turn(python_edit(self.tests[0]), "acr-bot wants a test that reproduces the "
                     "issue: add one next to the related tests.", match=SENT_BACK),
                turn(SUBMIT, "Submit the fix with its test.")]


# --- cachetools 8.0.2: `_Timer.__deepcopy__` ---------------------------------------------------

CT_TTL_TEST = '''    def test_ttl_deepcopy_timer(self):
        import copy

        class DeepCopyTimer(Timer):
            def __deepcopy__(self, memo):
                return copy.copy(self)

        source = TTLCache[int, int, int](maxsize=2, ttl=1, timer=DeepCopyTimer())
        source[1] = 1

        # a timer may define __deepcopy__ itself
        cache = copy.deepcopy(source)
        self.assertEqual([1], list(cache))

        # the copy has a timer of its own
        cache.timer.tick()
        self.assertEqual([], list(cache))
        self.assertEqual([1], list(source))

'''
CT_TLRU_TEST = '''    def test_tlru_deepcopy_timer(self):
        import copy

        class DeepCopyTimer(Timer):
            def __deepcopy__(self, memo):
                return copy.copy(self)

        source = TLRUCache[int, int, int](
            maxsize=2, ttu=lambda _, v, t: t + v, timer=DeepCopyTimer()
        )
        source[1] = 1

        # a timer may define __deepcopy__ itself
        cache = copy.deepcopy(source)
        self.assertEqual([1], list(cache))

        # the copy has a timer of its own
        cache.timer.tick()
        self.assertEqual([], list(cache))
        self.assertEqual([1], list(source))

'''
CT_TTL_ANCHOR = "    def test_ttl_iter_modify(self):"
CT_TLRU_ANCHOR = "    def test_tlru_iter_modify(self):"
CT_WEAK = '''    def test_ttl_deepcopy(self):
        import copy

        source = TTLCache[int, int, int](maxsize=2, ttl=1, timer=Timer())
        source[1] = 1

        cache = copy.deepcopy(source)
        self.assertEqual([1], list(cache))

'''
CT_BROKEN = '''import copy
import unittest

from cachetools import TTLCache


class Clock:
    def __init__(self):
        self.now = 0

    def __call__(self):
        return self.now

    def __deepcopy__(self, memo):
        return copy.copy(self)


class DeepCopyTimerTest(unittest.TestCase):
    def test_deepcopy_timer(self):
        source = TTLCache(maxsize=2, ttl=1, timer=Clock()
        source[1] = 1
        cache = copy.deepcopy(source)
        self.assertEqual([1], list(cache))
'''
CT_EXAMPLE = '''import copy
from cachetools import TTLCache

class Clock:
    def __init__(self):
        self.now = 0
    def __call__(self):
        return self.now
    def __deepcopy__(self, memo):
        return copy.copy(self)

source = TTLCache(maxsize=2, ttl=1, timer=Clock())
source[1] = 1
cache = copy.deepcopy(source)
print(list(cache))
'''
CACHETOOLS_ISSUE = Issue(
    CACHETOOLS,
    "copy.deepcopy() of a TTLCache breaks when the timer defines __deepcopy__\n\n"
    "A deep copy of a TTLCache (or TLRUCache) whose timer class implements `__deepcopy__` "
    f"cannot be used:\n\n```python\n{CT_EXAMPLE}```\n\n"
    "raises `TypeError: 'Clock' object does not support the context manager protocol`: the "
    "copy's `timer` is a bare `Clock`, not the cache's timer wrapper. The copy should work, "
    "with a timer of its own.\n",
    fix=((CT_FILE, CT_BUGGY, CT_FIXED),),
    tests=(("tests/test_ttl.py", CT_TTL_ANCHOR, CT_TTL_TEST + CT_TTL_ANCHOR),
           ("tests/test_tlru.py", CT_TLRU_ANCHOR, CT_TLRU_TEST + CT_TLRU_ANCHOR)),
    wrong=(CT_FILE, CT_BUGGY, CT_WRONG),  # the copy shares the timer
    weak=("tests/test_ttl.py", CT_TTL_ANCHOR, CT_WEAK + CT_TTL_ANCHOR),
    broken=("tests/test_deepcopy_timer.py", CT_BROKEN),
    look=("The cache wraps its timer; see how the wrapper is copied.",
          "grep -n 'class _Timer' -A 30 src/cachetools/__init__.py"),
    check=("Run the example from the issue.",
           f"PYTHONPATH=src python - <<'EOF'\n{CT_EXAMPLE}EOF"),
)

# --- boltons 26.2.0 (#458): `addlist` and one-shot iterables, in two files ----------------------

BO_TEST = '''def test_addlist_iterator():
    # the docstring promises "tuples and other sequences and iterables work",
    # and a one-shot iterator used to leave the OMD internally inconsistent
    omd = OMD()
    omd.addlist('a', iter([1, 2, 3]))
    omd.addlist('b', (x for x in [4, 5]))

    assert omd.keys() == ['a', 'b']
    assert omd.getlist('a') == [1, 2, 3]
    assert omd.getlist('b') == [4, 5]
    assert omd.get('a') == 3
    assert len(list(omd.iteritems(multi=True))) == 5

    e_omd = OMD()
    e_omd.addlist('a', (x for x in []))
    assert len(e_omd) == 0
    assert e_omd.keys() == []
    assert e_omd.get('a') is None


'''
BO_ANCHOR = "def test_pop_all():"
BO_WEAK = '''def test_addlist_list():
    omd = OMD()
    omd.addlist('a', [1, 2, 3])
    assert omd.getlist('a') == [1, 2, 3]
    assert omd.get('a') == 3


'''
BO_BROKEN = '''from boltons.dictutils import OMD


def test_addlist_generator():
    omd = OMD()
    omd.addlist('a', (x for x in [1, 2, 3])
    assert omd.getlist('a') == [1, 2, 3]
'''
BOLTONS_ISSUE = Issue(
    BOLTONS,
    "OrderedMultiDict.addlist() loses values given as a generator\n\n"
    "The docstring of `addlist` says tuples and other sequences and iterables work, but a "
    "one-shot iterator leaves the dict inconsistent:\n\n```python\n"
    "from boltons.dictutils import OMD\n\nomd = OMD()\nomd.addlist('a', iter([1, 2, 3]))\n"
    "omd.keys()        # ['a']\nomd.getlist('a')  # []\n"
    "omd.get('a')      # IndexError: list index out of range\n```\n\n"
    "urlutils keeps its own copy of OrderedMultiDict, with the same code.\n",
    fix=tuple((path, BO_BUGGY, BO_FIXED) for path in BO_FILES),
    tests=(("tests/test_dictutils.py", BO_ANCHOR, BO_TEST + BO_ANCHOR),),
    wrong=(BO_FILES[1], BO_BUGGY, BO_FIXED),  # urlutils' copy only
    weak=("tests/test_dictutils.py", BO_ANCHOR, BO_WEAK + BO_ANCHOR),
    broken=("tests/test_addlist_generator.py", BO_BROKEN),
    look=("Find addlist in both copies of OrderedMultiDict.",
          "grep -n 'def addlist' -A 20 boltons/dictutils.py boltons/urlutils.py"),
    check=("Run the example from the issue.",
           "python -c \"from boltons.dictutils import OMD; omd = OMD(); "
           "omd.addlist('a', iter([1, 2, 3])); print(omd.getlist('a'), omd.get('a'))\""),
)

# --- more-itertools 11.2.0: `value_chain` swallowing a TypeError -------------------------------

MI_TEST = '''    def test_type_error_while_iterating(self):
        # A TypeError raised while consuming an argument means the argument
        # is broken, not that it is a scalar - it should propagate.
        def gen():
            yield 1
            yield 2
            raise TypeError('failure inside the iterable')

        it = mi.value_chain(gen(), 3)
        self.assertEqual([next(it), next(it)], [1, 2])
        with self.assertRaises(TypeError):
            next(it)

'''
MI_ANCHOR = "    def test_type_error_from_iter(self):"
# Re-raises for sized containers only: a generator's TypeError is still swallowed, and (unlike
# test_real_repos' wrong fix) an object whose __iter__ raises still comes out as is.
MI_WRONG = '''        try:
            yield from value
        except TypeError:
            if hasattr(value, '__len__'):  # a container: its TypeError is real
                raise
            yield value
'''
MI_WEAK = '''    def test_iterable_then_scalar(self):
        self.assertEqual(list(mi.value_chain([1, 2], 3)), [1, 2, 3])

'''
MI_BROKEN = '''from unittest import TestCase

import more_itertools as mi


class ValueChainTypeErrorTests(TestCase):
    def test_type_error_propagates(self):
        def gen():
            yield 1
            raise TypeError('broken')

        with self.assertRaises(TypeError):
            list(mi.value_chain(gen(), 3)
'''
MI_EXAMPLE = '''import more_itertools as mi

def gen():
    yield 1
    yield 2
    raise TypeError('failure inside the iterable')

try:
    print(list(mi.value_chain(gen(), 3)))
except TypeError as exc:
    print('raised', exc)
'''
MORE_ITERTOOLS_ISSUE = Issue(
    MORE_ITERTOOLS,
    "value_chain() swallows a TypeError raised while iterating an argument\n\n"
    "```python\nimport more_itertools as mi\n\ndef gen():\n    yield 1\n    yield 2\n"
    "    raise TypeError('failure inside the iterable')\n\n"
    "list(mi.value_chain(gen(), 3))\n# [1, 2, <generator object gen at 0x7f...>, 3]\n```\n\n"
    "A TypeError raised while consuming an argument means the argument is broken, not that "
    "it is a scalar: it should propagate. Only an argument that cannot be iterated at all "
    "should come out as is.\n",
    fix=((MI_FILE, MI_BUGGY, MI_FIXED),),
    tests=(("tests/test_more.py", MI_ANCHOR, MI_TEST + MI_ANCHOR),),
    wrong=(MI_FILE, MI_BUGGY, MI_WRONG),
    weak=("tests/test_more.py", MI_ANCHOR, MI_WEAK + MI_ANCHOR),
    broken=("tests/test_value_chain.py", MI_BROKEN),
    look=("Read value_chain.", "grep -n 'def value_chain' -A 35 more_itertools/more.py"),
    check=("Run the example from the issue.", f"python - <<'EOF'\n{MI_EXAMPLE}EOF"),
)

# --- semver 3.1.1 (#486): `next_version` keeps the build of `rc3` -------------------------------

SV_TEST = '''

def test_issue_484_old_style_drops_build():
    """Build metadata is dropped, as it is for dot-separated prereleases."""
    v = Version.parse("1.2.3-rc3+build.5")
    assert v.next_version("prerelease").build is None
'''
SV_ANCHOR = '    assert str(v.next_version("prerelease", "beta")) == "1.2.3-beta3"\n'
SV_WEAK = '''

def test_dotted_prerelease_drops_build():
    v = Version.parse("1.2.3-rc.3+build.5")
    assert v.next_version("prerelease").build is None
'''
SV_BROKEN = '''from semver import Version


def test_old_style_prerelease_drops_build():
    v = Version.parse("1.2.3-rc3+build.5"
    assert v.next_version("prerelease").build is None
'''
SEMVER_ISSUE = Issue(
    SEMVER,
    "next_version('prerelease') keeps the build metadata of an old-style prerelease\n\n"
    "```python\n>>> from semver import Version\n"
    ">>> Version.parse('1.2.3-rc.3+build.5').next_version('prerelease')\n"
    "Version(major=1, minor=2, patch=3, prerelease='rc.4', build=None)\n"
    ">>> Version.parse('1.2.3-rc3+build.5').next_version('prerelease')\n"
    "Version(major=1, minor=2, patch=3, prerelease='rc4', build='build.5')\n```\n\n"
    "Since #484 `rc3` bumps to `rc4`, but the build metadata stays. It should be dropped, "
    "as it is for `rc.3`.\n",
    fix=((SV_FILE, SV_BUGGY, SV_FIXED),),
    tests=(("tests/test_issue484.py", SV_ANCHOR, SV_ANCHOR + SV_TEST),),
    # drops the build only when the bump rolls over to the next patch
    wrong=(SV_FILE, SV_RETURN, SV_RETURN.replace("return candidate.bump",
                                                 "return candidate.replace(build=None).bump")),
    weak=("tests/test_issue484.py", SV_ANCHOR, SV_ANCHOR + SV_WEAK),
    broken=("tests/test_next_version_build.py", SV_BROKEN),
    look=("Find the old-style prerelease branch of next_version.",
          "grep -n 'old-style' -A 16 src/semver/version.py"),
    check=("Run the example from the issue.",
           "PYTHONPATH=src python -c \"from semver import Version; "
           "print(repr(Version.parse('1.2.3-rc3+build.5').next_version('prerelease')))\""),
)

# --- toolz 1.2.0: `interpose` of an empty sequence ---------------------------------------------

TZ_TEST = '''def test_interpose_empty():
    assert list(interpose("a", [])) == []


'''
TZ_ANCHOR = "def test_frequencies():"
TZ_WEAK = '''def test_interpose_one():
    assert list(interpose("a", [1])) == [1]


'''
TZ_BROKEN = '''from toolz import interpose


def test_interpose_empty_sequence():
    assert list(interpose("a", []) == []
'''
TOOLZ_ISSUE = Issue(
    TOOLZ,
    "interpose() raises StopIteration for an empty sequence\n\n"
    "```python\n>>> from toolz import interpose\n>>> list(interpose('a', []))\n"
    "Traceback (most recent call last):\n  ...\nStopIteration\n```\n\n"
    "Its own docstring says this gives `[]`.\n",
    fix=((TZ_FILE, TZ_BUGGY, TZ_FIXED),),
    tests=(("toolz/tests/test_itertoolz.py", TZ_ANCHOR, TZ_TEST + TZ_ANCHOR),),
    wrong=(TZ_FILE, "zip(itertools.repeat(el), seq))",  # as test_real_repos' TZ_WRONG
           "zip(itertools.repeat(el), seq or [None]))"),
    weak=("toolz/tests/test_itertoolz.py", TZ_ANCHOR, TZ_WEAK + TZ_ANCHOR),
    broken=("toolz/tests/test_interpose_empty.py", TZ_BROKEN),
    look=("Read interpose.", "grep -n 'def interpose' -A 12 toolz/itertoolz.py"),
    check=("Run the example from the issue.",
           "python -c \"from toolz import interpose; print(list(interpose('a', [])))\""),
)

ISSUES = [CACHETOOLS_ISSUE, BOLTONS_ISSUE, MORE_ITERTOOLS_ISSUE, SEMVER_ISSUE, TOOLZ_ISSUE]
IDS = [issue.case.name for issue in ISSUES]

# The fix loop's models, cheapest first: name, harness, what it does, expected outcomes, price
# per input token (output: 4 times that). Cheapest-first ranks by an attempt's typical cost, and
# an agent attempt reads over ten times the tokens of an edit (app.TYPICAL_TOKENS), so the
# upstream model is priced well above the agent that comes before it.
LOOP = (
    ("wrong-no-test", "edit", "a wrong fix, no test", {"no_reproduction"}, 1e-7),
    ("wrong-weak-test", "edit", "a wrong fix + a test that passes on the unchanged code",
     {"no_reproduction"}, 2e-7),
    ("wrong-syntax-test", "agent", "a wrong fix + a new test file with a syntax error; sent "
     "back, submits it again", {"no_reproduction", "tests_failed"}, 3e-7),
    ("upstream", "edit", "the upstream fix + the upstream test", {"passed"}, 1e-5),
)


def fix(root: Path, issue: Issue, models: tuple[str, ...], replay: Path,
        harness: str) -> FixResult:
    settings = replace(Settings(), models=models, replay_file=replay, policy="cheapest-first",
                       llm_retries=0, max_attempts=len(models), test_timeout=120,
                       test_command=issue.case.test_command, harness=harness)
    return app.fix(root, app.task_from_text(issue.task), settings)


def row(case: str, model: str, expected: str, attempt: Attempt | None) -> None:
    """One line of the README table (printed with -s)."""
    if attempt is None:
        observed = "(not reached)"
    else:
        tests = ", ".join(attempt.reproduction)
        observed = f"{attempt.outcome}: {attempt.detail}" + (f" [reproduced by {tests}]"
                                                             if tests else "")
    print(f"| {case} | {model} | {expected} | {observed} |")


def reproduces(attempt: Attempt, names: list[str]) -> bool:
    """Each test named is among the attempt's reproduction (JUnit ids: module.Class::name)."""
    return all(any(re.search(rf"\b{name}(\[|$)", test_id) for test_id in attempt.reproduction)
               for name in names)


def branch_files(root: Path, result: FixResult) -> list[str]:
    return git(root, "diff", "--name-only", "main", result.branch or "").split()


# --- the tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("issue", ISSUES, ids=IDS)
def test_each_issue_reads_as_an_issue(issue: Issue) -> None:
    """The task names no test and is not a test-failure report: the bot goes on (no
    nothing_to_fix), and the only reproduction is one a model writes."""
    assert named_tests(issue.task) == ()
    assert task_kind(issue.task) != "test-failure"
    for name in [*map(added_test, issue.tests), added_test(issue.weak)]:
        assert name not in issue.task


@pytest.mark.usefixtures("python_on_path")
@pytest.mark.parametrize("issue", ISSUES, ids=IDS)
def test_cheapest_first_publishes_only_the_reproduced_fix(
        issue: Issue, tmp_path: Path, make_replay) -> None:
    case = issue.base
    root = checkout(case, tmp_path)
    edits = dict(zip(("wrong-no-test", "wrong-weak-test", "upstream"), issue.edit_models))
    replies = {name: ([{"text": answer(root, edits[name])}] if harness == "edit"
                      else issue.syntax_agent()) for name, harness, *_ in LOOP}
    replay = make_replay({name: agent_model(replies[name], price)
                          for name, _, _, _, price in LOOP})
    arms = tuple(f"replay/{name}" + ("@agent" if harness == "agent" else "")
                 for name, harness, *_ in LOOP)
    result = fix(root, issue, arms, replay, "edit")
    by_arm = {a.model: a for a in result.attempts}
    for arm, (name, harness, role, expected, _) in zip(arms, LOOP):
        row(case.name, f"{name} ({harness}): {role}", " or ".join(sorted(expected)),
            by_arm.get(arm))

    assert result.baseline is not None and result.baseline.green, "the suite must be green"
    assert [a.model for a in result.attempts] == list(arms)
    for (name, _, _, expected, _), attempt in zip(LOOP, result.attempts):
        assert attempt.outcome in expected, (name, attempt.outcome, attempt.detail)
    *rejected, published = result.attempts
    for attempt in rejected:
        assert attempt.reproduction == () and attempt.detail, attempt
    # What the next model is told names the weak test, which passed on the unchanged code.
    assert added_test(issue.weak) in rejected[1].feedback, rejected[1].feedback
    assert reproduces(published, [added_test(t) for t in issue.tests]), published.reproduction
    # Published: the upstream fix and its tests, nothing of the wrong models.
    assert result.outcome == "fixed" and result.model == "replay/upstream"
    assert branch_files(root, result) == sorted({p for p, _, _ in (*issue.fix, *issue.tests)})
    # The memory gives the earlier models no pass.
    records = Memory.load(root / ".acr" / "memory.json").records
    outcomes = [a.outcome for a in result.attempts]
    assert [r.outcome for r in records] == [r.outcome for r in result.records] == outcomes
    assert all(r.outcome in {"no_reproduction", "tests_failed"} for r in records[:-1])


@pytest.mark.usefixtures("python_on_path")
@pytest.mark.parametrize("issue", ISSUES, ids=IDS)
def test_an_agent_sent_back_for_a_test_adds_it_and_is_accepted(
        issue: Issue, tmp_path: Path, make_replay) -> None:
    case = issue.base
    root = checkout(case, tmp_path)
    replay = make_replay({"agent": agent_model(issue.fixing_agent())})
    result = fix(root, issue, ("replay/agent",), replay, "agent")
    attempt = result.attempts[0] if result.attempts else None
    row(case.name, "agent (agent): the upstream fix, no test; sent back, adds the upstream test",
        "passed after one send-back", attempt)

    assert result.baseline is not None and result.baseline.green
    assert attempt is not None and attempt.outcome == "passed", attempt
    # Two submissions in the one attempt: the test came after the send-back.
    assert attempt.steps == len(issue.fixing_agent()), attempt.commands
    test_file = issue.tests[0][0]
    assert reproduces(attempt, [added_test(issue.tests[0])]), attempt.reproduction
    assert result.outcome == "fixed"
    assert branch_files(root, result) == sorted({*(p for p, _, _ in issue.fix), test_file})
    assert added_test(issue.tests[0]) in git(root, "show", f"{result.branch}:{test_file}")
