"""The verdict on large repositories, as JSON: the released sdists of sympy and Django (they ship
their tests), each with a real upstream bug fix reverted, judged by the bot's tiers.

    python benchmarks/large_repo.py --project sympy|django [--project ...] [--scope PATH ...]
        [--rounds N]

Per project, in one run: a first task on the base (a dry run) runs the bot's baseline
(`baseline_s`: the project's command in the sandbox, then cached); then N rounds, each a plain
suite run and a task, interleaved so that the machine's load weighs on both alike:
- the suite: the project's own test command, run plainly in the checkout (no bot);
- the task: replayed models give a wrong fix, then the upstream fix (`edit` harness, the
  `replay/` provider through litellm): the wrong fix's attempt is rejected by its first tier
  (`reject_s`), the upstream fix's attempt runs the first tier, then the full suite
  (`accept_s`; `first_tier_s` its first-tier runs). Its baseline comes from the cache
  (`second_task_baseline_skipped`).
The times are medians over the rounds (each round's under `runs`); `accept_ratio` is the median
accepted verdict over the median suite. The CPU time of the suite's processes and of the whole
task (the bot and every process it ran) is less sensitive to the load than the wall time:
`task_cpu_ratio` compares them.

The upstream fixes (sources):
- sympy 1.14.0: `EvaluateFalseTransformer.visit_Compare` (sympy issue 24288, the
  SWE-bench Verified task sympy__sympy-24661): without it `parse_expr("1 < 2",
  evaluate=False)` evaluates; its test is `test_issue_24288`.
- Django 5.2.20: `file_move_safe()` truncates the destination (ticket #36298, fixed in 5.2.1,
  docs/releases/5.2.1.txt); its test is `FileMoveSafeTests.test_file_move_ensure_truncation`.

The sdists come from PyPI (`pip download --no-binary :all: --no-deps`) into .ci/cache/sdists;
the projects' test dependencies into their own venv under .ci/cache/large-repo (pinned below).
`--scope` narrows what counts as the full suite (paths for sympy, labels for Django) when the
whole suite does not fit the time at hand; the JSON says which scope was measured.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from acr_bot import app  # noqa: E402
from acr_bot.config import Settings  # noqa: E402
from acr_bot.domain import Attempt, FixResult  # noqa: E402
from acr_bot.fixing.edits import format_edits, make_edits  # noqa: E402
from acr_bot.gitrepo import git  # noqa: E402
from acr_bot.verify.process import run_command  # noqa: E402
from acr_bot.verify.runners import with_workers  # noqa: E402
from acr_bot.verify.tiers import tier_result  # noqa: E402

CACHE = ROOT / ".ci" / "cache"
# The projects' test dependencies, pinned (sympy 1.14 needs mpmath < 1.4; Django's parallel
# runner needs tblib to report a failure from a worker).
DEPS = ("pytest==9.2.0", "pytest-xdist==3.8.0", "hypothesis==6.170.27", "mpmath==1.3.0",
        "asgiref==3.13.0", "sqlparse==0.6.1", "tblib==3.2.2")
Change = tuple[str, str, str]  # path, old text, new text


@dataclass(frozen=True)
class Project:
    requirement: str  # name==version, as pip download takes it
    sdist: str  # the file pip download writes
    fix: tuple[str, str, str]  # the upstream fix: path, its first line, the line after it
    wrong: Change  # a plausible wrong fix, on the reverted tree
    task: str
    command: str  # {py}: the projects' venv python; {scope}: the scope's paths or labels
    workers: str | None  # test_workers for the bot (pytest-xdist), None: the runner's own


SP_FILE = "sympy/parsing/sympy_parser.py"
SP_START = "    relational_operators = {\n"
SP_END = "    def flatten(self, args, func):\n"
SYMPY = Project(
    "sympy==1.14.0", "sympy-1.14.0.tar.gz", (SP_FILE, SP_START, SP_END),
    (SP_FILE, SP_END, "    relational_operators = {ast.Lt: 'Gt', ast.Gt: 'Lt', ast.Eq: 'Eq'}\n\n"
     "    def visit_Compare(self, node):\n"
     "        op = self.relational_operators[node.ops[0].__class__]\n"
     "        return ast.Call(func=ast.Name(id=op, ctx=ast.Load()),\n"
     "                        args=[self.visit(node.left), self.visit(node.comparators[0])],\n"
     "                        keywords=[ast.keyword(arg='evaluate', value=ast.Constant(False))])\n"
     "\n" + SP_END),
    "The evaluate=False parameter to parse_expr is ignored for relationals\n\n"
    "sympy/parsing/tests/test_sympy_parser.py::test_issue_24288 fails: "
    "parse_expr('1 < 2', evaluate=False) gives True instead of Lt(1, 2, evaluate=False).",
    "{py} -m pytest -q -p no:cacheprovider {scope}", "auto")

DJ_FILE = "django/core/files/move.py"
DJANGO = Project(
    "django==5.2.20", "django-5.2.20.tar.gz",
    (DJ_FILE, "                | os.O_TRUNC\n", "            ),\n"),
    (DJ_FILE, "(os.O_EXCL if not allow_overwrite else 0)",
     "(os.O_EXCL if not allow_overwrite else os.O_APPEND)"),
    "file_move_safe(allow_overwrite=True) leaves old content behind\n\n"
    "Moving a short file over a longer one across file systems keeps the tail of the longer "
    "file: the destination is not truncated (FileMoveSafeTests).",
    "cd tests && PYTHONPATH=.. {py} runtests.py --parallel auto {scope}", None)

PROJECTS = {"sympy": SYMPY, "django": DJANGO}


def sdist(project: Project) -> Path:
    """The cached sdist, downloaded once."""
    folder = CACHE / "sdists"
    path = folder / project.sdist
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-binary",
                        ":all:", "--no-deps", "--dest", str(folder), project.requirement],
                       check=True)
    return path


def project_python() -> Path:
    """The projects' venv (their test dependencies), made once."""
    venv = CACHE / "large-repo" / "venv"
    stamp = venv / ".deps"
    if stamp.is_file() and stamp.read_text() == "\n".join(DEPS):
        return venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *DEPS],
                   check=True)
    stamp.write_text("\n".join(DEPS))
    return venv / "bin" / "python"


