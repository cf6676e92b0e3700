"""The library's front door: turn settings into a fix job, run it, keep the memory.

The CLI and the GitHub Action both call these functions; nothing here prints or exits.
"""

from __future__ import annotations

import hashlib
from contextlib import AbstractContextManager, nullcontext
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from acr_bot.config import Settings, cache_dir
from acr_bot.domain import Decision, Features, FixResult, Price, Task
from acr_bot.errors import ConfigError
from acr_bot.fixing.harness import DEFAULT_HARNESS, Limits, arm_of, split_arm
from acr_bot.fixing.loop import FixJob, run_fix
from acr_bot.gitrepo import GitRepo
from acr_bot.llm import REPLAY_PREFIX, LLMClient, ReplayBook, resolve_prices
from acr_bot.memory.store import Memory
from acr_bot.report import clip
from acr_bot.routing.base import Policy, RouteTask, Tried
from acr_bot.routing.features import task_features
from acr_bot.routing.registry import make_policy
from acr_bot.verify.baselines import BaselineCache
from acr_bot.verify.local import LocalSandbox, Sandbox, detect_test_command
from acr_bot.verify.runners import parallel_command
from acr_bot.verify.tiers import Deadline, TierOptions

# The router weighs an attempt's expected cost before any call. An agent attempt of a model the
# shipped dataset ran (SWE-bench Verified through the scaffold our agent follows) costs what
# its runs there cost on average. Otherwise: the model's token prices times a typical attempt's
# tokens, one prompt with files for `edit`, and for `agent` the tokens that best fit the
# dataset's mean costs of the models litellm prices (tests/test_cost_hint.py refits them).
TYPICAL_TOKENS = {"edit": (8_000, 2_000), "agent": (115_000, 11_500)}


def terminate_gracefully() -> None:
    """SIGTERM (a cancelled workflow, `kill`) unwinds like Ctrl-C: the test process group is
    killed, the worktree removed, containers removed, and the memory saved atomically."""
    import signal

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def task_from_text(text: str, source: str = "cli") -> Task:
    """A task from free text: the first line is the title, the id is a content hash."""
    text = text.strip()
    if not text:
        raise ConfigError("the task is empty: give --task TEXT or --task-file FILE")
    title, _, body = text.partition("\n")
    digest = hashlib.sha1(text.encode()).hexdigest()[:10]
    return Task(id=f"{source}:{digest}", title=clip(title, 120), body=body.strip(),
                source=source)


@dataclass
class Portfolio:
    """The models, their prices, and a client to call them."""

    models: tuple[str, ...]  # candidates: `model` (the default harness) or `model@harness`
    prices: dict[str, Price | None]  # by bare model and by candidate
    llm: LLMClient
    harness: str = DEFAULT_HARNESS
    priced: frozenset[str] = frozenset()  # priced by the user or the replay file, not litellm

    def cost_hint(self, arm: str) -> float | None:
        """The expected dollars of one attempt of `arm` (None: no price known)."""
        model, harness = split_arm(arm, self.harness)
        if harness == "agent" and model not in self.priced:
            from acr_bot.bench.datasets import mean_run_costs, model_key

            measured = mean_run_costs().get(model_key(model))
            if measured is not None:
                return measured
        price = self.prices.get(model)
        return price.cost(*TYPICAL_TOKENS[harness]) if price else None


def portfolio(settings: Settings) -> Portfolio:
    replay = ReplayBook.load(settings.replay_file) if settings.replay_file else None
    bare = tuple(dict.fromkeys(split_arm(arm)[0] for arm in settings.models))
    prices = resolve_prices(bare, settings.prices, replay.prices() if replay else None)
    llm = LLMClient(timeout=settings.llm_timeout, retries=settings.llm_retries,
                    replay_file=settings.replay_file, api_bases=settings.api_bases, prices=prices,
                    max_tokens=settings.max_output_tokens)
    arms = {arm: prices.get(split_arm(arm)[0]) for arm in settings.models}
    priced = frozenset(m for m in bare if m in settings.prices or m.startswith(REPLAY_PREFIX))
    return Portfolio(tuple(settings.models), {**prices, **arms}, llm, settings.harness, priced)


