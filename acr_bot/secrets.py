"""Which values are credentials: one set of rules for the environment the bot passes on, the
log masks, and the task text the router and memory keep."""

from __future__ import annotations

import re
from collections.abc import Mapping

# Matched against variable NAMES, case-insensitively. Broad on purpose: a test suite never needs
# a credential of the bot's, and a leaked token is worse than a skipped integration test.
SECRET_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"(?:_TOKEN|_KEY|_SECRETS?|_PASSWORD|_PASS|_CREDENTIALS|_API_KEY)$", re.IGNORECASE),
    re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD", re.IGNORECASE),
    re.compile(r"^(?:GITHUB_TOKEN|GH_TOKEN|GH_ENTERPRISE_TOKEN|GITHUB_PAT)$", re.IGNORECASE),
    # Actions runtime tokens, Action inputs (they include the github-token), our own settings.
    re.compile(r"^(?:ACTIONS_|INPUT_|ACR_)", re.IGNORECASE),
)
# Well-known token formats, found anywhere in a value or a text (so a token embedded in
# https://x-access-token:ghs_...@github.com is found too): GitHub, OpenAI-style, Slack, AWS keys,
# JWTs, bearer tokens, and the password part of URL credentials.
TOKEN_RE = re.compile(
    r"\b(?:gh[opsur]_[A-Za-z0-9]{16,}|github_pat_\w{16,}|sk-[\w-]{16,}|xox[abprs]-[\w-]{10,}"
    r"|AKIA[0-9A-Z]{16}|eyJ[\w-]{10,}\.[\w.-]+)|(?i:\bbearer\s+)[\w.+/=-]{8,}"
    r"|(?<=://)[^/\s:@]+:[^/\s@]+(?=@)")
# `name = value` assignments of credentials quoted in free text (issue bodies, logs).
ASSIGNED_SECRET_RE = re.compile(
    r"(?i)\b(\w*(?:key|token|secret|password|passwd|pwd)s?)(\s*[=:]\s*)[\"']?[^\s\"']+")
# Matched against whole VALUES: a value that starts like a token is one, however short.
SECRET_VALUE_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"^\s*(?:gh[opsur]_|github_pat_|sk-|xox[abprs]-|AKIA)"),
    TOKEN_RE,
)


def is_secret(name: str, value: str) -> bool:
    """Whether an environment variable may carry a credential, by its name or its value."""
    return any(p.search(name) for p in SECRET_PATTERNS) or any(
        p.search(value) for p in SECRET_VALUE_PATTERNS
    )


def is_credential(name: str, value: str) -> bool:
    """Narrower than `is_secret`: what to mask in logs. Action inputs and ACR_ settings are
    kept from test commands, but masking them (the test command!) would blind the log."""
    named = any(p.search(name) for p in SECRET_PATTERNS[:3])
    return named or any(p.search(value) for p in SECRET_VALUE_PATTERNS)


def scrub_env(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of `env` without the variables that may carry credentials."""
    return {name: value for name, value in env.items() if not is_secret(name, value)}


def strip_secrets(text: str) -> str:
    """`text` with every credential it quotes cut out (assignments keep their name)."""
    return TOKEN_RE.sub(" ", ASSIGNED_SECRET_RE.sub(r"\1\2 ", text))
