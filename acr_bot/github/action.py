"""`acr-bot action`: one GitHub event in, at most one verified PR (or a comment) out.

Flow: read the event -> classify it (events.py) -> run the matching handler (flows.py) ->
write outputs and the job summary. Every secret is masked in the log before anything else
is printed, and redacted from every comment and PR body the bot writes.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

from acr_bot.config import ActionContext, Settings
from acr_bot.errors import AcrError
from acr_bot.github.console import ActionOutcome, Console


def write_outputs(ctx: ActionContext, outcome: ActionOutcome, console: Console) -> None:
    """GITHUB_OUTPUT (heredoc syntax, so no value can forge another) and the job summary."""
    if ctx.output is not None:
        with open(ctx.output, "a", encoding="utf-8") as out:
            for key, value in outcome.outputs().items():
                delimiter = f"ACR_{uuid.uuid4().hex}"
                out.write(f"{key}<<{delimiter}\n{console.redact(value)}\n{delimiter}\n")
    if ctx.step_summary is not None and outcome.summary:
        with open(ctx.step_summary, "a", encoding="utf-8") as out:
            out.write(console.redact(outcome.summary))


def run(ctx: ActionContext, settings: Settings, env: Mapping[str, str],
        console: Console | None = None, github_factory: Callable[..., object] | None = None
        ) -> ActionOutcome:
    """Handle the event described by `ctx`; never raises for expected failures."""
    from acr_bot.github.flows import handle

    console = console or Console()
    console.mask(ctx.token)
    console.mask_environment(env)
    try:
        outcome = handle(ctx, settings, console, github_factory)
    except AcrError as exc:
        console.error(str(exc))
        outcome = ActionOutcome("error", str(exc), summary=f"## acr-bot: error\n\n{exc}\n")
    console.line(f"acr-bot: {outcome.outcome}: {outcome.message}")
    write_outputs(ctx, outcome, console)
    return outcome


def main(env: Mapping[str, str] | None = None) -> int:
    """Entry point for the Docker action; the exit code fails the job only on errors."""
    from acr_bot.app import terminate_gracefully
    from acr_bot.config import action_context, environment, load_settings

    env = environment() if env is None else env
    terminate_gracefully()
    console = Console()
    try:
        ctx = action_context(env)
        settings = load_settings(Path(ctx.workspace), env=env)
    except AcrError as exc:
        console.error(str(exc))
        return 1
    return 1 if run(ctx, settings, env, console).outcome == "error" else 0


if __name__ == "__main__":
    sys.exit(main())
