"""The repository's workflow files: which run on pushes and pull requests, their jobs (a job
that calls a local reusable workflow stands for the called workflow's jobs), and one job
resolved for one matrix entry: `matrix.*` and `inputs.*` replaced, steps whose `if:` is false
for that entry dropped."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acr_bot.ci.expressions import ExpressionError, Partial
from acr_bot.ci.resolve import Resolved, resolve, resolve_condition
from acr_bot.config import load_workflow
from acr_bot.errors import ConfigError

FOLDER = Path(".github") / "workflows"
TRIGGERS = frozenset({"push", "pull_request"})


@dataclass(frozen=True)
class Workflow:
    path: Path  # relative to the repository
    data: Mapping[str, Any]

    @property
    def name(self) -> str:
        """The name `workflow_run` matches: `name:`, or the file's path when there is none."""
        return str(self.data.get("name") or self.path.as_posix())

    @property
    def triggers(self) -> set[str]:
        """Its events; a push of tags only (a release) is not counted as a push."""
        on = self.data.get("on")
        if isinstance(on, str):
            return {on}
        events = {str(e) for e in on} if isinstance(on, (list, Mapping)) else set()
        push = on.get("push") if isinstance(on, Mapping) else None
        if isinstance(push, Mapping) and set(push) <= {"tags", "tags-ignore"} and push:
            events.discard("push")
        return events

    @property
    def jobs(self) -> Mapping[str, Any]:
        jobs = self.data.get("jobs")
        return jobs if isinstance(jobs, Mapping) else {}


@dataclass(frozen=True)
class JobSource:
    """A job that can run tests: its own steps, or a called reusable workflow's job."""

    workflow: Workflow  # the workflow a push or a pull request starts
    job_id: str
    job: Mapping[str, Any]  # the mapping with `steps`
    defined_in: Workflow  # where `job` is written (the reusable workflow, for a call)
    caller: Mapping[str, Any] | None = None  # the calling job (matrix, `with:`)
    called_id: str | None = None

    @property
    def label(self) -> str:
        own = f"{self.workflow.path.name}: job {self.job_id}"
        return own if self.called_id is None else (
            f"{own} -> {self.defined_in.path.name}: job {self.called_id}")

    @property
    def names(self) -> str:
        """Ids and display names, for telling a docs or lint job by its name."""
        parts = [self.job_id, str((self.caller or {}).get("name") or ""),
                 self.called_id or "", str(self.job.get("name") or "")]
        return " ".join(p for p in parts if p)

    @property
    def matrix(self) -> Any:
        strategy = (self.caller or self.job).get("strategy")
        return strategy.get("matrix") if isinstance(strategy, Mapping) else None


@dataclass(frozen=True)
class Step:
    index: int
    data: dict[str, Any]  # resolved; `if` removed when it is true for the entry
    needs: frozenset[str]  # runtime contexts it still reads (github, env, needs...)

    @property
    def name(self) -> str:
        return str(self.data.get("name") or self.data.get("run") or self.data.get("uses") or "")

    @property
    def run(self) -> str:
        return str(self.data.get("run") or "")


@dataclass(frozen=True)
class Job:
    """A job as it runs for one matrix entry."""

    source: JobSource
    entry: dict[str, Any]
    runs_on: Any
    env: dict[str, Any]
    defaults: dict[str, Any]
    steps: list[Step]
    services: dict[str, Any] = field(default_factory=dict)
    container: Any = None
    left_out: list[str] = field(default_factory=list)  # env keys that could not be resolved


def read_workflows(root: Path, skip: str = "") -> tuple[list[Workflow], list[str]]:
    """Every workflow file (sorted), and one line per file that could not be read."""
    folder = root / FOLDER
    found, problems = [], []
    for path in sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]):
        if path.name == skip:
            continue
        try:
            data = load_workflow(path)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        if isinstance(data, Mapping) and isinstance(data.get("jobs"), Mapping):
            found.append(Workflow(path.relative_to(root), data))
    return found, problems


