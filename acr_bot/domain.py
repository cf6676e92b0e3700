"""Plain values shared by every module: no I/O, no third-party imports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# Outcomes of one attempt. Only "passed" is a success; "provider_fault" says nothing about the
# model's skill (an outage, a rate limit), so the router must not learn from it.
AttemptOutcome = Literal[
    "passed",  # the verifier accepted the change (for an issue: reproduced and fixed)
    "tests_failed",  # edits applied, the verifier rejected them
    # the suite passes, but no test the change adds or changes fails without it: nothing shows
    # the issue is fixed (published only as a draft "not reproduced" when the rule is off)
    "no_reproduction",
    "apply_failed",  # the edit blocks did not apply (or were refused)
    "no_edits",  # the reply held no edit blocks (agent: submitted without changing anything)
    "no_submit",  # the agent hit a limit (steps, $, time, format errors) before it submitted
    "provider_fault",  # the LLM call itself failed (timeout, 5xx, rate limit, empty reply)
]
VerdictKind = Literal["accepted", "rejected", "changes_requested"]
SKILL_OUTCOMES: frozenset[str] = frozenset(
    {"passed", "tests_failed", "no_reproduction", "apply_failed", "no_edits", "no_submit"})


@dataclass(frozen=True)
class Task:
    """What to fix: the words a human or CI wrote, and where they came from."""

    id: str
    title: str
    body: str = ""
    source: str = "cli"  # cli | issue | comment | ci | revise | bench
    language: str | None = None
    tags: tuple[str, ...] = ()
    url: str | None = None
    changed: tuple[str, ...] = ()  # paths the triggering change touched (a red CI run's)

    @property
    def text(self) -> str:
        return f"{self.title}\n\n{self.body}".strip()


@dataclass(frozen=True)
class Features:
    """Routing features as short typed tokens ("lang:python", "err:KeyError", "w:median").

    Tokens, not vectors, are what the memory stores: vectors are recomputed from them.
    """

    tokens: tuple[str, ...]

    def get(self, prefix: str) -> tuple[str, ...]:
        head = prefix + ":"
        return tuple(t[len(head) :] for t in self.tokens if t.startswith(head))

    def compact(self) -> str:
        return " ".join(self.tokens)

    @classmethod
    def parse(cls, compact: str) -> Features:
        return cls(tuple(compact.split()))


@dataclass(frozen=True)
class Edit:
    """One change the model asked for: replace `search` by `replace` in `path`.

    An empty `search` means "create this file with `replace` as its whole content".
    """

    path: str
    search: str
    replace: str

    @property
    def creates(self) -> bool:
        return self.search == ""


@dataclass(frozen=True)
class TestCounts:
    __test__ = False  # not a pytest test class, despite the name
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    errors: int = 0

    @property
    def ran(self) -> int:
        """Tests that actually executed (skips do not count as run)."""
        return self.passed + self.failed + self.errors


@dataclass(frozen=True)
class TestRun:
    """One run of the repo's test command."""

    __test__ = False

    command: str
    exit_code: int | None  # None: killed at the timeout
    seconds: float
    output: str  # bounded: head and tail
    counts: TestCounts | None = None  # None: the runner's output could not be parsed
    passed_ids: frozenset[str] = frozenset()
    failed_ids: frozenset[str] = frozenset()
    skipped_ids: frozenset[str] = frozenset()
    # (test id, or module that failed to collect; its short failure message), from JUnit
    messages: tuple[tuple[str, str], ...] = ()
    # (JUnit classname, seconds its tests took), from JUnit: what a first tier would cost
    test_seconds: tuple[tuple[str, float], ...] = ()

    @property
    def timed_out(self) -> bool:
        return self.exit_code is None

    @property
    def green(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True)
class TierTime:
    """One tier of a verdict (or the baseline), for the job summary."""

    name: str  # "baseline", "named tests", "related tests", "full suite"
    seconds: float
    result: str  # "3 passed", "1 failed", "cached", "timed out"


@dataclass(frozen=True)
class Verdict:
    """The verifier's judgement of a patch against the baseline run."""

    passed: bool
    reason: str  # one line, for humans and for the model
    run: TestRun  # the run that decided (exit_code -1: rejected before any test ran)
    tests_changed: tuple[str, ...] = ()  # test paths the patch changed (the PR lists them)
    tiers: tuple[TierTime, ...] = ()  # the runs it took, first tier to full suite
    # The tests that show the fix: they failed before the change and pass with it (for an
    # issue, tests the change added or changed; for failing tests, those that pass now).
    reproduction: tuple[str, ...] = ()
    base_failure: str = ""  # how the reproduction failed before the change (a short excerpt)
    unreproduced: bool = False  # the suite passes, but nothing shows the issue is fixed
    base_run: TestRun | None = None  # the change's own tests, run on the code before it


@dataclass(frozen=True)
class Reply:
    """What one LLM call returned, with its real usage and cost."""

    model: str
    text: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    seconds: float


