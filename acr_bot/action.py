"""`acr-bot action`: one GitHub event in, at most one verified PR (or a comment) out.

Flow: read the event -> classify it (events.py) -> run the matching handler (flows.py) ->
write outputs and the job summary. Every secret is masked in the log before anything else
is printed, and redacted from every comment and PR body the bot writes.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .config import ActionContext, Settings
from .errors import AcrError
from .verifier import is_credential

MIN_SECRET = 6  # shorter values would mask ordinary words


class Console:
    """Workflow commands (`::group::`, `::add-mask::`, `::warning::`) with redaction."""

    def __init__(self, echo: Callable[[str], None] | None = None) -> None:
        self.echo = echo or (lambda line: print(line, flush=True))
        self.secrets: list[str] = []

    def mask(self, value: str) -> None:
        value = value.strip()
        # A multi-line secret (a private key) is masked line by line: `::add-mask::` covers
        # one line, and the rest of the value would otherwise be printed in the clear.
        for part in dict.fromkeys([value, *(p.strip() for p in value.splitlines())]):
            if len(part) >= MIN_SECRET and part not in self.secrets:
                self.secrets.append(part)
                if "\n" not in part and "\r" not in part:
                    self.echo(f"::add-mask::{part}")

    def mask_environment(self, env: Mapping[str, str]) -> None:
        for name, value in env.items():
            if is_credential(name, value):
                self.mask(value)

    def redact(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def line(self, text: str) -> None:
        for part in self.redact(text).splitlines() or [""]:
            self.echo(_inert(part))

    def warning(self, text: str) -> None:
        self.echo(f"::warning::{_one_line(self.redact(text))}")

    def error(self, text: str) -> None:
        self.echo(f"::error::{_one_line(self.redact(text))}")

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        self.echo(f"::group::{_one_line(self.redact(title))}")
        try:
            yield
        finally:
            self.echo("::endgroup::")


def _inert(line: str) -> str:
    """`line` with no workflow command in it: untrusted text (issue titles, test names, logs)
    must never issue one. The runner reads `::cmd::` after leading whitespace, and the legacy
    `##[cmd]` anywhere in a line."""
    line = _printable(line).replace("##[", "#\u200b#[")
    return "| " + line if line.lstrip().startswith("::") else line


def _one_line(text: str) -> str:
    """The data of a workflow command: one line (the runner splits at \\r and \\n)."""
    return " ".join(_printable(text).splitlines()).replace("##[", "#\u200b#[")


def _printable(text: str) -> str:
    """Text that stdout can encode: a lone surrogate (JSON "\\ud800") would crash print()."""
    return text.encode("utf-8", "replace").decode("utf-8")


@dataclass
class ActionOutcome:
    outcome: str  # fixed | gave_up | refused | ignored | explained | recorded | skipped | error
    message: str
    pr_url: str = ""
    model: str = ""
    attempts: int = 0
    cost_usd: float = 0.0
    summary: str = field(default="", repr=False)

    def outputs(self) -> dict[str, str]:
        return {"outcome": self.outcome, "pr-url": self.pr_url, "model": self.model,
                "attempts": str(self.attempts), "cost-usd": f"{self.cost_usd:.4f}"}


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
    from .flows import handle

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
    from .app import terminate_gracefully
    from .config import action_context, environment, load_settings

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
