"""Text for humans: the routing explanation, the attempts table, the result summary; and
the same results as the `--json` documents of `fix` and `route`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from acr_bot.domain import Attempt, Decision, FixResult, Record, Task, TestRun
from acr_bot.verify.judge import describe_counts, shown_counts


def clip(text: str, limit: int) -> str:
    """`text` on one line, cut at a word boundary (never mid-word) with "..." if too long."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = text[: limit - 3]
    cut = head.rsplit(" ", 1)[0] if " " in head else head  # one huge word: cut it anyway
    return cut.rstrip(" ,;:-") + "..."


def _usd(value: float | None) -> str:
    return "?" if value is None else f"${value:.4f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool = False) -> str:
    """A plain-text (aligned) or Markdown table."""
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(" ".join(c.replace("|", "\\|").split()) for c in row) + " |"
                  for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*headers), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*row) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def explain_decision(decision: Decision, markdown: bool = False) -> str:
    """Why this model: each candidate's estimates, and the nearest past tasks."""
    lines = [f"Chose {decision.model} ({decision.policy}): {decision.reason}"]
    if decision.estimates:
        rows = [[e.model + (" *" if e.model == decision.model else ""), f"{e.p_pass:.2f}",
                 _usd(e.exp_cost_usd), f"{e.utility:+.3f}", f"{e.neighbours:.1f}", str(e.records)]
                for e in sorted(decision.estimates, key=lambda e: -e.utility)]
        lines.append(table(["model", "P(pass)", "exp. $", "utility", "neighbours", "records"],
                           rows, markdown))
    if decision.neighbours:
        lines.append("Nearest past tasks:")
        lines += [f"  {n.similarity:.2f}  {n.task}  {n.outcomes}" for n in decision.neighbours]
    return "\n".join(lines)


def attempts_table(attempts: Sequence[Attempt], markdown: bool = False) -> str:
    rows = [[str(a.number), a.model, a.outcome, f"{a.seconds:.1f}",
             str(a.prompt_tokens + a.completion_tokens), _usd(a.cost_usd), a.detail]
            for a in attempts]
    total_s = sum(a.seconds for a in attempts)
    total_t = sum(a.prompt_tokens + a.completion_tokens for a in attempts)
    rows.append(["", "total", "", f"{total_s:.1f}", str(total_t),
                 _usd(sum(a.cost_usd for a in attempts)), ""])
    return table(["#", "model", "outcome", "seconds", "tokens", "$", "detail"], rows, markdown)


def tiers_table(result: FixResult, markdown: bool = False) -> str:
    """Where the test time went: the baseline (or its cache), then each attempt's tiers."""
    rows = []
    if result.baseline_time is not None:
        rows.append(["baseline", f"{result.baseline_time.seconds:.1f}", result.baseline_time.result])
    for attempt in result.attempts:
        rows += [[f"attempt {attempt.number}: {t.name}", f"{t.seconds:.1f}", t.result]
                 for t in attempt.tiers]
    return table(["tests", "seconds", "result"], rows, markdown) if rows else ""


def run_summary(run: TestRun | None) -> str:
    if run is None:
        return "not run"
    if run.timed_out:
        return f"timed out after {run.seconds:.0f} s"
    # The verifier's words (passed, failed, errors, skipped): one vocabulary everywhere.
    counts = shown_counts(run)
    tail = describe_counts(counts) if counts else "counts unknown"
    return f"exit {run.exit_code}; {tail}"


def commit_message(task: Task, test_command: str, final: TestRun | None,
                   winner: Attempt) -> str:
    """The fix's commit: the task's title, how it was verified and reproduced, and trailers."""
    # git's convention: a subject of about 72 characters; a longer title goes whole in the body.
    subject = clip(task.title, 72)
    whole = f"{task.title}\n\n" if subject != task.title else ""
    shown = (f"Reproduced by {len(winner.reproduction)} test(s) that failed before this change: "
             f"{', '.join(winner.reproduction[:5])}.\n\n" if winner.reproduction else
             "Not reproduced: no test fails without this change.\n\n" if not winner.passed else "")
    return (f"{subject}\n\n{whole}Verified by `{test_command}`: {run_summary(final)}.\n\n"
            f"{shown}Acr-Task: {task.id}\nAcr-Model: {winner.model}\n")


def result_summary(result: FixResult) -> str:
    lines = [f"Outcome: {result.outcome} - {result.reason}"]
    if result.attempts:
        lines.append(attempts_table(result.attempts))
    lines.append(f"Tests before: {run_summary(result.baseline)}")
    if result.final is not None:
        lines.append(f"Tests after:  {run_summary(result.final)}")
    if result.branch:
        lines.append(f"Branch: {result.branch} ({(result.commit or '')[:12]})")
    return "\n".join(lines)


