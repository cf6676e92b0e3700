"""One JSON file per attempt: the whole conversation, each command, and what it all cost."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path

from acr_bot.domain import Attempt, Task
from acr_bot.fixing.harness import AttemptResult
from acr_bot.secrets import TOKEN_RE

SCHEMA = "acr-bot.trajectory/1"


def write(directory: Path, run_id: str, task: Task, attempt: Attempt,
          result: AttemptResult) -> Path:
    """Write the attempt's trajectory under `directory`; returns the file's path."""
    directory.mkdir(parents=True, exist_ok=True)
    model = re.sub(r"[^A-Za-z0-9._-]+", "-", attempt.model)
    path = directory / f"{run_id}-{attempt.number:02d}-{model}.json"
    doc = {
        "schema": SCHEMA, "run": run_id, "task": {"id": task.id, "title": task.title},
        "attempt": attempt.number, "model": attempt.model, "harness": attempt.harness,
        "outcome": attempt.outcome, "detail": attempt.detail, "seconds": round(attempt.seconds, 3),
        "calls": attempt.calls, "prompt_tokens": attempt.prompt_tokens,
        "completion_tokens": attempt.completion_tokens, "cost_usd": round(attempt.cost_usd, 6),
        "files": list(attempt.files), "reverted": list(result.reverted),
        "steps": [asdict(step) for step in result.steps],
        # Credentials quoted in the task or printed by a command never reach the file.
        "messages": [{"role": m["role"], "content": TOKEN_RE.sub("***", m["content"])}
                     for m in result.transcript],
    }
    path.write_text(json.dumps(doc, indent=1))
    return path
