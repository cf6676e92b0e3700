"""`acr-bot demo`: a real buggy project, an issue, two replayed agents, one verified and
reproduced fix, offline."""

from __future__ import annotations

import json
import shlex
import sys
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from acr_bot import app
from acr_bot.config import Settings
from acr_bot.fixing.edits import format_edits, make_edits
from acr_bot.gitrepo import git
from acr_bot.memory.store import Memory
from acr_bot.report import explain_decision, reproduction_section, result_summary

CORE = '''\
"""Small descriptive statistics."""


def mean(values):
    """Arithmetic mean of a non-empty sequence."""
    if not values:
        raise ValueError("mean of empty data")
    return sum(values) / len(values)


def median(values):
    """Middle value; for an even count, the mean of the two middle values."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("median of empty data")
    middle = len(ordered) // 2
    return ordered[middle]


def spread(values):
    """Largest minus smallest value."""
    return max(values) - min(values)
'''
FIXED = CORE.replace("    return ordered[middle]\n", """\
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
""")
WRONG = CORE.replace("    return ordered[middle]\n", """\
    if len(ordered) % 2 == 0:
        return ordered[middle - 1]
    return ordered[middle]
""")
TESTS = '''\
import pytest

from stats.core import mean, median, spread


def test_mean():
    assert mean([1, 2, 3, 4]) == 2.5


def test_median_odd():
    assert median([3, 1, 2]) == 2


def test_median_even():
    assert median([4, 1, 3, 2]) == 2.5


def test_median_empty():
    with pytest.raises(ValueError):
        median([])


def test_spread():
    assert spread([5, 1, 9]) == 8
'''
TASK = """median() is wrong for lists with an even number of values

`median([4, 1, 3, 2])` returns 3, but the median of an even count is the mean of the two
middle values: 2.5. tests/test_core.py::test_median_even fails:

    E       assert 3 == 2.5
    E        +  where 3 = median([4, 1, 3, 2])
"""


# The demo's issue: a user's report, on a project whose tests do not cover even counts (they
# pass), so the fix must bring a test that reproduces it.
ISSUE = """median() is wrong for lists with an even number of values

`median([4, 1, 3, 2])` returns 3, but the median of an even count is the mean of the two
middle values: 2.5.
"""
COVERED = TESTS.replace('''def test_median_even():
    assert median([4, 1, 3, 2]) == 2.5


''', "")
REPRODUCTION = """


def test_median_of_an_even_count_is_the_mean_of_the_middle_two():
    assert median([4, 1, 3, 2]) == 2.5
"""


def _reply(explanation: str, blocks: str) -> str:
    return f"{explanation}\n\n{blocks}"


def replay_models() -> dict[str, object]:
    """Three scripted single-prompt models: a wrong fix, an edit that does not apply, a real
    fix (the `edit` harness; benchmarks and Action tests use them)."""
    wrong = format_edits(make_edits("stats/core.py", CORE, WRONG))
    stale = ("stats/core.py\n<<<<<<< SEARCH\n    return values[len(values) // 2]\n=======\n"
             "    return statistics.median(values)\n>>>>>>> REPLACE\n")
    right = format_edits(make_edits("stats/core.py", CORE, FIXED))
    return {"models": {
        "mini": {"input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07, "replies": [
            {"text": _reply("For even counts, return the lower middle value.", wrong)}]},
        "mid": {"input_cost_per_token": 1e-06, "output_cost_per_token": 4e-06, "replies": [
            {"text": _reply("Use the statistics module.", stale)}]},
        "pro": {"input_cost_per_token": 5e-06, "output_cost_per_token": 2.5e-05, "replies": [
            {"text": _reply("Average the two middle values when the count is even.", right)}]},
    }}


def _turn(thought: str, command: str, match: str | None = None) -> dict[str, object]:
    """One agent turn: a THOUGHT and one bash block, used once (in order unless `match`)."""
    reply: dict[str, object] = {"text": f"THOUGHT: {thought}\n\n```bash\n{command}\n```\n",
                                "times": 1}
    if match:
        reply["match"] = match
    return reply


def _edit(new: str) -> str:
    """A shell command that makes median() return as `new` (Python lines) says."""
    return f"""python3 - <<'EOF'
from pathlib import Path
path = Path("stats/core.py")
path.write_text(path.read_text().replace(
    "    return ordered[middle]\\n", {new!r}))
EOF"""


def agent_models(python: str) -> dict[str, object]:
    """Two scripted agents for the issue: mini changes the code without a test (sent back,
    then rejected: nothing shows the issue fixed); pro writes a test that fails, fixes the
    code, runs the suite and submits."""
    tests = f"{python} -m pytest -q -p no:cacheprovider 2>&1 | tail -1"
    submit = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
    lower = ("    if len(ordered) % 2 == 0:\n        return ordered[middle - 1]\n"
             "    return ordered[middle]\n")
    mean = ("    if len(ordered) % 2:\n        return ordered[middle]\n"
            "    return (ordered[middle - 1] + ordered[middle]) / 2\n")
    test = f"cat >> tests/test_core.py <<'EOF'{REPRODUCTION}EOF"
    return {"models": {
        "mini": {"input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07, "replies": [
            _turn("Find median.", "grep -n 'return ordered' stats/core.py"),
            _turn("For an even count, return the lower middle value.", _edit(lower)),
            _turn("Run the tests.", tests),
            _turn("All green: submit.", submit),
            _turn("The tests pass; I have nothing better: submit again.", submit,
                  match="rejected it")]},
        "pro": {"input_cost_per_token": 5e-06, "output_cost_per_token": 2.5e-05, "replies": [
            _turn("Find where median is defined.", "grep -rn 'def median' --include=*.py ."),
            _turn("Read the function with line numbers.", "nl -ba stats/core.py | sed -n '12,19p'",
                  match=r"stats/core\.py:\d+:def median"),
            _turn("First a test that reproduces the issue, next to the other median tests.", test),
            _turn("It must fail now.", f"{python} -m pytest -q -p no:cacheprovider "
                  "tests/test_core.py -k even 2>&1 | tail -1"),
            _turn("It fails (3 != 2.5). For an even count, average the two middle values.",
                  _edit(mean), match=r"1 failed"),
            _turn("Run the whole suite.", tests),
            _turn("5 passed: submit the change and its test.", submit, match=r"5 passed")]},
    }}


