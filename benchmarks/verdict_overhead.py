"""The verdict's own cost, as JSON, in two parts.

`bookkeeping`: what splitting a patch into tests and code, putting the original tests back and
the whole patch again costs on top of the test runs themselves. Builds a git repo of --files
files (a tenth of them tests), changes 3 code files and 2 test files (one new), and times
`verify_workspace` with a sandbox whose runs cost nothing (a canned green run), so only the
verdict's git and file work is measured.

`reproduction`: what checking that an issue's fix brings a test that fails before it and passes
with it adds to the verdict (whose run of the whole change it reuses), next to one run of the
project's own suite, on a real project: the released
more-itertools 11.2.1 sdist (cached by .ci/run), with the `value_chain` fix reverted and its
test removed (a green suite and an issue), then the upstream fix and its test as the change.
The runs go through the bot's own local sandbox. Target: <= 10% of one suite run.

Medians of --runs.

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

import tarfile  # noqa: E402

from acr_bot.app import sandbox_for  # noqa: E402
from acr_bot.config import Settings  # noqa: E402
from acr_bot.domain import TestCounts, TestRun  # noqa: E402
from acr_bot.gitrepo import Worktree, git  # noqa: E402
from acr_bot.verify.patch import changed_paths, split_patch  # noqa: E402
from acr_bot.verify.reproduction import reproduce  # noqa: E402
from acr_bot.verify.verdict import verify_workspace  # noqa: E402
# The bug, its fix and its upstream test, as the real-bug tests revert and replay them.
from tests.test_real_repos import MI_BUGGY, MI_FILE, MI_FIXED  # noqa: E402
from tests.test_reproduction_real import MI_TEST  # noqa: E402

SDIST = ROOT / ".ci" / "cache" / "sdists" / "more_itertools-11.2.1.tar.gz"
MI_TESTS = "tests/test_more.py"

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


def bookkeeping(files: int, runs: int) -> dict[str, object]:
    seconds = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build(root, files)
        tree, sandbox = Worktree(root), FreeSandbox()
        for _ in range(runs):
            change(root)
            started = time.perf_counter()
            verdict = verify_workspace(GREEN, tree, sandbox, "pytest")
            seconds.append(time.perf_counter() - started)
            assert verdict.passed and len(verdict.tests_changed) == 2, verdict
            git(root, "checkout", "--quiet", "--", ".")
            git(root, "clean", "-fdq")
    return {"files": files, "test_runs_per_verdict": sandbox.runs // runs,
            "median_ms": round(statistics.median(seconds) * 1000, 1),
            "max_ms": round(max(seconds) * 1000, 1)}


def project(root: Path) -> Path:
    """more-itertools with the fix reverted and its test removed, committed."""
    with tarfile.open(SDIST) as archive:
        archive.extractall(root, filter="data")
    [top] = list(root.iterdir())
    code, tests = top / MI_FILE, top / MI_TESTS
    code.write_text(code.read_text().replace(MI_FIXED, MI_BUGGY))
    tests.write_text(tests.read_text().replace(MI_TEST, ""))
    git(top, "init", "--quiet")
    git(top, "add", "-A")
    git(top, "commit", "--quiet", "-m", "fix reverted, its test removed")
    return top


def reproduction(runs: int) -> dict[str, object]:
    """One suite run against the reproduction check's runs, through the bot's sandbox."""
    if not SDIST.is_file():
        return {"skipped": f"{SDIST.relative_to(ROOT)} is missing: run .ci/run once"}
    command = f"{sys.executable} -m pytest -q -p no:cacheprovider tests"
    suite, check, found = [], [], None
    with tempfile.TemporaryDirectory() as tmp:
        top = project(Path(tmp))
        tree, sandbox = Worktree(top), sandbox_for(Settings())
        try:
            for _ in range(runs):
                baseline = sandbox.run(command, top)
                suite.append(baseline.seconds)
                (top / MI_FILE).write_text((top / MI_FILE).read_text().replace(MI_BUGGY, MI_FIXED))
                text = (top / MI_TESTS).read_text()
                anchor = "    def test_type_error_from_iter(self):"
                (top / MI_TESTS).write_text(text.replace(anchor, MI_TEST + anchor))
                split = split_patch(tree, changed_paths(tree))
                # The verdict runs the whole change anyway when it changes tests; the check
                # reuses that run where it can, as in verify_workspace.
                whole = sandbox.run(command, top)
                started = time.perf_counter()
                found = reproduce(baseline, tree, sandbox, command, split, whole=whole)
                check.append(time.perf_counter() - started)
                git(top, "checkout", "--quiet", "--", ".")
        finally:
            sandbox.close()
    assert found is not None and found.tests, found
    return {"project": "more-itertools 11.2.1", "suite_tests": baseline.counts.passed
            if baseline.counts else None, "reproduction_tests": list(found.tests),
            "suite_s": round(statistics.median(suite), 2),
            "reproduction_s": round(statistics.median(check), 2),
            "ratio": round(statistics.median(check) / statistics.median(suite), 3),
            "target_ratio": 0.10}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps({"benchmark": "verdict_overhead", "runs": args.runs,
                      "bookkeeping": bookkeeping(args.files, args.runs),
                      "reproduction": reproduction(args.runs)}))


if __name__ == "__main__":
    main()