def stats_tables(cells: dict[str, dict[str, dict[str, float]]]) -> str:
    """`memory stats` as text: the per-model table first, then one per language and kind."""
    out = []
    for group in ["model", *sorted(g for g in cells if g != "model")]:
        per_model = group == "model"
        rows = [[model, f"{c['attempts']:.0f}", f"{c['pass_rate']:.0%}", _usd(c["cost_usd"]),
                 _usd(c["usd_per_pass"]) if c["usd_per_pass"] is not None else "-",
                 *([f"{c['reproduced']:.0f}/{c['passes']:.0f}", f"{c['faults']:.0f}"]
                   if per_model else [])]
                for model, c in sorted(cells[group].items())]
        title = "Per model" if per_model else group
        headers = ["model", "attempts", "pass rate", "$ total", "$ per pass",
                   *(["reproduced", "faults"] if per_model else [])]
        out.append(f"{title}\n" + table(headers, rows))
    if not cells["model"]:
        return "The memory is empty."
    return "\n\n".join(out) + ("\n\nreproduced: passes shown by a test that failed before the "
                                "change and passes with it (records from before acr-bot checked "
                                "this do not say).")


def records_table(records: Sequence[Record]) -> str:
    import datetime as dt

    rows = [[r.id, dt.datetime.fromtimestamp(r.ts, dt.UTC).strftime("%Y-%m-%d %H:%M"),
             r.kind, r.task[:24], r.model, r.outcome, _usd(r.cost_usd) if r.kind == "attempt"
             else r.ref] for r in records]
    return table(["id", "time (UTC)", "kind", "task", "model", "outcome", "$ / ref"], rows)


def _evidence(result: FixResult) -> str:
    return (f"`{result.test_command}`\n\n| | result |\n|---|---|\n"
            f"| before | {run_summary(result.baseline)} |\n| after | {run_summary(result.final)} |")


def pr_body(result: FixResult, marker: str, prefix: str = "/acr",
            closes: int | None = None) -> str:
    """The pull request body: what changed, why this model, attempts, evidence, feedback."""
    winner = result.winner
    assert winner is not None, "a PR body needs the published attempt"
    index = result.attempts.index(winner)
    files = "\n".join(f"- `{f}`" for f in winner.files) or "- (none)"
    if winner.tests_changed:
        listed = "\n".join(f"- `{f}`" for f in winner.tests_changed)
        files += ("\n\n**This patch also changes tests.** The verdict ran the repository's "
                  "original tests against the patched code (they pass); the changed tests passed "
                  f"in a second run. Review these test changes:\n{listed}")
    path = " → ".join(f"{a.model} ({a.outcome})" for a in result.attempts)
    why = (explain_decision(result.decisions[index], markdown=True)
           if index < len(result.decisions) else "")
    parts = [_not_reproduced(winner),
             f"Fixes #{closes}" if closes else "",
             f"## What changed\n{winner.note or 'The model gave no explanation.'}\n\n{files}",
             reproduction_section(winner),
             f"## Why {winner.model}\nPath: {path}\n\n{why}",
             f"## Attempts\n{attempts_table(result.attempts, markdown=True)}",
             _agent_details(winner),
             f"## Test evidence\n{_evidence(result)}",
             f"**Cost:** ${result.cost_usd:.4f} over {len(result.attempts)} attempt(s).",
             "## Feedback\nComment `" + prefix + " revise <what to change>` for another "
             "attempt on this branch, `" + prefix + " explain` for the routing decision. "
             "Merging or closing this PR is recorded in the routing memory, so the next "
             "choice of model learns from your verdict.",
             marker]
    return "\n\n".join(p for p in parts if p)


def _not_reproduced(winner: Attempt) -> str:
    """The warning on top of a change published without a reproduction (the rule is off)."""
    if winner.passed:
        return ""
    return ("> [!WARNING]\n> **Not reproduced.** No test in this change fails without it, so "
            "the tests only show that it breaks nothing, not that it fixes the issue "
            f"({winner.detail}). It is published because `require_reproduction` is off.")


def reproduction_section(attempt: Attempt) -> str:
    """The tests that show the fix: they failed before the change and pass with it."""
    if not attempt.reproduction:
        return ""
    shown = "\n".join(f"- `{t}`" for t in attempt.reproduction[:10])
    more = (f"\n- ... and {len(attempt.reproduction) - 10} more"
            if len(attempt.reproduction) > 10 else "")
    failure = (f"\n\nBefore the change{'' if len(attempt.reproduction) == 1 else ', the first'}"
               f" failed with:\n```\n{attempt.base_failure}\n```" if attempt.base_failure else "")
    return (f"## Reproduction\nThese tests fail on the code before this change and pass with "
            f"it:\n{shown}{more}{failure}")


