"""The exceptions acr-bot raises on purpose. Each message says what went wrong and what to do."""

from __future__ import annotations


class AcrError(Exception):
    """Base class: a failure the user can act on. The CLI prints it without a traceback."""


class ConfigError(AcrError):
    """Settings are invalid: an unknown key, a bad value, a missing required setting."""


class EditError(AcrError):
    """The model's edit blocks could not be parsed or applied.

    `message` is written for the model: it is sent back on the next attempt.
    """


class EditRefused(EditError):
    """An edit targets a path the bot must never touch (outside the repo, .git, protected)."""


class LLMError(AcrError):
    """An LLM call failed after its retries: a provider fault, not a verdict on the model."""


class ReplayError(AcrError):
    """The offline replay file is missing, malformed, or has no reply for this prompt.

    Not an LLMError: a broken replay file is a setup mistake to report, not a provider fault
    to route around."""


class VerifyError(AcrError):
    """The test command could not be run at all (not found, bad sandbox)."""


class GitError(AcrError):
    """A git command failed."""


class MemoryFileError(AcrError):
    """The memory file is corrupt, truncated, or from a newer schema. It is never overwritten."""


class EventError(AcrError):
    """A GitHub event payload is malformed or missing what the bot needs."""


class GitHubError(AcrError):
    """The GitHub API failed after bounded retries."""
