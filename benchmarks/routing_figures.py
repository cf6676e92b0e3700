"""The README's routing figures that `acr-bot bench` does not print itself. Prints JSON.

- `per_group_hindsight`: the hindsight-best fixed cascade chosen separately for each group of
  SWE-bench stream rows: by repository (a tag the bot has) and by the human difficulty label
  (a tag it never has), at cost weights 0.3 and 1.0. A router that reads only that tag
  cannot beat these (it would have to know the outcomes in advance as well).
- `per_cell_best`: the hindsight-best model per CodeRouterBench in-distribution cell
  (category, benchmark: all such a row shows), one shot.
- `kfold`: SWE-bench, 5 folds over the stream: each fold is routed with the full outcomes of
  the train rows and the other 4 folds as memory, i.e. 4x more history than the online run.
- `orders`: SWE-bench, `learned` and `frozen` over 5 shuffled orders of the stream: the
  spread that the order alone causes, against which a difference between them is noise.
- `ablations`: `learned` without its UCB bonus, lookahead, cascade conditioning or CUSUM,
  with the knobs `tune_router.py` prefers, and called as the fix loop called it before
  `routing/cascade.py` (no attempts left, no stop), on SWE-bench and OOD; `retuned_id`: those
  knobs in-distribution; `drift_without_cusum`: the degrading-model streams without CUSUM.
- `drift`: the synthetic drifting streams of tests/data/synth.py: learned/frozen cumulative
  regret (summed over 3 seeds) per drift and mode, as tests/test_bench.py checks them.

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


def drift(only: Sequence[str] = ()) -> dict[str, Any]:
    from tests.data import synth

    generators = {"task-mix": synth.drift_task_mix, "degrading-model": synth.drift_degrading_model,
                  "new-model": synth.drift_new_model}
    generators = {k: v for k, v in generators.items() if not only or k in only}
    modes = {"oneshot": bench.BenchConfig("oneshot", 1, 0.0),
             "cascade-3x-w1": bench.BenchConfig("cascade", 3, 1.0),
             "cascade-2x-w3": bench.BenchConfig("cascade", 2, 3.0)}
    out: dict[str, Any] = {}
    for name, generate in generators.items():
        for mode, cfg in modes.items():
            regret = {"learned": 0.0, "frozen": 0.0}
            for seed in (0, 1, 2):
                rows = [bench._parse_row(json.dumps(d), f"{name}:{i}")
                        for i, d in enumerate(generate(seed))]
                traces = bench.run_bench(rows, list(regret), dataclasses.replace(cfg, seed=seed))
                for trace in traces:
                    regret[trace.policy] += sum(trace.regrets)
            out[f"{name} {mode}"] = {**{k: round(v, 1) for k, v in regret.items()},
                                     "learned_vs_frozen": round(regret["learned"]
                                                                / regret["frozen"], 3)}
    return out


def orders(names: Sequence[str] = ("learned", "frozen"), shuffles: int = 5) -> dict[str, Any]:
    """SWE-bench cascade: each policy over the stream in several random orders, mean and
    standard deviation: how far a result moves with the order alone (the noise floor)."""
    import random
    import statistics

    train, stream = _stream("swebench-verified")
    out: dict[str, Any] = {}
    for weight in (0.03, 0.1, 0.3, 1.0):
        cfg = bench.BenchConfig("cascade", 3, weight)
        runs: dict[str, list[tuple[float, float, float]]] = {n: [] for n in names}
        for k in range(shuffles):
            order = stream[:]
            random.Random(k).shuffle(order)
            rows = train + order
            for trace in bench.run_bench(rows, list(names), cfg):
                runs[trace.policy].append((100 * sum(trace.scores) / len(order),
                                           sum(trace.costs), sum(trace.regrets)))
        out[f"w={weight}"] = {name: {key: [round(statistics.mean(v), 2),
                                           round(statistics.stdev(v), 2)]
                                     for key, v in zip(("success_%", "cost_usd", "regret"),
                                                       zip(*values))}
                              for name, values in runs.items()}
    out["format"] = "[mean, standard deviation] over the shuffled stream orders"
    return out


def _variants() -> dict[str, Callable[..., Any]]:
    """`learned` with one part taken out (or the re-tuned knobs), by name."""
    from acr_bot.routing.learned import Knobs, LearnedPolicy

    class NoLookahead(LearnedPolicy):
        def rank(self, task: Any, pool: Any, tried: Any, attempts_left: int = 1) -> Any:
            return super().rank(task, pool, tried, 1)

    class OldLoop(LearnedPolicy):
        """How the fix loop called the policy before routing/cascade.py: it never passed the
        attempts left, and ignored the policy's stop."""

        def rank(self, task: Any, pool: Any, tried: Any, attempts_left: int = 1) -> Any:
            return dataclasses.replace(super().rank(task, pool, tried, 1), value=None)

    def knobs(**changes: float) -> Callable[..., Any]:
        return lambda table, weight: LearnedPolicy(table, cost_weight=weight,
                                                   knobs=dataclasses.replace(Knobs(), **changes))

    return {"learned": knobs(), "no UCB": knobs(bonus=0.0),
            "no lookahead": lambda table, weight: NoLookahead(table, cost_weight=weight),
            "no conditioning": knobs(solved_by_failed=1.0, unseen_by_failed=1.0),
            "no CUSUM": knobs(drift_alarm=float("inf")),
            "re-tuned": knobs(tau=0.3, near_strength=8.0),
            "old fix loop": lambda table, weight: OldLoop(table, cost_weight=weight)}


