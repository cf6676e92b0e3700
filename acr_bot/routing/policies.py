"""Routing policies behind one interface, shared by the bot and the benchmark.

`choose(task, candidates, tried)` picks a model for the next attempt, `update(task, model,
outcome)` feeds back what happened, `explain(decision)` says why in words. Policies are picked
by name from `routing.registry`; all state they learn from comes from memory records (or, in the
benchmark, from revealed outcomes) through the same `update` path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from acr_bot.domain import Decision, Features
from acr_bot.errors import ConfigError
from acr_bot.routing.base import Outcome, Policy, RouteTask, Tried, task_rng, untried
from acr_bot.routing.features import cell_key


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
