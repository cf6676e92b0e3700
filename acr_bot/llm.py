"""LLM calls through litellm, and the offline `replay/<name>` provider.

This is the only module that imports litellm, and it does so lazily: importing litellm costs
about three seconds, so commands that make no LLM call never pay for it. Prices come from
litellm's own price table, read as a JSON file so routing can price models without the import.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from acr_bot.domain import Price, Reply
from acr_bot.errors import LLMError, ReplayError

log = logging.getLogger(__name__)

REPLAY_PREFIX = "replay/"
# Faults worth retrying on the same model; anything else moves on at once.
TRANSIENT = ("RateLimitError", "Timeout", "APIConnectionError", "InternalServerError",
             "ServiceUnavailableError", "BadGatewayError")
CHARS_PER_TOKEN = 4  # rough size estimate, used only before a call (budgets, context)
# Providers whose credentials can come from the machine (instance roles, gcloud login) rather
# than environment variables: litellm's key check cannot see those, so it is not applied.
AMBIENT_CREDENTIALS = frozenset({"bedrock", "sagemaker", "vertex_ai", "vertex_ai_beta"})


# --- prices ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _litellm_price_table() -> dict[str, Any]:
    """litellm's bundled price table, read without importing litellm."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / "model_prices_and_context_window_backup.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        log.warning("could not read litellm's price table at %s", path)
        return {}


def table_price(model: str) -> Price | None:
    """The price litellm lists for `model` (with or without its provider prefix)."""
    table = _litellm_price_table()
    for key in (model, model.split("/", 1)[-1]):
        entry = table.get(key)
        if entry and "input_cost_per_token" in entry:
            return Price(float(entry["input_cost_per_token"]),
                         float(entry.get("output_cost_per_token", 0.0)))
    return None


def table_context_window(model: str) -> int | None:
    """The input tokens litellm lists for `model` (its context window), or None."""
    table = _litellm_price_table()
    for key in (model, model.split("/", 1)[-1]):
        tokens = (table.get(key) or {}).get("max_input_tokens")
        if isinstance(tokens, int) and tokens > 0:
            return tokens
    return None


def resolve_prices(models: Sequence[str], overrides: Mapping[str, Price],
                   replay: Mapping[str, Price] | None = None) -> dict[str, Price | None]:
    """Price every model: config override, then the replay file, then litellm's table.

    A model with no known price maps to None and gets a warning: never a silent zero.
    """
    prices: dict[str, Price | None] = {}
    for model in models:
        price = overrides.get(model) or (replay or {}).get(model) or table_price(model)
        if price is None:
            log.warning("no price known for model %r: set one under models in "
                        ".github/acr-bot.yml (input_cost_per_token, output_cost_per_token); "
                        "the dollar cap cannot account for it in advance", model)
        prices[model] = price
    return prices


def estimate_tokens(text: str) -> int:
    return max(1, len(text) // CHARS_PER_TOKEN)


# --- the replay provider --------------------------------------------------------------------


@dataclass
class ReplayBook:
    """Scripted replies per model, loaded from a replay JSON file."""

    path: Path
    models: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, path: Path) -> ReplayBook:
        try:
            data = json.loads(Path(path).read_text())
        except OSError as exc:
            raise ReplayError(f"cannot read replay file {path}: {exc.strerror}") from None
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
            raise ReplayError(f"replay file {path} is not valid JSON: {exc}") from None
        models = data.get("models") if isinstance(data, dict) else None
        if not isinstance(models, dict) or not models:
            raise ReplayError(f"replay file {path} needs a non-empty \"models\" object")
        for name, spec in models.items():
            if not isinstance(spec, dict) or not isinstance(spec.get("replies"), list):
                raise ReplayError(f"replay file {path}: model {name!r} needs a \"replies\" list")
            for key in ("input_cost_per_token", "output_cost_per_token"):
                if key in spec and not _is_number(spec[key]):
                    raise ReplayError(f"replay file {path}: model {name!r}: {key} must be a "
                                      f"number, got {spec[key]!r}")
            for number, reply in enumerate(spec["replies"], 1):
                problem = _reply_problem(reply)
                if problem:
                    raise ReplayError(f"replay file {path}: model {name!r}, reply {number}: "
                                      f"{problem}")
        return cls(Path(path), models)

    def prices(self) -> dict[str, Price]:
        out = {}
        for name, spec in self.models.items():
            if "input_cost_per_token" in spec:
                out[REPLAY_PREFIX + name] = Price(float(spec["input_cost_per_token"]),
                                                  float(spec.get("output_cost_per_token", 0.0)))
        return out

    def answer(self, name: str, prompt: str) -> dict[str, Any]:
        """The first reply whose `match` regex is found in `prompt`, or that has no match."""
        spec = self.models.get(name)
        if spec is None:
            raise ReplayError(f"replay file {self.path} has no model {name!r} "
                              f"(it has: {', '.join(sorted(self.models))})")
        for reply in spec["replies"]:
            pattern = reply.get("match")
            if pattern is None or re.search(pattern, prompt):
                if reply.get("times") is not None:  # a reply that is used up after N calls
                    if reply["times"] <= 0:
                        continue
                    reply["times"] -= 1
                return reply
        raise ReplayError(f"replay model {name!r} in {self.path} has no reply matching "
                          f"this prompt (starts: {prompt[:80]!r})")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# What each key of a scripted reply must hold (checked at load, so a typo is one clear error
