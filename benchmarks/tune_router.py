"""Choose the learned policy's knobs by cross-validation on `train` rows only.

Each fold routes its train rows as a stream, with the other folds as memory (every model's
outcome, as `bench` feeds history), through the bot's cascade with the policy learning from
its own feedback as it does in the bot, and scores the mean utility over several cost weights.
Stream rows are never read. Prints JSON: every knob set's CV utility, best first.

    python benchmarks/tune_router.py swebench-verified --mode cascade
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acr_bot.bench import datasets
from acr_bot.bench import runner as bench
from acr_bot.routing.learned import Knobs, LearnedPolicy
from acr_bot.routing.outcomes import OutcomeTable

GRID = {
    "tau": [0.1, 0.3, 1.0],
    "near_strength": [2.0, 8.0],
    "solved_by_failed": [0.05, 0.3],
    "bonus": [0.25, 0.5, 1.0],  # exploration: only a learning policy can tune it
}


def cv_utility(train: list[bench.Row], knobs: Knobs, mode: str, weights: list[float],
               folds: int, seed: int) -> float:
    order = list(range(len(train)))
    random.Random(seed).shuffle(order)
    total = 0.0
    for fold in range(folds):
        held = [train[i] for i in order[fold::folds]]
        memory = [train[i] for j, i in enumerate(order) if j % folds != fold]
        observed = bench.history(memory)
        for weight in weights:
            policy = LearnedPolicy(OutcomeTable.build(observed), cost_weight=weight, learn=True,
                                   knobs=knobs)
            cfg = bench.BenchConfig(mode=mode, cost_weight=weight)
            for i, row in enumerate(held):
                score, cost, _ = bench._play(policy, bench.visible_task(row, f"cv-{i}"), row, cfg)
                total += bench.utility(score, cost, weight)
    return total / (len(train) * len(weights))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", type=datasets.resolve,
                        help="a shipped dataset name or a .jsonl/.jsonl.gz path")
    parser.add_argument("--mode", default="cascade", choices=["oneshot", "cascade"])
    parser.add_argument("--weights", default="0.1,0.3,1.0", help="cost weights to average over")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--sample", type=int, default=1500, help="train rows used at most")
    parser.add_argument("--no-ood", action="store_true", help="drop OOD rows")
    args = parser.parse_args()
    rows = bench.load_rows(args.dataset)
    train = [r for r in rows if r.split == "train"]
    random.Random(0).shuffle(train)
    train = train[: args.sample]
    weights = [float(w) for w in args.weights.split(",")]
    results = []
    started = time.perf_counter()
    for values in itertools.product(*GRID.values()):
        knobs = replace(Knobs(), **dict(zip(GRID, values)))
        utility = cv_utility(train, knobs, args.mode, weights, args.folds, seed=0)
        results.append({"utility": round(utility, 5), **{k: asdict(knobs)[k] for k in GRID}})
    results.sort(key=lambda r: -r["utility"])
    print(json.dumps({"dataset": str(args.dataset), "mode": args.mode, "train_rows": len(train),
                      "cost_weights": weights, "seconds": round(time.perf_counter() - started, 1),
                      "results": results}, indent=1))


if __name__ == "__main__":
    main()