def callable_models(folio: Portfolio, echo: Callable[[str], None]) -> Portfolio:
    """The portfolio without the models that cannot be called (no key, unknown provider, not
    in the replay file), found before any work; an error when none is left."""
    models = {arm: split_arm(arm)[0] for arm in folio.models}  # `model@harness` arms
    found = folio.llm.unusable(sorted(set(models.values())))
    problems = {arm: found[model] for arm, model in models.items() if model in found}
    if not problems:
        return folio
    left = tuple(m for m in folio.models if m not in problems)
    if not left:
        raise ConfigError("no model can be called: "
                          + "; ".join(f"{m}: {why}" for m, why in problems.items()))
    for model, why in problems.items():
        echo(f"warning: {model} is dropped: {why}")
    return replace(folio, models=left)


def memory_path(repo_root: Path, settings: Settings) -> Path:
    return repo_root / settings.memory_path


def build_policy(settings: Settings, memory: Memory, folio: Portfolio) -> Policy:
    fixed = settings.policy.removeprefix("fixed:")
    if settings.policy.startswith("fixed:") and fixed not in folio.models:
        raise ConfigError(f"policy {settings.policy}: {fixed!r} is not among the models "
                          f"({', '.join(folio.models)})")
    # The router chooses between (model, harness) arms: each record counts for its arm.
    records = [replace(r, model=arm_of(r.model, r.harness, settings.harness))
               for r in memory.records]
    from acr_bot.routing.outcomes import observations  # numpy: only when routing

    return make_policy(settings.policy, observations(records, memory.summaries),
                       cost_hint=folio.cost_hint, seed=settings.seed,
                       cost_weight=settings.cost_weight)


def sandbox_for(settings: Settings) -> Sandbox:
    """Where tests run: local subprocesses, or sibling containers (sandbox: docker)."""
    if settings.sandbox == "docker":
        from acr_bot.verify.docker import DockerSandbox

        return DockerSandbox(settings.sandbox_image, timeout=settings.test_timeout,
                             network_for_setup=settings.sandbox_network)
    return LocalSandbox(timeout=settings.test_timeout)


def fix(repo_path: Path, task: Task, settings: Settings, *, dry_run: bool = False,
        branch: str | None = None, echo: Callable[[str], None] = lambda line: None,
        base: str | None = None, memory_file: Path | None = None,
        memory: Memory | None = None,
        group: Callable[[str], AbstractContextManager[None]] | None = None) -> FixResult:
    """Fix `task` in the checkout at `repo_path`; append every attempt to the memory file.

    With `memory` given, records are only queued on it (`memory.pending`) and the caller
    persists them (the Action writes them to the memory branch)."""
    deadline = Deadline.in_minutes(settings.time_limit_minutes)  # from the start of the work
    repo = GitRepo(repo_path)
    task = with_repo_tag(task, repo)
    test_command = settings.test_command or detect_test_command(repo.root)
    if not test_command:
        raise ConfigError(f"no test command detected in {repo.root}: pass --test-cmd "
                          "(or set test_command in .github/acr-bot.yml)")
    if not settings.test_command:
        echo(f"test command (detected): {test_command}")
    test_command, why = parallel_command(test_command, settings.test_workers, repo.root,
                                         detect=not settings.test_command)
    if why:
        echo(f"test command: {test_command} ({why})")
    if base is None:
        _say_uncommitted(repo, settings, echo)
    owned = memory is None
    if memory is None:
        memory = Memory.load(memory_file or memory_path(repo.root, settings))
    folio = callable_models(portfolio(settings), echo)
    job = FixJob(task=task, repo=repo, models=folio.models, policy=build_policy(settings, memory,
                 folio), llm=folio.llm, sandbox=sandbox_for(settings), test_command=test_command,
                 prices=folio.prices, setup_command=settings.setup_command,
                 protected=settings.protected, test_paths=settings.test_paths,
                 max_attempts=settings.max_attempts,
                 max_cost_usd=settings.max_cost_usd, context_tokens=settings.context_tokens,
                 max_output_tokens=settings.max_output_tokens,
                 branch=branch, dry_run=dry_run, base=base, echo=echo,
                 on_record=lambda record: memory.add([record]), harness=settings.harness,
                 limits=attempt_limits(settings), trajectory_dir=settings.trajectory_dir,
                 require_reproduction=settings.require_reproduction,
                 group=group or _no_group,
                 tiers=TierOptions(settings.first_tier, deadline, echo=echo),
                 baselines=BaselineCache(cache_dir(settings) / "baselines"
                                         if settings.baseline_cache else None))
    if not dry_run:
        folio.llm.prefetch()  # overlaps litellm's import with the baseline test run
    try:
        return run_fix(job)
    finally:
        job.sandbox.close()
        # Saved even when the run is interrupted: every attempt paid for is remembered.
        if owned and memory.pending:
            memory.save()


