"""The `acr-bot` command line: click commands only; the work happens in the library."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import click

from acr_bot import app
from acr_bot.config import load_settings
from acr_bot.errors import AcrError
from acr_bot.routing.registry import HELP as POLICY_NAMES

F = TypeVar("F", bound=Callable[..., Any])

# Exit codes, one meaning each (README "Exit codes"): 0 done (fixed, dry run, nothing to fix),
# 1 an error with a one-line message, 2 a usage error (click's, as in most CLIs), 3 gave up;
# 128 + N for a signal (130 Ctrl-C, 143 SIGTERM).
EXIT_GAVE_UP = 3


def friendly_errors(func: F) -> F:
    """AcrError becomes a one-line message and exit 1; anything else stays a loud traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AcrError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper  # type: ignore[return-value]


@click.group()
@click.version_option(package_name="acr-bot")
@click.option("-v", "--verbose", is_flag=True, help="Show debug logs.")
def cli(verbose: bool) -> None:
    """acr-bot: fixes failing code with the LLM your repo's own history says will work."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="acr-bot: %(levelname)s: %(message)s", stream=sys.stderr)
    app.terminate_gracefully()


def _read_task(task: str | None, task_file: Path | None) -> str:
    if bool(task) == bool(task_file):
        raise click.UsageError("give the task with exactly one of --task TEXT or --task-file FILE")
    return task if task else Path(task_file).read_text(errors="replace")  # type: ignore[arg-type]


def _cli_settings(repo: Path, **options: Any) -> Any:
    return load_settings(repo, {k: v for k, v in options.items() if v is not None})


@cli.command("fix")
@click.option("--repo", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=".", show_default=True, help="The git checkout to fix.")
@click.option("--task", help="What to fix (first line is the title).")
@click.option("--task-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the task from a file.")
@click.option("--test-cmd", help="Test command (default: detected and printed).")
@click.option("--models", help="Comma-separated litellm model ids.")
@click.option("--max-attempts", type=int, help="Attempts before giving up [default: 3].")
@click.option("--max-cost-usd", type=float, help="Dollar cap for the whole fix [default: 2.00].")
@click.option("--policy", help=f"Routing policy: {POLICY_NAMES}.")
@click.option("--branch", help="Branch for the fix [default: acr/fix-<slug>].")
@click.option("--memory", "memory_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Memory file [default: <repo>/.acr/memory.json].")
@click.option("--replay-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Answer replay/<name> models from this JSON file (offline).")
@click.option("--harness", type=click.Choice(["agent", "edit"]),
              help="How a model works: agent (shell loop) or edit (one prompt) [default: agent].")
@click.option("--agent-steps", type=click.IntRange(min=1),
              help="Model calls per agent attempt [default: 250].")
@click.option("--command-timeout", type=click.FloatRange(min=0),
              help="Seconds per agent command [default: 120].")
@click.option("--trajectory-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write each attempt's transcript as JSON here.")
@click.option("--require-reproduction/--no-require-reproduction", default=None,
              help="When no test fails before the change, accept a fix only with a test that "
                   "fails before it and passes after it [default: on].")
@click.option("--dry-run", is_flag=True, help="Run the baseline and route, call no model.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable result.")
@friendly_errors
def cli_fix(repo: Path, task: str | None, task_file: Path | None, test_cmd: str | None,
            models: str | None, max_attempts: int | None, max_cost_usd: float | None,
            policy: str | None, branch: str | None, memory_file: Path | None,
            replay_file: Path | None, harness: str | None, agent_steps: int | None,
            command_timeout: float | None, trajectory_dir: Path | None,
            require_reproduction: bool | None, dry_run: bool, as_json: bool) -> None:
    """Fix a failing repo: route to a model, apply its patch, verify with the tests."""
    from acr_bot.report import explain_decision, result_json, result_summary

    settings = _cli_settings(repo, test_command=test_cmd, models=models,
                             max_attempts=max_attempts, max_cost_usd=max_cost_usd,
                             policy=policy, replay_file=replay_file, harness=harness,
                             agent_steps=agent_steps, command_timeout=command_timeout,
                             trajectory_dir=trajectory_dir,
                             require_reproduction=require_reproduction)
    the_task = app.task_from_text(_read_task(task, task_file))
    echo = (lambda line: click.echo(line, err=True)) if as_json else click.echo
    result = app.fix(repo, the_task, settings, dry_run=dry_run, branch=branch, echo=echo,
                     memory_file=memory_file)
    if as_json:
        click.echo(json.dumps(result_json(result), indent=2))
    else:
        if result.decisions:
            click.echo("\n" + explain_decision(result.decisions[0]))
        click.echo("\n" + result_summary(result))
    if result.outcome == "gave_up":
        sys.exit(EXIT_GAVE_UP)


@cli.command("demo")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Build the demo project here instead of a temp dir.")
@friendly_errors
def cli_demo(out: Path | None) -> None:
    """Fix a small buggy project offline, with three replayed models."""
    from acr_bot.demo import run_demo

    if run_demo(out, click.echo) != 0:
        raise click.ClickException("the demo did not produce a verified fix (see above)")


@cli.command("init")
@click.option("--repo", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=".", show_default=True, help="The repository to set up.")
@click.option("--models", help="Comma-separated litellm model ids [default: acr-bot's].")
@click.option("--force", is_flag=True, help="Overwrite the workflow and settings files.")
@click.option("--dry-run", is_flag=True, help="Print both files and why; write nothing.")
@click.option("--job", metavar="FILE:JOB", help="The CI job that runs the tests "
              "(e.g. tests.yml:test) [default: detected].")
@friendly_errors
def cli_init(repo: Path, models: str | None, force: bool, dry_run: bool, job: str | None
             ) -> None:
    """Write .github/workflows/acr-bot.yml and .github/acr-bot.yml for this repository."""
    from acr_bot.config import DEFAULT_MODELS
    from acr_bot.init import WORKFLOW_FILE, init, lint, lint_text, plan, setup_text

    chosen = tuple(m.strip() for m in models.split(",") if m.strip()) if models else None
    setup, files = plan(repo, chosen or DEFAULT_MODELS, job)
    if setup.assumed and job is None and len(setup.jobs) > 1 and _interactive():
        job = _ask_job(setup.assumed, setup.jobs)
        setup, files = plan(repo, chosen or DEFAULT_MODELS, job)
    click.echo(setup_text(setup))
    problems = lint(repo, files[repo / WORKFLOW_FILE])
    if dry_run:
        for path, text in files.items():
            click.echo(f"\n--- {path.relative_to(repo)} (not written: --dry-run) ---\n{text}")
        click.echo(lint_text(problems))
        return
    setup, written, left = init(repo, chosen or DEFAULT_MODELS, force=force, job=job)
    click.echo(lint_text(problems))
    for path in written:
        click.echo(f"wrote {path.relative_to(repo)}")
    click.echo("left to do:")
    for item in (["fix what actionlint reports above"] if problems else []) + left:
        click.echo(f"  - {item}")


def _interactive() -> bool:
    """Whether a person is at the terminal to answer a question."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def _ask_job(assumed: str, jobs: list[str]) -> str:
    click.echo(assumed)
    for number, name in enumerate(jobs, 1):
        click.echo(f"  {number}. {name}")
    number = click.prompt("Which job runs your tests?", type=click.IntRange(1, len(jobs)),
                          default=1)
    return jobs[number - 1]