def _agent_details(winner: Attempt, limit: int = 60_000) -> str:
    """The winning change as a diff and, for an agent, the commands it ran (collapsed)."""
    parts = []
    if winner.commands:
        items = "\n".join(f"{i}. `{' '.join(c.split())[:200].replace('`', chr(39))}`"
                          for i, c in enumerate(winner.commands, 1))
        parts.append(f"<details><summary>Commands the agent ran ({len(winner.commands)})"
                     f"</summary>\n\n{items}\n\n</details>")
    if winner.diff:
        fence = "`" * max(3, max((len(r) for r in re.findall(r"`{3,}", winner.diff)), default=0) + 1)
        parts.append(f"<details><summary>Diff</summary>\n\n{fence}diff\n{winner.diff[:limit]}\n"
                     f"{fence}\n\n</details>")
    return "\n\n".join(parts)


def gave_up_comment(result: FixResult) -> str:
    """The issue comment when no PR is opened: gave up, or nothing to fix."""
    head = ("acr-bot found nothing to fix" if result.outcome == "nothing_to_fix"
            else "acr-bot could not produce a verified fix")
    lines = [f"**{head}:** {result.reason}."]
    if result.attempts:
        lines.append(attempts_table(result.attempts, markdown=True))
    lines.append(f"Tests before any change: {run_summary(result.baseline)}.")
    return "\n\n".join(lines)


def job_summary(title: str, result: FixResult | None, extra: str = "") -> str:
    parts = [f"## acr-bot: {title}"]
    if result is not None:
        parts.append(f"**{result.outcome}**: {result.reason}")
        if result.decisions:
            parts.append(explain_decision(result.decisions[0], markdown=True))
        if result.attempts:
            parts.append(attempts_table(result.attempts, markdown=True))
        if tiers := tiers_table(result, markdown=True):
            parts.append(f"Time per test tier:\n\n{tiers}")
        if result.winner is not None:
            parts.append(_not_reproduced(result.winner) or reproduction_section(result.winner))
        paths = [f"- attempt {a.number}: `{a.trajectory}`" for a in result.attempts
                 if a.trajectory]
        if paths:
            parts.append("Trajectories (each attempt's full transcript, JSON):\n"
                         + "\n".join(paths))
    if extra:
        parts.append(extra)
    return "\n\n".join(parts) + "\n"


def result_json(result: FixResult) -> dict[str, Any]:
    """The `fix --json` document (its schema is in the README)."""
    def run(r: TestRun | None) -> dict[str, Any] | None:
        if r is None:
            return None
        return {"command": r.command, "exit_code": r.exit_code, "seconds": round(r.seconds, 3),
                "counts": asdict(r.counts) if r.counts else None}

    return {
        "task": {"id": result.task.id, "title": result.task.title},
        "outcome": result.outcome, "reason": result.reason, "branch": result.branch,
        "commit": result.commit, "model": result.model, "cost_usd": round(result.cost_usd, 6),
        "reproduced": result.reproduced if result.outcome == "fixed" else None,
        "test_command": result.test_command, "baseline": run(result.baseline),
        "final": run(result.final),
        "attempts": [{"number": a.number, "model": a.model, "harness": a.harness,
                      "steps": a.steps, "trajectory": a.trajectory or None, "outcome": a.outcome,
                      "seconds": round(a.seconds, 3), "prompt_tokens": a.prompt_tokens,
                      "completion_tokens": a.completion_tokens, "cost_usd": round(a.cost_usd, 6),
                      "detail": a.detail, "reproduction": list(a.reproduction),
                      "base_failure": a.base_failure or None} for a in result.attempts],
        "decisions": [decision_json(d) for d in result.decisions],
    }


def decision_json(decision: Decision) -> dict[str, Any]:
    """A routing decision in `fix --json` and `route --json`."""
    return {
        "model": decision.model, "policy": decision.policy, "reason": decision.reason,
        "candidates": [{"model": e.model, "p_pass": round(e.p_pass, 4),
                        "expected_cost_usd": e.exp_cost_usd, "utility": round(e.utility, 4),
                        "neighbours": round(e.neighbours, 2), "records": e.records}
                       for e in decision.estimates],
        "nearest": [{"task": n.task, "similarity": round(n.similarity, 4),
                     "outcomes": n.outcomes} for n in decision.neighbours],
    }
