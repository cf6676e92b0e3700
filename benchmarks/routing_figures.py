"""The README's routing figures that `acr-bot bench` does not print itself. Prints JSON.

- `table`: benchmarks/regret_table.py, `learned` against frozen, cheapest-first, the best
  fixed cascade in hindsight and (synthetic drift) the Bayes-optimal policy, per stream, with
  the noise band across 5 stream orders.
- `per_group_hindsight`: the hindsight-best fixed cascade chosen separately for each group of
  SWE-bench stream rows: by repository (a tag the bot has) and by the human difficulty label
  (a tag it never has), at cost weights 0.3 and 1.0. A router that reads only that tag
  cannot beat these (it would have to know the outcomes in advance as well).
- `per_cell_best`: the hindsight-best model per CodeRouterBench in-distribution cell
  (category, benchmark: all such a row shows), one shot.
- `kfold`: SWE-bench, 5 folds over the stream: each fold is routed with the full outcomes of
  the train rows and the other 4 folds as memory, i.e. 4x more history than the online run.
- `follow_the_leader`: SWE-bench, the fixed cascade best so far with every outcome revealed
  (full information), played row by row over the regret table's orders.
- `ablations`: `learned` without its UCB bonus, lookahead, cascade conditioning, hardness
  prior, relative cost kernel, change posterior or change detection, and called as the fix
  loop called it before `routing/cascade.py` (no attempts left, no stop), on the regret
  table's streams.

    python benchmarks/routing_figures.py [--only NAME,...]  (default: all; see FIGURES)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acr_bot.bench import datasets  # noqa: E402
from acr_bot.bench import runner as bench  # noqa: E402
from acr_bot.routing.registry import make_policy  # noqa: E402

WEIGHTS = (0.3, 1.0)


def _stream(name: str, subset: str = "all") -> tuple[list[bench.Row], list[bench.Row]]:
    rows = bench.select(bench.load_rows(datasets.resolve(name)), subset)
    return [r for r in rows if r.split == "train"], [r for r in rows if r.split != "train"]


def _grouped(stream: Sequence[bench.Row], key: Callable[[bench.Row], str],
             cfg: bench.BenchConfig) -> dict[str, Any]:
    """Best fixed cascade (or model) per group, in hindsight, summed over the groups."""
    groups: dict[str, list[bench.Row]] = {}
    for row in stream:
        groups.setdefault(key(row), []).append(row)
    traces = [bench.best_fixed(rows, cfg) for rows in groups.values()]
    solved = sum(sum(t.scores) for t in traces)
    return {"groups": len(groups), "success_rate": round(solved / len(stream), 4),
            "total_cost_usd": round(sum(sum(t.costs) for t in traces), 2)}


def per_group_hindsight() -> dict[str, Any]:
    _, stream = _stream("swebench-verified")

    def repo(row: bench.Row) -> str:
        return next((t for t in row.tags if "/" in t), "")

    def difficulty(row: bench.Row) -> str:
        return next((t for t in row.tags if t in bench.HUMAN_LABELS), "")

    out: dict[str, Any] = {}
    for weight in WEIGHTS:
        cfg = bench.BenchConfig("cascade", 3, weight)
        out[f"w={weight}"] = {"one cascade for all": _grouped(stream, lambda r: "", cfg),
                              "per repository": _grouped(stream, repo, cfg),
                              "per difficulty label": _grouped(stream, difficulty, cfg)}
    return out


def per_cell_best() -> dict[str, Any]:
    _, stream = _stream("coderouterbench", "id")
    cfg = bench.BenchConfig("oneshot", 1, 0.0)
    return {"one model for all": _grouped(stream, lambda r: "", cfg),
            "per (category, benchmark) cell": _grouped(stream, lambda r: " ".join(r.tags), cfg)}


def kfold(policy: str = "learned", folds: int = 5) -> dict[str, Any]:
    train, stream = _stream("swebench-verified")
    out = {}
    for weight in WEIGHTS:
        cfg = bench.BenchConfig("cascade", 3, weight)
        score = cost = 0.0
        for fold in range(folds):
            held = stream[fold::folds]
            known = train + [r for i, r in enumerate(stream) if i % folds != fold]
            tasks = [bench.visible_task(r, f"fold-{i}") for i, r in enumerate(held)]
            chosen = make_policy(policy, bench.history(known), cost_weight=weight)
            trace = bench.run_policy(chosen, tasks, held, cfg)
            score, cost = score + sum(trace.scores), cost + sum(trace.costs)
        out[f"w={weight}"] = {"policy": policy, "success_rate": round(score / len(stream), 4),
                              "total_cost_usd": round(cost, 2)}
    return out


def follow_the_leader(orders: int = 5) -> dict[str, Any]:
    """SWE-bench: play, on each stream row, the fixed cascade (any order of up to 3 of the 10
    best models on the train rows) with the best total utility on the train rows and every
    stream row before it, all outcomes revealed: the best a learner of fixed cascades could do
    with full information, where `learned` only sees the models it tries. Same orders as the
    regret table."""
    import itertools
    import random
    import statistics

    import numpy as np

    train, stream = _stream("swebench-verified")
    models = sorted({m for r in stream for m in r.outcomes})
    out: dict[str, Any] = {}
    for weight in WEIGHTS:
        regrets = []
        for order in range(orders):
            rows = stream[:]
            random.Random(order).shuffle(rows)
            scores, costs = bench._matrices(train + rows, models)
            utility = np.where(np.isfinite(scores), scores, 0.0) - weight * costs
            first = utility[: len(train)].sum(0)
            top = list(np.argsort(-first)[:10])
            cascades = [c for d in (1, 2, 3) for c in itertools.permutations(top, d)]
            played = np.zeros((len(scores), len(cascades)))
            for j, cascade in enumerate(cascades):
                s, c, _ = bench._cascade(np.where(np.isfinite(scores), scores, 0.0), costs,
                                         cascade)
                played[:, j] = s - weight * c
            so_far = np.cumsum(played, axis=0)
            chosen = np.argmax(so_far[len(train) - 1:-1], axis=1)
            best = utility[len(train):].max(axis=1)
            regrets.append(float((best - played[len(train):][np.arange(len(rows)),
                                                             chosen]).sum()))
        out[f"w={weight}"] = {"regret": [round(statistics.mean(regrets), 1),
                                         round(statistics.stdev(regrets), 1)]}
    out["format"] = "[mean, standard deviation] over the regret table's orders 0-4"
    return out


def _variants() -> dict[str, Callable[[list[Any], float], Any]]:
    """`learned` with one part taken out, by name: build(memory, cost weight) -> policy."""
    from acr_bot.routing.learned import Knobs, LearnedPolicy
    from acr_bot.routing.outcomes import OutcomeTable

    class NoLookahead(LearnedPolicy):
        def rank(self, task: Any, pool: Any, tried: Any, attempts_left: int = 1) -> Any:
            return super().rank(task, pool, tried, 1)

    class OldLoop(LearnedPolicy):
        """How the fix loop called the policy before routing/cascade.py: it never passed the
        attempts left, and ignored the policy's stop."""

        def rank(self, task: Any, pool: Any, tried: Any, attempts_left: int = 1) -> Any:
            return dataclasses.replace(super().rank(task, pool, tried, 1), value=None)

    def knobs(cls: type = LearnedPolicy, detect: bool = True, **changes: Any) -> Any:
        return lambda memory, weight: cls(OutcomeTable.build(memory, detect), cost_weight=weight,
                                          knobs=dataclasses.replace(Knobs(), **changes))

    return {"learned": knobs(), "no UCB": knobs(bonus=0.0),
            "no lookahead": knobs(NoLookahead),
            "no conditioning": knobs(solved_by_failed=1.0, unseen_by_failed=1.0),
            "no hardness prior": knobs(hardness=False),
            "no relative cost kernel": knobs(relative_cost=False),
            "no change posterior": knobs(change_prior=0.0),
            "no change detection": knobs(detect=False),
            "old fix loop": knobs(OldLoop)}