@cli.command("route")
@click.option("--task", help="The task text (first line is the title).")
@click.option("--task-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--repo", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=".", show_default=True, help="Repo for settings and language hints.")
@click.option("--memory", "memory_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Memory file [default: <repo>/.acr/memory.json].")
@click.option("--models", help="Comma-separated candidate models.")
@click.option("--policy", help=f"Routing policy: {POLICY_NAMES}.")
@click.option("--harness", type=click.Choice(["agent", "edit"]),
              help="The harness of models named without @harness [default: agent].")
@click.option("--replay-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Prices of replay/<name> models come from this JSON file.")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@friendly_errors
def cli_route(task: str | None, task_file: Path | None, repo: Path, memory_file: Path | None,
              models: str | None, policy: str | None, harness: str | None,
              replay_file: Path | None,
              as_json: bool) -> None:
    """Show which model the router would pick for a task, and why. Calls no model."""
    from acr_bot.memory.store import Memory
    from acr_bot.report import decision_json, explain_decision

    settings = _cli_settings(repo, models=models, policy=policy, harness=harness,
                             replay_file=replay_file)
    the_task = app.task_from_text(_read_task(task, task_file))
    memory = Memory.load(memory_file or app.memory_path(repo.resolve(), settings))
    features, decision = app.route(the_task, settings, memory, repo=repo)
    if as_json:
        doc = {"task": {"id": the_task.id, "title": the_task.title},
               "features": list(features.tokens), "memory_records": len(memory.records),
               **decision_json(decision)}
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(explain_decision(decision))