# instead of a crash in the middle of a fix run).
_REPLY_KEYS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "match": (lambda v: isinstance(v, str), "a regular expression string"),
    "text": (lambda v: isinstance(v, str), "a string"),
    "fault": (lambda v: isinstance(v, str), "a string"),
    "times": (lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"),
    "delay": (lambda v: _is_number(v) and v >= 0, "a number of seconds"),
    "prompt_tokens": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
                      "a whole number"),
    "completion_tokens": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
                          "a whole number"),
}


def _reply_problem(reply: Any) -> str | None:
    """Why a scripted reply is malformed, or None."""
    if not isinstance(reply, dict):
        return f"must be an object, got {reply!r:.60}"
    for key, (ok, what) in _REPLY_KEYS.items():
        if reply.get(key) is not None and not ok(reply[key]):
            return f"{key} must be {what}, got {reply[key]!r:.60}"
    if isinstance(reply.get("match"), str):
        try:
            re.compile(reply["match"])
        except re.error as exc:
            return f"match is not a valid regular expression ({exc})"
    return None


def _litellm() -> Any:
    """Import litellm on first use, in offline mode unless the user chose otherwise.

    Offline mode stops litellm from downloading its price map and tokenizers at import: the
    bot prices calls from the table bundled with the installed litellm (the same one `route`
    reads), and a runner should not fetch unpinned files from the internet.
    """
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    import litellm

    return litellm


def _make_handler(book: ReplayBook) -> Any:
    """A litellm CustomLLM that answers from `book`; built lazily (it subclasses litellm)."""
    from litellm import CustomLLM
    from litellm.types.utils import Usage

    class ReplayLLM(CustomLLM):
        def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
            reply = book.answer(model, _last_user_text(messages))
            if reply.get("delay"):  # a slow provider, for timeout and cancellation tests
                time.sleep(float(reply["delay"]))
            _raise_fault(reply.get("fault"), model)
            response = kwargs["model_response"]
            response.choices[0].message.content = reply.get("text", "")
            response.model = REPLAY_PREFIX + model
            prompt = reply.get("prompt_tokens") or _count_tokens(messages)
            completion = reply.get("completion_tokens") or _count_tokens(
                [{"role": "assistant", "content": reply.get("text", "")}])
            limit = (kwargs.get("optional_params") or {}).get("max_tokens")
            if limit:  # a real provider stops (and bills) at max_tokens
                completion = min(int(completion), int(limit))
            response.usage = Usage(prompt_tokens=prompt, completion_tokens=completion,
                                   total_tokens=prompt + completion)
            return response

        async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
            return self.completion(model, messages, *args, **kwargs)

    return ReplayLLM()


def _last_user_text(messages: list) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def _count_tokens(messages: list) -> int:
    litellm = _litellm()
    return int(litellm.token_counter(model="gpt-4o", messages=messages))


def _raise_fault(fault: str | None, model: str) -> None:
    """Let a replay file script provider faults, so fault handling is tested offline."""
    if not fault:
        return
    litellm = _litellm()
    kinds = {
        "rate_limit": litellm.exceptions.RateLimitError,
        "timeout": litellm.exceptions.Timeout,
        "server_error": litellm.exceptions.InternalServerError,
        "context_window": litellm.exceptions.ContextWindowExceededError,
    }
    if fault not in kinds:
        raise ReplayError(f"unknown scripted fault {fault!r} (use one of {sorted(kinds)})")
    raise kinds[fault](message=f"scripted {fault}", llm_provider="replay", model=model)


# --- the client -----------------------------------------------------------------------------


