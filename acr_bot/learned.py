"""The learned, cost-aware policy: nearest neighbours in memory, shrinkage, Thompson sampling.

For each candidate model, P(pass) is a Beta posterior: its prior is the model's whole record
(itself shrunk towards the memory-wide pass rate, the cold-start prior), its evidence the
similarity-weighted outcomes of the model on the most similar past tasks. Inside one task,
failures already seen are evidence too: past tasks where the failed model also failed weigh
more than tasks it solved, which learns the escalation order from memory. The policy ranks by
utility = P(pass) × value − cost_weight × expected $, where P(pass) is made optimistic in
proportion to its uncertainty (UCB, or a Thompson sample seeded per task) so that uncertain and
new models get explored. With an empty memory every model looks alike and the cheapest wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .domain import Decision, Estimate, Neighbour
from .features import vectorize
from .router import CostHint, Policy, RouteTask, Tried, _no_hint, task_rng
from .outcomes import OutcomeTable


@dataclass(frozen=True)
class Knobs:
    """Tuned by cross-validation on benchmark train rows (see README, Benchmark)."""

    k: int = 48  # neighbours per model
    tau: float = 0.12  # similarity kernel width: weight = exp((sim - 1) / tau)
    prior_strength: float = 4.0  # pseudo-attempts the model's overall record is worth
    global_strength: float = 2.0  # pseudo-attempts the memory-wide rate is worth
    solved_by_failed: float = 0.15  # weight of a past task that a model failing here solved
    unseen_by_failed: float = 0.5  # weight of a past task the failed model never tried
    value: float = 1.0  # utility of one solved task, in the same unit as cost_weight × $
    explore: str = "ucb"  # "ucb": optimism bonus; "thompson": sample the posterior
    bonus: float = 0.5  # UCB: standard deviations of optimism


class LearnedPolicy(Policy):
    name = "learned"

    def __init__(self, table: OutcomeTable | None = None, cost_hint: CostHint = _no_hint,
                 seed: int = 0, cost_weight: float = 1.0, learn: bool = True,
                 knobs: Knobs | None = None) -> None:
        super().__init__(table, cost_hint, seed)
        self.cost_weight = cost_weight
        self.learn = learn
        self.knobs = knobs or Knobs()
        self.name = "learned" if learn else "frozen"

    def update(self, task: RouteTask, model: str, outcome: object) -> None:
        if self.learn:
            super().update(task, model, outcome)  # type: ignore[arg-type]

    def rank(self, task: RouteTask, pool: Sequence[str], tried: Sequence[Tried]) -> Decision:
        sims = self.table.similarities(vectorize(task.features.tokens))
        factor = self._condition(tried)
        base = self._global_rate()
        rng = task_rng(self.seed, task, len(tried))
        estimates = [self._estimate(m, sims, factor, base, rng) for m in pool]
        estimates = self._price_unknowns(estimates)
        best = max(estimates, key=lambda e: (e.utility, -(e.exp_cost_usd or 0.0)))
        return Decision(best.model, self.name, self._reason(best, tried), tuple(estimates),
                        self._neighbours(sims, task.id))

    def _global_rate(self) -> float:
        """The memory-wide pass rate, itself shrunk towards 1/2 (the cold-start prior)."""
        n = float(self.table.count.view.sum())
        return (float(self.table.score.view.sum()) + 1.0) / (n + 2.0)

    def _condition(self, tried: Sequence[Tried]) -> np.ndarray | None:
        """Row weights from this task's failures so far (None when nothing failed yet)."""
        failed = [t.model for t in tried if t.outcome.skill and t.outcome.score < 1.0]
        if not failed or not self.table.n_rows:
            return None
        rows = np.arange(self.table.n_rows)
        factor = np.ones(len(rows), dtype=np.float32)
        k = self.knobs
        for model in failed:
            mean = self.table.mean_score(rows, model)
            known = ~np.isnan(mean)
            factor *= np.where(known, (1 - np.nan_to_num(mean)) + np.nan_to_num(mean)
                               * k.solved_by_failed, k.unseen_by_failed).astype(np.float32)
        return factor

    def _estimate(self, model: str, sims: np.ndarray, factor: np.ndarray | None, base: float,
                  rng: np.random.Generator) -> Estimate:
        k, table = self.knobs, self.table
        rows = table.rows(model)
        col = table.col_of.get(model)
        count = table.count.data[rows, col] if col is not None else np.zeros(0, np.float32)
        score = table.score.data[rows, col] if col is not None else np.zeros(0, np.float32)
        f = factor[rows] if factor is not None else 1.0
        overall = (float(np.sum(score * f)) + k.global_strength * base) / (
            float(np.sum(count * f)) + k.global_strength)
        near, w = self._neighbours_of(sims[rows], k.k)
        wf = w * (f[near] if factor is not None else 1.0)
        n_eff = float(np.sum(wf * count[near]))
        s_eff = float(np.sum(wf * score[near]))
        alpha = k.prior_strength * overall + s_eff
        beta = k.prior_strength * (1 - overall) + max(n_eff - s_eff, 0.0)
        p_mean = alpha / (alpha + beta)
        sample = self._optimism(alpha, beta, rng) if self.learn else p_mean
        cost = self._cost(model, rows, col, near, w)
        utility = sample * k.value - self.cost_weight * (cost or 0.0)
        return Estimate(model, p_mean, sample, cost, utility, n_eff, int(count.sum()))

    def _optimism(self, alpha: float, beta: float, rng: np.random.Generator) -> float:
        """The value exploration ranks by: a posterior sample, or mean + bonus × std."""
        if self.knobs.explore == "thompson":
            return float(rng.beta(alpha, beta))
        total = alpha + beta
        std = (alpha * beta / (total * total * (total + 1.0))) ** 0.5
        return alpha / total + self.knobs.bonus * std

    def _neighbours_of(self, sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the k most similar rows and their kernel weights."""
        if len(sims) > k:
            near = np.argpartition(-sims, k - 1)[:k]
        else:
            near = np.arange(len(sims))
        return near, np.exp((sims[near] - 1.0) / self.knobs.tau)

    def _cost(self, model: str, rows: np.ndarray, col: int | None, near: np.ndarray,
              w: np.ndarray) -> float | None:
        """Expected $: similarity-weighted cost of neighbours, shrunk to the model's mean."""
        if col is None:
            return self.cost_hint(model)
        paid = self.table.cost.data[rows, col]
        n = self.table.cost_n.data[rows, col]
        total_n = float(n.sum())
        if total_n == 0:
            return self.cost_hint(model)
        mean = float(paid.sum()) / total_n
        wn = float(np.sum(w * n[near]))
        return (float(np.sum(w * paid[near])) + 2.0 * mean) / (wn + 2.0)

    def _price_unknowns(self, estimates: list[Estimate]) -> list[Estimate]:
        """A model with no known cost is charged the dearest known one: never a free ride."""
        known = [e.exp_cost_usd for e in estimates if e.exp_cost_usd is not None]
        if len(known) == len(estimates) or not known:
            return estimates
        worst = max(known)
        return [e if e.exp_cost_usd is not None else
                Estimate(e.model, e.p_pass, e.score, None,
                         e.score * self.knobs.value - self.cost_weight * worst,
                         e.neighbours, e.records) for e in estimates]

    def _neighbours(self, sims: np.ndarray, task_id: str, limit: int = 5) -> tuple[Neighbour, ...]:
        if not len(sims):
            return ()
        top = np.argsort(-sims)[: limit + 1]
        out = [Neighbour(self.table.task_ids[r], float(sims[r]), self.table.outcomes_text(r))
               for r in top if self.table.task_ids[r] != task_id]
        return tuple(out[:limit])

    def _reason(self, best: Estimate, tried: Sequence[Tried]) -> str:
        cost = "unknown $" if best.exp_cost_usd is None else f"${best.exp_cost_usd:.4f}"
        after = f" after {len(tried)} failed attempt(s)" if tried else ""
        return (f"highest utility{after}: P(pass)≈{best.p_pass:.2f} from {best.neighbours:.1f} "
                f"similar attempts and {best.records} overall, expected {cost}")
