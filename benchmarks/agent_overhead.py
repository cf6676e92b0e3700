"""The agent harness's own overhead, as JSON.

Runs a 30-step replayed agent attempt on the demo project through the real path (`app.fix`:
baseline, litellm with the replay provider, every command in the local sandbox, the verifier),
with timers around the model calls and the commands. Reports, per run and as the median:

- `harness_ms_per_step`: the harness's own time per step, i.e. the attempt's time inside
  `AgentHarness.attempt` minus the model calls and the commands, divided by the steps
  (target: at most 20 ms);
- `attempt_s`, `llm_s`, `commands_s`: the attempt and what it spent waiting;
- `end_to_end_s`: the whole `app.fix`, baseline and verification included.

    python benchmarks/agent_overhead.py [--runs 3] [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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
from acr_bot.llm import LLMClient  # noqa: E402
from acr_bot.verify.local import LocalShell  # noqa: E402

SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="acr-agent-bench-") as tmp:
            runs.append(one_run(Path(tmp), args.steps))
    median = {key: round(statistics.median(r[key] for r in runs), 4) for key in runs[0]}
    print(json.dumps({"benchmark": "agent_overhead", "runs": args.runs, "target_ms": 20,
                      "median": median,
                      "per_run": [{k: round(v, 4) for k, v in r.items()} for r in runs]},
                     indent=2))


if __name__ == "__main__":
    main()
