"""GitHub event payloads -> what the bot should do. Pure functions: no I/O, no API calls.

Every payload is untrusted input: a missing or mistyped field is an EventError naming it,
never a KeyError deep inside the bot. Who may command the bot is not decided here: a comment
command or a review carries its author's login (`actor`), and flows.py asks the API for
that user's permission on the repository (`author_association` says nothing reliable about
it: a read-only collaborator is a COLLABORATOR).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acr_bot.errors import EventError

BOT_BRANCH_PREFIX = "acr/"
MARKER_RE = re.compile(r"<!--\s*acr-bot\s+(.*?)-->", re.DOTALL)
MAX_BODY = 60_000  # characters of issue text kept; a 5 MB body is cut, not choked on
MAX_TITLE = 256  # GitHub's own limit for titles: a PR title made from a longer one is refused


@dataclass(frozen=True)
class Issue:
    number: int
    title: str
    body: str
    url: str = ""
    labels: tuple[str, ...] = ()  # names, as the routing features read them


@dataclass(frozen=True)
class FixIssue:
    issue: Issue
    trigger: str  # "label" or "comment"
    label: str | None = None  # the trigger label, removed when done
    comment_id: int | None = None
    actor: str | None = None  # whose permission to check (a comment's author)


@dataclass(frozen=True)
class Revise:
    pr_number: int
    instructions: str
    comment_id: int | None = None
    actor: str | None = None


@dataclass(frozen=True)
class Explain:
    number: int  # issue or PR number
    is_pr: bool
    title: str
    body: str
    actor: str | None = None


@dataclass(frozen=True)
class FixCI:
    run_id: int
    head_sha: str
    head_branch: str
    workflow: str
    url: str = ""
    pulls: tuple[int, ...] = ()  # the pull requests the run belongs to (their files changed)


@dataclass(frozen=True)
class RecordVerdict:
    pr_number: int
    verdict: str  # accepted | rejected | changes_requested
    marker: Mapping[str, str]  # task / attempt ids from the PR body
    head_branch: str
    revise: bool = False
    review_body: str = ""
    actor: str | None = None  # a review's author; None for a merge or close


@dataclass(frozen=True)
class Refuse:
    number: int
    reason: str


@dataclass(frozen=True)
class Ignore:
    reason: str


Action = FixIssue | Revise | Explain | FixCI | RecordVerdict | Refuse | Ignore


def load_payload(path: Path | None) -> dict[str, Any]:
    if path is None:
        raise EventError("GITHUB_EVENT_PATH is not set: there is no event to handle")
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise EventError(f"cannot read the event payload {path}: {exc.strerror}") from None
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise EventError(f"the event payload {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EventError(f"the event payload {path} is not a JSON object")
    return data


def _get(payload: Mapping[str, Any], dotted: str, kind: type | tuple[type, ...] = str) -> Any:
    """payload["a"]["b"] with a clear error when it is missing or of the wrong type."""
    value: Any = payload
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise EventError(f"event payload has no {dotted}")
        value = value[part]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise EventError(f"event payload field {dotted} should be {_name(kind)}, "
                         f"got {type(value).__name__}")
    return value


def _name(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in kind) if isinstance(kind, tuple) else kind.__name__


def _text(value: Any, limit: int = MAX_BODY) -> str:
    """Untrusted text, bounded and safe to pass on: lone surrogates (JSON "\\ud800") cannot be
    encoded for git, HTTP or the log, and git refuses a commit message with a NUL byte."""
    text = (value if isinstance(value, str) else "")[:limit]
    return text.encode("utf-8", "replace").decode("utf-8").replace("\0", "")


def _title(value: Any) -> str:
    """A title: one line (it becomes a commit subject, a PR title, a log group name)."""
    return " ".join(re.sub(r"[\x00-\x1f\x7f-\x9f]", " ", _text(value, MAX_TITLE)).split())


def is_bot(user: Any, bot_login: str) -> bool:
    if not isinstance(user, Mapping):
        return False
    login = str(user.get("login", ""))
    return user.get("type") == "Bot" or login.endswith("[bot]") or login == bot_login


def _actor(payload: Mapping[str, Any], item: Mapping[str, Any]) -> str:
    """The login of a comment's or review's author (the event's sender, in older payloads
    that carry no user)."""
    user = item.get("user")
    if isinstance(user, Mapping) and isinstance(user.get("login"), str) and user["login"]:
        return str(user["login"])
    return str(_get(payload, "sender.login"))


def marker(body: str | None) -> dict[str, str]:
    """`<!-- acr-bot task=... attempt=... -->` fields from a bot PR body: the last marker, the
    one the bot appends (a model's explanation or an issue title above it may hold a forged
    one, to credit a verdict to another attempt or model)."""
    found = MARKER_RE.findall(body or "")
    if not found:
        return {}
    return dict(re.findall(r"(\w+)=(\S+)", found[-1]))


def _issue(payload: Mapping[str, Any]) -> Issue:
    labels = payload["issue"].get("labels")
    names = tuple(str(x["name"])[:50] for x in labels[:20] if isinstance(x, dict) and x.get("name")
                  ) if isinstance(labels, list) else ()
    return Issue(_get(payload, "issue.number", int), _title(_get(payload, "issue.title")),
                 _text(payload["issue"].get("body")), _text(payload["issue"].get("html_url")),
                 names)


def classify(event: str, payload: Mapping[str, Any], *, trigger_label: str = "acr:fix",
             prefix: str = "/acr", bot_login: str = "github-actions[bot]",
             auto_revise: bool = False) -> Action:
    """Decide what to do with one event."""
    action = payload.get("action")
    if event == "issues" and action == "labeled":
        return _labeled(payload, trigger_label)
    if event == "issue_comment" and action == "created":
        return _comment(payload, prefix, bot_login)
    if event == "workflow_run" and action == "completed":
        return _workflow_run(payload)
    if event == "pull_request" and action == "closed":
        return _closed(payload)
    if event == "pull_request_review" and action == "submitted":
        return _review(payload, auto_revise, bot_login)
    return Ignore(f"nothing to do for {event}" + (f".{action}" if action else ""))


def _labeled(payload: Mapping[str, Any], trigger: str) -> Action:
    label = _get(payload, "label.name")
    if label != trigger:
        return Ignore(f"label {label!r} is not the trigger label {trigger!r}")
    issue = _get(payload, "issue", Mapping)
    if issue.get("pull_request"):
        return Ignore("the trigger label is on a pull request, not an issue")
    return FixIssue(_issue(payload), "label", label=label)


def _comment(payload: Mapping[str, Any], prefix: str, bot_login: str) -> Action:
    comment = _get(payload, "comment", Mapping)
    body = _text(comment.get("body")).strip()
    if is_bot(comment.get("user"), bot_login):
        return Ignore("comment by a bot (the bot never answers bots, itself included)")
    # "/acr fix", "/acr" or "/acr\nrevise ...", but not "/acrobat" (another bot's command).
    if not body.startswith(prefix) or body[len(prefix):len(prefix) + 1].strip():
        return Ignore(f"comment is not a {prefix} command")
    number = _get(payload, "issue.number", int)
    actor = _actor(payload, comment)
    words = body[len(prefix):].split(None, 1)  # any whitespace, newlines included
    verb, rest = (words + ["", ""])[:2]
    on_pr = bool(_get(payload, "issue", Mapping).get("pull_request"))
    comment_id = comment.get("id") if isinstance(comment.get("id"), int) else None
    if verb == "fix" and not on_pr:
        return FixIssue(_issue(payload), "comment", comment_id=comment_id, actor=actor)
    if verb == "revise" and on_pr:
        return Revise(number, rest.strip() or "Address the review comments.", comment_id,
                      actor=actor)
    if verb == "explain":
        issue = _issue(payload)
        return Explain(number, on_pr, issue.title, issue.body, actor=actor)
    usage = f"{prefix} fix (on an issue), {prefix} revise <instructions> (on a bot PR), " \
            f"{prefix} explain"
    return Refuse(number, f"unknown command {verb!r} here; use {usage}")


def _workflow_run(payload: Mapping[str, Any]) -> Action:
    run = _get(payload, "workflow_run", Mapping)
    conclusion = run.get("conclusion")
    if conclusion != "failure":
        return Ignore(f"workflow run concluded {conclusion!r}, not 'failure'")
    repo = _get(payload, "repository.full_name")
    head = run.get("head_repository")
    if head is None:
        return Ignore("the failing run's head repository is gone (a deleted fork)")
    head_repo = _get(payload, "workflow_run.head_repository.full_name")
    if head_repo != repo:
        # A fork's code must never run with this repository's token.
        return Ignore(f"the failing run is on a fork ({head_repo}); forks are never checked out")
    sha = _get(payload, "workflow_run.head_sha")
    if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", sha):
        # It is passed to `git fetch`: "--upload-pack=..." would run a command.
        raise EventError(f"event payload field workflow_run.head_sha is not a commit sha: "
                         f"{sha[:80]!r}")
    listed = run.get("pull_requests")
    pulls = tuple(p["number"] for p in (listed if isinstance(listed, list) else ())
                  if isinstance(p, Mapping) and type(p.get("number")) is int)
    return FixCI(_get(payload, "workflow_run.id", int), sha,
                 _get(payload, "workflow_run.head_branch"),
                 _title(run.get("name")) or _title(run.get("path")) or "CI",
                 _text(run.get("html_url")), pulls)


def _bot_pr(payload: Mapping[str, Any]) -> tuple[int, str, dict[str, str]] | None:
    number = _get(payload, "pull_request.number", int)
    head = _get(payload, "pull_request.head.ref")
    fields = marker(_text(payload["pull_request"].get("body")))
    if not head.startswith(BOT_BRANCH_PREFIX) or not fields.get("task"):
        return None
    # A fork's PR chooses its own branch name and body: a copied marker must not let an
    # outsider record verdicts (or trigger revisions) for the bot's attempts.
    head_repo = payload["pull_request"]["head"].get("repo")
    if not isinstance(head_repo, Mapping) or head_repo.get("full_name") != _get(
            payload, "repository.full_name"):
        return None
    return number, head, fields


def _closed(payload: Mapping[str, Any]) -> Action:
    found = _bot_pr(payload)
    if found is None:
        return Ignore("closed pull request was not opened by acr-bot")
    number, head, fields = found
    merged = payload["pull_request"].get("merged") is True
    return RecordVerdict(number, "accepted" if merged else "rejected", fields, head)


def _review(payload: Mapping[str, Any], auto_revise: bool, bot_login: str) -> Action:
    state = _get(payload, "review.state")
    if state.lower() != "changes_requested":
        return Ignore(f"review state {state!r} needs no action")
    found = _bot_pr(payload)
    if found is None:
        return Ignore("reviewed pull request was not opened by acr-bot")
    number, head, fields = found
    review = payload["review"]
    if is_bot(review.get("user"), bot_login):
        return Ignore("review by a bot (the bot never answers bots, itself included)")
    # Whether the reviewer may bias routing is the API's answer (flows.py), not the payload's.
    return RecordVerdict(number, "changes_requested", fields, head, revise=auto_revise,
                         review_body=_text(review.get("body")),
                         actor=_actor(payload, review))