@cli.group("memory")
def cli_memory() -> None:
    """Inspect, merge and compact the routing memory file."""


def _memory_option(func: F) -> F:
    return click.option("--memory", "memory_file",
                        type=click.Path(exists=True, dir_okay=False, path_type=Path),
                        default=".acr/memory.json", show_default=True,
                        help="The memory file.")(func)  # type: ignore[return-value]


@cli_memory.command("stats")
@_memory_option
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def memory_stats(memory_file: Path, as_json: bool) -> None:
    """Per model: attempts, pass rate, $ per pass; then per language and task kind."""
    from acr_bot.memory.store import Memory
    from acr_bot.report import stats_tables
    from acr_bot.routing.outcomes import stats

    cells = stats(Memory.load(memory_file))
    click.echo(json.dumps(cells, indent=2) if as_json else stats_tables(cells))


@cli_memory.command("show")
@_memory_option
@click.option("--last", type=int, default=20, show_default=True, help="Newest N records.")
@click.option("--task", help="Only records of this task id.")
@friendly_errors
def memory_show(memory_file: Path, last: int, task: str | None) -> None:
    """List the newest records."""
    from acr_bot.memory.store import Memory
    from acr_bot.report import records_table

    records = [r for r in Memory.load(memory_file).records if task in (None, r.task)]
    click.echo(records_table(records[-last:]))


@cli_memory.command("export")
@_memory_option
@click.option("--csv", "as_csv", is_flag=True, required=True, help="Export as CSV.")
@click.option("-o", "--out", type=click.File("w"), default="-", help="Output file [stdout].")
@friendly_errors
def memory_export(memory_file: Path, as_csv: bool, out: Any) -> None:
    """Export every record as CSV."""
    import csv
    from dataclasses import asdict, fields

    from acr_bot.domain import Record
    from acr_bot.memory.store import Memory

    records = Memory.load(memory_file).records  # before the header: a bad file prints nothing
    writer = csv.DictWriter(out, fieldnames=[f.name for f in fields(Record)])
    writer.writeheader()
    for record in records:
        writer.writerow(asdict(record))


