"""The learned, cost-aware policy: nearest neighbours in memory, shrinkage, exploration, lookahead.

P(pass) for each model is estimated in three nested layers, each shrunk towards the one above
by pseudo-counts: the model's whole record (itself shrunk towards the memory-wide pass rate,
the cold-start prior); the model on the past tasks nearest to this one; and the same tasks
weighted by similarity. Inside one task, failures already seen are evidence: past tasks where
the failed models also failed count fully, tasks they solved barely count, which learns the
escalation order from memory; and the prior of such a state is the model's record scaled by
how much harder the tasks in it are for every model (its record alone would lend a strong
model its first-try rate on tasks that defeat most models). The same layers give
P(m' passes | m fails), so the utility of trying m accounts for a cascade:
P(m)·value − cost_weight·$m + (1−P(m))·(best next step). A model's expected cost comes from
the tasks most like this one where its cost was seen (an agent on a repository costs a
hundred times a one-line completion). Exploration: an optimism bonus (UCB) on models with
little evidence. A model that changes (its first tries drift from its record) is detected by
the outcome table itself (routing/outcomes.py), so the bot and the benchmark see the same;
before the table's alarm, which needs many tries, the policy reads the table's posterior
that the model changed among its last tries, and once that is likely (CHANGED) judges it
mostly on the tries since.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from acr_bot.domain import Decision, Estimate, Neighbour
from acr_bot.routing.base import CostHint, Outcome, Policy, RouteTask, Tried, no_hint
from acr_bot.routing.features import vectorize
from acr_bot.routing.outcomes import OutcomeTable

# A model whose recent first tries make a change at least this likely is judged on the tries
# since the change (routing/outcomes.py, OutcomeTable.change).
CHANGED = 0.9


@dataclass(frozen=True)
class Knobs:
    """Checked by cross-validation on benchmark train rows (benchmarks/tune_router.py, with
    the policy learning); the README says why these stay rather than the CV favourite."""

    near: int = 1024  # past tasks considered per decision (the most similar ones)
    tau: float = 0.1  # similarity kernel width: weight = exp((sim - 1) / tau)
    global_strength: float = 2.0  # pseudo-attempts of the memory-wide rate in a model's record
    model_strength: float = 4.0  # pseudo-attempts of the model's record among near tasks
    near_strength: float = 2.0  # pseudo-attempts of the near estimate in the similar one
    solved_by_failed: float = 0.05  # weight of a past task solved by a model that failed here
    unseen_by_failed: float = 0.5  # weight of a past task the failed model never tried
    cost_strength: float = 2.0  # pseudo-attempts of a model's mean cost in the local cost
    bonus: float = 0.5  # exploration (UCB): standard deviations of optimism
    hardness: bool = True  # the prior after failures: the record scaled by the state's hardness
    relative_cost: bool = True  # cost kernel relative to the closest task with a known cost
    change_prior: float = 0.003  # P(a model changes at any one of its tries): 0 switches off


@dataclass(frozen=True)
class _Layer:
    """Per-model pass estimates with their effective evidence."""

    p: np.ndarray
    n: np.ndarray


def _shrink(score: np.ndarray, count: np.ndarray, prior: np.ndarray, strength: float) -> _Layer:
    return _Layer((score + strength * prior) / (count + strength), count)


class LearnedPolicy(Policy):
    name = "learned"

    def __init__(self, table: OutcomeTable | None = None, cost_hint: CostHint = no_hint,
                 seed: int = 0, cost_weight: float = 1.0, learn: bool = True,
                 knobs: Knobs | None = None) -> None:
        super().__init__(table, cost_hint, seed, cost_weight)
        self.learn = learn
        self.knobs = knobs or Knobs()
        self.name = "learned" if learn else "frozen"

    def update(self, task: RouteTask, model: str, outcome: Outcome) -> None:
        if self.learn:  # the table also watches each model's first tries for a change
            super().update(task, model, outcome)

    def rank(self, task: RouteTask, pool: Sequence[str], tried: Sequence[Tried],
             attempts_left: int = 1) -> Decision:
        for model in pool:
            self.table.column(model)  # a new model gets a column (and the cold-start prior)
        sims = self.table.similarities(vectorize(task.features.tokens))
        near = self._near(sims)
        weights = np.exp((sims[near] - 1.0) / self.knobs.tau)
        failed = [t.model for t in tried if t.outcome.skill and t.outcome.score < 1.0]
        fresh = self._fresh(near)
        layers = self._estimate(near, weights, failed, fresh)
        cols = np.array([self.table.col_of[m] for m in pool])
        pair = (self._pairwise(near, weights, failed, layers, cols, fresh)[:, cols]
                if len(cols) > 1 else None)
        costs = self._costs(near, weights, pool, layers)
        optimistic = self._optimism(layers, cols)
        value = self._utilities(layers, cols, optimistic, costs, pair, attempts_left)
        best = int(np.argmax(value))
        estimates = tuple(Estimate(m, float(layers.p[c]), float(optimistic[i]), costs[i],
                                   float(value[i]), float(layers.n[c]),
                                   int(self.table.totals[1, c])) for i, (m, c) in
                          enumerate(zip(pool, cols)))
        return Decision(pool[best], self.name, self._reason(estimates[best], tried),
                        estimates, self._neighbours(sims, near, task.id), float(value[best]))

    def _near(self, sims: np.ndarray) -> np.ndarray:
        k = self.knobs.near
        if len(sims) <= k:
            return np.arange(len(sims))
        return np.argpartition(-sims, k - 1)[:k]

    def _condition(self, near: np.ndarray, failed: Sequence[str]) -> np.ndarray:
        """Row weights from this task's failures: tasks those models also failed weigh most."""
        factor = np.ones(len(near))
        table, k = self.table, self.knobs
        for model in failed:
            col = table.col_of.get(model)
            if col is None:
                factor *= k.unseen_by_failed
                continue
            count = table.count.data[near, col]
            mean = np.divide(table.score.data[near, col], count, out=np.zeros(len(near)),
                             where=count > 0)
            factor *= np.where(count > 0, (1 - mean) + mean * k.solved_by_failed,
                               k.unseen_by_failed)
        return factor

    def _record_layer(self) -> _Layer:
        """Each model's record of independent tries, shrunk to the memory-wide rate."""
        t, k = self.table.totals, self.knobs
        base = (t[0].sum() + 1.0) / (t[1].sum() + 2.0)  # 1/2 with an empty memory
        return _shrink(t[0], t[1], np.full(t.shape[1], base), k.global_strength)

    def _evidence(self, near: np.ndarray, failed_mask: int,
                  fresh: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Scores and counts of the cells valid as evidence when `failed_mask` has failed:
        cells whose model was tried only after other failures count only if those failures
        happened here too; `fresh` weighs each cell by how current it is."""
        table = self.table
        keep = ((table.after.data[near] & ~np.int64(failed_mask)) == 0) * fresh
        return table.score.data[near] * keep, table.count.data[near] * keep

    def _fresh(self, near: np.ndarray) -> np.ndarray | float:
        """Per near row and model, P(the model has not changed since): a model whose last
        first tries make a change likely (before the table's alarm, which needs more of
        them) is judged mostly on the tries since."""
        if self.knobs.change_prior <= 0 or not self.learn:
            return 1.0
        fresh = np.ones((len(near), len(self.table.models)))
        for col in range(len(self.table.models)):
            changed, since = self.table.change(col, self.knobs.change_prior)
            if changed >= CHANGED:
                fresh[near < since, col] = 1.0 - changed
        return fresh

    def _layers(self, score: np.ndarray, count: np.ndarray, cond: np.ndarray,
                weights: np.ndarray, prior: np.ndarray) -> _Layer:
        """Near tasks (uniform) shrunk to `prior`, then similar ones shrunk to that."""
        k = self.knobs
        near_layer = _shrink(cond @ score, cond @ count, prior, k.model_strength)
        w = weights * cond
        return _shrink(w @ score, w @ count, near_layer.p, k.near_strength)

    def _hardness(self, cond: np.ndarray, score: np.ndarray, count: np.ndarray) -> float:
        """How much harder tasks in this state are than tasks at large: the pooled pass rate
        of every model on the tasks the condition selects, over the memory-wide first-try
        rate (at most 1: failures never make a task easier)."""
        t = self.table.totals
        base = (t[0].sum() + 1.0) / (t[1].sum() + 2.0)
        pooled = ((cond @ score).sum() + base) / ((cond @ count).sum() + 1.0)
        return min(1.0, pooled / base)

    def _estimate(self, near: np.ndarray, weights: np.ndarray, failed: Sequence[str],
                  fresh: np.ndarray | float) -> _Layer:
        score, count = self._evidence(near, self.table.mask_of(failed), fresh)
        cond = self._condition(near, failed)
        prior = self._record_layer().p
        if failed and self.knobs.hardness:
            prior = prior * self._hardness(cond, score, count)
        return self._layers(score, count, cond, weights, prior)

    def _pairwise(self, near: np.ndarray, weights: np.ndarray, failed: Sequence[str],
                  first: _Layer, cols: np.ndarray, fresh: np.ndarray | float) -> np.ndarray:
        """P(m' passes | m fails, after this task's failures so far), pool × all models."""
        table = self.table
        count = table.count.data[near]
        mean = np.divide(table.score.data[near], count, out=np.zeros_like(count),
                         where=count > 0)
        fails = (count > 0) * (1.0 - mean)  # soft "m failed on this past task"
        cond = self._condition(near, failed)
        base_mask = table.mask_of(failed)
        record = self._record_layer().p
        rows = []
        for col in cols:
            score, cnt = self._evidence(near, base_mask | (1 << int(col)), fresh)
            after = cond * fails[:, col]
            prior = (record * self._hardness(after, score, cnt) if self.knobs.hardness
                     else first.p)
            rows.append(self._layers(score, cnt, after, weights, prior).p)
        return np.array(rows)

    def _costs(self, near: np.ndarray, weights: np.ndarray, pool: Sequence[str],
               layers: _Layer) -> list[float | None]:
        """Expected $ per model: P(pass)·$ when passing + P(fail)·$ when failing, each the
        similarity-weighted past cost shrunk to the model's mean (failures often cost more)."""
        table, s = self.table, self.knobs.cost_strength
        out: list[float | None] = []
        for model in pool:
            col = table.col_of[model]
            t = table.totals[:, col]
            if t[3] == 0:
                out.append(self.cost_hint(model))
                continue
            paid, n = table.cost.data[near, col], table.cost_n.data[near, col]
            ok, ok_n = table.cost_ok.data[near, col], table.cost_ok_n.data[near, col]
            mean_ok = t[4] / t[5] if t[5] else t[2] / t[3]
            mean_fail = (t[2] - t[4]) / (t[3] - t[5]) if t[3] > t[5] else t[2] / t[3]
            w = self._cost_weights(near, weights, n)
            c_ok = (w @ ok + s * mean_ok) / (w @ ok_n + s)
            c_fail = (w @ (paid - ok) + s * mean_fail) / (w @ (n - ok_n) + s)
            p = float(layers.p[col])
            out.append(float(p * c_ok + (1 - p) * c_fail))
        return out

    def _cost_weights(self, near: np.ndarray, weights: np.ndarray, n: np.ndarray) -> np.ndarray:
        """Costs differ by task far more than pass rates (a one-line completion against an
        agent's hour on a repository): the tasks most like this one where the model's cost
        was seen weigh as one attempt each, whatever their absolute similarity."""
        seen = n > 0
        if not self.knobs.relative_cost or not seen.any():
            return weights
        return weights / weights[seen].max()

    def _optimism(self, layers: _Layer, cols: np.ndarray) -> np.ndarray:
        p = layers.p[cols]
        # The upper layers lend their pseudo-attempts only as far as real tries back them: a
        # model with no record is as uncertain as its prior, so it gets explored early.
        lent = np.minimum(self.knobs.near_strength + self.knobs.model_strength,
                          self.table.totals[1, cols])
        n = layers.n[cols] + lent
        if not self.learn:
            return p
        return p + self.knobs.bonus * np.sqrt(p * (1 - p) / (n + 1.0))

    def _utilities(self, layers: _Layer, cols: np.ndarray, optimistic: np.ndarray,
                   costs: list[float | None], pair: np.ndarray | None,
                   attempts_left: int) -> np.ndarray:
        """Utility of trying each model now, plus the best follow-up if it fails."""
        known = [c for c in costs if c is not None]
        dear = max(known) if known else 0.0  # an unknown price is charged the dearest known
        cost = np.array([dear if c is None else c for c in costs])
        value = optimistic - self.cost_weight * cost  # a solved task is worth 1
        if attempts_left <= 1 or pair is None:
            return value
        follow = pair - self.cost_weight * cost[None, :]
        np.fill_diagonal(follow, -np.inf)
        best_next = np.maximum(follow.max(axis=1), 0.0)  # or stop trying
        return value + (1.0 - layers.p[cols]) * best_next

    def _neighbours(self, sims: np.ndarray, near: np.ndarray, task_id: str,
                    limit: int = 5) -> tuple[Neighbour, ...]:
        top = near[np.argsort(-sims[near])][: limit + 1]
        out = [Neighbour(self.table.task_ids[r], float(sims[r]), self.table.outcomes_text(r))
               for r in top if self.table.task_ids[r] != task_id]
        return tuple(out[:limit])

    def _reason(self, best: Estimate, tried: Sequence[Tried]) -> str:
        cost = "unknown $" if best.exp_cost_usd is None else f"${best.exp_cost_usd:.4f}"
        after = f" after {len(tried)} failed attempt(s)" if tried else ""
        return (f"highest utility{after}: P(pass)≈{best.p_pass:.2f} from {best.neighbours:.1f} "
                f"weighted similar attempts and {best.records} overall, expected {cost}")
