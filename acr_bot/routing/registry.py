"""Policies by name: the one place a policy is added."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from acr_bot.errors import ConfigError
from acr_bot.routing.base import CostHint, Policy, no_hint
from acr_bot.routing.learned import LearnedPolicy
from acr_bot.routing.outcomes import Observation, OutcomeTable
from acr_bot.routing.policies import BestFirst, CheapestFirst, Fixed, RandomPolicy, StaticTable


def make_policy(name: str, observations: Sequence[Observation], *, cost_hint: CostHint = no_hint,
                seed: int = 0, cost_weight: float = 1.0) -> Policy:
    """Build a policy by name, fed with past observations."""
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
