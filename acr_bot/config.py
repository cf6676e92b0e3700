"""Settings: command line > action inputs > `.github/acr-bot.yml` > defaults.

This is the only module that reads the process environment. Everything else gets a `Settings`.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from acr_bot.domain import Price
from acr_bot.errors import ConfigError
from acr_bot.routing.registry import FIXED, NAMES

CONFIG_FILE = ".github/acr-bot.yml"
DEFAULT_MODELS = ("gpt-5-mini", "claude-sonnet-4-6", "gpt-5.4")
DEFAULT_PROTECTED = (".github/**",)
POLICIES = NAMES  # defined in routing/registry.py, the one place a policy is added
# Repository roles, lowest first (GitHub's collaborator permission endpoint, `role_name`).
ROLES = ("read", "triage", "write", "maintain", "admin")


@dataclass(frozen=True)
class Settings:
    models: tuple[str, ...] = DEFAULT_MODELS
    prices: Mapping[str, Price] = field(default_factory=dict)  # per-model overrides
    api_bases: Mapping[str, str] = field(default_factory=dict)
    test_command: str | None = None  # None: detected from the repo
    setup_command: str | None = None
    protected_paths: tuple[str, ...] = ()  # added to DEFAULT_PROTECTED
    test_paths: tuple[str, ...] = ()  # added to verify.patch.DEFAULT_TEST_PATHS
    max_attempts: int = 3
    max_cost_usd: float = 2.00
    daily_max_cost_usd: float | None = None
    memory_path: str = ".acr/memory.json"
    policy: str = "learned"
    cost_weight: float = 1.0  # dollars that weigh as much as one solved task
    seed: int = 0
    test_timeout: float = 600.0
    llm_timeout: float = 300.0
    llm_retries: int = 2
    max_output_tokens: int = 8_192  # per call: bounds the worst case the dollar cap checks
    context_tokens: int = 24_000
    sandbox: str = "local"
    sandbox_image: str = "python:3.12-slim"
    sandbox_network: bool = False  # network for the setup step only
    replay_file: Path | None = None
    # How each attempt works (fixing/harness.py) and the agent's limits
    harness: str = "agent"  # agent: a shell loop; edit: one prompt with SEARCH/REPLACE edits
    # Agent limits: where each default comes from is in README.md, "Limits of an agent attempt".
    agent_steps: int = 250  # model calls per agent attempt (mini-SWE-agent's SWE-bench config)
    command_timeout: float = 120.0  # seconds per agent command (its process group is killed)
    attempt_timeout: float = 3_600.0  # seconds per agent attempt
    observation_bytes: int = 10_000  # command output the agent sees per step (head + tail)
    context_window: int = 128_000  # tokens; older observations are shortened before this
    trajectory_dir: Path | None = None  # one JSON transcript per attempt
    # Large repositories (verify/tiers.py): the verdict's first tier, workers, cache, time
    first_tier: bool = True  # the tests importing the change first; the full suite after
    test_workers: str | None = None  # pytest-xdist -n: "auto", a number, "off"; None: detected
    baseline_cache: bool = True  # the baseline once per base commit and test command
    cache_dir: Path | None = None  # None: $XDG_CACHE_HOME/acr-bot (~/.cache/acr-bot)
    time_limit_minutes: float | None = None  # from the bot's start: under the job's timeout
    # When no test fails before the change, a fix must bring a test that fails before it and
    # passes after it; off, such a change is published as a draft marked "not reproduced".
    require_reproduction: bool = True
    # GitHub Action settings
    trigger_label: str = "acr:fix"
    command_prefix: str = "/acr"
    memory_branch: str = "acr-memory"
    memory_repo: str | None = None
    draft: bool = True
    auto_revise: bool = False
    # Roles whose comment commands and review verdicts count (asked from the API per actor).
    allowed_permission: tuple[str, ...] = ("write", "maintain", "admin")

    @property
    def protected(self) -> tuple[str, ...]:
        """Protected globs: the defaults, the user's, and always the memory file (edits there
        would bias routing)."""
        globs = (*DEFAULT_PROTECTED, *self.protected_paths, self.memory_path)
        return tuple(dict.fromkeys(globs))


# --- parsers: each turns a raw value (YAML, input string, CLI) into the field's type ---------


def _str(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _positive_int(value: Any) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(f"must be at least 1, got {number}")
    return number


def _non_negative(value: Any) -> float:
    number = float(value)
    if number < 0:
        raise ValueError(f"must not be negative, got {number}")
    return number


def _optional_float(value: Any) -> float | None:
    return None if _str(value) is None else _non_negative(value)


def _list(value: Any) -> tuple[str, ...]:
    """A YAML list, or a string split on commas and newlines (action inputs)."""
    if isinstance(value, (list, tuple)):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(p.strip() for p in str(value).replace("\n", ",").split(",") if p.strip())


def _roles(value: Any) -> tuple[str, ...]:
    roles = _list(value)
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise ValueError(f"expected roles among {', '.join(ROLES)}, got {value!r}")
    return roles


def _workers(value: Any) -> str | None:
    """pytest-xdist's -n: auto, logical, a number of workers, or off (no -n)."""
    text = str(value).strip().lower() if value is not None else ""
    if not text:
        return None
    if text in ("auto", "logical", "off") or (text.isdigit() and int(text) >= 1):
        return text
    raise ValueError(f"expected auto, logical, off or a number of workers, got {value!r}")


