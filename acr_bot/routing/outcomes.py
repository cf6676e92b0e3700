"""The routing index: past tasks as hashed vectors, and every model's outcomes on each task.

Built once from memory records (or benchmark history) and grown in place as outcomes arrive,
so a decision costs one matrix-vector product however large the memory gets.

Each cell also remembers which models had already failed on that task when the model was
tried (a bit mask). A model tried only after cheaper ones failed was tried on a harder task;
the learned policy uses a cell as evidence only where that condition holds for the task at
hand, so cascade feedback does not teach it that strong models are weak.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from math import lgamma
from typing import TYPE_CHECKING

import numpy as np

from acr_bot.domain import VERDICT_SCORES, Features, Record, Summary
from acr_bot.errors import ConfigError
from acr_bot.routing.features import DIM, cell_key, vectorize

if TYPE_CHECKING:
    from acr_bot.memory.store import Memory

MAX_MODELS = 63  # conditions are int64 bit masks over model columns
# Change detection (two-sided CUSUM on each model's first tries, against its pass rate in the
# task's cell): when a model's outcomes drift from its record by more than DRIFT_SLACK per
# try, DRIFT_ALARM in total, the model has changed (a new version behind the same name, an
# outage of quality) and its old evidence is scaled by FORGET. It runs as outcomes are added,
# so a table rebuilt from the memory file (the bot, each run) and one grown outcome by
# outcome (the benchmark) detect the same changes. `change()` reads the same tries earlier
# and softer, for the learned policy: how likely a change is among the last CHANGE_WINDOW.
DRIFT_SLACK = 0.1
DRIFT_ALARM = 6.0
FORGET = 0.1
CHANGE_WINDOW = 30
WARM_UP = 10  # first tries of a model in a cell before they are a yardstick


@dataclass(frozen=True)
class Observation:
    task: str
    features: str  # compact feature tokens
    model: str
    score: float  # 1.0 pass, 0.0 fail; fractional allowed
    cost_usd: float | None
    weight: float = 1.0  # summaries stand for many attempts
    # Models that had failed on this task before this attempt. () = an independent try
    # (benchmark history, first attempts); None = whatever has failed in the table so far.
    after: tuple[str, ...] | None = ()
    # In time order, as the bot's attempts are; False: a snapshot in no order (the benchmark's
    # train rows, every model on every task), which the change detector does not watch.
    timed: bool = True


def observations(records: Sequence[Record], summaries: Sequence[Summary] = ()) -> list[Observation]:
    """Skill evidence from memory: attempts (provider faults excluded), adjusted by verdicts."""
    verdicts = {r.ref: VERDICT_SCORES[r.outcome] for r in records
                if r.kind == "verdict" and r.outcome in VERDICT_SCORES}
    # A cascade is the attempts of one run: a model's first try in a later run of the same
    # task is independent of what failed in an earlier run. Cascades go in the order they
    # started, so the table's change detector sees the memory as it happened.
    cascades: dict[tuple[str, str], list[Record]] = {}
    for r in records:
        if r.kind == "attempt" and r.outcome != "provider_fault":
            cascades.setdefault((r.task, r.run), []).append(r)
    out: list[Observation] = []
    for key in sorted(cascades, key=lambda k: (min(r.ts for r in cascades[k]), k)):
        failed_before: list[str] = []
        for r in sorted(cascades[key], key=lambda r: (r.attempt, r.ts)):
            score = verdicts.get(r.id, 1.0) if r.passed else 0.0
            out.append(Observation(r.task, r.features, r.model, score, r.cost_usd or None,
                                   after=tuple(failed_before)))
            if score < 1.0:
                failed_before.append(r.model)
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

    def add_column(self) -> None:
        extra = np.full((len(self.data), 1), self.fill, dtype=self.data.dtype)
        self.data = np.concatenate([self.data, extra], axis=1)

    @property
    def view(self) -> np.ndarray:
        return self.data[: self.n]


class OutcomeTable:
    """Task vectors (rows) × models (columns): summed scores, counts, costs, conditions."""

    def __init__(self, detect: bool = True) -> None:
        self.detect = detect  # run the change detector (off: an ablation)
        self._cells: dict[tuple[str, int], list[float]] = {}  # (cell, column) -> score, count
        self._cusum: dict[int, tuple[tuple[float, int], tuple[float, int]]] = {}
        # column -> its last watched first tries since its last alarm: (row, score, yardstick)
        self._recent: dict[int, list[tuple[int, float, float]]] = {}
        self._changes: dict[int, tuple[object, tuple[float, int]]] = {}  # change(), cached
        self.alarms: list[tuple[str, int]] = []  # (model, row) where a change was detected
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
        self.cost_ok = _Grow((0,), np.float32)  # $ and count of passing tries alone: failing
        self.cost_ok_n = _Grow((0,), np.float32)  # tries often cost much more (agents loop)
        self.after = _Grow((0,), np.int64)  # bit j: model j had failed before this one
        # Per-model totals kept incrementally (a model's whole record without a full scan):
        # score and count of independent tries; $ and count of all tries; of passing tries.
        self.totals = np.zeros((6, 0), dtype=np.float64)

    @classmethod
    def build(cls, observations: Iterable[Observation], detect: bool = True) -> OutcomeTable:
        table = cls(detect)
        for obs in observations:
            table.add(obs)
        return table

    def column(self, model: str) -> int:
        col = self.col_of.get(model)
        if col is None:
            if len(self.models) >= MAX_MODELS:
                raise ConfigError(f"at most {MAX_MODELS} models can be routed between")
            col = len(self.models)
            self.models.append(model)
            self.col_of[model] = col
            for grow in self._grids():
                grow.add_column()
            self.totals = np.concatenate([self.totals, np.zeros((6, 1))], axis=1)
        return col

    def row(self, task: str, features: str) -> int:
        row = self.row_of.get(task)
        if row is None:
            row = self.vectors.append(vectorize(features.split()))
            width = len(self.models)
            for grow in self._grids():
                grow.append(np.zeros(width, dtype=grow.data.dtype))
            self.task_ids.append(task)
            self.features.append(features)
            self.row_of[task] = row
        return row

    def _grids(self) -> tuple[_Grow, ...]:
        return (self.score, self.count, self.cost, self.cost_n, self.cost_ok, self.cost_ok_n,
                self.after)

    def failed_mask(self, row: int) -> int:
        """Bits of the models recorded as failing on `row` so far."""
        count = self.count.data[row]
        failing = (count > 0) & (self.score.data[row] < count)
        return int(np.sum(np.left_shift(1, np.flatnonzero(failing)).astype(np.int64)))

    def mask_of(self, models: Iterable[str]) -> int:
        return sum(1 << self.column(m) for m in set(models))

    def add(self, obs: Observation) -> None:
        col = self.column(obs.model)
        after = None if obs.after is None else self.mask_of(obs.after)
        row = self.row(obs.task, obs.features)
        if after is None:
            after = self.failed_mask(row) & ~(1 << col)
        first = self.count.data[row, col] == 0
        # Several tries of one model on one task: keep the loosest condition seen.
        self.after.data[row, col] = after if first else self.after.data[row, col] & after
        self.score.data[row, col] += obs.score * obs.weight
        self.count.data[row, col] += obs.weight
        if after == 0:
            self.totals[0, col] += obs.score * obs.weight
            self.totals[1, col] += obs.weight
        if obs.cost_usd is not None:
            paid, ok = obs.cost_usd * obs.weight, obs.score * obs.weight
            self.cost.data[row, col] += paid
            self.cost_n.data[row, col] += obs.weight
            self.cost_ok.data[row, col] += paid * obs.score
            self.cost_ok_n.data[row, col] += ok
            self.totals[2:, col] += (paid, obs.weight, paid * obs.score, ok)
        if after == 0 and self.detect and obs.weight == 1.0:  # watch first tries
            self._watch(col, cell_key(Features.parse(obs.features)), obs.score, row, obs.timed)

    def _watch(self, col: int, cell: str, score: float, row: int, timed: bool) -> None:
        """CUSUM of (outcome - the model's pass rate in this cell so far) on its first tries;
        an untimed outcome only adds to the yardstick."""
        t = self.totals[:, col]
        overall = (t[0] + 1.0) / (t[1] + 2.0)
        seen = self._cells.setdefault((cell, col), [0.0, 0.0])
        expected = (seen[0] + 2.0 * overall) / (seen[1] + 2.0)
        if seen[1] < WARM_UP or not timed:  # a new cell's yardstick is a guess: learn it first
            seen[0] += score
            seen[1] += 1.0
            return
        # each side: its sum, and the row where it last rose from zero (where a change began)
        (up, up_from), (down, down_from) = self._cusum.get(col, ((0.0, row), (0.0, row)))
        up_from = row if up == 0.0 else up_from
        down_from = row if down == 0.0 else down_from
        up = max(0.0, up + score - expected - DRIFT_SLACK)
        down = max(0.0, down + expected - score - DRIFT_SLACK)
        seen[0] += score
        seen[1] += 1.0
        recent = self._recent.setdefault(col, [])
        recent.append((row, score, expected))
        del recent[:-CHANGE_WINDOW]
        if max(up, down) > DRIFT_ALARM:
            start = up_from if up > down else down_from
            recent.clear()
            self.alarms.append((self.models[col], start))
            self.discount(self.models[col], FORGET, before=start)
            up = down = 0.0
        self._cusum[col] = ((up, up_from), (down, down_from))

    def change(self, col: int, prior: float) -> tuple[float, int]:
        """P(the model changed within its last CHANGE_WINDOW watched first tries) and the row
        where it most likely did: the tries since a change have a pass rate of their own
        (uniform prior, integrated out), those before keep their yardsticks; a change is
        `prior` likely at each try. 0 while there is nothing to watch."""
        recent = self._recent.get(col)
        if not recent:
            return 0.0, 0
        key = (len(recent), recent[-1][0], prior)
        if col in self._changes and self._changes[col][0] == key:
            return self._changes[col][1]
        x = np.array([r[1] for r in recent])[::-1]  # the last try first
        e = np.clip(np.array([r[2] for r in recent]), 0.01, 0.99)[::-1]
        passes, n = np.cumsum(x), np.arange(1, len(x) + 1)  # of the last n tries
        kept = np.cumsum(x * np.log(e) + (1 - x) * np.log(1 - e))
        new = np.array([lgamma(1 + a) + lgamma(1 + m - a) - lgamma(2 + m)
                        for a, m in zip(passes, n)])
        odds = prior * np.exp(np.clip(new - kept, -50, 50))  # a change n tries ago
        total = float(odds.sum())
        out = (total / (1.0 + total), recent[-1 - int(np.argmax(odds))][0])
        self._changes[col] = (key, out)
        return out

    def discount(self, model: str, factor: float, before: int | None = None) -> None:
        """Scale down the evidence about `model` on rows before `before` (default: all): it
        changed there, and its old outcomes mislead; the ones since the change stay whole."""
        col = self.column(model)
        end = self.n_rows if before is None else before
        grids = (self.score, self.count, self.cost, self.cost_n, self.cost_ok, self.cost_ok_n)
        for grow in grids:
            grow.data[:end, col] *= factor
        first = self.after.data[: self.n_rows, col] == 0
        for i, grow in enumerate(grids):  # the totals again, from the rows
            rows = grow.data[: self.n_rows, col]
            self.totals[i, col] = float(rows[first].sum() if i < 2 else rows.sum())
        for (cell, c), seen in self._cells.items():
            if c == col:
                seen[0] *= factor
                seen[1] *= factor

    def same_task(self, task: str, query: np.ndarray, threshold: float) -> tuple[int, float]:
        """The row of `task` (similarity 1), else the most similar row if at least
        `threshold` similar; (-1, 0.0) when there is none."""
        row = self.row_of.get(task)
        if row is not None:
            return row, 1.0
        if not self.n_rows:
            return -1, 0.0
        sims = self.similarities(query)
        best = int(np.argmax(sims))
        return (best, float(sims[best])) if sims[best] >= threshold else (-1, 0.0)

    def verified_on(self, row: int) -> dict[str, float]:
        """Models whose tries on one past task mostly verified (a rejected PR counts against),
        with their mean score."""
        count, score = self.count.data[row], self.score.data[row]
        return {m: float(score[c] / count[c]) for m, c in self.col_of.items()
                if count[c] > 0 and score[c] / count[c] >= 0.5}

    @property
    def n_rows(self) -> int:
        return self.vectors.n

    def similarities(self, query: np.ndarray) -> np.ndarray:
        return self.vectors.view @ query

    def outcomes_text(self, row: int, limit: int = 4) -> str:
        """`model:pass model:fail ...` for one past task, for explanations."""
        parts = []
        for col, model in enumerate(self.models):
            n = self.count.data[row, col]
            if n:
                mean = self.score.data[row, col] / n
                parts.append(f"{model}:{'pass' if mean >= 0.5 else 'fail'}")
        return " ".join(parts[:limit])


def stats(memory: Memory) -> dict[str, dict[str, dict[str, float]]]:
    """Per model overall, and per model within each language and task kind.

    Each cell: attempts, passes, pass_rate, cost_usd, usd_per_pass; per model also faults,
    and `reproduced`: the passes a test showed (it failed before the change and passes with it).
    """
    cells: dict[str, dict[str, dict[str, float]]] = {"model": {}}
    for obs in observations(memory.all_records(), memory.summaries):
        groups = [("model", obs.model)]
        for token in obs.features.split():
            kind, _, value = token.partition(":")
            if kind in ("lang", "kind"):
                groups.append((f"{kind}:{value}", obs.model))
        for group, model in groups:
            cell = cells.setdefault(group, {}).setdefault(
                model, {"attempts": 0.0, "passes": 0.0, "cost_usd": 0.0})
            cell["attempts"] += obs.weight
            cell["passes"] += obs.score * obs.weight
            cell["cost_usd"] += (obs.cost_usd or 0.0) * obs.weight
    faults: dict[str, float] = {}
    for r in memory.all_records():
        if r.kind == "attempt" and r.outcome == "provider_fault":
            faults[r.model] = faults.get(r.model, 0.0) + 1
    for s in memory.summaries:
        if s.faults:
            faults[s.model] = faults.get(s.model, 0.0) + s.faults
    for model in faults:  # a model that only ever faulted is still listed
        cells["model"].setdefault(model, {"attempts": 0.0, "passes": 0.0, "cost_usd": 0.0})
    for per_model in cells.values():
        for model, cell in per_model.items():
            cell["pass_rate"] = cell["passes"] / cell["attempts"] if cell["attempts"] else 0.0
            cell["usd_per_pass"] = cell["cost_usd"] / cell["passes"] if cell["passes"] else None
    reproduced: dict[str, float] = {}
    for r in memory.all_records():
        if r.kind == "attempt" and r.passed and r.reproduction:
            reproduced[r.model] = reproduced.get(r.model, 0.0) + 1
    for s in memory.summaries:
        reproduced[s.model] = reproduced.get(s.model, 0.0) + s.reproduced
    for model, cell in cells["model"].items():
        cell["faults"] = faults.get(model, 0.0)
        cell["reproduced"] = reproduced.get(model, 0.0)
    return cells
