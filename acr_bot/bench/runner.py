"""`acr-bot bench`: replay real routing data as a stream through the bot's own policies.

`train` rows become memory (every model's outcome) before the stream starts. `stream` rows are
revealed one at a time: a policy sees only the features of the row's text, language and tags
(under an opaque id) and the candidate models, and then learns the outcome of only the model it
chose (bandit feedback). Hindsight references (`best-fixed`, `oracle`) are computed from the
whole stream and marked as such.
"""

from __future__ import annotations

import gzip
import dataclasses
import itertools
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from acr_bot.errors import AcrError
from acr_bot.routing.base import Outcome, Policy, RouteTask
from acr_bot.routing.cascade import Cascade
from acr_bot.routing.features import extract
from acr_bot.routing.outcomes import Observation
from acr_bot.routing.registry import NAMES, make_policy

SWEEP_WEIGHTS = (0.0, 0.03, 0.1, 0.3, 1.0, 3.0)
LEARNING_POLICIES = NAMES
HINDSIGHT = ("best-fixed", "oracle")
SOLVED = 1.0  # a score that counts as a verified pass
# SWE-bench's difficulty annotation, written by people who solved the task: the bot never has
# it, so a policy does not see it unless asked (`--human-labels`, to compare).
HUMAN_LABELS = frozenset({"<15 min fix", "15 min - 1 hour", "1-4 hours", ">4 hours"})


class DatasetError(AcrError):
    """The benchmark file is malformed."""


@dataclass(frozen=True)
class Row:
    id: str
    text: str
    language: str | None
    tags: tuple[str, ...]
    split: str
    ood: bool
    outcomes: dict[str, tuple[float, float | None]]  # model -> (score, cost or None)