def build_project(root: Path, failing_test: bool = True) -> Path:
    """A git repo with the bug committed, and a failing test (or, for the issue, tests that
    do not cover it)."""
    project = root / "stats-project"
    (project / "stats").mkdir(parents=True)
    (project / "tests").mkdir()
    (project / "stats" / "__init__.py").write_text("")
    (project / "stats" / "core.py").write_text(CORE)
    (project / "tests" / "test_core.py").write_text(TESTS if failing_test else COVERED)
    (project / "pytest.ini").write_text("[pytest]\ntestpaths = tests\npythonpath = .\n")
    (project / ".gitignore").write_text("__pycache__/\n.pytest_cache/\n")
    git(project, "init", "--quiet", "--initial-branch=main")
    git(project, "add", "-A")
    git(project, "commit", "--quiet", "-m", "stats: mean, median, spread")
    return project


def run_demo(out: Path | None, echo: Callable[[str], None]) -> int:
    root = Path(out) if out else Path(tempfile.mkdtemp(prefix="acr-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    if (root / "stats-project").exists():
        raise SystemExit(f"{root / 'stats-project'} already exists: pick an empty --out")
    project = build_project(root, failing_test=False)
    replay = root / "demo-models.json"
    python = shlex.quote(sys.executable)
    replay.write_text(json.dumps(agent_models(python), indent=2))
    echo(_intro(project, replay))
    # cost_weight 0.2: a verified fix is worth $5 here, so an agent on the pricier model is
    # worth trying after the cheap one failed.
    settings = replace(Settings(), models=("replay/mini", "replay/pro"), harness="agent",
                       replay_file=replay, test_command=f"{python} -m pytest -q",
                       cost_weight=0.2)
    task = app.task_from_text(ISSUE)
    result = app.fix(project, task, settings, echo=echo)
    echo("\n" + explain_decision(result.decisions[0]) if result.decisions else "")
    echo("\n" + result_summary(result))
    if result.winner is not None:
        echo("\nThe PR says (from its text):\n" + reproduction_section(result.winner))
    _show_outcome(project, settings, task, result.branch, echo)
    return 0 if result.outcome == "fixed" else 1


def _intro(project: Path, replay: Path) -> str:
    return textwrap.dedent(f"""\
        acr-bot demo
        Project: {project} (a real git repo; its tests pass)
        Issue:   {ISSUE.splitlines()[0]}
        Models:  replay/mini and replay/pro, each an AGENT with a shell in the project: one
                 command per turn, the output goes back, it submits when done. Their turns
                 are REPLAYED from {replay.name}: scripted answers through litellm's real
                 call path, offline, no API key; the commands really run.
                 The tests pass before any change, so a fix is accepted only with a test
                 that fails without it and passes with it (a reproduction).
                 mini changes the code but writes no test; pro writes a test that fails,
                 fixes the function, runs the tests and submits.
        """)


def _show_learning(project: Path, settings: Settings, task: Any, memory: Memory,
                   echo: Callable[[str], None]) -> None:
    """Route the same task again: the memory now holds what happened."""
    _, decision = app.route(task, settings, memory, repo=project)
    echo("\nRouting the same task again (`acr-bot route`): the memory holds this run, so the "
         "task goes\nstraight to the model that verified a fix for it:")
    echo(explain_decision(decision))


def _show_outcome(project: Path, settings: Settings, task: object, branch: str | None,
                  echo: Callable[[str], None]) -> None:
    memory = Memory.load(project / settings.memory_path)
    echo(f"\nMemory: {project / settings.memory_path} now holds {len(memory.records)} records:")
    for r in memory.records:
        echo(f"  {r.id}  attempt {r.attempt}  {r.model:<12} {r.outcome:<13} ${r.cost_usd:.5f}")
    if branch:
        echo(f"\nThe fix is on branch {branch}; your branch and files were not touched:")
        echo(git(project, "log", "--oneline", "-1", branch))
        echo(git(project, "diff", "main", branch))
    _show_learning(project, settings, task, memory, echo)
    echo(textwrap.dedent(f"""
        Next steps
          cd {project} && git log --oneline --all
          Real models: acr-bot fix --repo . --task {shlex.quote(ISSUE.splitlines()[0])} \\
            --models gpt-5-mini,claude-sonnet-4-6
          (set OPENAI_API_KEY / ANTHROPIC_API_KEY; any litellm model id works)"""))
