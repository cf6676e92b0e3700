"""Decision latency of the `learned` policy as the memory grows, and the cost of loading it.

For each size (records in memory, 8 models) it builds realistic records: tasks whose features
come from `acr_bot.routing.features.extract` over synthetic issue texts (a few hundred vocabulary words,
error types, libraries, files, tags, languages), each tried by 1-3 models in a cascade
(~2-3 records per task, some provider faults and human verdicts). The OutcomeTable is built
once per size; then it times `choose` on unseen tasks with attempts_left=3, half of them with
a failed model in `tried`. It also times `Memory.load` of a 10k-record file plus building
its table, and reports that file's bytes per record. Prints one JSON object.

    python benchmarks/router_latency.py [--sizes 10000,100000,1000000] [--decisions 300]

Targets: p50 <= 5 ms at 10k records and <= 50 ms at 1M; load + build of 10k <= 0.5 s;
<= 400 bytes per record on disk. The machine the targets were set on has 2 noisy cores, so
each timing is a median or a percentile over many repeats, and the load average is reported.
`decisions_sha1` digests the decisions made, in order: an optimisation must leave it unchanged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

from acr_bot.domain import Features, Record
from acr_bot.memory.store import Memory, write
from acr_bot.routing.base import Outcome, RouteTask, Tried
from acr_bot.routing.features import MAX_COMPACT, extract
from acr_bot.routing.learned import LearnedPolicy
from acr_bot.routing.outcomes import OutcomeTable, observations

# name -> ($ per attempt, skill). Cheap models fail more; a cascade escalates by price.
MODELS = {
    "nano": (0.002, -1.0), "mini": (0.006, -0.4), "flash": (0.01, -0.2), "haiku": (0.02, 0.0),
    "sonnet": (0.08, 0.6), "gpt": (0.1, 0.7), "opus": (0.3, 1.0), "pro": (0.25, 0.9),
}
SIZES = (10_000, 100_000, 1_000_000)
TARGETS = {"p50_ms_10k": 5.0, "p50_ms_1m": 50.0, "load_10k_s": 0.5, "bytes_per_record": 400.0}
SYLLABLES = ["ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "vu", "ze", "bar", "cor", "dex",
             "fin", "gal", "hop", "jun", "kel", "mor", "nix", "pla", "qui", "rest",
             "sto", "tre", "una", "vel", "wor", "xan", "yel", "zop"]
ERRORS = ("KeyError", "ValueError", "TypeError", "IndexError", "AttributeError",
          "AssertionError", "RuntimeError", "ZeroDivisionError", "NullPointerException",
          "IllegalStateException")
LIBS = ("numpy", "pandas", "requests", "flask", "django", "torch", "scipy", "click", "yaml")
LANGS = (("python", "py"), ("javascript", "js"), ("go", "go"), ("rust", "rs"),
         ("java", "java"), ("typescript", "ts"))
TAGS = ("bug", "ci", "good-first-issue", "regression", "perf", "docs", "bcb", "swe")
KIND_WORDS = ("crashes", "is slow", "add support for", "typo in docs", "refactor",
              "build fails", "wrong result", "test failed")


def vocabulary(rng: random.Random, size: int = 400) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.sample(SYLLABLES, rng.randint(2, 3))))
    return sorted(words)


def issue_text(rng: random.Random, vocab: Sequence[str]) -> tuple[str, str, tuple[str, ...]]:
    """A synthetic issue: (text, language, tags)."""
    lang, ext = rng.choice(LANGS)
    w = rng.sample(vocab, 14)
    err = rng.choice(ERRORS)
    lines = [f"{w[0]} {rng.choice(KIND_WORDS)} when {w[1]} {w[2]} {err}",
             "", f"Calling {w[3]}_{w[4]}() on a {w[5]} {w[6]} gives the wrong {w[7]}."]
    if rng.random() < 0.5:
        lines += [f"  File \"src/{w[8]}/{w[9]}.{ext}\", line {rng.randint(1, 900)}",
                  f"{err}: {w[10]} {w[11]}"]
    if rng.random() < 0.4:
        lines.append(f"import {rng.choice(LIBS)}")
    lines.append(" ".join(rng.choices(vocab, k=rng.randint(3, 40))))
    tags = tuple(rng.sample(TAGS, rng.randint(0, 2)))
    return "\n".join(lines), lang, tags


def feature_pool(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """`n` compact feature strings from `extract` over synthetic issues, and the vocabulary."""
    rng = random.Random(seed)
    vocab = vocabulary(rng)
    pool = []
    for _ in range(n):
        text, lang, tags = issue_text(rng, vocab)
        pool.append(extract(text, language=lang if rng.random() < 0.3 else None,
                            tags=tags).compact())
    return pool, vocab


def vary(compact: str, rng: random.Random, vocab: Sequence[str]) -> str:
    """A pool entry with up to three content words swapped: more distinct tasks than the
    pool has extracts (extract costs ~0.4 ms; a million of them would dominate the run)."""
    tokens = compact.split()
    words = [i for i, t in enumerate(tokens) if t.startswith("w:")]
    for i in rng.sample(words, min(len(words), rng.randint(0, 3))):
        tokens[i] = "w:" + rng.choice(vocab)
    out = " ".join(dict.fromkeys(tokens))
    return out if len(out) <= MAX_COMPACT else compact


def synthetic_records(n: int, pool: Sequence[str], vocab: Sequence[str],
                      seed: int = 0) -> list[Record]:
    """About `n` records: tasks tried by a cascade of 1-3 models, cheapest first mostly."""
    rng = random.Random(seed)
    names = sorted(MODELS, key=lambda m: MODELS[m][0])
    records: list[Record] = []
    ts, task_no = 1_700_000_000, 0
    while len(records) < n:
        task_no += 1
        task = f"gh:{seed}:{task_no}"
        features = vary(rng.choice(pool), rng, vocab)
        hardness = rng.gauss(0.0, 1.0) + (0.8 if "kind:perf" in features else 0.0)
        start = min(int(rng.expovariate(0.6)), len(names) - 1)
        order = names[start:] if rng.random() < 0.8 else rng.sample(names, len(names))
        for number, model in enumerate(order[:3], start=1):
            price, skill = MODELS[model]
            ts += rng.randint(1, 90)
            rid = f"{ts & 0xFFFFFFFF:08x}{rng.getrandbits(32):08x}"
            if rng.random() < 0.03:
                records.append(Record(rid, "attempt", ts, task, model, "provider_fault",
                                      features, number, seconds=round(rng.uniform(1, 60), 1)))
                continue
            passed = rng.random() < 1 / (1 + np.exp(2.0 * (hardness - skill)))
            outcome = "passed" if passed else rng.choice(["tests_failed", "apply_failed",
                                                          "no_edits"])
            tokens = rng.randint(2_000, 60_000)
            records.append(Record(
                rid, "attempt", ts, task, model, outcome, features, number,
                cost_usd=round(price * tokens / 20_000, 6), tokens=tokens,
                seconds=round(rng.uniform(5, 600), 1), tests_passed=rng.randint(0, 400),
                tests_failed=0 if passed else rng.randint(1, 12)))
            if passed:
                if rng.random() < 0.1:
                    records.append(Record(f"{ts & 0xFFFFFFFF:08x}{rng.getrandbits(32):08x}",
                                          "verdict", ts + 3600, task, model,
                                          rng.choice(["accepted", "rejected",
                                                      "changes_requested"]), ref=rid))
                break
    return records[:n]


def cost_hint(model: str) -> float | None:
    return MODELS[model][0] if model in MODELS else None


def _percentile_ms(samples: Sequence[float], q: float) -> float:
    return round(float(np.percentile(np.array(samples) * 1000.0, q)), 3)


def time_decisions(policy: LearnedPolicy, queries: Sequence[RouteTask],
                   warmup: int = 10) -> dict[str, object]:
    """Latency of `choose` with attempts_left=3; every other query has a failed model."""
    models = sorted(MODELS)
    cheapest = min(models, key=lambda m: MODELS[m][0])
    chosen: dict[str, int] = {}
    sequence: list[str] = []

    def one(i: int, task: RouteTask) -> float:
        tried = [Tried(cheapest, Outcome(0.0, MODELS[cheapest][0]))] if i % 2 else []
        start = time.perf_counter()
        decision = policy.choose(task, models, tried, attempts_left=3)
        elapsed = time.perf_counter() - start
        chosen[decision.model] = chosen.get(decision.model, 0) + 1
        sequence.append(decision.model)
        return elapsed

    for i, task in enumerate(queries[:warmup]):
        one(i, task)
    chosen.clear()
    samples = [one(i, task) for i, task in enumerate(queries[warmup:])]
    with_failure = samples[1::2]
    return {"decisions": len(samples), "p50_ms": _percentile_ms(samples, 50),
            "p99_ms": _percentile_ms(samples, 99), "mean_ms": round(1000 * float(
                np.mean(samples)), 3), "p50_ms_after_a_failure": _percentile_ms(with_failure, 50),
            "chosen": dict(sorted(chosen.items())),
            # An optimisation must leave this unchanged: the same decisions, in order.
            "decisions_sha1": hashlib.sha1("\n".join(sequence).encode()).hexdigest()[:16]}


def queries(n: int, pool: Sequence[str], vocab: Sequence[str], seed: int) -> list[RouteTask]:
    rng = random.Random(seed)
    return [RouteTask(f"query:{i}", Features.parse(vary(rng.choice(pool), rng, vocab)))
            for i in range(n)]


def bench_size(size: int, pool: Sequence[str], vocab: Sequence[str],
               decisions: int) -> dict[str, object]:
    records = synthetic_records(size, pool, vocab, seed=size)
    start = time.perf_counter()
    obs = observations(records)
    table = OutcomeTable.build(obs)
    build = time.perf_counter() - start
    policy = LearnedPolicy(table, cost_hint=cost_hint)
    out: dict[str, object] = {"records": len(records), "tasks": table.n_rows,
                              "records_per_task": round(len(records) / table.n_rows, 2),
                              "build_table_s": round(build, 3)}
    out.update(time_decisions(policy, queries(decisions + 10, pool, vocab, seed=size + 1)))
    return out


def bench_load(pool: Sequence[str], vocab: Sequence[str], n: int = 10_000,
               repeats: int = 5) -> dict[str, object]:
    """Load a real n-record memory file and build its table; median of `repeats`."""
    records = synthetic_records(n, pool, vocab, seed=7)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "memory.json"
        write(path, Memory(path, records))
        size = path.stat().st_size
        loads, builds = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            memory = Memory.load(path)
            loaded = time.perf_counter()
            OutcomeTable.build(observations(memory.records, memory.summaries))
            loads.append(loaded - start)
            builds.append(time.perf_counter() - loaded)
    assert len(memory.records) == n
    total = [a + b for a, b in zip(loads, builds)]
    return {"records": n, "file_bytes": size, "bytes_per_record": round(size / n, 1),
            "load_s": round(float(np.median(loads)), 4),
            "build_table_s": round(float(np.median(builds)), 4),
            "load_and_build_s": round(float(np.median(total)), 4)}


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES),
                        help="comma-separated record counts [%(default)s]")
    parser.add_argument("--decisions", type=int, default=300,
                        help="timed decisions per size (at least 200 for a p99) [%(default)s]")
    parser.add_argument("--pool", type=int, default=4000,
                        help="distinct extracted feature sets to draw tasks from [%(default)s]")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    started = time.perf_counter()
    pool, vocab = feature_pool(args.pool)
    doc: dict[str, object] = {
        "benchmark": "router_latency", "policy": "learned", "models": len(MODELS),
        "attempts_left": 3, "machine": {
            "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "numpy": np.__version__,
            "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS")},
        "vocabulary": len(vocab), "feature_pool": len(pool)}
    doc["load"] = bench_load(pool, vocab)
    results = {str(size): bench_size(size, pool, vocab, args.decisions) for size in sizes}
    doc["sizes"] = results
    checks = {"bytes_per_record": doc["load"]["bytes_per_record"] <= TARGETS["bytes_per_record"],
              "load_10k_s": doc["load"]["load_and_build_s"] <= TARGETS["load_10k_s"]}
    if "10000" in results:
        checks["p50_ms_10k"] = results["10000"]["p50_ms"] <= TARGETS["p50_ms_10k"]
    if "1000000" in results:
        checks["p50_ms_1m"] = results["1000000"]["p50_ms"] <= TARGETS["p50_ms_1m"]
        doc["build_table_1m_s"] = results["1000000"]["build_table_s"]
    if len(results) > 1:
        first, last = results[str(sizes[0])], results[str(sizes[-1])]
        doc["p50_ratio_largest_over_smallest"] = round(last["p50_ms"] / first["p50_ms"], 2)
    doc["targets"] = TARGETS
    doc["targets_met"] = checks
    doc["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(doc, indent=2))
    return doc


if __name__ == "__main__":
    main()
