"""Scripted agent replies for the replay provider: one bash command per turn."""

from __future__ import annotations

from typing import Any

SENTINEL = "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
# The submission line of the scaffold the routing data comes from (mini-SWE-agent 1.x).
SUBMIT = f"echo {SENTINEL} && git add -A && git diff --cached"


def submit(*named: str) -> str:
    """The scaffold's submission line, naming new files to keep after the sentinel."""
    return f"echo {' '.join([SENTINEL, *named])} && git add -A && git diff --cached"


def turn(command: str, thought: str = "Next step.", match: str | None = None,
         times: int | None = 1) -> dict[str, Any]:
    """One reply holding exactly one bash block; used once unless `times` says otherwise.
    With `match`, the reply is given only when the last message (the previous command's
    observation) matches that regular expression."""
    reply: dict[str, Any] = {"text": f"THOUGHT: {thought}\n\n```bash\n{command}\n```\n"}
    if times is not None:
        reply["times"] = times
    if match is not None:
        reply["match"] = match
    return reply


def script(*commands: str) -> list[dict[str, Any]]:
    """Replies that issue `commands` in order, one per turn."""
    return [turn(command) for command in commands]


def agent_model(replies: list[dict[str, Any]], price: float = 1e-6) -> dict[str, Any]:
    return {"input_cost_per_token": price, "output_cost_per_token": 4 * price,
            "replies": replies}
