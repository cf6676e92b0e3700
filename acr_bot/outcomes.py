"""The routing index: past tasks as hashed vectors, and every model's outcomes on each task.

Built once from memory records (or benchmark history) and grown in place as outcomes arrive,
so a decision costs one matrix-vector product however large the memory gets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .domain import Record
from .features import DIM, vectorize
from .memory import Summary

# What a human verdict on a PR does to the attempt it judges: tests passing is not enough
# if the maintainers rejected the change.
VERDICT_SCORES = {"accepted": 1.0, "changes_requested": 0.5, "rejected": 0.0}


@dataclass(frozen=True)
class Observation:
    task: str
    features: str  # compact feature tokens
    model: str
    score: float  # 1.0 pass, 0.0 fail; fractional allowed
    cost_usd: float | None
    weight: float = 1.0  # summaries stand for many attempts


def observations(records: Sequence[Record], summaries: Sequence[Summary] = ()) -> list[Observation]:
    """Skill evidence from memory: attempts (provider faults excluded), adjusted by verdicts."""
    verdicts = {r.ref: VERDICT_SCORES[r.outcome] for r in records
                if r.kind == "verdict" and r.outcome in VERDICT_SCORES}
    out = []
    for r in records:
        if r.kind != "attempt" or r.outcome == "provider_fault":
            continue
        score = verdicts.get(r.id, 1.0) if r.passed else 0.0
        out.append(Observation(r.task, r.features, r.model, score, r.cost_usd or None))
    for s in summaries:
        if s.attempts:
            out.append(Observation(f"summary:{s.cluster}", s.cluster, s.model,
                                   s.passes / s.attempts, s.cost_usd / s.attempts, s.attempts))
    return out


class _Grow:
    """A numpy array with amortised O(1) row appends."""

    def __init__(self, shape: tuple[int, ...], dtype: type, fill: float = 0.0) -> None:
        self.fill = fill
        self.data = np.full((16, *shape), fill, dtype=dtype)
        self.n = 0

    def append(self, row: np.ndarray | float) -> int:
        if self.n == len(self.data):
            bigger = np.full((2 * len(self.data), *self.data.shape[1:]), self.fill,
                             dtype=self.data.dtype)
            bigger[: self.n] = self.data[: self.n]
            self.data = bigger
        self.data[self.n] = row
        self.n += 1
        return self.n - 1

    @property
    def view(self) -> np.ndarray:
        return self.data[: self.n]


class OutcomeTable:
    """Task vectors (rows) × models (columns): summed scores, counts and costs."""

    def __init__(self) -> None:
        self.vectors = _Grow((DIM,), np.float32)
        self.task_ids: list[str] = []
        self.features: list[str] = []
        self.row_of: dict[str, int] = {}
        self.models: list[str] = []
        self.col_of: dict[str, int] = {}
        self.score = _Grow((0,), np.float32)  # columns added as models appear
        self.count = _Grow((0,), np.float32)
        self.cost = _Grow((0,), np.float32)
        self.cost_n = _Grow((0,), np.float32)
        self.rows_by_model: list[_Grow] = []

    @classmethod
    def build(cls, observations: Iterable[Observation]) -> OutcomeTable:
        table = cls()
        for obs in observations:
            table.add(obs)
        return table

    def column(self, model: str) -> int:
        col = self.col_of.get(model)
        if col is None:
            col = len(self.models)
            self.models.append(model)
            self.col_of[model] = col
            for grow in (self.score, self.count, self.cost, self.cost_n):
                grow.data = np.concatenate([grow.data, np.zeros((len(grow.data), 1),
                                                                dtype=np.float32)], axis=1)
            self.rows_by_model.append(_Grow((), np.int64))
        return col

    def row(self, task: str, features: str) -> int:
        row = self.row_of.get(task)
        if row is None:
            row = self.vectors.append(vectorize(features.split()))
            width = len(self.models)
            for grow in (self.score, self.count, self.cost, self.cost_n):
                grow.append(np.zeros(width, dtype=np.float32))
            self.task_ids.append(task)
            self.features.append(features)
            self.row_of[task] = row
        return row

    def add(self, obs: Observation) -> None:
        col = self.column(obs.model)
        row = self.row(obs.task, obs.features)
        if self.count.data[row, col] == 0:
            self.rows_by_model[col].append(row)
        self.score.data[row, col] += obs.score * obs.weight
        self.count.data[row, col] += obs.weight
        if obs.cost_usd is not None:
            self.cost.data[row, col] += obs.cost_usd * obs.weight
            self.cost_n.data[row, col] += obs.weight

    @property
    def n_rows(self) -> int:
        return self.vectors.n

    def similarities(self, query: np.ndarray) -> np.ndarray:
        return self.vectors.view @ query

    def rows(self, model: str) -> np.ndarray:
        col = self.col_of.get(model)
        return self.rows_by_model[col].view if col is not None else np.zeros(0, dtype=np.int64)

    def mean_score(self, rows: np.ndarray, model: str) -> np.ndarray:
        """Per-row mean score of `model`; NaN where it was never tried."""
        col = self.col_of.get(model)
        if col is None:
            return np.full(len(rows), np.nan, dtype=np.float32)
        count = self.count.data[rows, col]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, self.score.data[rows, col] / count, np.nan)

    def outcomes_text(self, row: int, limit: int = 4) -> str:
        """`model:pass model:fail ...` for one past task, for explanations."""
        parts = []
        for col, model in enumerate(self.models):
            n = self.count.data[row, col]
            if n:
                mean = self.score.data[row, col] / n
                parts.append(f"{model}:{'pass' if mean >= 0.5 else 'fail'}")
        return " ".join(parts[:limit])
