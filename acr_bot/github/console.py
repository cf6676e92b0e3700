"""The Action's log and outcome: workflow commands (groups, masks, warnings) with every
credential redacted and no untrusted text able to issue a command; what a run ends with."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from acr_bot.secrets import is_credential

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
    outcome: str  # fixed | gave_up | nothing_to_fix | refused | ignored | explained | recorded | skipped | error
    message: str
    pr_url: str = ""
    model: str = ""
    attempts: int = 0
    cost_usd: float = 0.0
    summary: str = field(default="", repr=False)

    def outputs(self) -> dict[str, str]:
        return {"outcome": self.outcome, "pr-url": self.pr_url, "model": self.model,
                "attempts": str(self.attempts), "cost-usd": f"{self.cost_usd:.4f}"}
