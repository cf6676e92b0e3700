"""acr-bot's own overhead on the demo task, as JSON.

Runs `acr-bot fix` on the demo project (three replayed models) in a fresh process, with timers
around the LLM calls and the test runs, and reports: time from process start to the first LLM
call, the litellm import (paid lazily inside the first call), and the total wall time minus the
LLM calls and the test runs (what acr-bot itself costs). Repeats and reports the median.

    python benchmarks/overhead.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DRIVER = r"""
import json, sys, time
marks = {"start": time.time(), "llm": [], "tests": [], "setup": 0.0}
from acr_bot import cli, demo, llm
from acr_bot.verify import local as verifier

def timed(cls, name, bucket):
    inner = getattr(cls, name)
    def wrapper(self, *args, **kwargs):
        began = time.time()
        try:
            return inner(self, *args, **kwargs)
        finally:
            marks[bucket].append((began, time.time()))
    setattr(cls, name, wrapper)

original_setup = llm.LLMClient._setup
def setup(self):
    began = time.time()
    try:
        return original_setup(self)
    finally:
        marks["setup"] += time.time() - began
llm.LLMClient._setup = setup
timed(llm.LLMClient, "complete", "llm")
timed(verifier.LocalSandbox, "run", "tests")
try:
    cli.cli(sys.argv[1:], prog_name="acr-bot", standalone_mode=False)
finally:
    marks["end"] = time.time()
    print("MARKS" + json.dumps(marks), file=sys.stderr)
"""


def one_run(workdir: Path) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from acr_bot import demo

    project = demo.build_project(workdir)
    replay = workdir / "models.json"
    replay.write_text(json.dumps(demo.replay_models()))
    args = ["fix", "--repo", str(project), "--task", demo.TASK, "--replay-file", str(replay),
            "--models", "replay/mini,replay/mid,replay/pro", "--harness", "edit",
            "--test-cmd", f"{sys.executable} -m pytest -q -p no:cacheprovider"]
    env = {**os.environ, "LITELLM_OFFLINE_MODE": "true", "PYTHONPATH": str(ROOT)}
    launched = time.time()
    done = subprocess.run([sys.executable, "-c", DRIVER, *args], capture_output=True,
                          text=True, env=env, cwd=workdir, check=False)
    line = next(x for x in done.stderr.splitlines() if x.startswith("MARKS"))
    marks = json.loads(line[len("MARKS"):])
    llm = sum(b - a for a, b in marks["llm"]) - marks["setup"]
    tests = sum(b - a for a, b in marks["tests"])
    wall = marks["end"] - launched
    return {
        "wall_s": wall,
        "to_first_llm_call_s": marks["llm"][0][0] - launched,
        "to_first_llm_request_s": marks["llm"][0][0] - launched + marks["setup"],
        "python_and_imports_s": marks["start"] - launched,
        "litellm_import_s": marks["setup"],
        "llm_calls_s": llm,
        "test_runs_s": tests,
        "overhead_s": wall - llm - tests,
        "overhead_without_litellm_import_s": wall - llm - tests - marks["setup"],
        "llm_calls": len(marks["llm"]),
        "test_runs": len(marks["tests"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="acr-overhead-") as tmp:
            runs.append(one_run(Path(tmp)))
    median = {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}
    print(json.dumps({"benchmark": "overhead", "task": "demo", "runs": args.runs,
                      "median": median, "all": runs}, indent=1))


if __name__ == "__main__":
    main()