ABLATION_STREAMS = ("SWE-bench Verified, W=0.3", "SWE-bench Verified, W=1.0", "OOD176, W=0.3",
                    "drift: task mix, oneshot", "drift: degrading model, oneshot",
                    "drift: new model, oneshot", "drift: degrading model, cascade W=1")


def ablations(orders: int = 3) -> dict[str, Any]:
    """Regret of `learned` without each of its parts, on the regret table's streams (mean over
    the first `orders` orders, as the table reports them)."""
    import statistics

    from benchmarks import regret_table

    out: dict[str, Any] = {}
    for stream in regret_table.STREAMS:
        if stream.name not in ABLATION_STREAMS:
            continue
        out[stream.name] = {name: round(statistics.mean(
            regret_table.regret_of(stream, k, build) for k in range(orders)), 1)
            for name, build in _variants().items()}
    out["format"] = f"mean regret over stream orders 0-{orders - 1}"
    return out


def table() -> dict[str, Any]:
    """benchmarks/regret_table.py: learned against what it could have been, per stream."""
    from benchmarks import regret_table

    return regret_table.table()


FIGURES = {"table": table, "per_group_hindsight": per_group_hindsight,
           "per_cell_best": per_cell_best, "kfold": kfold,
           "follow_the_leader": follow_the_leader, "ablations": ablations}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(FIGURES), help="comma-separated figures")
    args = parser.parse_args()
    doc: dict[str, Any] = {}
    for name in args.only.split(","):
        started = time.perf_counter()
        doc[name] = FIGURES[name]()
        doc[name]["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
