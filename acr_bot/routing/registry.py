"""Policies by name: the one place a policy is added.

`POLICIES` names each policy's class by import path, so the settings parser, the CLI's help
and the benchmark can list the names without importing numpy; `make_policy` imports the class
only when a policy is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import import_module
from typing import TYPE_CHECKING, Any

from acr_bot.errors import ConfigError

if TYPE_CHECKING:
    from acr_bot.routing.base import CostHint, Policy
    from acr_bot.routing.outcomes import Observation

# name -> (module:class, extra constructor arguments)
POLICIES: dict[str, tuple[str, dict[str, Any]]] = {
    "learned": ("acr_bot.routing.learned:LearnedPolicy", {"learn": True}),
    "frozen": ("acr_bot.routing.learned:LearnedPolicy", {"learn": False}),
    "static-table": ("acr_bot.routing.policies:StaticTable", {}),
    "cheapest-first": ("acr_bot.routing.policies:CheapestFirst", {}),
    "best-first": ("acr_bot.routing.policies:BestFirst", {}),
    "random": ("acr_bot.routing.policies:RandomPolicy", {}),
}
NAMES = tuple(POLICIES)
FIXED = "fixed:"  # fixed:<model> always picks that model
HELP = f"{', '.join(NAMES)} or {FIXED}<model>"


def _load(path: str) -> type[Policy]:
    module, _, name = path.partition(":")
    return getattr(import_module(module), name)  # type: ignore[no-any-return]


def make_policy(name: str, observations: Sequence[Observation], *,
                cost_hint: CostHint | None = None, seed: int = 0,
                cost_weight: float = 1.0) -> Policy:
    """Build a policy by name, fed with past observations."""
    from acr_bot.routing.outcomes import OutcomeTable

    common: dict[str, Any] = {"table": OutcomeTable.build(observations), "seed": seed,
                              "cost_weight": cost_weight}
    if cost_hint is not None:
        common["cost_hint"] = cost_hint
    if name.startswith(FIXED):
        return _load("acr_bot.routing.policies:Fixed")(name.removeprefix(FIXED), **common)
    if name not in POLICIES:
        raise ConfigError(f"unknown policy {name!r}; choose {HELP}")
    path, extra = POLICIES[name]
    return _load(path)(**common, **extra)
