"""How long `acr-bot bench` takes on a whole dataset with every policy (oneshot, cost weight 0).

Times loading, history building, and each policy's run (its memory table build separately);
checks the learned policy does not slow down as its memory grows within a run (mean ms per
decision in each quarter of the stream). Prints JSON. Target: <= 60 s for the whole
CodeRouterBench file with every policy on a 2-core machine.

    python benchmarks/bench_speed.py [NAME|dataset.jsonl[.gz]] [--profile learned] [--blas-threads 1]

`cpu_seconds` well above `seconds` means BLAS threads spinning: numpy's OpenBLAS starts one
thread per core, which gains nothing on these small products and, on a busy 2-core machine,
makes the learned policy several times slower (compare `--blas-threads 1`).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acr_bot.bench import datasets  # noqa: E402  (no numpy: BLAS threads are set later)

TARGET_SECONDS = 60.0


def _quarters(durations: list[float]) -> list[float]:
    """Mean milliseconds per decision in each quarter of the stream."""
    import numpy as np

    return [round(float(np.mean(part)) * 1000, 3) for part in np.array_split(durations, 4)
            if len(part)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", type=datasets.resolve, nargs="?", default="coderouterbench",
                        help="a shipped dataset name or a .jsonl/.jsonl.gz path")
    parser.add_argument("--policies", help="comma-separated; default: every policy")
    parser.add_argument("--profile", metavar="POLICY",
                        help="also profile this policy's run; top functions go to stderr")
    parser.add_argument("--blas-threads", type=int,
                        help="set OPENBLAS/OMP/MKL_NUM_THREADS before numpy loads")
    args = parser.parse_args()
    if args.blas_threads:
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(args.blas_threads)
    run(args)


def run(args: Any) -> None:
    import numpy as np

    from acr_bot.bench import runner as bench
    from acr_bot.routing.registry import make_policy

    names = args.policies.split(",") if args.policies else [*bench.LEARNING_POLICIES,
                                                            *bench.HINDSIGHT]
    cfg = bench.BenchConfig(mode="oneshot", cost_weight=0.0, seed=0)
    started, cpu_started = time.perf_counter(), time.process_time()

    t = time.perf_counter()
    rows = bench.load_rows(args.dataset)
    train = [r for r in rows if r.split == "train"]
    stream = [r for r in rows if r.split != "train"]
    load_s = time.perf_counter() - t

    t = time.perf_counter()
    tasks = [bench.visible_task(row, f"stream-{i}") for i, row in enumerate(stream)]
    features_s = time.perf_counter() - t
    t = time.perf_counter()
    memory = bench.history(train)
    history_s = time.perf_counter() - t

    policies: dict[str, dict[str, Any]] = {}
    for name in names:
        if name in bench.HINDSIGHT:
            t = time.perf_counter()
            (bench.oracle if name == "oracle" else bench.best_fixed)(stream, cfg)
            policies[name] = {"seconds": round(time.perf_counter() - t, 3)}
            continue
        t, cpu = time.perf_counter(), time.process_time()
        policy = make_policy(name, memory, seed=cfg.seed, cost_weight=cfg.cost_weight)
        build_s = time.perf_counter() - t
        stamps = [time.perf_counter()]
        profiler = cProfile.Profile() if name == args.profile else None
        if profiler:
            profiler.enable()
        trace = bench.run_policy(policy, tasks, stream, cfg,
                                 lambda stamps=stamps: stamps.append(time.perf_counter()))
        if profiler:
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
            print(out.getvalue(), file=sys.stderr)
        cpu = time.process_time() - cpu
        per_row = list(np.diff(stamps))
        policies[name] = {
            "seconds": round(build_s + trace.seconds, 3),
            "cpu_seconds": round(cpu, 3),
            "table_build_seconds": round(build_s, 3),
            "run_seconds": round(trace.seconds, 3),
            "rows_per_second": round(len(stream) / trace.seconds, 1),
            "ms_per_decision_by_quarter": _quarters(per_row),
            "success_rate": round(float(np.mean(trace.scores)), 4),
        }
    total, cpu_total = time.perf_counter() - started, time.process_time() - cpu_started
    learned = policies.get("learned", {}).get("ms_per_decision_by_quarter")
    result = {
        "dataset": str(args.dataset),
        "train_rows": len(train), "stream_rows": len(stream),
        "load_seconds": round(load_s, 3), "features_seconds": round(features_s, 3),
        "history_seconds": round(history_s, 3),
        "policies": policies,
        "total_seconds": round(total, 3),
        "total_cpu_seconds": round(cpu_total, 3),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", f"default ({os.cpu_count()})"),
        "target_seconds": TARGET_SECONDS,
        "within_target": total <= TARGET_SECONDS,
        "rows_per_second": round(len(stream) * sum(n not in bench.HINDSIGHT for n in policies)
                                 / total, 1),
        # last quarter / first quarter: ~1 means no slowdown as memory grows
        "learned_slowdown_q4_over_q1": (round(learned[-1] / learned[0], 3)
                                        if learned and learned[0] else None),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
