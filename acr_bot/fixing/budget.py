"""The run's dollar cap: which models' next call still fits under it, and saying so.

The check is on the worst case of the next call (the longest prompt with the longest reply),
not the typical one: the cap must hold even for a maximal answer.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field


@dataclass
class DollarCap:
    limit: float
    models: Sequence[str]
    attempts: int  # the run's attempt limit: the cap may leave fewer models than that
    worst_case: Callable[[str], float | None]  # a model's next call at its dearest (None: unknown)
    echo: Callable[[str], None] = lambda line: None
    told: set[str] = field(default_factory=set)  # models the console was told the cap excludes

    def over(self, spent: float, out: Collection[str] = ()) -> dict[str, float]:
        """Models (not `out`) whose worst-case next call would break the cap, with that cost."""
        found = {}
        for model in self.models:
            cost = self.worst_case(model) or 0.0
            if model not in out and spent + cost > self.limit:
                found[model] = cost
        return found

    def affordable(self, spent: float, out: Collection[str] = ()) -> list[str]:
        """Models (not `out`) whose worst-case next call still fits under the cap."""
        return self._fit(self.over(spent, out), out)

    def _fit(self, over: Collection[str], out: Collection[str]) -> list[str]:
        return [m for m in self.models if m not in out and m not in over]

    def say(self, spent: float, out: Collection[str] = (), first: bool = False) -> None:
        """Say when the cap takes a model out of the choice (once per model) and, before the
        first call, when it leaves fewer models than attempts: otherwise it is invisible."""
        over = self.over(spent, out)
        left = max(self.limit - spent, 0.0)
        for model, cost in over.items():
            if model not in self.told:
                self.told.add(model)
                self.echo(f"cap: {model} is left out: its worst case ${cost:.4f} is over the "
                          f"${left:.4f} left of the ${self.limit:.2f} cap")
        fit = self._fit(over, out)
        if first and over and 0 < len(fit) < self.attempts:
            self.echo(f"cap: only {len(fit)} model(s) fit under the ${self.limit:.2f} cap "
                      f"({', '.join(fit)}) for up to {self.attempts} attempts: a model may be "
                      "tried again")
