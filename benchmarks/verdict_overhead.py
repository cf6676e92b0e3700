"""The verdict's own cost, as JSON: what splitting a patch into tests and code, putting the
original tests back and the whole patch again costs on top of the test runs themselves.

Builds a git repo of --files files (a tenth of them tests), changes 3 code files and 2 test
files (one new), and times `verify_workspace` with a sandbox whose runs cost nothing (a canned
green run), so only the verdict's git and file work is measured. Median of --runs.

    python benchmarks/verdict_overhead.py [--files 2000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from acr_bot.domain import TestCounts, TestRun  # noqa: E402
from acr_bot.gitrepo import Worktree, git  # noqa: E402
from acr_bot.verify.verdict import verify_workspace  # noqa: E402

GREEN = TestRun("pytest", 0, 0.0, "", counts=TestCounts(passed=10))


class FreeSandbox:
    """Runs nothing: every run is the same green result, so only the verdict is timed."""

    name = "free"
    runs = 0

    def run(self, command: str, workdir: Path) -> TestRun:
        self.runs += 1
        return GREEN


def build(root: Path, files: int) -> None:
    for i in range(files):
        folder = "tests" if i % 10 == 0 else f"pkg/m{i % 20}"
        name = f"test_{i}.py" if folder == "tests" else f"mod_{i}.py"
        path = root / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"def f{i}():\n    return {i}\n")
    git(root, "init", "--quiet")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "base")


def change(root: Path) -> None:
    for i in (1, 2, 3):
        (root / f"pkg/m{i}/mod_{i}.py").write_text(f"def f{i}():\n    return -{i}\n")
    (root / "tests/test_0.py").write_text("def test_zero():\n    assert True\n")
    (root / "tests/test_new.py").write_text("def test_new():\n    assert True\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    seconds = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build(root, args.files)
        tree, sandbox = Worktree(root), FreeSandbox()
        for _ in range(args.runs):
            change(root)
            started = time.perf_counter()
            verdict = verify_workspace(GREEN, tree, sandbox, "pytest")
            seconds.append(time.perf_counter() - started)
            assert verdict.passed and len(verdict.tests_changed) == 2, verdict
            git(root, "checkout", "--quiet", "--", ".")
            git(root, "clean", "-fdq")
    print(json.dumps({"benchmark": "verdict_overhead", "files": args.files, "runs": args.runs,
                      "test_runs_per_verdict": sandbox.runs // args.runs,
                      "median_ms": round(statistics.median(seconds) * 1000, 1),
                      "max_ms": round(max(seconds) * 1000, 1)}))


if __name__ == "__main__":
    main()