def checkout(project: Project, where: Path) -> tuple[Path, str]:
    """The released sdist as a git repo whose one commit has the fix reverted; the file as
    released (with the fix)."""
    with tarfile.open(sdist(project)) as archive:
        archive.extractall(where, filter="data")
    [root] = list(where.iterdir())
    path, first, after = project.fix
    released = (root / path).read_text()
    start = released.index(first)
    end = released.index(after, start + len(first))
    assert released.count(first) == 1, (path, first)
    (root / path).write_text(released[:start] + released[end:])
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", f"{project.sdist} with the fix reverted")
    return root, released


def replies(project: Project, root: Path, released: str) -> dict[str, object]:
    """The replay file: a wrong fix (cheaper, tried first), then the upstream fix."""
    path = project.fix[0]
    text = (root / path).read_text()
    _, old, new = project.wrong
    assert text.count(old) == 1, (path, old)
    wrong = text.replace(old, new)

    def reply(new_text: str, note: str) -> dict[str, str]:
        return {"text": f"{note}\n\n{format_edits(make_edits(path, text, new_text))}"}

    return {"models": {
        "wrong": {"input_cost_per_token": 1e-6, "output_cost_per_token": 4e-6,
                  "replies": [reply(wrong, "A plausible fix.")]},
        "upstream": {"input_cost_per_token": 2e-6, "output_cost_per_token": 8e-6,
                     "replies": [reply(released, "The upstream fix.")]}}}


def measure(name: str, scope: list[str], timeout: float, rounds: int) -> dict[str, object]:
    project = PROJECTS[name]
    python = project_python()
    with tempfile.TemporaryDirectory(prefix=f"acr-large-{name}-") as tmp:
        work = Path(tmp)
        root, released = checkout(project, work / "src")
        command = project.command.format(py=python, scope=" ".join(scope)).strip()
        replay = work / "replay.json"
        replay.write_text(json.dumps(replies(project, root, released)))
        settings = replace(Settings(), models=("replay/wrong", "replay/upstream"),
                           replay_file=replay, policy="cheapest-first", llm_retries=0,
                           max_attempts=2, harness="edit", test_command=command,
                           test_workers=project.workers, test_timeout=timeout,
                           cache_dir=work / "cache")
        # The first task on this base runs the baseline (a dry run stops there); every task
        # after it reads the baseline from the cache.
        first = app.fix(root, app.task_from_text(f"The first task on this base\n\n"
                                                 f"{project.task}"), settings, dry_run=True,
                        echo=log, memory_file=work / "memory-0.json")
        suite_command = with_workers(command, project.workers)
        runs = []
        for number in range(1, rounds + 1):  # interleaved: the load weighs on both alike
            suite = plain_suite(suite_command, root, timeout)
            task = timed(lambda: app.fix(root, app.task_from_text(project.task), settings,
                                         echo=log, memory_file=work / f"memory-{number}.json"))
            runs.append(Round(suite, task))
    return report(name, scope, suite_command, first, runs)


