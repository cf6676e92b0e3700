"""How often the edit harness's prompt holds every file a real fix changed.

Cases (benchmarks/context_recall_cases.json) are real bugs fixed in patch releases of pytest,
Sphinx and pylint: the changelog entry is the task text, the source files the fix changed
between the two sdists are the targets. Each project's sdist is fetched once with pip into the
cache dir (`--cache`, default ~/.cache/acr-bot/context-recall) and unpacked; after that the run is
offline. For each case it calls `build_context` exactly as the fix loop does (no failing tests,
no test output: the issue text alone) and reports, as JSON:

- recall_at_prompt.new: every target shown (whole, or as numbered windows);
  .new_whole: every target shown whole; .old: the selection before BM25 (git revision OLD_REV);
- bm25_top5 / bm25_top10: every target in the top 5 / 10 of a plain BM25 ranking of the files;
- seconds_per_case: mean time of one `build_context` call.

    python benchmarks/context_recall.py [--cache DIR] [--budget 24000] [--project NAME]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from acr_bot.fixing import context, retrieval  # noqa: E402

CASES = Path(__file__).with_name("context_recall_cases.json")
OLD_REV = "1f23d11"  # the word-overlap selection this replaced
SKIP_PARTS = (".egg-info/", "PKG-INFO")


def fetch(project: str, version: str, cache: Path) -> Path:
    """The unpacked sdist of project==version (downloaded once with pip)."""
    target = cache / f"{project}-{version}"
    if (target / ".complete").exists():
        return target
    download = cache / "sdists"
    download.mkdir(parents=True, exist_ok=True)
    archive = next(download.glob(f"{project}-{version}.tar.gz"), None)
    if archive is None:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--no-binary", ":all:", f"{project}=={version}", "-d", str(download)],
                       check=True)
        archive = next(download.glob(f"{project}-{version}.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    (target / ".complete").touch()
    return target


def tree(unpacked: Path) -> tuple[Path, list[str]]:
    """The sdist's root directory and its files, as `git ls-files` would list them."""
    root = next(p for p in unpacked.iterdir() if p.is_dir())
    paths = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    return root, [p for p in paths if not any(s in p for s in SKIP_PARTS)]


def old_context() -> ModuleType | None:
    """The selection as it was before BM25, loaded from git history (None outside a clone)."""
    try:
        source = subprocess.run(["git", "show", f"{OLD_REV}:acr_bot/fixing/context.py"],
                                cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    spec = importlib.util.spec_from_loader("old_context", loader=None)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["old_context"] = module
    exec(compile(source, "old_context.py", "exec"), module.__dict__)  # noqa: S102
    return module


def bm25_rank(root: Path, paths: list[str], text: str) -> list[str]:
    """A plain BM25 ranking of the source files (the baseline the target is set against)."""
    docs = {}
    for path in context._source_files(paths):
        docs[path] = retrieval.document(path, context._read(root / path) or "")
    scores = retrieval.rank(docs, text)
    return sorted(docs, key=lambda p: (-scores[p], p))


def run_case(case: dict[str, Any], root: Path, paths: list[str], budget: int,
             old: ModuleType | None) -> dict[str, Any]:
    targets = set(case["targets"])
    missing = targets - set(paths)
    if missing:
        raise SystemExit(f"{case['id']}: targets not in the sdist: {sorted(missing)}")
    start = time.perf_counter()
    new = context.build_context(root, case["text"], paths, budget_tokens=budget)
    seconds = time.perf_counter() - start
    ranked = bm25_rank(root, paths, case["text"])
    row = {"id": case["id"], "seconds": seconds,
           "new": targets <= set(new.shown), "new_whole": targets <= set(new.files),
           "top5": targets <= set(ranked[:5]), "top10": targets <= set(ranked[:10])}
    if old is not None:
        row["old"] = targets <= set(old.build_context(root, case["text"], paths,
                                                      budget_tokens=budget).files)
    return row


def share(rows: list[dict[str, Any]], key: str) -> float | None:
    if not rows or key not in rows[0]:
        return None
    return round(sum(r[key] for r in rows) / len(rows), 3)


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"cases": len(rows),
            "recall_at_prompt": {k: share(rows, k) for k in ("new", "new_whole", "old")},
            "bm25_top5": share(rows, "top5"), "bm25_top10": share(rows, "top10")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path,
                        default=Path.home() / ".cache" / "acr-bot" / "context-recall")
    parser.add_argument("--budget", type=int, default=24_000, help="prompt tokens for files")
    parser.add_argument("--project", help="only this project's cases")
    args = parser.parse_args()
    cases = json.loads(CASES.read_text())["cases"]
    cases = [c for c in cases if args.project in (None, c["project"])]
    old = old_context()
    rows: list[dict[str, Any]] = []
    by_project: dict[str, list[dict[str, Any]]] = {}
    for case in cases:
        root, paths = tree(fetch(case["project"], case["version"], args.cache))
        row = run_case(case, root, paths, args.budget, old)
        rows.append(row)
        by_project.setdefault(case["project"], []).append(row)
    out = summary(rows) | {
        "budget_tokens": args.budget,
        "seconds_per_case": round(sum(r["seconds"] for r in rows) / max(len(rows), 1), 3),
        "projects": {name: summary(group) for name, group in by_project.items()},
        "missed_by_new": [r["id"] for r in rows if not r["new"]],
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