def job_sources(workflows: list[Workflow]) -> list[JobSource]:
    """The jobs of the workflows a push or a pull request starts, in file and job order."""
    by_path = {w.path.as_posix(): w for w in workflows}
    sources: list[JobSource] = []
    for workflow in workflows:
        if not workflow.triggers & TRIGGERS:
            continue
        for job_id, job in workflow.jobs.items():
            if not isinstance(job, Mapping):
                continue
            called = by_path.get(str(job.get("uses", "")).removeprefix("./").split("@")[0])
            if called is not None:
                sources += [JobSource(workflow, str(job_id), inner, called, job, str(inner_id))
                            for inner_id, inner in called.jobs.items()
                            if isinstance(inner, Mapping) and "steps" in inner]
            elif isinstance(job.get("steps"), list):
                sources.append(JobSource(workflow, str(job_id), job, workflow))
    return sources


def contexts(source: JobSource, entry: Mapping[str, Any]) -> dict[str, Any]:
    """What init knows and the generated job cannot: the matrix entry, a call's inputs; and
    that the generated job runs on Linux (`runner.os`)."""
    known: dict[str, Any] = {"matrix": dict(entry), "runner": Partial({"os": "Linux"})}
    if source.caller is not None:
        declared = ((source.defined_in.data.get("on") or {}).get("workflow_call") or {}
                    ) if isinstance(source.defined_in.data.get("on"), Mapping) else {}
        inputs = {k: v.get("default") for k, v in (declared.get("inputs") or {}).items()
                  if isinstance(v, Mapping) and "default" in v}
        given = _safe(source.caller.get("with") or {}, known)
        if not given.needs:
            inputs.update(given.value)
        else:  # keep the inputs that do not wait for another job
            inputs.update({k: v for k, v in given.value.items() if "${{" not in str(v)})
        known["inputs"] = inputs
    return known


def runs_on(source: JobSource, entry: Mapping[str, Any]) -> Any:
    return _safe(source.job.get("runs-on"), contexts(source, entry)).value


def is_linux(label: Any) -> bool:
    text = " ".join(map(str, label)) if isinstance(label, list) else str(label or "")
    lowered = text.lower()
    return ("ubuntu" in lowered or "linux" in lowered) and not any(
        word in lowered for word in ("windows", "macos"))


def resolve_job(source: JobSource, entry: Mapping[str, Any]) -> Job:
    known = contexts(source, entry)
    env, left_out = _env(source, known)
    steps = [step for i, raw in enumerate(source.job.get("steps") or [])
             if isinstance(raw, Mapping) and (step := _step(i, raw, known)) is not None]
    defaults = {**_run_defaults(source.defined_in.data), **_run_defaults(source.job)}
    return Job(source, dict(entry), _safe(source.job.get("runs-on"), known).value, env,
               _safe(defaults, known).value, steps,
               dict(_safe(source.job.get("services") or {}, known).value),
               _safe(source.job.get("container"), known).value, left_out)


def _env(source: JobSource, known: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    merged = {**(source.defined_in.data.get("env") or {}), **(source.job.get("env") or {})}
    env, left_out = {}, []
    for key, value in merged.items():
        resolved = _safe(value, known)
        if resolved.needs - {"github", "vars", "secrets", "runner", "env"}:
            left_out.append(str(key))
        else:
            env[str(key)] = "" if resolved.value is None else resolved.value
    return env, left_out


def _step(index: int, raw: Mapping[str, Any], known: Mapping[str, Any]) -> Step | None:
    try:
        condition = resolve_condition(raw["if"], known) if "if" in raw else Resolved(True)
    except ExpressionError:
        condition = Resolved(str(raw["if"]), frozenset({"unreadable"}))
    if condition.value is False:
        return None
    body = _safe({k: v for k, v in raw.items() if k != "if"}, known)
    data = dict(body.value)
    if condition.value is not True:
        data["if"] = condition.value
    return Step(index, data, body.needs | condition.needs)


def _safe(value: Any, known: Mapping[str, Any]) -> Resolved:
    """`resolve`, with an unreadable expression kept as it is and marked."""
    try:
        return resolve(value, known)
    except ExpressionError:
        return Resolved(value, frozenset({"unreadable"}))


def _run_defaults(data: Mapping[str, Any]) -> dict[str, Any]:
    defaults = data.get("defaults")
    run = defaults.get("run") if isinstance(defaults, Mapping) else None
    return dict(run) if isinstance(run, Mapping) else {}
