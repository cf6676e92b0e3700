"""The router's expected cost of an agent attempt comes from the shipped dataset's own per-run
costs (SWE-bench Verified through the scaffold the agent follows) when the dataset knows the
model, and from token prices otherwise."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace

import numpy as np
import pytest

from acr_bot import app
from acr_bot.bench.datasets import resolve
from acr_bot.config import Settings
from acr_bot.domain import Price
from acr_bot.llm import table_price


def dataset_runs() -> dict[str, list[float]]:
    """Each model's per-run costs, read straight from the shipped file."""
    runs: dict[str, list[float]] = {}
    with gzip.open(resolve("swebench-verified"), "rt") as handle:
        for line in handle:
            for model, outcome in json.loads(line)["outcomes"].items():
                runs.setdefault(model, []).append(outcome["cost_usd"])
    return runs


RUNS = dataset_runs()


def mean(model: str) -> float:
    return sum(RUNS[model]) / len(RUNS[model])


def hint(arm: str, **changes: object) -> float | None:
    settings = replace(Settings(), models=(arm,), **changes)
    return app.portfolio(settings).cost_hint(arm)


@pytest.mark.parametrize(("model", "row"), [
    ("gpt-5-mini", "gpt-5-mini"),
    ("openai/gpt-5-mini", "gpt-5-mini"),
    ("anthropic/claude-opus-4-5-20251101", "claude-opus-4-5-20251101"),
    ("claude-opus-4-5", "claude-opus-4-5-20251101"),
    ("claude-sonnet-4-5", "sonnet-4-5-20250929"),  # the leaderboard spells it otherwise
    ("gemini/gemini-3-pro-preview", "gemini-3-pro-preview-20251118"),
    ("o3", "o3-2025-04-16"),
])
def test_a_model_the_dataset_ran_costs_what_its_runs_cost_on_average(model: str,
                                                                     row: str) -> None:
    assert hint(model) == pytest.approx(mean(row), rel=1e-9)


def test_a_model_the_dataset_does_not_know_is_priced_by_its_tokens() -> None:
    price = table_price("gpt-4o")
    assert price is not None and "gpt-4o" not in RUNS
    assert hint("gpt-4o") == pytest.approx(price.cost(*app.TYPICAL_TOKENS["agent"]))
    assert hint("gpt-5-mini@edit") == pytest.approx(
        table_price("gpt-5-mini").cost(*app.TYPICAL_TOKENS["edit"]))  # type: ignore[union-attr]


def test_a_price_the_user_set_wins_over_the_dataset() -> None:
    own = Price(0.0, 0.0)  # self-hosted
    assert hint("gpt-oss-120b", prices={"gpt-oss-120b": own}) == 0.0
    assert hint("gpt-oss-120b") == pytest.approx(mean("gpt-oss-120b"))


def test_the_typical_agent_tokens_fit_the_datasets_costs() -> None:
    """Refit: the input and output tokens that best explain (least relative error) the mean
    cost of the dataset's models whose names litellm prices as they are."""
    rows, costs = [], []
    for model in sorted(RUNS):
        price = table_price(model)
        if price is not None and price.input_per_token > 0:
            rows.append([price.input_per_token, price.output_per_token])
            costs.append(mean(model))
    assert len(rows) >= 8
    matrix, target = np.array(rows), np.array(costs)
    tokens, *_ = np.linalg.lstsq(matrix / target[:, None], np.ones(len(costs)), rcond=None)
    assert app.TYPICAL_TOKENS["agent"] == pytest.approx(tuple(tokens), rel=0.1)