def load_rows(path: Path) -> list[Row]:
    """Read a v1 routing JSONL file (.jsonl or .jsonl.gz); every malformed line is an error
    naming the line."""
    rows = []
    try:
        raw = Path(path).read_bytes()
        if raw[:2] == b"\x1f\x8b":  # gzip magic: trust the bytes, not the file name
            raw = gzip.decompress(raw)
        lines = raw.decode("utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, EOFError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    for number, line in enumerate(lines, 1):
        if line.strip():
            rows.append(_parse_row(line, f"{path}:{number}"))
    if not rows:
        raise DatasetError(f"{path} holds no rows")
    return rows


def _parse_row(line: str, where: str) -> Row:
    try:
        data = json.loads(line)
        outcomes = {str(m): (float(o["score"]), None if o.get("cost_usd") is None
                             else float(o["cost_usd"])) for m, o in data["outcomes"].items()}
        if not outcomes:
            raise ValueError("outcomes is empty")
        for model, (score, cost) in outcomes.items():
            if not 0.0 <= score <= 1.0:  # also rejects NaN
                raise ValueError(f"{model}: score {score} is not in [0, 1]")
            if cost is not None and not 0.0 <= cost < math.inf:
                raise ValueError(f"{model}: cost_usd {cost} is not a non-negative number")
        return Row(str(data["id"]), str(data.get("text", "")), data.get("language"),
                   tuple(str(t) for t in data.get("tags") or ()), data.get("split", "stream"),
                   bool(data.get("ood", False)), outcomes)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise DatasetError(f"{where}: not a v1 routing row ({exc})") from None


def select(rows: Sequence[Row], subset: str) -> list[Row]:
    """Train rows plus the stream rows of a subset: "all", "id" (in-distribution) or "ood"."""
    if subset == "all":
        return list(rows)
    keep_ood = subset == "ood"
    picked = [r for r in rows if r.split == "train" or r.ood == keep_ood]
    if not any(r.split != "train" for r in picked):
        raise DatasetError(f"the dataset has no {subset} stream rows")
    return picked


def visible_task(row: Row, opaque_id: str, human_labels: bool = False) -> RouteTask:
    """All a policy may see of a row: features of its text, language and tags (those the
    bot could know, unless `human_labels`)."""
    tags = row.tags if human_labels else tuple(t for t in row.tags if t not in HUMAN_LABELS)
    return RouteTask(opaque_id, extract(row.text, language=row.language, tags=tags,
                                        source="bench"))


def history(train: Sequence[Row], human_labels: bool = False) -> list[Observation]:
    """Train rows as memory: every model's outcome, as if the bot had tried them all. They
    are a snapshot, not a time series: their order in the file is no one's history."""
    out = []
    for i, row in enumerate(train):
        features = visible_task(row, f"train-{i}", human_labels).features.compact()
        for model, (score, cost) in row.outcomes.items():
            out.append(Observation(f"train-{i}", features, model, score, cost, timed=False))
    return out


@dataclass
class Trace:
    """One policy's run over the stream."""

    policy: str
    hindsight: bool = False
    scores: list[float] = field(default_factory=list)
    costs: list[float] = field(default_factory=list)
    regrets: list[float] = field(default_factory=list)
    attempts: list[int] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class BenchConfig:
    mode: str = "oneshot"  # or "cascade"
    max_attempts: int = 3
    cost_weight: float = 0.0
    seed: int = 0
    human_labels: bool = False  # feed tags the bot can never know (see HUMAN_LABELS)


def utility(score: float, cost: float | None, cost_weight: float) -> float:
    return score - cost_weight * (cost or 0.0)


def play(policy: Policy, task: RouteTask, row: Row, cfg: BenchConfig) -> Cascade:
    """Route one row through the bot's cascade: one model (oneshot) or attempts until a pass,
    the attempt limit, or the policy's stop. Only the chosen models' outcomes are revealed."""
    candidates = sorted(row.outcomes)
    cascade = Cascade(policy, task, 1 if cfg.mode == "oneshot" else cfg.max_attempts,
                      repeat=False)  # outcomes are fixed: a retry would pay for the same answer
    while (decision := cascade.next(candidates)) is not None:
        score, cost = row.outcomes[decision.model]
        cascade.record(decision.model, Outcome(score, cost))
        if score >= SOLVED:
            break
    return cascade


def _play(policy: Policy, task: RouteTask, row: Row, cfg: BenchConfig) -> tuple[float, float, int]:
    """Score (the best attempt's), dollars and attempts of one routed row."""
    tried = play(policy, task, row, cfg).tried
    return (max((t.outcome.score for t in tried), default=0.0),
            sum(t.outcome.cost_usd or 0.0 for t in tried), len(tried))


def run_policy(policy: Policy, tasks: Sequence[RouteTask], stream: Sequence[Row],
               cfg: BenchConfig, tick: Callable[[], None] = lambda: None) -> Trace:
    trace = Trace(policy.name)
    started = time.perf_counter()
    for task, row in zip(tasks, stream):
        score, cost, tries = _play(policy, task, row, cfg)
        best = max(utility(s, c, cfg.cost_weight) for s, c in row.outcomes.values())
        trace.scores.append(score)
        trace.costs.append(cost)
        trace.attempts.append(tries)
        trace.regrets.append(best - utility(score, cost, cfg.cost_weight))
        tick()
    trace.seconds = time.perf_counter() - started
    return trace


# --- hindsight references --------------------------------------------------------------------


def _matrices(stream: Sequence[Row], models: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Scores and costs, rows × models; a model absent from a row scores -inf there."""
    scores = np.full((len(stream), len(models)), -np.inf)
    costs = np.zeros((len(stream), len(models)))
    for i, row in enumerate(stream):
        for j, model in enumerate(models):
            if model in row.outcomes:
                scores[i, j], cost = row.outcomes[model]
                costs[i, j] = cost or 0.0
    return scores, costs


def oracle(stream: Sequence[Row], cfg: BenchConfig) -> Trace:
    """Per row, the model with the best utility (ties: cheapest); an unsolvable row costs $0
    in cascade mode, as the oracle knows not to try."""
    trace = Trace("oracle", hindsight=True)
    for row in stream:
        score, cost = max(row.outcomes.values(),
                          key=lambda sc: (utility(sc[0], sc[1], cfg.cost_weight), -(sc[1] or 0)))
        if cfg.mode == "cascade" and score <= 0:
            cost = 0.0
        trace.scores.append(score)
        trace.costs.append(cost or 0.0)
        trace.attempts.append(1)
        trace.regrets.append(0.0)
    return trace


def best_fixed(stream: Sequence[Row], cfg: BenchConfig) -> Trace:
    """The single model (oneshot) or ordered cascade (cascade) with the best total utility."""
    models = sorted({m for row in stream for m in row.outcomes})
    scores, costs = _matrices(stream, models)
    depth = 1 if cfg.mode == "oneshot" else min(cfg.max_attempts, len(models))
    best: tuple[float, tuple[int, ...]] = (-math.inf, ())
    for order in _orders(len(models), depth, scores, costs, cfg.cost_weight):
        s, c, _ = _cascade(scores, costs, order)
        total = float(np.sum(s) - cfg.cost_weight * np.sum(c))
        if total > best[0]:
            best = (total, order)
    s, c, n = _cascade(scores, costs, best[1])
    name = "best-fixed: " + " > ".join(models[j] for j in best[1])
    oracle_u = np.max(np.where(np.isfinite(scores), scores - cfg.cost_weight * costs, -np.inf), 1)
    return Trace(name, True, list(s), list(c), list(oracle_u - (s - cfg.cost_weight * c)), list(n))


def _orders(n: int, depth: int, scores: np.ndarray, costs: np.ndarray,
            weight: float) -> Iterable[tuple[int, ...]]:
    """Candidate cascades: all orders of the 10 best single models (by utility), up to depth."""
    single = np.nansum(np.where(np.isfinite(scores), scores, 0), 0) - weight * costs.sum(0)
    top = list(np.argsort(-single)[: min(n, 10)])
    for d in range(1, depth + 1):
        yield from itertools.permutations(top, d)


def _cascade(scores: np.ndarray, costs: np.ndarray,
             order: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run a fixed order on every row: stop at the first pass."""
    rows = len(scores)
    best, spent, tries = np.zeros(rows), np.zeros(rows), np.zeros(rows, dtype=int)
    open_ = np.ones(rows, dtype=bool)
    for j in order:
        s = np.where(np.isfinite(scores[:, j]), scores[:, j], 0.0)
        present = np.isfinite(scores[:, j]) & open_
        best = np.where(present, np.maximum(best, s), best)
        spent = np.where(present, spent + costs[:, j], spent)
        tries = tries + present
        open_ = open_ & ~(present & (s >= SOLVED))
    return best, spent, tries


# --- the whole benchmark ---------------------------------------------------------------------


def run_bench(rows: Sequence[Row], policies: Sequence[str], cfg: BenchConfig,
              progress: Callable[[int], Any] | None = None) -> list[Trace]:
    """Every policy over the stream; the hindsight references last."""
    train = [r for r in rows if r.split == "train"]
    stream = [r for r in rows if r.split != "train"]
    if not stream:
        raise DatasetError("the dataset has no stream rows to route")
    tasks = [visible_task(row, f"stream-{i}", cfg.human_labels) for i, row in enumerate(stream)]
    memory = history(train, cfg.human_labels)
    tick = (lambda: progress(1)) if progress else (lambda: None)
    traces = []
    for name in policies:
        if name == "oracle":
            traces.append(oracle(stream, cfg))
        elif name == "best-fixed":
            traces.append(best_fixed(stream, cfg))
        else:
            policy = make_policy(name, memory, seed=cfg.seed, cost_weight=cfg.cost_weight)
            traces.append(run_policy(policy, tasks, stream, cfg, tick))
    return traces


def sweep(rows: Sequence[Row], policies: Sequence[str], cfg: BenchConfig,
          weights: Sequence[float], progress: Callable[[int], Any] | None = None
          ) -> list[dict[str, Any]]:
    """Success and total $ of each policy at each cost weight: points for a Pareto plot."""
    points = []
    for weight in weights:
        at = dataclasses.replace(cfg, cost_weight=weight)
        for trace in run_bench(rows, policies, at, progress):
            # "best-fixed: a > b" changes with the weight: one name for the line, detail aside;
            # a learning policy keeps its whole name ("fixed:a" and "fixed:b" are two lines)
            name = trace.policy.split(":")[0] if trace.hindsight else trace.policy
            points.append({"policy": name, "cost_weight": weight,
                           "hindsight": trace.hindsight,
                           "success_rate": float(np.mean(trace.scores)),
                           "total_cost_usd": float(np.sum(trace.costs)),
                           "detail": trace.policy})
    return points


def ood_warmup(stream: Sequence[Row]) -> int:
    """OOD rows to skip before "success after warm-up": 200, or half when there are fewer
    than 400 (CodeRouterBench has 176)."""
    n = sum(r.ood for r in stream)
    return 200 if n >= 400 else n // 2


def summarize(trace: Trace, stream: Sequence[Row], oracle_trace: Trace | None,
              warmup: int = 200) -> dict[str, Any]:
    scores, costs = np.array(trace.scores), np.array(trace.costs)
    ood = np.array([r.ood for r in stream])
    solved = scores >= SOLVED
    out: dict[str, Any] = {
        "policy": trace.policy, "hindsight": trace.hindsight,
        "success_rate": float(scores.mean()), "solved": int(solved.sum()),
        "total_cost_usd": float(costs.sum()),
        "cost_per_solved_usd": float(costs.sum() / solved.sum()) if solved.any() else None,
        "cumulative_regret": float(np.sum(trace.regrets)),
        "attempts_per_task": float(np.mean(trace.attempts)), "seconds": trace.seconds,
    }
    if ood.any():
        ood_scores = scores[ood]
        out["ood"] = {"rows": int(ood.sum()), "success_rate": float(ood_scores.mean()),
                      "cost_usd": float(costs[ood].sum()),
                      "success_after_warmup": _after(ood_scores, warmup),
                      "warmup_rows": warmup}
        if oracle_trace is not None:
            oracle_ood = np.array(oracle_trace.scores)[ood]
            out["ood"]["oracle_success_rate"] = float(oracle_ood.mean())
            out["ood"]["oracle_success_after_warmup"] = _after(oracle_ood, warmup)
    return out


def _after(values: np.ndarray, warmup: int) -> float | None:
    return float(values[warmup:].mean()) if len(values) > warmup else None


def curves(trace: Trace, points: int = 200) -> dict[str, list[float]]:
    """Cumulative regret and running success rate, downsampled for the JSON report."""
    regret = np.cumsum(trace.regrets)
    success = np.cumsum(trace.scores) / np.arange(1, len(trace.scores) + 1)
    idx = np.unique(np.linspace(0, len(regret) - 1, min(points, len(regret))).astype(int))
    return {"index": [int(i) + 1 for i in idx], "cumulative_regret": regret[idx].tolist(),
            "success_rate": success[idx].tolist()}


def report(rows: Sequence[Row], traces: Sequence[Trace], cfg: BenchConfig,
           dataset: str) -> dict[str, Any]:
    """The JSON document `--json` writes (schema in the README)."""
    stream = [r for r in rows if r.split != "train"]
    oracle_trace = next((t for t in traces if t.policy == "oracle"), None)
    return {
        "schema": "acr-bot.bench/1", "dataset": dataset, "mode": cfg.mode,
        "max_attempts": cfg.max_attempts, "cost_weight": cfg.cost_weight, "seed": cfg.seed,
        "human_labels": cfg.human_labels,
        "train_rows": len(rows) - len(stream), "stream_rows": len(stream),
        "policies": [{**summarize(t, stream, oracle_trace, ood_warmup(stream)),
                      "curves": curves(t)} for t in traces],
    }




def table_text(doc: dict[str, Any]) -> str:
    """The report as a readable table, best success first; hindsight rows marked."""
    from acr_bot.report import table

    rows = []
    for p in sorted(doc["policies"], key=lambda p: (p["hindsight"], -p["success_rate"])):
        ood = p.get("ood")
        rows.append([p["policy"][:52] + (" †" if p["hindsight"] else ""),
                     f"{p['success_rate']:.1%}", f"${p['total_cost_usd']:.2f}",
                     "-" if p["cost_per_solved_usd"] is None else f"${p['cost_per_solved_usd']:.3f}",
                     f"{p['cumulative_regret']:.1f}", f"{p['attempts_per_task']:.2f}",
                     f"{ood['success_rate']:.1%}" if ood else "-", f"{p['seconds']:.1f}"])
    head = (f"{Path(doc['dataset']).name}: {doc['stream_rows']} stream rows after "
            f"{doc['train_rows']} train rows; {doc['mode']}"
            + (f" (<= {doc['max_attempts']} attempts)" if doc["mode"] == "cascade" else "")
            + f", cost weight {doc['cost_weight']}")
    body = table(["policy", "success", "total $", "$/solved", "regret", "attempts", "OOD",
                  "seconds"], rows)
    return f"{head}\n{body}\n† hindsight reference: knows every outcome in advance"


def sweep_table(points: Sequence[dict[str, Any]]) -> str:
    from acr_bot.report import table

    rows = [[p["policy"] + (" †" if p["hindsight"] else ""), f"{p['cost_weight']:g}",
             f"{p['success_rate']:.1%}", f"${p['total_cost_usd']:.2f}"] for p in points]
    return table(["policy", "cost weight", "success", "total $"], rows)