@dataclass(frozen=True)
class Timed:
    value: Any
    seconds: float
    cpu_s: float  # of this process and of the processes it waited for (the tests, the syncs)


@dataclass(frozen=True)
class Round:
    suite: Timed  # a TestRun
    task: Timed  # a FixResult


def timed(call: Callable[[], Any]) -> Timed:
    started, cpu = time.monotonic(), _cpu()
    value = call()
    return Timed(value, time.monotonic() - started, _cpu() - cpu)


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    waited = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + waited.ru_utime + waited.ru_stime


def plain_suite(command: str, root: Path, timeout: float) -> Timed:
    """The project's own command in the checkout, as its CI would run it (no bot)."""
    log(f"suite: {command}")
    suite = timed(lambda: run_command(command, root, timeout=timeout, env=dict(os.environ),
                                      max_output=64_000))
    log(f"suite: exit {suite.value.exit_code} in {suite.seconds:.1f} s")
    git(root, "clean", "-fdxq")
    return suite


def report(name: str, scope: list[str], command: str, first: FixResult,
           runs: list[Round]) -> dict[str, object]:
    attempts = [{a.model: a for a in r.task.value.attempts} for r in runs]
    wrong = [a.get("replay/wrong") for a in attempts]
    upstream = [a.get("replay/upstream") for a in attempts]
    lists = {
        "suite_s": [r.suite.seconds for r in runs],
        "accept_s": [a.seconds if a else None for a in upstream],
        "reject_s": [a.seconds if a else None for a in wrong],
        "first_tier_s": [_tier1(a) for a in upstream],
        "full_tier_s": [_tier(a, "full suite") for a in upstream],
        "suite_cpu_s": [r.suite.cpu_s for r in runs],
        "task_cpu_s": [r.task.cpu_s for r in runs],
    }
    medians = {key: _median(values) for key, values in lists.items()}
    return {
        "project": name, "scope": scope or "the whole suite", "command": command,
        "rounds": len(runs), **{key: _round(value) for key, value in medians.items()},
        "suite_result": tier_result(runs[-1].suite.value),
        "baseline_s": _round(first.baseline_time.seconds) if first.baseline_time else None,
        "accept_ratio": _ratio(medians["accept_s"], medians["suite_s"]),
        "full_tier_ratio": _ratio(medians["full_tier_s"], medians["suite_s"]),
        "task_cpu_ratio": _ratio(medians["task_cpu_s"], medians["suite_cpu_s"]),
        "second_task_baseline_skipped": all(
            r.task.value.baseline_time and r.task.value.baseline_time.result == "cached"
            for r in runs),
        "outcomes": [r.task.value.outcome for r in runs],
        "runs": {key: [_round(v) for v in values] for key, values in lists.items()},
        "wrong": _attempt(wrong[-1]), "upstream": _attempt(upstream[-1]),
        "baseline": first.baseline_time.result if first.baseline_time else None,
    }


def _tier1(attempt: Attempt | None) -> float | None:
    return sum(t.seconds for t in attempt.tiers if t.name != "full suite") if attempt else None


def _tier(attempt: Attempt | None, name: str) -> float | None:
    return next((t.seconds for t in attempt.tiers if t.name == name), None) if attempt else None


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _ratio(over: float | None, under: float | None) -> float | None:
    return round(over / under, 3) if over is not None and under else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _attempt(attempt: Attempt | None) -> dict[str, object] | None:
    if attempt is None:
        return None
    return {"outcome": attempt.outcome, "detail": attempt.detail[:300],
            "tiers": [[t.name, round(t.seconds, 1), t.result] for t in attempt.tiers]}


def log(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", action="append", choices=sorted(PROJECTS), required=True)
    parser.add_argument("--scope", action="append", default=[],
                        help="narrow the suite: sympy paths or Django labels (default: all)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="plain suite runs and tasks, interleaved (medians are reported)")
    parser.add_argument("--timeout", type=float, default=7200.0, help="seconds per test run")
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    results = [measure(name, args.scope, args.timeout, args.rounds)
               for name in args.project]
    print(json.dumps({"benchmark": "large_repo", "cores": os.cpu_count(),
                      "load_before": os.getloadavg()[0], "projects": results}, indent=2))


if __name__ == "__main__":
    main()
