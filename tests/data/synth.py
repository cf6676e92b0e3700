"""Small synthetic routing datasets (v1 JSONL, see acr_bot/bench/datasets/README.md) for bench tests.

Every generator is seeded and returns plain row dicts; `write` saves them as JSONL.
`python tests/data/synth.py` regenerates `tests/data/synthetic.jsonl`, the general-purpose file
(a test checks it still matches `general()`).

`general()`: 3 categories (in tags, like CodeRouterBench), 3 models of different prices and
skills plus `late-model`, which appears mid-stream; OOD rows with real text at the end; a few
`cost_usd: null`.

`drift_task_mix()` and `drift_*_model()`: streams where the task mix or the models change
after the train rows were recorded; the learned policy must adapt, the frozen one cannot.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
GENERAL_FILE = HERE / "synthetic.jsonl"

# model -> (price of one attempt in $, skill per category)
CATEGORIES = {"gen": ("code_generation", "bcb"), "bug": ("bug_fixing", "debugbench"),
              "algo": ("algorithm", "lcb")}
MODELS: dict[str, tuple[float, dict[str, float]]] = {
    "cheap-mini": (0.002, {"gen": 0.70, "bug": 0.20, "algo": 0.10, "ood": 0.10}),
    "mid-coder": (0.02, {"gen": 0.75, "bug": 0.60, "algo": 0.40, "ood": 0.35}),
    "big-pro": (0.20, {"gen": 0.80, "bug": 0.80, "algo": 0.70, "ood": 0.60}),
    "late-model": (0.03, {"gen": 0.90, "bug": 0.90, "algo": 0.90, "ood": 0.70}),
}
OOD_TEXTS = (
    ("KeyError in the config loader when a section is missing\n\nTraceback (most recent call "
     "last):\n  File \"app/config.py\", line 12, in load\nKeyError: 'database'\n"),
    "Add support for a --dry-run option to the deploy command in cli/deploy.py",
    "Pagination returns duplicate items on the last page of the orders endpoint (orders.py)",
    "The CSV exporter writes dates in local time instead of UTC; see export/csv_writer.py",
)


FAILED_COST = 1.6  # a failed attempt costs this many times the price, on average


def outcome(rng: random.Random, price: float, skill: float, null_cost: float = 0.0
            ) -> dict[str, Any]:
    """One model's result: pass with probability `skill`; failures cost more (agents loop)."""
    passed = rng.random() < skill
    cost = price * (1.0 if passed else FAILED_COST) * rng.uniform(0.7, 1.3)
    return {"score": 1.0 if passed else 0.0,
            "cost_usd": None if rng.random() < null_cost else round(cost, 6)}


def category_row(rng: random.Random, ident: str, category: str, split: str,
                 skills: Mapping[str, tuple[float, float]], null_cost: float = 0.0,
                 truth: bool = False) -> dict[str, Any]:
    """A row with CodeRouterBench-style text: category and source benchmark only.
    `skills`: model -> (price, P(pass)) for the models available on this row. `truth`: also
    carry them (outcomes are independent given them), from which benchmarks/regret_table.py
    computes the Bayes-optimal policy."""
    kind, source = CATEGORIES[category]
    number = rng.randrange(10_000)  # like "BigCodeBench/767": digits carry no features
    row = {"id": ident, "text": f"{kind.replace('_', ' ')} task from {source}: {number}",
           "tags": [kind, source], "split": split, "ood": False,
           "outcomes": {m: outcome(rng, price, p, null_cost) for m, (price, p) in
                        skills.items()}}
    if truth:
        row["truth"] = {m: {"price": price, "p_pass": p} for m, (price, p) in skills.items()}
    return row


