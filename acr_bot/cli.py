"""The `acr-bot` command line: click commands only; the work happens in the library."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from . import app
from .config import POLICIES, load_settings
from .errors import AcrError

F = TypeVar("F", bound=Callable[..., Any])


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
@click.option("--policy", help=f"Routing policy: {', '.join(POLICIES)}, fixed:<model>.")
@click.option("--branch", help="Branch for the fix [default: acr/fix-<slug>].")
@click.option("--memory", "memory_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Memory file [default: <repo>/.acr/memory.json].")
@click.option("--replay-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Answer replay/<name> models from this JSON file (offline).")
@click.option("--dry-run", is_flag=True, help="Run the baseline and route, call no model.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable result.")
@friendly_errors
def cli_fix(repo: Path, task: str | None, task_file: Path | None, test_cmd: str | None,
            models: str | None, max_attempts: int | None, max_cost_usd: float | None,
            policy: str | None, branch: str | None, memory_file: Path | None,
            replay_file: Path | None, dry_run: bool, as_json: bool) -> None:
    """Fix a failing repo: route to a model, apply its patch, verify with the tests."""
    from .report import explain_decision, result_summary

    settings = _cli_settings(repo, test_command=test_cmd, models=models,
                             max_attempts=max_attempts, max_cost_usd=max_cost_usd,
                             policy=policy, replay_file=replay_file)
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
        sys.exit(2)


def result_json(result: Any) -> dict[str, Any]:
    """The `fix --json` document (its schema is in the README)."""
    from dataclasses import asdict

    def run(r: Any) -> dict[str, Any] | None:
        if r is None:
            return None
        return {"command": r.command, "exit_code": r.exit_code, "seconds": round(r.seconds, 3),
                "counts": asdict(r.counts) if r.counts else None}

    return {
        "task": {"id": result.task.id, "title": result.task.title},
        "outcome": result.outcome, "reason": result.reason, "branch": result.branch,
        "commit": result.commit, "model": result.model, "cost_usd": round(result.cost_usd, 6),
        "test_command": result.test_command, "baseline": run(result.baseline),
        "final": run(result.final),
        "attempts": [{"number": a.number, "model": a.model, "outcome": a.outcome,
                      "seconds": round(a.seconds, 3), "prompt_tokens": a.prompt_tokens,
                      "completion_tokens": a.completion_tokens, "cost_usd": round(a.cost_usd, 6),
                      "detail": a.detail} for a in result.attempts],
        "decisions": [decision_json(d) for d in result.decisions],
    }


def decision_json(decision: Any) -> dict[str, Any]:
    return {
        "model": decision.model, "policy": decision.policy, "reason": decision.reason,
        "candidates": [{"model": e.model, "p_pass": round(e.p_pass, 4),
                        "expected_cost_usd": e.exp_cost_usd, "utility": round(e.utility, 4),
                        "neighbours": round(e.neighbours, 2), "records": e.records}
                       for e in decision.estimates],
        "nearest": [{"task": n.task, "similarity": round(n.similarity, 4),
                     "outcomes": n.outcomes} for n in decision.neighbours],
    }


@cli.command("demo")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Build the demo project here instead of a temp dir.")
@friendly_errors
def cli_demo(out: Path | None) -> None:
    """Fix a small buggy project offline, with three replayed models."""
    from .demo import run_demo

    run_demo(out, click.echo)


def main() -> None:
    cli(prog_name="acr-bot")
