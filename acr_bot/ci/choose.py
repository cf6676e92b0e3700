"""Which job of the repository's CI runs the tests, and which of its steps does.

Every job of a workflow that runs on pushes or pull requests is a candidate, except deploy,
release, docs, lint, spelling, typing and benchmark jobs. A candidate is resolved for its
matrix entry (matrix.py) and needs a step that runs a known test runner (commands.py), or,
weaker, a step named "tests" that installs and checks nothing. The best candidate runs on
Linux, with a known runner of the repository's language, in a job that says it tests and is
no variant (minimum versions, integration, Windows...); file and job order break ties, and a
tie between different commands is reported, never passed over in silence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from acr_bot.ci.commands import Script, is_check, read_script
from acr_bot.ci.matrix import Choice, choose, combinations
from acr_bot.ci.resolve import shell_form
from acr_bot.ci.workflows import Job, JobSource, Step, is_linux, resolve_job, runs_on

NOT_A_TEST_JOB = re.compile(
    r"deploy|release|publish|\bdocs?\b|documentation|lint|spell|\btyp(e|es|ing)\b|typecheck|"
    r"mypy|pyright|format|codeql|bench|changelog|\bstale\b|\block\b|label|quality|pre-?commit|"
    r"zizmor|scorecard|dependabot", re.IGNORECASE)
VARIANT_JOB = re.compile(
    r"oldest|minimum|\bmin\b|lowest|nightly|bleeding|\bdev\b|downstream|integration|e2e|fuzz|"
    r"\bslow\b|free-?threaded|deadsnakes|pyodide|emscripten|wasm|coverage|smoke|windows|macos|"
    r"mingw|upstream|\bhead\b|master", re.IGNORECASE)
NOT_A_TEST_STEP = re.compile(r"\bdoc|bench|lint|typ(e|es|ing)\b|spell", re.IGNORECASE)
# "tests", "run_tests", "pytest", "Test with pytest"; not "latest".
TEST_NAME = re.compile(r"(?<![a-z])(py)?test(s|ing)?(?![a-z])", re.IGNORECASE)


@dataclass(frozen=True)
class Candidate:
    job: Job
    choice: Choice  # the matrix entry and why
    test: Step
    script: Script
    by_name: bool  # the step says it runs tests; its program is no runner init knows
    score: tuple[Any, ...]

    @property
    def label(self) -> str:
        return self.job.source.label


@dataclass(frozen=True)
class Pick:
    best: Candidate | None
    others: list[Candidate]  # the other candidates, best first
    assumed: str | None  # one line when init could not tell for sure


def candidates(sources: list[JobSource], language: str) -> list[Candidate]:
    """Every job that runs tests, best first."""
    found = []
    for order, source in enumerate(sources):
        if NOT_A_TEST_JOB.search(source.names):
            continue
        candidate = _candidate(source, language, order)
        if candidate is not None:
            found.append(candidate)
    return sorted(found, key=lambda c: c.score, reverse=True)


def _candidate(source: JobSource, language: str, order: int) -> Candidate | None:
    combos = combinations(source.matrix)
    choice = (choose(combos, lambda entry: is_linux(runs_on(source, entry))) if combos
              else Choice({}, "the matrix is an expression init cannot expand: no entry used"))
    job = resolve_job(source, choice.entry)
    found = test_step(job)
    if found is None:
        return None
    step, by_name = found
    script = script_of(job, step)
    family = 2 if script.family == language else 1 if script.family == "generic" else 0
    score = (is_linux(job.runs_on), not by_name, family, -_variant(job),
             bool(TEST_NAME.search(source.names)), -order)
    return Candidate(job, choice, step, script, by_name, score)


def _variant(job: Job) -> int:
    """How many signs say the job tests a variant: its names, a container image of its own,
    a checkout of another repository (tests of a downstream project)."""
    others = [s for s in job.steps if str(s.data.get("uses", "")).startswith("actions/checkout@")
              and isinstance(s.data.get("with"), dict) and s.data["with"].get("repository")]
    return len(VARIANT_JOB.findall(job.source.names)) + bool(job.container) + bool(others)


def script_of(job: Job, step: Step) -> Script:
    """What the step's script does, with `${{ env.X }}` read as X's value."""
    return read_script(shell_form(step.run, job.env)[0])


def test_step(job: Job) -> tuple[Step, bool] | None:
    """The job's test step, and whether it was found only by its name."""
    for step in job.steps:
        if step.run and script_of(job, step).runner and not NOT_A_TEST_STEP.search(
                str(step.data.get("name") or "")):
            return step, False
    for step in job.steps:
        name = str(step.data.get("name") or "")
        script = script_of(job, step)
        if step.run and TEST_NAME.search(name) and not NOT_A_TEST_STEP.search(name) and not (
                script.installs or is_check(name, step.run)):
            return step, True
    return None


def pick(found: list[Candidate], language: str, wanted: str | None = None) -> Pick:
    """The best candidate (or the one `wanted` names: `file:job` or `job`), and what was
    assumed when the choice is not clear."""
    if wanted:
        chosen = [c for c in found if _named(c, wanted)]
        if not chosen:
            return Pick(None, found, None)
        return Pick(chosen[0], [c for c in found if c is not chosen[0]], None)
    if not found:
        return Pick(None, [], None)
    best, others = found[0], found[1:]
    return Pick(best, others, _assumed(best, others, language))


def _named(candidate: Candidate, wanted: str) -> bool:
    source = candidate.job.source
    file, _, job = wanted.rpartition(":")
    ids = {source.job_id, source.called_id}
    return job in ids and (not file or file in (source.workflow.path.name,
                                                source.defined_in.path.name))


def _assumed(best: Candidate, others: list[Candidate], language: str) -> str | None:
    rivals = [c for c in others if c.score[:-1] == best.score[:-1]
              and c.test.run.strip() != best.test.run.strip()]
    how = "; pass --job FILE:JOB to choose another"
    if rivals:
        names = ", ".join(c.label for c in rivals[:3])
        return f"assumed {best.label}, the first of jobs that rank the same ({names}){how}"
    if best.by_name:
        return (f"assumed {best.label}: its step {best.test.name!r} says it runs the tests, "
                f"with a command init does not know{how}")
    if best.script.family not in (language, "generic"):
        return (f"assumed {best.label}: it runs {best.script.runner} but the repository looks "
                f"like {language}{how}")
    if not is_linux(best.job.runs_on):
        return f"assumed {best.label}: no Linux job runs the tests{how}"
    return None


def job_id(candidate: Candidate) -> str:
    """How --job names the candidate."""
    source = candidate.job.source
    if source.called_id:
        return f"{source.defined_in.path.name}:{source.called_id}"
    return f"{source.workflow.path.name}:{source.job_id}"