def general(seed: int = 7) -> list[dict[str, Any]]:
    """60 train rows, 120 in-distribution stream rows, then 24 OOD stream rows."""
    rng = random.Random(seed)
    old = [m for m in MODELS if m != "late-model"]
    rows = []
    for i in range(60):
        cat = rng.choice(list(CATEGORIES))
        rows.append(category_row(rng, f"hist_{i:03d}", cat, "train",
                                 {m: (MODELS[m][0], MODELS[m][1][cat]) for m in old},
                                 null_cost=0.03))
    for i in range(120):
        cat = rng.choice(list(CATEGORIES))
        present = old + (["late-model"] if i >= 60 else [])  # a new model appears mid-stream
        rows.append(category_row(rng, f"live_{i:03d}", cat, "stream",
                                 {m: (MODELS[m][0], MODELS[m][1][cat]) for m in present},
                                 null_cost=0.03))
    for i in range(24):
        rows.append({"id": f"agentic_{i:02d}",
                     "text": OOD_TEXTS[i % len(OOD_TEXTS)] + f" (case {i})",
                     "language": "python", "tags": ["bug_fixing", "agentic"], "split": "stream",
                     "ood": True, "created_at": f"2026-01-{i + 1:02d}",
                     "outcomes": {m: outcome(rng, price, skill["ood"])
                                  for m, (price, skill) in MODELS.items()}})
    return rows


# --- drifting streams ------------------------------------------------------------------------

DRIFT_PRICE = 0.05  # same price for every drift model: only skill decides


def drift_task_mix(seed: int = 0, n_train: int = 150, n_stream: int = 400
                   ) -> list[dict[str, Any]]:
    """The task mix changes: memory holds only code generation, where `alpha` is best; the
    stream moves to bug fixing (10% of the first 100 rows, 90% after), where `beta` is best
    and `alpha` is poor."""
    rng = random.Random(seed)
    skill = {"gen": {"alpha": 0.85, "beta": 0.50, "gamma": 0.30},
             "bug": {"alpha": 0.10, "beta": 0.85, "gamma": 0.30}}
    rows = []
    for i in range(n_train):
        rows.append(category_row(rng, f"t{i}", "gen", "train",
                                 {m: (DRIFT_PRICE, p) for m, p in skill["gen"].items()}, truth=True))
    for i in range(n_stream):
        cat = "bug" if rng.random() < (0.1 if i < 100 else 0.9) else "gen"
        rows.append(category_row(rng, f"s{i}", cat, "stream",
                                 {m: (DRIFT_PRICE, p) for m, p in skill[cat].items()}, truth=True))
    return rows


def drift_degrading_model(seed: int = 0, n_train: int = 150, n_stream: int = 400,
                          change_at: int = 100) -> list[dict[str, Any]]:
    """A model changes: `alpha`, the best model in memory (0.85 vs 0.60), degrades to 0.15
    from stream row `change_at` on (e.g. a provider silently swaps the model behind a name)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n_train + n_stream):
        stream = i >= n_train
        alpha = 0.15 if stream and i - n_train >= change_at else 0.85
        rows.append(category_row(rng, f"r{i}", "gen", "stream" if stream else "train",
                                 {"alpha": (DRIFT_PRICE, alpha), "beta": (DRIFT_PRICE, 0.60),
                                  "gamma": (DRIFT_PRICE, 0.30)}, truth=True))
    return rows


def drift_new_model(seed: int = 0, n_train: int = 150, n_stream: int = 400,
                    appears_at: int = 100) -> list[dict[str, Any]]:
    """The models change: `delta`, a specialist, becomes available from stream row
    `appears_at` on: the best model on bug fixing (0.95 against beta's 0.60) and a middling
    one on code generation (0.60 against alpha's 0.85). Tasks are half of each kind, so no
    single order of models suits both once delta is there."""
    rng = random.Random(seed)
    skill = {"gen": {"alpha": 0.85, "beta": 0.50, "gamma": 0.30, "delta": 0.60},
             "bug": {"alpha": 0.40, "beta": 0.60, "gamma": 0.30, "delta": 0.95}}
    rows = []
    for i in range(n_train + n_stream):
        stream = i >= n_train
        cat = rng.choice(("gen", "bug"))
        present = [m for m in skill[cat] if m != "delta" or stream and i - n_train >= appears_at]
        rows.append(category_row(rng, f"r{i}", cat, "stream" if stream else "train",
                                 {m: (DRIFT_PRICE, skill[cat][m]) for m in present}, truth=True))
    return rows


def write(rows: Iterable[Mapping[str, Any]], path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def lines(rows: Sequence[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


if __name__ == "__main__":
    write(general(), GENERAL_FILE)
    print(f"wrote {GENERAL_FILE} ({GENERAL_FILE.stat().st_size} bytes)")