@cli_memory.command("merge")
@click.argument("first", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("second", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@friendly_errors
def memory_merge(first: Path, second: Path, out: Path) -> None:
    """Union two memory files (nothing is lost) into OUT (OUT's own records are kept)."""
    from acr_bot.memory.store import merge_files

    merged = merge_files([first, second], out)
    click.echo(f"{out}: {len(merged.records)} records, {len(merged.summaries)} summaries")


@cli_memory.command("compact")
@_memory_option
@click.option("--keep", type=click.IntRange(min=0), required=True,
              help="Raw attempt records to keep (newest); older ones become summaries.")
@friendly_errors
def memory_compact(memory_file: Path, keep: int) -> None:
    """Fold old records into per-model, per-cluster summaries."""
    from acr_bot.memory.store import compact_file

    before, smaller = compact_file(memory_file, keep)
    click.echo(f"{memory_file}: {before} -> {len(smaller.records)} records, "
               f"{len(smaller.summaries)} summaries")


def _dataset(_ctx: click.Context, _param: click.Parameter, value: str) -> Path:
    from acr_bot.bench.datasets import NAMES, resolve

    path = resolve(value)
    if not path.is_file():
        raise click.BadParameter(f"{value!r} is neither a shipped dataset "
                                 f"({', '.join(NAMES)}) nor a file")
    return path


@cli.command("bench")
@click.option("--dataset", required=True, callback=_dataset,
              help="A shipped dataset (coderouterbench, swebench-verified) or the path of a "
              "v1 routing .jsonl or .jsonl.gz file (format: acr_bot/bench/datasets/README.md).")
@click.option("--mode", type=click.Choice(["oneshot", "cascade"]), default="oneshot",
              show_default=True)
@click.option("--max-attempts", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--cost-weight", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Utility = score - cost_weight x $.")
@click.option("--policies", help="Comma-separated; default: all learning policies and the "
              "hindsight references best-fixed and oracle.")
@click.option("--subset", type=click.Choice(["all", "id", "ood"]), default="all",
              show_default=True, help="Stream only in-distribution or only OOD rows.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the full report (schema in the README) here.")
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a PNG (needs the plot extra).")
@click.option("--sweep", is_flag=True, help="Run every policy at several cost weights and "
              "report success against $ (a Pareto plot with --plot).")
@click.option("--human-labels", is_flag=True, help="Also let policies read tags the bot can "
              "never know (SWE-bench's human difficulty label), to compare.")
@friendly_errors
def cli_bench(dataset: Path, mode: str, max_attempts: int, cost_weight: float,
              policies: str | None, subset: str, seed: int, json_out: Path | None,
              plot_out: Path | None, sweep: bool, human_labels: bool) -> None:
    """Replay real routing data as a stream through the router's policies."""
    from acr_bot.bench import runner as bench

    names = [p.strip() for p in policies.split(",")] if policies else [
        *bench.LEARNING_POLICIES, *bench.HINDSIGHT]
    rows = bench.select(bench.load_rows(dataset), subset)
    cfg = bench.BenchConfig(mode, max_attempts, cost_weight, seed, human_labels)
    learning = sum(1 for n in names if n not in bench.HINDSIGHT)
    stream = sum(1 for r in rows if r.split != "train")
    if sweep:
        weights = bench.SWEEP_WEIGHTS
        with _progress(learning * stream * len(weights), "bench sweep") as bar:
            points = bench.sweep(rows, names, cfg, weights, bar.update)
        click.echo(bench.sweep_table(points))
        _write_outputs(json_out, {"schema": "acr-bot.bench-sweep/1", "dataset": str(dataset),
                                  "mode": mode, "points": points}, plot_out,
                       lambda: _pareto(points, dataset, mode, plot_out))
        return
    with _progress(learning * stream, "bench") as bar:
        traces = bench.run_bench(rows, names, cfg, bar.update)
    doc = bench.report(rows, traces, cfg, str(dataset))
    click.echo(bench.table_text(doc))
    _write_outputs(json_out, doc, plot_out, lambda: _stream_plot(doc, plot_out))


def _progress(length: int, label: str) -> Any:
    """A progress bar on a terminal only (in a log it would be a stray line), without an ETA:
    the first rows are the slow ones (the policies warm up), so any estimate misleads."""
    if not sys.stderr.isatty():
        return contextlib.nullcontext(SimpleNamespace(update=lambda steps: None))
    return click.progressbar(length=length, label=label, file=sys.stderr, show_eta=False)


def _pareto(points: Any, dataset: Path, mode: str, out: Path | None) -> None:
    from acr_bot.bench.plots import pareto_plot

    pareto_plot(points, f"{dataset.name}: {mode}", out)  # type: ignore[arg-type]


def _stream_plot(doc: Any, out: Path | None) -> None:
    from acr_bot.bench.plots import stream_plot

    stream_plot(doc, out)  # type: ignore[arg-type]


def _write_outputs(json_out: Path | None, doc: Any, plot_out: Path | None,
                   plot: Callable[[], None]) -> None:
    if json_out:
        json_out.write_text(json.dumps(doc, indent=1))
        click.echo(f"report: {json_out}")
    if plot_out:
        plot()
        click.echo(f"plot: {plot_out}")


@cli.command("action")
def cli_action() -> None:
    """Handle the GitHub event of this Actions run (the Docker action's entry point)."""
    from acr_bot.github.action import main as action_main

    sys.exit(action_main())


def main() -> None:
    """The console script. Ctrl-C exits 130, as in any shell (click would turn it into exit 1
    "Aborted!"); it unwinds like SIGTERM, so the attempts made so far are saved."""
    signal.signal(signal.SIGINT, _interrupted)
    cli(prog_name="acr-bot")


def _interrupted(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