def ablations() -> dict[str, Any]:
    """Regret of `learned` without each of its parts, on the settings where it matters."""
    from acr_bot.routing.outcomes import OutcomeTable

    settings = [("swebench-verified", "all", "cascade", 0.1), ("swebench-verified", "all",
                "cascade", 0.3), ("coderouterbench", "ood", "cascade", 0.1),
                ("coderouterbench", "ood", "cascade", 1.0)]
    out: dict[str, Any] = {}
    for name, subset, mode, weight in settings:
        train, stream = _stream(name, subset)
        memory = bench.history(train)
        tasks = [bench.visible_task(r, f"stream-{i}") for i, r in enumerate(stream)]
        cfg = bench.BenchConfig(mode, 3, weight)
        for variant, build in _variants().items():
            trace = bench.run_policy(build(OutcomeTable.build(memory), weight), tasks, stream,
                                     cfg)
            out.setdefault(f"{name} {subset} {mode} w={weight}", {})[variant] = {
                "success_rate": round(sum(trace.scores) / len(stream), 4),
                "total_cost_usd": round(sum(trace.costs), 2),
                "regret": round(sum(trace.regrets), 1)}
    return out


def retuned_id() -> dict[str, Any]:
    """CodeRouterBench in-distribution, oneshot: the defaults against the re-tuned knobs."""
    from acr_bot.routing.outcomes import OutcomeTable

    train, stream = _stream("coderouterbench", "id")
    memory = bench.history(train)
    tasks = [bench.visible_task(r, f"stream-{i}") for i, r in enumerate(stream)]
    out: dict[str, Any] = {}
    for variant in ("learned", "re-tuned"):
        policy = _variants()[variant](OutcomeTable.build(memory), 0.0)
        trace = bench.run_policy(policy, tasks, stream, bench.BenchConfig("oneshot", 1, 0.0))
        out[variant] = {"success_rate": round(sum(trace.scores) / len(stream), 4)}
    return out


def drift_without_cusum() -> dict[str, Any]:
    """The degrading-model streams with CUSUM switched off."""
    from acr_bot.routing import learned

    original = learned.Knobs.__init__.__defaults__
    try:  # every LearnedPolicy built by the bench gets drift_alarm = inf
        defaults = list(original or ())
        names = [f.name for f in dataclasses.fields(learned.Knobs)]
        defaults[names.index("drift_alarm")] = float("inf")
        learned.Knobs.__init__.__defaults__ = tuple(defaults)
        return drift(("degrading-model",))
    finally:
        learned.Knobs.__init__.__defaults__ = original


FIGURES = {"per_group_hindsight": per_group_hindsight, "per_cell_best": per_cell_best,
           "kfold": kfold, "drift": drift, "orders": orders, "ablations": ablations,
           "retuned_id": retuned_id, "drift_without_cusum": drift_without_cusum}


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
