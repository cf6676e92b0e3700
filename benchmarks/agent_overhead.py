"""The agent harness's own overhead, as JSON.

1. `attempt`: a 30-step replayed agent attempt on the demo project through the real path
   (`app.fix`: baseline, litellm with the replay provider, every command in the local sandbox,
   the verifier), with timers around the model calls and the commands. Per run and as the
   median: `harness_ms_per_step`, the harness's own time per step (the attempt's time inside
   `AgentHarness.attempt` minus the model calls and the commands, divided by the steps; target
   at most 20 ms); `attempt_s`, `llm_s`, `commands_s`; `end_to_end_s`, the whole `app.fix`.
2. `per_command`: what one agent command costs beyond the command itself (isolation, copy,
   sync), on generated git repositories of 1,000 and 10,000 files, in a real sandbox session
   (`sandbox.session`: the copy with its own .git made at the start, copied back at close):
   `open_ms` and `close_ms` of the session, `command_ms` of `true` through it, `bare_ms` of
   the same `bash -c true` run directly, `overhead_ms` their difference, `first_git_status_ms`
   (the copy's index is refreshed once), and `per_command_ms` at the median real run (36
   steps) and the p99 (115): the overhead plus the session's open and close spread over the
   steps (target: at most 150 ms on 10,000 files). Local always; docker when an engine answers.

    python benchmarks/agent_overhead.py [--runs 3] [--steps 30] [--files 1000 10000]
        [--commands 20] [--docker-image acr-bot-base:bookworm] [--skip-attempt]
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
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

from acr_bot import app, demo  # noqa: E402
from acr_bot.config import Settings  # noqa: E402
from acr_bot.fixing.agent import AgentHarness  # noqa: E402
from acr_bot.fixing.agent_prompts import SUBMIT  # noqa: E402
from acr_bot.gitrepo import git  # noqa: E402
from acr_bot.llm import LLMClient  # noqa: E402
from acr_bot.verify.local import LocalSandbox, LocalShell  # noqa: E402

RUN_STEPS = {"median_run": 36, "p99_run": 115}  # model calls of real runs (README, limits)
FIX = "sed -i 's/    return ordered\\[middle\\]$/    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) \\/ 2/' stats/core.py"  # noqa: E501


def script(steps: int) -> dict[str, Any]:
    """`steps` turns: reads and searches, then the fix, then the submission."""
    reads = ["cat stats/core.py", "grep -rn median --include=*.py .", "ls -la stats tests",
             "nl -ba tests/test_core.py | sed -n '1,20p'", "wc -l stats/core.py"]
    commands = [reads[i % len(reads)] for i in range(steps - 2)] + [FIX, SUBMIT]
    replies = [{"text": f"THOUGHT: step {i + 1}.\n\n```bash\n{c}\n```\n", "times": 1}
               for i, c in enumerate(commands)]
    return {"models": {"agent": {"input_cost_per_token": 1e-7, "output_cost_per_token": 4e-7,
                                 "replies": replies}}}


def timed(cls: type, name: str, spent: list[float]) -> Callable[[], None]:
    """Wrap `cls.name` to add its duration to `spent`; returns the undo."""
    inner = getattr(cls, name)

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return inner(self, *args, **kwargs)
        finally:
            spent.append(time.perf_counter() - began)

    setattr(cls, name, wrapper)
    return lambda: setattr(cls, name, inner)


def one_run(workdir: Path, steps: int) -> dict[str, float]:
    project = demo.build_project(workdir)
    replay = workdir / "agent.json"
    replay.write_text(json.dumps(script(steps)))
    settings = replace(Settings(), models=("replay/agent",), replay_file=replay, harness="agent",
                       test_command=f"{sys.executable} -m pytest -q -p no:cacheprovider",
                       agent_steps=steps + 5, llm_retries=0)
    llm, commands, attempt = [], [], []
    undo = [timed(LLMClient, "complete", llm), timed(LocalShell, "exec", commands),
            timed(AgentHarness, "attempt", attempt)]
    LLMClient(replay_file=replay)._setup()  # litellm's import is not the harness's cost
    try:
        began = time.perf_counter()
        result = app.fix(project, app.task_from_text(demo.TASK), settings)
        end_to_end = time.perf_counter() - began
    finally:
        for u in undo:
            u()
    if result.outcome != "fixed":
        raise SystemExit(f"the replayed attempt did not verify: {result.reason}")
    calls = result.attempts[0].calls
    own = sum(attempt) - sum(llm) - sum(commands)
    return {"steps": calls, "harness_ms_per_step": 1000 * own / calls,
            "attempt_s": sum(attempt), "llm_s": sum(llm), "commands_s": sum(commands),
            "end_to_end_s": end_to_end}


def make_tree(root: Path, files: int) -> Path:
    """A committed, packed git repository of `files` small Python files, 50 to a folder."""
    for i in range(files):
        path = root / f"pkg{i // 50}" / f"mod{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"def f{i}(x):\n    return x + {i}\n" * 12)
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "-A")
    git(root, "-c", "gc.auto=0", "commit", "--quiet", "-m", "base")
    git(root, "repack", "-a", "-d", "-q")  # packed, as a clone is
    return root


def _ms(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return (time.perf_counter() - began) * 1000


def session_costs(sandbox: Any, tree: Path, commands: int) -> dict[str, float]:
    """One session on `tree`: open, `commands` times `true`, a first `git status`, close."""
    (tree / "pkg0" / "mod0.py").write_text("changed\n")  # a change the copy must show
    shell: Any = None

    def open_() -> None:
        nonlocal shell
        shell = sandbox.session(tree)

    opened = _ms(open_)
    status = _ms(lambda: shell.exec("git status --short | wc -l", 120, 1_000))
    times = [_ms(lambda: shell.exec("true", 60, 1_000)) for _ in range(commands)]
    closed = _ms(shell.close)
    bare = statistics.median(
        _ms(lambda: subprocess.run(["bash", "-c", "true"], check=True)) for _ in range(commands))
    overhead = statistics.median(times) - bare
    out = {"open_ms": opened, "close_ms": closed, "command_ms": statistics.median(times),
           "bare_ms": bare, "overhead_ms": overhead, "first_git_status_ms": status}
    for label, steps in RUN_STEPS.items():
        out[f"per_command_ms_{label}"] = overhead + (opened + closed) / steps
    return {k: round(v, 1) for k, v in out.items()}


def per_command(files: list[int], commands: int, image: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for count in files:
        with tempfile.TemporaryDirectory(prefix="acr-agent-tree-") as tmp:
            tree = make_tree(Path(tmp) / "repo", count)
            local = LocalSandbox(timeout=600)
            try:
                out[f"local_{count}_files"] = session_costs(local, tree, commands)
            finally:
                local.close()
            if image:
                from acr_bot.verify.docker import DockerSandbox

                out[f"docker_{count}_files"] = session_costs(DockerSandbox(image), tree,
                                                             commands)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--files", type=int, nargs="*", default=[1_000, 10_000])
    parser.add_argument("--commands", type=int, default=20)
    parser.add_argument("--docker-image", default=None,
                        help="also measure a docker session from this image")
    parser.add_argument("--skip-attempt", action="store_true")
    args = parser.parse_args()
    report: dict[str, Any] = {"benchmark": "agent_overhead", "load_average":
                              [round(x, 2) for x in os.getloadavg()]}
    if not args.skip_attempt:
        runs = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="acr-agent-bench-") as tmp:
                runs.append(one_run(Path(tmp), args.steps))
        median = {key: round(statistics.median(r[key] for r in runs), 4) for key in runs[0]}
        report["attempt"] = {"runs": args.runs, "target_ms": 20, "median": median,
                             "per_run": [{k: round(v, 4) for k, v in r.items()} for r in runs]}
    report["per_command"] = {"target_ms": 150, "commands": args.commands,
                             **per_command(args.files, args.commands, args.docker_image)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
