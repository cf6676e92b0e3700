"""The regret table: `learned` against the policies it could have been, per stream, with the
noise band across stream orders. Prints JSON; `--text` prints the README's table too.

Streams: SWE-bench Verified (cascade, <= 3 attempts) at cost weights 0.3 and 1.0,
CodeRouterBench OOD176 (cascade) at 0.1 and 0.3, CodeRouterBench in-distribution (oneshot),
and the drifting streams of tests/data/synth.py: the task mix moves, the best model degrades,
a new model arrives (oneshot, where a route is all there is), and the degrading model again in
a 3-attempt cascade at cost weight 1 (the case tests/test_bench.py checks). An order is a
shuffle of the stream rows (real data: the train rows stay the memory) or a seed of the
generator (synthetic data).

Every policy runs through `bench.run_policy`, i.e. `routing/cascade.py`, the class the bot's
fix loop drives. Per stream and order: the regret (sum over rows of the row's best utility
minus the utility reached) of learned, frozen (the same policy without feedback),
cheapest-first, the best fixed cascade in hindsight and, on synthetic streams, the
Bayes-optimal policy (it knows every row's true pass probabilities and prices, never its
outcomes). The band of a comparison is the standard deviation, across orders, of learned's
regret minus the other policy's.

The knobs were chosen on orders 100-104 (`--first 100`); the README reports orders 0-4.

    python benchmarks/regret_table.py [--orders 5] [--first 0] [--only NAME,...] [--text]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acr_bot.bench import datasets  # noqa: E402
from acr_bot.bench import runner as bench  # noqa: E402
from acr_bot.domain import Decision  # noqa: E402
from acr_bot.routing.base import Policy, RouteTask, Tried  # noqa: E402
from acr_bot.routing.registry import make_policy  # noqa: E402
from tests.data import synth  # noqa: E402

BASELINES = ("frozen", "cheapest-first")
Truth = Mapping[str, Mapping[str, float]]  # model -> {"price": $, "p_pass": P(pass)}


@dataclass(frozen=True)
class Stream:
    name: str
    mode: str
    weight: float
    dataset: str = ""  # a shipped dataset (real rows, shuffled per order)
    subset: str = "all"
    generator: Callable[[int], list[dict[str, Any]]] | None = None  # synthetic, seeded

    @property
    def drifting(self) -> bool:
        return self.generator is not None


STREAMS = (
    Stream("SWE-bench Verified, W=0.3", "cascade", 0.3, "swebench-verified"),
    Stream("SWE-bench Verified, W=1.0", "cascade", 1.0, "swebench-verified"),
    Stream("OOD176, W=0.1", "cascade", 0.1, "coderouterbench", "ood"),
    Stream("OOD176, W=0.3", "cascade", 0.3, "coderouterbench", "ood"),
    Stream("CodeRouterBench ID, oneshot", "oneshot", 0.0, "coderouterbench", "id"),
    Stream("drift: task mix, oneshot", "oneshot", 0.0, generator=synth.drift_task_mix),
    Stream("drift: degrading model, oneshot", "oneshot", 0.0,
           generator=synth.drift_degrading_model),
    Stream("drift: new model, oneshot", "oneshot", 0.0, generator=synth.drift_new_model),
    Stream("drift: degrading model, cascade W=1", "cascade", 1.0,
           generator=synth.drift_degrading_model),
)


class BayesOptimal(Policy):
    """Knows each row's true pass probability and price of every model (outcomes are
    independent given them), never the outcomes: tries the cascade of highest expected
    utility, and stops when another attempt is expected to cost more than it brings."""

    name = "bayes-optimal"

    def __init__(self, truths: Mapping[str, Truth], cost_weight: float) -> None:
        super().__init__(cost_weight=cost_weight)
        self.truths = truths

    def rank(self, task: RouteTask, pool: Sequence[str], tried: Sequence[Tried],
             attempts_left: int = 1) -> Decision:
        truth = self.truths[task.id]
        values = {m: self._try(truth, frozenset(t.model for t in tried), m, attempts_left)
                  for m in pool}
        best = max(pool, key=lambda m: (values[m], m))
        return Decision(best, self.name, "the best expected utility", value=values[best])

    def _try(self, truth: Truth, failed: frozenset[str], model: str, left: int) -> float:
        p, price = truth[model]["p_pass"], truth[model]["price"]
        then = self._best(truth, failed | {model}, left - 1)
        return (p * (1.0 - self.cost_weight * price)
                + (1.0 - p) * (then - self.cost_weight * price * synth.FAILED_COST))

    def _best(self, truth: Truth, failed: frozenset[str], left: int) -> float:
        pool = [m for m in truth if m not in failed]
        if left <= 0 or not pool:
            return 0.0
        return max(0.0, *(self._try(truth, failed, m, left) for m in pool))


def _rows(stream: Stream, order: int) -> tuple[list[bench.Row], list[bench.Row], dict[str, Truth]]:
    """Train rows, stream rows and (synthetic) each stream row's truth, for one order."""
    if stream.generator is not None:
        raw = stream.generator(order)
        rows = [bench._parse_row(json.dumps(r), f"{stream.name}:{i}") for i, r in enumerate(raw)]
        truths = [r["truth"] for r in raw if r["split"] != "train"]
    else:
        rows = bench.select(bench.load_rows(datasets.resolve(stream.dataset)), stream.subset)
        truths = []
    train = [r for r in rows if r.split == "train"]
    rest = [r for r in rows if r.split != "train"]
    if stream.generator is None:
        random.Random(order).shuffle(rest)
    return train, rest, {f"stream-{i}": t for i, t in enumerate(truths)}


