"""What one fix run is given (`FixJob`) and what it carries from attempt to attempt
(`RunState`): plain data, shared by the loop (fixing/loop.py) and one attempt (fixing/attempt.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from acr_bot.domain import Attempt, Price, Record, Reply, Task, TestRun, TierTime
from acr_bot.fixing.budget import DollarCap
from acr_bot.fixing.context import Context
from acr_bot.fixing.harness import DEFAULT_HARNESS, Harness, Limits
from acr_bot.gitrepo import GitRepo, Worktree
from acr_bot.memory.store import new_id
from acr_bot.routing.base import Policy, RouteTask
from acr_bot.routing.cascade import Cascade
from acr_bot.verify.baselines import BaselineCache
from acr_bot.verify.local import Sandbox
from acr_bot.verify.tiers import TierOptions


class Caller(Protocol):
    def complete(self, model: str, messages: list[dict[str, str]]) -> Reply: ...


@dataclass
class FixJob:
    """Everything one fix needs; built by `app.py` from settings."""

    task: Task
    repo: GitRepo
    models: Sequence[str]
    policy: Policy
    llm: Caller
    sandbox: Sandbox
    test_command: str
    prices: Mapping[str, Price | None] = field(default_factory=dict)
    setup_command: str | None = None
    protected: Sequence[str] = (".github/**",)
    test_paths: Sequence[str] = ()  # globs added to the default test paths (verify/patch.py)
    max_attempts: int = 3
    max_cost_usd: float = 2.0
    context_tokens: int = 24_000
    max_output_tokens: int = 8_192
    branch: str | None = None
    dry_run: bool = False
    base: str | None = None  # commit to start from (default HEAD)
    echo: Callable[[str], None] = lambda line: None
    on_record: Callable[[Record], None] = lambda record: None
    run_id: str = field(default_factory=new_id)  # ties this run's attempts into one cascade
    harness: str = DEFAULT_HARNESS  # for a candidate named without `@harness`
    limits: Limits = field(default_factory=lambda: Limits(max_cost_usd=0.0))  # per attempt
    harnesses: dict[str, Harness] = field(default_factory=dict)  # built on first use
    rounds: int = 2  # agent submissions judged per attempt (the agent goes on when rejected)
    # When no test fails before the change, a fix must bring a test that reproduces the issue;
    # off, such a change is published anyway, as a draft marked "not reproduced".
    require_reproduction: bool = True
    trajectory_dir: Path | None = None  # one JSON transcript per attempt
    tiers: TierOptions = field(default_factory=TierOptions)  # first tier, job deadline
    baselines: BaselineCache = field(default_factory=lambda: BaselineCache(None))
    group: Callable[[str], AbstractContextManager[None]] = lambda title: nullcontext()


@dataclass
class RunState:
    """What the loop carries from one attempt to the next."""

    worktree: Worktree
    baseline: TestRun
    context: Context
    cascade: Cascade  # routing: what was tried, what is left, when to stop
    attempts: list[Attempt] = field(default_factory=list)
    faulted: set[str] = field(default_factory=set)
    records: list[Record] = field(default_factory=list)
    final: TestRun | None = None
    keep: tuple[str, ...] = ()  # untracked files the setup command made: restores keep them
    named: tuple[str, ...] = ()  # test ids the task names: they must run and pass
    cap: DollarCap | None = None  # the run's dollar cap (`_cap`)
    baseline_time: TierTime | None = None
    out_of_time: str = ""  # why the job's time limit stopped the loop
    reproduce: bool = False  # nothing fails before the change: a fix must bring its own test
    test_dirs: tuple[str, ...] = ()  # where the repository keeps its tests (for the prompts)

    @property
    def route(self) -> RouteTask:
        return self.cascade.task

    @property
    def spent(self) -> float:
        return sum(a.cost_usd for a in self.attempts)
