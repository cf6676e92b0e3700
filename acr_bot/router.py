"""Routing policies behind one interface, shared by the bot and the benchmark.

`choose(task, candidates, tried)` picks a model for the next attempt, `update(task, model,
outcome)` feeds back what happened, `explain(decision)` says why in words. Policies are picked
by name from `POLICIES`; all state they learn from comes from memory records (or, in the
benchmark, from revealed outcomes) through the same `update` path.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from .domain import Decision, Features
from .errors import ConfigError
from .outcomes import Observation, OutcomeTable


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


def _no_hint(model: str) -> float | None:
    return None


class Policy:
    """Base class: subclasses implement `rank`; bookkeeping and tie-breaking live here."""

    name = "policy"

    def __init__(self, table: OutcomeTable | None = None, cost_hint: CostHint = _no_hint,
                 seed: int = 0) -> None:
        self.table = table or OutcomeTable()
        self.cost_hint = cost_hint
        self.seed = seed

    def choose(self, task: RouteTask, candidates: Sequence[str],
               tried: Sequence[Tried] = (), attempts_left: int = 1) -> Decision:
        """Pick the model for the next attempt. `attempts_left` counts this one: policies
        that plan a cascade can prefer a cheap try when a stronger model can still follow."""
        if not candidates:
            raise ConfigError("no candidate models to route between")
        pool = untried(candidates, tried)
        with one_blas_thread():
            return self.rank(task, pool, tried, attempts_left)

    def rank(self, task: RouteTask, pool: Sequence[str], tried: Sequence[Tried],
             attempts_left: int = 1) -> Decision:
        raise NotImplementedError

    def update(self, task: RouteTask, model: str, outcome: Outcome) -> None:
        if outcome.skill:
            # after=None: the models that already failed on this task are the condition.
            self.table.add(Observation(task.id, task.features.compact(), model, outcome.score,
                                       outcome.cost_usd, after=None))

    def explain(self, decision: Decision) -> str:
        from .report import explain_decision

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
    return np.random.default_rng([seed, zlib.crc32(task.id.encode()), step])


def _sort_key_cost(policy: Policy) -> Callable[[str], tuple[int, float, str]]:
    def key(model: str) -> tuple[int, float, str]:
        cost = policy.mean_cost(model)
        return (cost is None, cost or 0.0, model)  # unknown prices go last

    return key


class CheapestFirst(Policy):
    name = "cheapest-first"

    def rank(self, task: RouteTask, pool: Sequence[str], tried: Sequence[Tried],
             attempts_left: int = 1) -> Decision:
        ordered = sorted(pool, key=_sort_key_cost(self))
        return Decision(ordered[0], self.name, "cheapest model not yet tried on this task")


class BestFirst(Policy):
    name = "best-first"

    def rank(self, task: RouteTask, pool: Sequence[str], tried: Sequence[Tried],
             attempts_left: int = 1) -> Decision:
        cost = _sort_key_cost(self)
        ordered = sorted(pool, key=lambda m: (-self.pass_rate(m), cost(m)))
        return Decision(ordered[0], self.name, "highest pass rate in memory not yet tried")


class RandomPolicy(Policy):
    name = "random"

    def rank(self, task: RouteTask, pool: Sequence[str], tried: Sequence[Tried],
             attempts_left: int = 1) -> Decision:
        model = pool[int(task_rng(self.seed, task, len(tried)).integers(len(pool)))]
        return Decision(model, self.name, "uniformly random among untried models")


class Fixed(Policy):
    def __init__(self, model: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.model = model
        self.name = f"fixed:{model}"

    def choose(self, task: RouteTask, candidates: Sequence[str],
               tried: Sequence[Tried] = (), attempts_left: int = 1) -> Decision:
        if not candidates:
            raise ConfigError("no candidate models to route between")
        if self.model in candidates:
            return Decision(self.model, self.name, "the policy always uses this model")
        # Not available here (a benchmark row without it, a model over the budget).
        fallback = min(untried(candidates, tried), key=_sort_key_cost(self))
        return Decision(fallback, self.name, f"{self.model} is not available: the cheapest "
                        "untried model instead")


def cell_key(features: Features) -> str:
    """The static table's cell: language, task kind and metadata tags."""
    return " ".join(sorted(t for t in features.tokens if t.split(":", 1)[0] in ("lang", "kind",
                                                                                 "tag")))


class StaticTable(Policy):
    """Best model per cell (language, kind, tags), computed once from memory and then frozen."""

    name = "static-table"
    MIN_SUPPORT = 3

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.cells = self._build()

    def _build(self) -> dict[str, dict[str, float]]:
        table = self.table
        sums: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for row, features in enumerate(table.features):
            key = cell_key(Features.parse(features))
            score, count = sums.get(key, (0.0, 0.0))
            sums[key] = (score + table.score.data[row], count + table.count.data[row])
        return {cell: {m: float(score[c] / count[c]) for m, c in table.col_of.items()
                       if count[c] >= self.MIN_SUPPORT} for cell, (score, count) in sums.items()}

    def rank(self, task: RouteTask, pool: Sequence[str], tried: Sequence[Tried],
             attempts_left: int = 1) -> Decision:
        cell = self.cells.get(cell_key(task.features), {})
        cost = _sort_key_cost(self)
        ordered = sorted(pool, key=lambda m: (-cell.get(m, self.pass_rate(m) - 1.0), cost(m)))
        why = "best in its cell" if ordered[0] in cell else "best overall (cell unseen)"
        return Decision(ordered[0], self.name, f"{why}: {cell_key(task.features) or 'no cell'}")

    def update(self, task: RouteTask, model: str, outcome: Outcome) -> None:
        """Frozen: the table does not learn from the stream."""


def make_policy(name: str, observations: Sequence[Observation], *, cost_hint: CostHint = _no_hint,
                seed: int = 0, cost_weight: float = 1.0) -> Policy:
    """Build a policy by name, fed with past observations."""
    from .learned import LearnedPolicy

    table = OutcomeTable.build(observations)
    common = {"table": table, "cost_hint": cost_hint, "seed": seed}
    if name.startswith("fixed:"):
        return Fixed(name.split(":", 1)[1], **common)
    if name in ("learned", "frozen"):
        return LearnedPolicy(**common, cost_weight=cost_weight, learn=name == "learned")
    classes: Mapping[str, type[Policy]] = {
        "cheapest-first": CheapestFirst, "best-first": BestFirst, "random": RandomPolicy,
        "static-table": StaticTable}
    if name not in classes:
        raise ConfigError(f"unknown policy {name!r}; choose learned, frozen, cheapest-first, "
                          "best-first, static-table, random or fixed:<model>")
    return classes[name](**common)