class LLMClient:
    """Calls models through litellm with a timeout, bounded retries and real cost accounting."""

    def __init__(self, *, timeout: float = 300, retries: int = 2, backoff: float = 2.0,
                 replay_file: Path | None = None, api_bases: Mapping[str, str] | None = None,
                 prices: Mapping[str, Price | None] | None = None,
                 max_tokens: int | None = None) -> None:
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.api_bases = dict(api_bases or {})
        self.prices = dict(prices or {})
        self.max_tokens = max_tokens
        self.replay = ReplayBook.load(replay_file) if replay_file else None
        self._ready = False
        self._importer: threading.Thread | None = None

    def prefetch(self) -> None:
        """Import litellm in the background (about 3 s) while other work, such as the
        baseline test run, goes on; the first call waits for it."""
        if self._importer is None and not self._ready:
            self._importer = threading.Thread(target=_litellm, name="litellm-import",
                                              daemon=True)
            self._importer.start()

    def _setup(self) -> Any:
        if self._importer is not None:
            self._importer.join()
        litellm = _litellm()

        if not self._ready:
            litellm.suppress_debug_info = True
            litellm.drop_params = True
            logging.getLogger("LiteLLM").setLevel(logging.ERROR)
            if self.replay is not None:
                litellm.custom_provider_map = [
                    {"provider": "replay", "custom_handler": _make_handler(self.replay)}]
            self._register_prices(litellm)
            self._ready = True
        return litellm

    def _register_prices(self, litellm: Any) -> None:
        """Make litellm's own cost accounting use replay and override prices."""
        entries = {}
        for model, price in self.prices.items():
            if price is not None and (model.startswith(REPLAY_PREFIX) or table_price(model) != price):
                entries[model] = {"input_cost_per_token": price.input_per_token,
                                  "output_cost_per_token": price.output_per_token,
                                  "litellm_provider": model.split("/", 1)[0]
                                  if "/" in model else "openai", "mode": "chat"}
        if entries:
            litellm.register_model(entries)

    def unusable(self, models: Sequence[str]) -> dict[str, str]:
        """Why each model that cannot be called cannot be, found without calling any: a replay
        model needs the replay file and its name in it; any other model needs a provider
        litellm knows and the environment variables litellm says it reads."""
        out = {}
        for model in models:
            if model.startswith(REPLAY_PREFIX):
                problem = self._replay_problem(model.removeprefix(REPLAY_PREFIX))
            else:
                problem = _provider_problem(self._setup(), model, self.api_bases.get(model))
            if problem:
                out[model] = problem
        return out

    def _replay_problem(self, name: str) -> str | None:
        if self.replay is None:
            return "a replay model needs a replay file (--replay-file or replay_file)"
        if name not in self.replay.models:
            return (f"not in the replay file {self.replay.path} "
                    f"(it has: {', '.join(sorted(self.replay.models))})")
        return None

    def complete(self, model: str, messages: list[dict[str, str]]) -> Reply:
        """One completion, retried on transient faults; raises LLMError when it gives up."""
        litellm = self._setup()
        started = time.monotonic()
        for attempt in range(self.retries + 1):
            try:
                response = litellm.completion(model=model, messages=messages,
                                              timeout=self.timeout,
                                              api_base=self.api_bases.get(model),
                                              max_tokens=self.max_tokens)
            except Exception as exc:  # noqa: BLE001 - litellm raises many provider types
                _reraise_replay_error(exc)
                name = type(exc).__name__
                if name not in TRANSIENT or attempt == self.retries:
                    raise LLMError(f"{model}: {name}: {_one_line(exc)}") from None
                delay = self.backoff * (2 ** attempt)
                log.warning("%s: %s, retrying in %.1f s", model, name, delay)
                time.sleep(delay)
                continue
            # Outside the try: an empty reply is already an LLMError that names the model.
            return self._reply(model, response, time.monotonic() - started)
        raise AssertionError("unreachable")

    def _reply(self, model: str, response: Any, seconds: float) -> Reply:
        text = (response.choices[0].message.content or "") if response.choices else ""
        if not text.strip():
            raise LLMError(f"{model}: the reply was empty")
        usage = getattr(response, "usage", None)
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion = int(getattr(usage, "completion_tokens", 0) or 0)
        cost = (getattr(response, "_hidden_params", None) or {}).get("response_cost")
        if cost is None:
            price = self.prices.get(model)
            cost = price.cost(prompt, completion) if price else 0.0
            if price is None:
                log.warning("%s: no cost reported and no price known; counting $0", model)
        return Reply(model=model, text=text, prompt_tokens=prompt, completion_tokens=completion,
                     cost_usd=float(cost), seconds=seconds)


def _provider_problem(litellm: Any, model: str, api_base: str | None) -> str | None:
    try:
        provider = litellm.get_llm_provider(model, api_base=api_base)[1]
    except Exception:  # noqa: BLE001 - litellm raises a BadRequestError with a long help text
        return ("litellm knows no provider for this model id; write it as provider/model, "
                "e.g. openai/gpt-4o-mini or anthropic/claude-sonnet-4-5")
    if provider in AMBIENT_CREDENTIALS:
        return None
    env = litellm.validate_environment(model, api_base=api_base)
    if env.get("keys_in_environment", True):
        return None
    missing = ", ".join(env.get("missing_keys") or ()) or "its credentials"
    return f"the {provider} provider needs {missing} in the environment, and it is not set"


def _reraise_replay_error(exc: BaseException) -> None:
    """litellm wraps errors raised inside a custom provider; a broken replay file is not a fault."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ReplayError):
            raise ReplayError(str(seen)) from None
        seen = seen.__cause__ or seen.__context__


def _one_line(exc: Exception) -> str:
    """The provider's whole message on one line: a cut one hides what to do (the env var)."""
    return " ".join(str(exc).split())