@dataclass(frozen=True)
class Estimate:
    """The router's view of one candidate model for one task."""

    model: str
    p_pass: float  # posterior mean P(pass)
    score: float  # P(pass) plus the exploration bonus: what the policy ranked by
    exp_cost_usd: float | None  # None: the price is unknown
    utility: float
    neighbours: float  # effective number of similar past attempts behind p_pass
    records: int  # the model's attempts in memory overall


@dataclass(frozen=True)
class Neighbour:
    task: str
    similarity: float
    outcomes: str  # e.g. "cheap:fail strong:pass"


@dataclass(frozen=True)
class Decision:
    model: str
    policy: str
    reason: str
    estimates: tuple[Estimate, ...] = ()
    neighbours: tuple[Neighbour, ...] = ()
    value: float | None = None  # expected utility of trying `model` now; < 0: not worth it


@dataclass(frozen=True)
class Attempt:
    number: int
    model: str
    outcome: AttemptOutcome
    seconds: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    counts: TestCounts | None = None
    detail: str = ""  # one line: why it failed, or what passed
    feedback: str = ""  # the message written for the next attempt's model
    diff: str = ""
    files: tuple[str, ...] = ()  # paths the edits changed
    note: str = ""  # the model's own explanation, the text before its edit blocks
    harness: str = ""  # "agent" or "edit"
    calls: int = 0  # model calls
    steps: int = 0  # shell commands the agent ran
    commands: tuple[str, ...] = ()  # those commands, for the PR body
    trajectory: str = ""  # path of the attempt's transcript JSON, when one was written
    tests_changed: tuple[str, ...] = ()  # test files and test config the patch changed
    tiers: tuple[TierTime, ...] = ()  # the verdict's runs and their times
    reproduction: tuple[str, ...] = ()  # tests that failed before the change and pass with it
    base_failure: str = ""  # how they failed before it (a short excerpt)

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"


@dataclass(frozen=True)
class Record:
    """One append-only memory entry: an attempt's outcome, or a human verdict on one."""

    id: str
    kind: Literal["attempt", "verdict"]
    ts: float
    task: str
    model: str
    outcome: str  # an AttemptOutcome, or a VerdictKind for verdict records
    features: str = ""  # Features.compact()
    attempt: int = 0
    cost_usd: float = 0.0
    tokens: int = 0
    seconds: float = 0.0
    tests_passed: int | None = None
    tests_failed: int | None = None
    ref: str = ""  # verdicts: id of the attempt record judged
    repo: str = ""  # owner/name when one memory serves many repos
    run: str = ""  # the fix run this attempt belongs to: a cascade is the attempts of one run
    harness: str = ""  # how the model worked: "agent" (a shell loop) or "edit" (one prompt)
    reproduction: int = 0  # tests that failed before the change and pass with it (0: none, or
    # a record from before reproductions were checked)

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"


@dataclass(frozen=True)
class FixResult:
    task: Task
    outcome: Literal["fixed", "gave_up", "dry_run", "nothing_to_fix"]
    reason: str
    test_command: str
    attempts: tuple[Attempt, ...] = ()
    decisions: tuple[Decision, ...] = ()
    baseline: TestRun | None = None
    final: TestRun | None = None
    branch: str | None = None
    commit: str | None = None
    records: tuple[Record, ...] = field(default=(), repr=False)
    baseline_time: TierTime | None = None  # the baseline run, or "cached"

    @property
    def cost_usd(self) -> float:
        return sum(a.cost_usd for a in self.attempts)

    @property
    def winner(self) -> Attempt | None:
        """The published attempt: the one that passed or, when the rule that an issue's fix
        must be reproduced is off, the unreproduced change that was accepted."""
        if self.outcome != "fixed":
            return None
        chosen = [a for a in self.attempts if a.outcome in ("passed", "no_reproduction")]
        return chosen[-1] if chosen else None

    @property
    def reproduced(self) -> bool:
        return self.winner is not None and self.winner.passed

    @property
    def model(self) -> str | None:
        return self.winner.model if self.winner else None


@dataclass(frozen=True)
class Price:
    input_per_token: float
    output_per_token: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens * self.input_per_token + completion_tokens * self.output_per_token


@dataclass(frozen=True)
class Summary:
    """What `compact` keeps of dropped records: counts per model and cluster."""

    id: str
    model: str
    cluster: str  # e.g. "lang:python kind:bug"
    attempts: int
    passes: float
    cost_usd: float
    covers: tuple[str, ...]  # ids of the records folded in (so a merge never counts them twice)
    faults: int = 0  # provider faults folded in: not skill evidence, but `memory stats` shows them
    reproduced: int = 0  # passes folded in that a failing-before test showed (`memory stats`)


# What a human verdict on a PR does to the attempt it judges: tests passing is not enough
# if the maintainers rejected the change.
VERDICT_SCORES = {"accepted": 1.0, "changes_requested": 0.5, "rejected": 0.0}