def regret_of(stream: Stream, order: int, build: Callable[[list[Any], float], Policy]) -> float:
    """One policy's regret on one order of a stream; `build(memory, cost weight)` makes it."""
    train, rows, _ = _rows(stream, order)
    cfg = bench.BenchConfig(stream.mode, 3 if stream.mode == "cascade" else 1, stream.weight)
    tasks = [bench.visible_task(r, f"stream-{i}") for i, r in enumerate(rows)]
    return sum(bench.run_policy(build(bench.history(train), stream.weight), tasks, rows,
                                cfg).regrets)


def _regrets(stream: Stream, order: int, frozen: dict[str, float]) -> dict[str, float]:
    """Every policy's regret on one order of the stream."""
    train, rows, truths = _rows(stream, order)
    cfg = bench.BenchConfig(stream.mode, 3 if stream.mode == "cascade" else 1, stream.weight)
    tasks = [bench.visible_task(r, f"stream-{i}") for i, r in enumerate(rows)]
    memory = bench.history(train)
    out: dict[str, float] = {}
    for name in ("learned", *BASELINES):
        if name == "frozen" and stream.name in frozen:  # it learns nothing: order-free
            out[name] = frozen[stream.name]
            continue
        policy = make_policy(name, memory, cost_weight=stream.weight)
        out[name] = sum(bench.run_policy(policy, tasks, rows, cfg).regrets)
    if stream.generator is None:
        frozen[stream.name] = out["frozen"]
    best = bench.best_fixed(rows, cfg)
    out["best-fixed"] = float(sum(best.regrets))
    out["oracle utility"] = float(sum(max(bench.utility(s, c, stream.weight)
                                          for s, c in r.outcomes.values()) for r in rows))
    if truths:
        out["bayes-optimal"] = sum(bench.run_policy(BayesOptimal(truths, stream.weight), tasks,
                                                    rows, cfg).regrets)
    return out


def _spread(values: Sequence[float]) -> list[float]:
    return [round(statistics.mean(values), 1), round(statistics.stdev(values), 1)]


def _verdicts(stream: Stream, runs: Sequence[Mapping[str, float]]) -> dict[str, Any]:
    """learned against each policy it could have been: mean difference and band."""
    def diff(other: str) -> list[float]:
        return _spread([r["learned"] - r[other] for r in runs])

    learned = statistics.mean(r["learned"] for r in runs)
    best = statistics.mean(r["best-fixed"] for r in runs)
    oracle = statistics.mean(r["oracle utility"] for r in runs)
    out: dict[str, Any] = {
        "vs": {other: diff(other) for other in (*BASELINES, "best-fixed")},
        # the utility learned reached, as a share of what the best fixed cascade reached
        "utility_vs_best_fixed": round((oracle - learned) / (oracle - best), 3),
        "regret_vs_best_fixed": round(learned / best, 3) if best else None,
    }
    out["within_band"] = all(out["vs"][b][0] <= out["vs"][b][1] for b in BASELINES)
    out["within_10pct_of_best_fixed"] = out["utility_vs_best_fixed"] >= 0.9
    if stream.drifting:
        out["better_than_all_by_the_band"] = all(
            d[0] < -d[1] for d in out["vs"].values())
        bayes = statistics.mean(r["bayes-optimal"] for r in runs)
        frozen = statistics.mean(r["frozen"] for r in runs)
        out["closes_frozen_gap_to_bayes"] = round((frozen - learned) / (frozen - bayes), 3)
    return out


def table(orders: int = 5, first: int = 0, only: Sequence[str] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    frozen: dict[str, float] = {}
    for stream in STREAMS:
        if only and not any(o.lower() in stream.name.lower() for o in only):
            continue
        started = time.perf_counter()
        runs = [_regrets(stream, k, frozen) for k in range(first, first + orders)]
        policies = [k for k in runs[0] if k != "oracle utility"]
        out[stream.name] = {"regret": {p: _spread([r[p] for r in runs]) for p in policies},
                            **_verdicts(stream, runs),
                            "seconds": round(time.perf_counter() - started, 1)}
    out["orders"] = list(range(first, first + orders))
    out["format"] = "[mean, standard deviation] over the orders"
    return out


def text(doc: Mapping[str, Any]) -> str:
    """The README's table: one line per stream."""
    lines = ["| stream | learned | frozen | cheapest-first | best fixed † | Bayes † | learned − "
             "best of frozen / cheapest-first (band) | utility vs best fixed | drift: closes |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, row in doc.items():
        if not isinstance(row, Mapping) or "regret" not in row:
            continue
        reg = row["regret"]
        best = min(BASELINES, key=lambda b: reg[b][0])
        cell = lambda p: f"{reg[p][0]:.1f} ± {reg[p][1]:.1f}" if p in reg else "–"  # noqa: E731
        d = row["vs"][best]
        lines.append(f"| {name} | {cell('learned')} | {cell('frozen')} | "
                     f"{cell('cheapest-first')} | {cell('best-fixed')} | {cell('bayes-optimal')} "
                     f"| {d[0]:+.1f} vs {best} ({d[1]:.1f}) | {row['utility_vs_best_fixed']:.0%} "
                     f"| {row.get('closes_frozen_gap_to_bayes', '–')} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=5, help="stream orders (at least 2)")
    parser.add_argument("--first", type=int, default=0, help="the first order's seed")
    parser.add_argument("--only", default="", help="comma-separated parts of stream names")
    parser.add_argument("--text", action="store_true", help="also print the README table")
    args = parser.parse_args()
    started = time.perf_counter()
    doc = table(max(2, args.orders), args.first, [o for o in args.only.split(",") if o])
    doc["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(doc, indent=1))
    if args.text:
        print(text(doc))


if __name__ == "__main__":
    main()