def _choice(*allowed: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip()
        if text not in allowed and not text.startswith(FIXED):
            raise ValueError(f"expected one of {', '.join(allowed)}, got {text!r}")
        return text

    return parse


PARSERS: dict[str, Callable[[Any], Any]] = {
    "test_command": _str, "setup_command": _str, "protected_paths": _list, "test_paths": _list,
    "max_attempts": _positive_int, "max_cost_usd": _non_negative,
    "daily_max_cost_usd": _optional_float, "memory_path": str, "policy": _choice(*POLICIES),
    "cost_weight": _non_negative, "seed": int, "test_timeout": _non_negative,
    "llm_timeout": _non_negative, "llm_retries": int, "context_tokens": _positive_int,
    "max_output_tokens": _positive_int,
    "sandbox": _choice("local", "docker"), "sandbox_image": str, "sandbox_network": _bool,
    "replay_file": lambda v: Path(v) if _str(v) else None,
    "harness": _choice("agent", "edit"), "agent_steps": _positive_int,
    "command_timeout": _non_negative, "attempt_timeout": _non_negative,
    "observation_bytes": _positive_int, "context_window": _positive_int,
    "trajectory_dir": lambda v: Path(v) if _str(v) else None,
    "first_tier": _bool, "test_workers": _workers, "baseline_cache": _bool,
    "cache_dir": lambda v: Path(v).expanduser() if _str(v) else None,
    "time_limit_minutes": _optional_float,
    "require_reproduction": _bool,
    "trigger_label": str, "command_prefix": str, "memory_branch": str, "memory_repo": _str,
    "draft": _bool, "auto_revise": _bool, "allowed_permission": _roles,
}


def _parse_models(value: Any, origin: str) -> dict[str, Any]:
    """`models`: a list of ids, or of {name, input_cost_per_token, output_cost_per_token, api_base}."""
    items = value if isinstance(value, list) else list(_list(value))
    names, prices, bases = [], {}, {}
    for item in items:
        if isinstance(item, str):
            names.append(item.strip())
            continue
        if not isinstance(item, dict) or not item.get("name"):
            raise ConfigError(f"{origin}: each entry of models must be a model id or a mapping "
                              f"with a name, got {item!r}")
        _check_keys(item, {"name", "input_cost_per_token", "output_cost_per_token", "api_base"},
                    f"{origin}: models entry {item['name']!r}")
        name = str(item["name"])
        names.append(name)
        if "input_cost_per_token" in item or "output_cost_per_token" in item:
            try:
                prices[name] = Price(_non_negative(item.get("input_cost_per_token", 0.0)),
                                     _non_negative(item.get("output_cost_per_token", 0.0)))
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{origin}: models entry {name!r}: prices: {exc}") from None
        if item.get("api_base"):
            bases[name] = str(item["api_base"])
    if not names:
        raise ConfigError(f"{origin}: models is empty; name at least one litellm model id")
    return {"models": tuple(names), "prices": prices, "api_bases": bases}


def _check_keys(data: Mapping[str, Any], known: set[str], origin: str) -> None:
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{origin}: unknown setting {key!r}{hint}")


def _apply(raw: Mapping[str, Any], origin: str) -> dict[str, Any]:
    """Turn raw key/values from one source into typed Settings fields."""
    known = set(PARSERS) | {"models"}
    normal = {str(k).replace("-", "_"): v for k, v in raw.items()}
    _check_keys(normal, known, origin)
    out: dict[str, Any] = {}
    for key, value in normal.items():
        if key == "models":
            out.update(_parse_models(value, origin))
            continue
        try:
            out[key] = PARSERS[key](value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{origin}: {key}: {exc}") from None
    return out


def read_config_file(repo: Path) -> dict[str, Any]:
    path = repo / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    return _apply(data, str(path))


def _yaml_problem(exc: Exception) -> str:
    """PyYAML's multi-line message as one line: what is wrong, and where (line, column)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return " ".join(f"{problem}{where}".split())


def action_inputs(env: Mapping[str, str]) -> dict[str, Any]:
    """Settings given as GitHub Action inputs (INPUT_<NAME> variables; empty means unset)."""
    names = set(PARSERS) | {"models"}  # others (github-token, bot-login) are context
    raw = {}
    for key, value in env.items():
        if key.startswith("INPUT_") and value.strip():
            name = key[len("INPUT_"):].lower().replace("-", "_")
            if name in names:
                raw[name] = value
    return _apply(raw, "action inputs")


_MAPS = ("prices", "api_bases")


def load_settings(repo: Path, cli: Mapping[str, Any] | None = None,
                  env: Mapping[str, str] | None = None) -> Settings:
    """Merge every source; later sources win. `cli` holds only options the user gave."""
    env = os.environ if env is None else env
    sources = [read_config_file(repo), action_inputs(env)]
    if env.get("ACR_REPLAY_FILE"):
        sources.append({"replay_file": Path(env["ACR_REPLAY_FILE"])})
    sources.append(_apply({k: v for k, v in (cli or {}).items() if v is not None}, "command line"))
    merged: dict[str, Any] = {}
    for source in sources:
        for key, value in source.items():
            # Price and api_base overrides accumulate: naming models on the command line must
            # not drop the prices the config file gives them.
            merged[key] = {**merged.get(key, {}), **value} if key in _MAPS else value
    settings = replace(Settings(), **merged)
    if settings.memory_path.startswith("/") or ".." in Path(settings.memory_path).parts:
        raise ConfigError(f"memory_path must be relative to the repo, got {settings.memory_path!r}")
    return settings


def cache_dir(settings: Settings, env: Mapping[str, str] | None = None) -> Path:
    """Where acr-bot keeps what it may compute again (baselines): the setting, else the
    user's cache folder."""
    if settings.cache_dir is not None:
        return settings.cache_dir
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "acr-bot"


def environment() -> Mapping[str, str]:
    """The process environment, for the action entry point (it reads the runner context)."""
    return os.environ


def setting_names() -> list[str]:
    return [f.name for f in fields(Settings)]


@dataclass(frozen=True)
class ActionContext:
    """What the GitHub Actions runner tells the action through its environment."""

    event_name: str
    event_path: Path | None
    repository: str  # owner/name
    workspace: Path
    api_url: str = "https://api.github.com"
    server_url: str = "https://github.com"
    token: str = ""
    ref: str = ""
    run_id: str = ""
    actor: str = ""
    step_summary: Path | None = None
    output: Path | None = None
    bot_login: str = "github-actions[bot]"

    @property
    def owner(self) -> str:
        return self.repository.split("/", 1)[0]


def action_context(env: Mapping[str, str] | None = None) -> ActionContext:
    """Read the runner's variables; a missing one that the action needs is a ConfigError."""
    env = os.environ if env is None else env
    missing = [n for n in ("GITHUB_EVENT_NAME", "GITHUB_REPOSITORY") if not env.get(n)]
    if missing:
        raise ConfigError(f"not running inside GitHub Actions: {', '.join(missing)} not set "
                          "(use `acr-bot fix` on the command line instead)")

    def path(name: str) -> Path | None:
        return Path(env[name]) if env.get(name) else None

    token = env.get("INPUT_GITHUB-TOKEN") or env.get("INPUT_GITHUB_TOKEN") or env.get(
        "GITHUB_TOKEN", "")
    return ActionContext(
        event_name=env["GITHUB_EVENT_NAME"], event_path=path("GITHUB_EVENT_PATH"),
        repository=env["GITHUB_REPOSITORY"], workspace=Path(env.get("GITHUB_WORKSPACE", ".")),
        api_url=env.get("GITHUB_API_URL", "https://api.github.com").rstrip("/"),
        server_url=env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/"),
        token=token.strip(), ref=env.get("GITHUB_REF", ""), run_id=env.get("GITHUB_RUN_ID", ""),
        actor=env.get("GITHUB_ACTOR", ""), step_summary=path("GITHUB_STEP_SUMMARY"),
        output=path("GITHUB_OUTPUT"),
        bot_login=env.get("INPUT_BOT-LOGIN") or env.get("ACR_BOT_LOGIN") or "github-actions[bot]")


# --- YAML for other modules (this is the only yaml importer) ---------------------------------


def load_yaml(path: Path) -> Any:
    """A YAML file's data; a file that cannot be read or parsed is a ConfigError."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read it as YAML: {exc}") from None


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (a copied `run:` script) as `|` blocks, readable as written."""


_Dumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|" if "\n" in text.strip() else None))


def dump_yaml(data: Any) -> str:
    """Block-style YAML, keys in the given order, long lines kept whole."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     width=1000, allow_unicode=True)


class _WorkflowLoader(yaml.SafeLoader):
    """YAML as GitHub reads workflows (1.2 core): only true/false are booleans.

    PyYAML follows YAML 1.1, where `on`, `yes`, `off` are booleans too: the trigger key `on`
    would become True and `GO111MODULE: on` would be copied as `true`.
    """


_WorkflowLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_WorkflowLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"))


def load_workflow(path: Path) -> Any:
    """A GitHub workflow file's data (YAML 1.2 booleans); a bad file is a ConfigError."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_WorkflowLoader)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read it as YAML: {exc}") from None