def _no_group(title: str) -> AbstractContextManager[None]:
    return nullcontext()


def attempt_limits(settings: Settings) -> Limits:
    """The per-attempt limits from settings (the $ left and the price are set per attempt)."""
    return Limits(max_cost_usd=settings.max_cost_usd, max_output_tokens=settings.max_output_tokens,
                  steps=settings.agent_steps, command_seconds=settings.command_timeout,
                  attempt_seconds=settings.attempt_timeout,
                  observation_bytes=settings.observation_bytes,
                  context_tokens=settings.context_window)


def _say_uncommitted(repo: GitRepo, settings: Settings, echo: Callable[[str], None]) -> None:
    """The fix starts from HEAD: say so when the working tree holds changes it will not see."""
    # The bot's own files (the memory, and what sits beside it) change with every local run.
    own = Path(settings.memory_path).parent.as_posix()
    changed = [path for line in repo.status().splitlines()
               if (path := line[3:]) != settings.memory_path
               and not (own != "." and path.startswith(own + "/"))]
    if changed:
        shown = ", ".join(changed[:3]) + (", ..." if len(changed) > 3 else "")
        echo(f"note: the fix starts from HEAD ({repo.head()[:12]}); {len(changed)} uncommitted "
             f"change(s) are not part of it ({shown}): commit them first to include them")


def with_repo_tag(task: Task, repo: GitRepo) -> Task:
    """A command-line task carries the repository tag the Action gives its tasks (owner/name
    of `origin`), so both share what the memory learned about this repository."""
    slug = None if task.tags else repo.slug()
    return replace(task, tags=(slug,)) if slug else task


def repo_hints(task: Task, repo_path: Path | None) -> tuple[Task, tuple[str, ...],
                                                          tuple[str, ...]]:
    """The task with its repository tag, and the languages and declared libraries of a
    checkout (nothing added outside a git repo)."""
    from acr_bot.errors import GitError
    from acr_bot.fixing.context import repo_languages, repo_libraries

    if repo_path is None:
        return task, (), ()
    try:
        repo = GitRepo(repo_path)
    except GitError:
        return task, (), ()
    paths = repo.ls_files()
    return with_repo_tag(task, repo), repo_languages(paths), repo_libraries(repo.root, paths)


def route(task: Task, settings: Settings, memory: Memory, candidates: Sequence[str] | None = None,
          repo: Path | None = None, tried: Sequence[Tried] = ()) -> tuple[Features, Decision]:
    """The decision the policy would make for `task` now, after `tried` (no model is called)."""
    task, languages, libraries = repo_hints(task, repo)
    features = task_features(task, libraries, languages)
    folio = portfolio(settings)
    policy = build_policy(settings, memory, folio)
    decision = policy.choose(RouteTask(task.id, features), list(candidates or folio.models),
                             tried, attempts_left=max(1, settings.max_attempts - len(tried)))
    return features, decision
