"""The routing datasets shipped with the package, found by name (`acr-bot bench --dataset NAME`).

The files are package data (see README.md here for format, sources and licences), so an installed
wheel finds them as well as a checkout does.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
from importlib import resources
from pathlib import Path

NAMES = ("coderouterbench", "swebench-verified")
# The dataset the agent's cost hints come from: its runs used the scaffold our agent follows.
AGENT_RUNS = "swebench-verified"
# Leaderboard names that litellm spells otherwise.
_ALIASES = {"sonnet-4-5-20250929": "claude-sonnet-4-5-20250929",
            "claude-4-opus-20250514": "claude-opus-4-20250514"}
_DATE = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2})$")


def resolve(name_or_path: str) -> Path:
    """A shipped dataset's file for a known name, else the argument as a path (checked later)."""
    if name_or_path in NAMES:
        # The package is installed as plain files (no zip import), so this is a real path.
        return Path(str(resources.files(__name__) / f"{name_or_path}.jsonl.gz"))
    return Path(name_or_path)


def model_key(name: str) -> str:
    """A model name without its provider path and date: `anthropic/claude-opus-4-5-20251101`,
    `claude-opus-4-5` and the dataset's `claude-opus-4-5-20251101` share one key."""
    bare = name.rsplit("/", 1)[-1].lower()
    return _DATE.sub("", _ALIASES.get(bare, bare))


@functools.lru_cache(maxsize=None)
def mean_run_costs(name: str = AGENT_RUNS) -> dict[str, float]:
    """The mean dollars per run of each model of a shipped dataset (over its runs with a
    known cost, resolved or not: what one attempt is expected to cost), by `model_key`."""
    totals: dict[str, list[float]] = {}
    with gzip.open(resolve(name), "rt", encoding="utf-8") as handle:
        for line in handle:
            for model, outcome in json.loads(line)["outcomes"].items():
                if outcome.get("cost_usd") is not None:
                    totals.setdefault(model_key(model), []).append(float(outcome["cost_usd"]))
    return {key: sum(costs) / len(costs) for key, costs in totals.items()}
