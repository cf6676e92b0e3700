"""One task's cascade: the routing steps the bot's fix loop and the benchmark share.

Choose with what has been tried and how many attempts are left, stop when the policy judges
another attempt worth less than it costs, feed each outcome back. `fixing/loop.py` and
`bench/runner.py` both drive this class, so the benchmark measures the router the bot runs.

A candidate is an opaque string: a model ("gpt-5-mini") or any other arm the caller routes
between (e.g. "model@harness"); the cascade never looks inside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from acr_bot.domain import Decision
from acr_bot.routing.base import Outcome, Policy, RouteTask, Tried


@dataclass
class Cascade:
    policy: Policy
    task: RouteTask
    max_attempts: int
    # May a candidate that failed be tried again? The bot: yes (its feedback changes the next
    # answer). The benchmark: no (a row's outcomes are fixed, a retry pays for the same answer).
    repeat: bool = True
    tried: list[Tried] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    stopped: str | None = None  # why the policy ended the cascade early, if it did

    @property
    def attempts_done(self) -> int:
        """Attempts that count against the limit: provider faults do not."""
        return sum(t.outcome.skill for t in self.tried)

    def attempts_left(self, candidates: Sequence[str]) -> int:
        left = self.max_attempts - self.attempts_done
        if not self.repeat:
            left = min(left, len({*candidates} - {t.model for t in self.tried}))
        return left

    def next(self, candidates: Sequence[str]) -> Decision | None:
        """The next candidate to try, or None: no attempt or candidate left, or not worth it."""
        left = self.attempts_left(candidates)
        if left <= 0 or not candidates:
            return None
        decision = self.policy.choose(self.task, candidates, self.tried, attempts_left=left)
        if self.tried and decision.value is not None and decision.value < 0:
            self.stopped = (f"the router judged another attempt worth less than it costs "
                            f"(best: {decision.model}, expected utility {decision.value:.3f})")
            return None
        if not self.repeat and any(t.model == decision.model for t in self.tried):
            return None
        self.decisions.append(decision)
        return decision

    def record(self, model: str, outcome: Outcome) -> None:
        """Feed one attempt's outcome back: the policy learns within the task."""
        self.tried.append(Tried(model, outcome))
        self.policy.update(self.task, model, outcome)
