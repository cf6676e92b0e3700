"""The harness interface: how one model works on the task for one attempt.

`harness.attempt(model, brief, workspace, limits)` changes `workspace` in place and returns
what the attempt cost and did; the fix loop then has the verifier judge the workspace. Two
harnesses: `agent` (a shell loop, `fixing/agent.py`) and `edit` (one prompt with chosen files
and SEARCH/REPLACE edits, `fixing/edit_harness.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from acr_bot.domain import Attempt, Price, Task, TestRun
from acr_bot.fixing.context import Context

HARNESSES = ("agent", "edit")
DEFAULT_HARNESS = "agent"

# What a harness reports; the loop turns "edited" into "passed" or "tests_failed" by verifying.
HarnessOutcome = Literal["edited", "no_edits", "apply_failed", "provider_fault", "no_submit"]


@dataclass(frozen=True)
class Limits:
    """What one attempt may use. Every limit is enforced by the harness itself."""

    max_cost_usd: float  # dollars this attempt may still spend (the run's cap minus spent)
    max_output_tokens: int = 8_192  # per call: the worst case each call's cost check assumes
    steps: int = 250  # model calls per agent attempt (format errors count)
    command_seconds: float = 120.0  # per shell command; the whole process group is killed
    attempt_seconds: float = 3_600.0  # wall clock for one agent attempt
    observation_bytes: int = 10_000  # command output kept per observation (head and tail)
    context_tokens: int = 128_000  # the model's context window: old observations shrink first
    price: Price | None = None  # the model's price, for the worst-case check before each call


@dataclass(frozen=True)
class Brief:
    """What the harness is told about the task."""

    task: Task
    test_command: str
    baseline: TestRun
    context: Context | None = None  # files chosen up front (the edit harness shows them)
    previous: Sequence[Attempt] = ()  # earlier attempts of this run, with their feedback
    protected: Sequence[str] = (".github/**",)
    untracked: Sequence[str] = ()  # untracked paths before the attempt (the setup's): not its
    resume: Any = None  # the same agent continues: its earlier transcript (agent harness)
    reproduce: bool = False  # nothing fails before the change: the fix must bring its own test
    test_dirs: Sequence[str] = ()  # folders holding the repository's tests, most first
    test_paths: Sequence[str] = ()  # globs added to the default test paths (verify/patch.py)


@dataclass(frozen=True)
class Step:
    """One shell command the agent ran."""

    number: int
    command: str
    exit_code: int | None  # None: killed at the command timeout
    seconds: float
    cost_usd: float  # spent so far in the attempt, after this step's model call


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt did to the workspace and what it cost."""

    outcome: HarnessOutcome
    detail: str = ""  # one line for humans
    feedback: str = ""  # for the next attempt's model when this one failed before verification
    files: tuple[str, ...] = ()  # paths changed in the workspace (what the verifier judges)
    note: str = ""  # the model's own explanation
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    steps: tuple[Step, ...] = ()
    transcript: tuple[dict[str, str], ...] = field(default=(), repr=False)
    reverted: tuple[str, ...] = ()  # protected paths the agent touched, put back


class Harness(Protocol):
    name: str

    def prompt_tokens(self, brief: Brief) -> int:
        """Tokens the first call sends (for the loop's affordability check)."""
        ...

    def attempt(self, model: str, brief: Brief, workspace: Path, limits: Limits) -> AttemptResult:
        """Let `model` work on `brief` in `workspace` (changed in place) within `limits`."""
        ...


def split_arm(arm: str, default: str = DEFAULT_HARNESS) -> tuple[str, str]:
    """`model@harness` -> (model, harness); a bare model uses `default`.

    Only a known harness name after the last `@` counts: model ids may hold `@` themselves
    (vertex_ai/claude-3-5-sonnet@20240620)."""
    model, sep, name = arm.rpartition("@")
    if sep and name in HARNESSES and model:
        return model, name
    return arm, default


def arm_of(model: str, harness: str, default: str = DEFAULT_HARNESS) -> str:
    """The candidate name the router knows an attempt by: the bare model for the default
    harness (and for records older than harnesses), `model@harness` otherwise."""
    return model if harness in ("", default) else f"{model}@{harness}"
