"""The `edit` harness: one prompt with files chosen up front, SEARCH/REPLACE edits back.

The cheap rung: one model call, no tools. The model sees the task, the files `context.py`
chose and what earlier attempts got wrong; its edit blocks are applied to the workspace.
"""

from __future__ import annotations

import re
from pathlib import Path

from acr_bot.domain import Reply
from acr_bot.errors import EditError, LLMError
from acr_bot.fixing import edits, prompts
from acr_bot.fixing.harness import AttemptResult, Brief, Limits
from acr_bot.llm import estimate_tokens
from acr_bot.report import run_summary
from acr_bot.verify.reproduction import layout_text

FEEDBACK_LIMIT = 6_000
SYSTEM_TOKENS = 1_000  # the system prompt and the message's own headings, roughly


class EditHarness:
    """One call, edit blocks applied in place."""

    name = "edit"

    def __init__(self, llm: object) -> None:
        self.llm = llm

    def prompt_tokens(self, brief: Brief) -> int:
        # Context + task + system prompt, plus the feedback each earlier attempt adds.
        feedback = sum(estimate_tokens(a.feedback) for a in brief.previous)
        context = brief.context.tokens if brief.context else 0
        return context + estimate_tokens(brief.task.text) + SYSTEM_TOKENS + feedback

    def messages(self, brief: Brief) -> list[dict[str, str]]:
        assert brief.context is not None, "the edit harness needs the chosen files"
        return [
            {"role": "system", "content": prompts.SYSTEM.format(format=edits.FORMAT_INSTRUCTIONS)},
            {"role": "user", "content": prompts.task_message(
                brief.task, brief.context, brief.test_command, run_summary(brief.baseline),
                brief.previous, layout_text(brief.test_dirs) if brief.reproduce else "")},
        ]

    def attempt(self, model: str, brief: Brief, workspace: Path, limits: Limits) -> AttemptResult:
        messages = self.messages(brief)
        try:
            reply: Reply = self.llm.complete(model, messages)  # type: ignore[attr-defined]
        except LLMError as exc:
            return AttemptResult("provider_fault", detail=str(exc))
        transcript = (*messages, {"role": "assistant", "content": reply.text})
        usage = {"calls": 1, "prompt_tokens": reply.prompt_tokens,
                 "completion_tokens": reply.completion_tokens, "cost_usd": reply.cost_usd,
                 "transcript": transcript}
        return _apply(reply.text, workspace, brief, usage)


def _apply(text: str, workspace: Path, brief: Brief, usage: dict) -> AttemptResult:
    """Parse and apply the reply's edit blocks; the result says what changed or why not."""
    try:
        blocks = edits.parse_edits(text)
        if not blocks:
            return AttemptResult("no_edits", detail="the reply held no edit blocks",
                                 feedback="Your reply contained no SEARCH/REPLACE blocks, so "
                                 "nothing changed. Answer with edit blocks in the required "
                                 "format.", **usage)
        changed = edits.apply_to_tree(workspace, blocks, brief.protected)
    except EditError as exc:
        return AttemptResult("apply_failed", detail=str(exc).splitlines()[0],
                             feedback=str(exc)[:FEEDBACK_LIMIT], **usage)
    except OSError as exc:  # e.g. a 5,000-character file name: the reply's fault, not a crash
        message = f"The edits could not be written: {exc.strerror or exc} ({exc.filename!s:.120})."
        return AttemptResult("apply_failed", detail=message[:200], feedback=message + " None of "
                             "them was kept: use short, ordinary paths relative to the "
                             "repository root.", **usage)
    if not changed:  # every block's REPLACE equalled its SEARCH: nothing to test or commit
        return AttemptResult("no_edits", detail="the edit blocks changed nothing",
                             feedback="Your edit blocks left every file as it was (each REPLACE "
                             "equalled its SEARCH), so nothing changed. Make the change the "
                             "task needs.", **usage)
    return AttemptResult("edited", files=tuple(changed), note=explanation(text), **usage)


def explanation(reply: str, limit: int = 800) -> str:
    """The prose before the first edit block (minus the path line above the block)."""
    head = re.split(r"^\s*(?:```|~~~|<{5,9} ?SEARCH)", reply, maxsplit=1, flags=re.MULTILINE)[0]
    lines = head.rstrip().splitlines()
    if lines and re.fullmatch(r"\S+\.\w+:?", lines[-1].strip().strip("`*")):
        lines = lines[:-1]  # the path of the first block
    text = "\n".join(lines).strip()
    return text if len(text) <= limit else text[:limit].rstrip() + "..."
