"""What every routing policy shares: the task as a policy sees it, outcomes, the `Policy`
interface (`choose / update / explain`) and its bookkeeping."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from acr_bot.domain import Decision, Features
from acr_bot.errors import ConfigError
from acr_bot.routing.features import vectorize

if TYPE_CHECKING:
    import numpy as np

    from acr_bot.routing.outcomes import OutcomeTable

# Feature vectors this similar are the same task text, reworded or with a changed detail.
# A text shorter than 2**SAME_TEXT_SIZE characters is too short to tell tasks apart (a
# benchmark row that is only "category benchmark"): only its task id can match.
SAME_TEXT = 0.95
SAME_TEXT_SIZE = 7


@dataclass(frozen=True)
class RouteTask:
    """All a policy may know about a task: its id and its features."""

    id: str
    features: Features


@dataclass(frozen=True)
class Outcome:
    score: float  # 1.0 verified pass, 0.0 fail (fractional in some benchmarks)
    cost_usd: float | None = None
    skill: bool = True  # False: a provider fault, which says nothing about the model


@dataclass(frozen=True)
class Tried:
    model: str
    outcome: Outcome


# Expected dollars of one attempt with a model, before any memory (from prices). None: unknown.
CostHint = Callable[[str], float | None]


def no_hint(model: str) -> float | None:
    return None


class Policy:
    """Base class: subclasses implement `rank`; bookkeeping and tie-breaking live here."""

    name = "policy"

    def __init__(self, table: OutcomeTable | None = None, cost_hint: CostHint = no_hint,
                 seed: int = 0, cost_weight: float = 1.0) -> None:
        from acr_bot.routing.outcomes import OutcomeTable  # numpy: loaded with a policy

        self.table = table or OutcomeTable()
        self.cost_hint = cost_hint
        self.seed = seed
        self.cost_weight = cost_weight  # dollars that weigh as much as one solved task

    def choose(self, task: RouteTask, candidates: Sequence[str],
               tried: Sequence[Tried] = (), attempts_left: int = 1) -> Decision:
        """Pick the model for the next attempt. `attempts_left` counts this one: policies
        that plan a cascade can prefer a cheap try when a stronger model can still follow."""
        if not candidates:
            raise ConfigError("no candidate models to route between")
        pool = untried(candidates, tried)
        with one_blas_thread():
            return self.known_fix(task, pool) or self.rank(task, pool, tried, attempts_left)

    def known_fix(self, task: RouteTask, pool: Sequence[str]) -> Decision | None:
        """A task seen before (same id, or near-identical text) goes to the model that
        verified a fix for it, unless that model has failed on it in this run."""
        size = max((int(t[5:]) for t in task.features.tokens
                    if t.startswith("size:") and t[5:].isdigit()), default=0)
        threshold = SAME_TEXT if size >= SAME_TEXT_SIZE else 2.0  # 2.0: no text can match
        row, sim = self.table.same_task(task.id, vectorize(task.features.tokens), threshold)
        if row < 0:
            return None
        verified = {m: p for m, p in self.table.verified_on(row).items() if m in pool}
        if not verified:
            return None
        model = min(verified, key=lambda m: (-verified[m], self.mean_cost(m) or 0.0, m))
        past = self.table.task_ids[row]
        where = ("this same task" if past == task.id
                 else f"a near-identical task ({past}, similarity {sim:.2f})")
        return Decision(model, self.name, f"it verified a fix for {where} before")

    def rank(self, task: RouteTask, pool: Sequence[str], tried: Sequence[Tried],
             attempts_left: int = 1) -> Decision:
        raise NotImplementedError

    def update(self, task: RouteTask, model: str, outcome: Outcome) -> None:
        from acr_bot.routing.outcomes import Observation

        if outcome.skill:
            # after=None: the models that already failed on this task are the condition.
            self.table.add(Observation(task.id, task.features.compact(), model, outcome.score,
                                       outcome.cost_usd, after=None))

    def explain(self, decision: Decision) -> str:
        from acr_bot.report import explain_decision

        return explain_decision(decision)

    # helpers shared by the simple policies

    def mean_cost(self, model: str) -> float | None:
        """Observed mean $ per attempt, else the price hint, else None."""
        col = self.table.col_of.get(model)
        if col is not None and self.table.totals[3, col] > 0:
            return float(self.table.totals[2, col] / self.table.totals[3, col])
        return self.cost_hint(model)

    def pass_rate(self, model: str, prior: float = 0.5, strength: float = 2.0) -> float:
        col = self.table.col_of.get(model)
        if col is None:
            return prior
        score, count = self.table.totals[0, col], self.table.totals[1, col]
        return float((score + prior * strength) / (count + strength))


@lru_cache(maxsize=1)
def _blas() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def one_blas_thread() -> Any:
    """A decision is a few small matrix products: a second BLAS thread only adds contention
    (3x slower on a busy 2-core runner), so decisions run single-threaded."""
    return _blas().limit(limits=1, user_api="blas")


def untried(candidates: Sequence[str], tried: Sequence[Tried]) -> list[str]:
    """Candidates that have not failed on this task yet; all of them once every one has.

    Provider faults do not count as tried: the model never saw the task.
    """
    failed = {t.model for t in tried if t.outcome.skill}
    pool = [m for m in candidates if m not in failed]
    return pool or list(candidates)


def task_rng(seed: int, task: RouteTask, step: int) -> np.random.Generator:
    """A generator seeded by (seed, task, step): the same task gets the same decisions."""
    import numpy as np

    return np.random.default_rng([seed, zlib.crc32(task.id.encode()), step])
