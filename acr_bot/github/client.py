"""The GitHub REST API: the only module that imports PyGithub (and requests, for log downloads).

Every method names the endpoint it calls. Retries are bounded and never repeat a POST: a 5xx
on "create pull request" may still have created it, so creation looks before it leaps and
looks again after a failure instead of blindly retrying.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar

from acr_bot.errors import GitHubError

log = logging.getLogger(__name__)
T = TypeVar("T")
# Safe to repeat: reads, and writes that set state rather than add to it.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
MAX_LOG_BYTES = 5_000_000  # of each job log: its last 5 MB
ROLES = frozenset({"read", "triage", "write", "maintain", "admin"})
LOGIN_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?")


@dataclass(frozen=True)
class Pull:
    number: int
    url: str
    head: str
    base: str
    title: str
    body: str
    head_sha: str = ""
    head_repo: str = ""
    state: str = "open"


def _pull(pr: Any) -> Pull:
    return Pull(pr.number, pr.html_url or "", pr.head.ref, pr.base.ref, pr.title or "",
                pr.body or "", pr.head.sha or "",
                pr.head.repo.full_name if pr.head.repo else "", pr.state or "open")


def _message(data: Any) -> str:
    """GitHub's error message, with the details of a 422's `errors` ("Validation Failed"
    alone does not say that a PR already exists, or that there is nothing to merge)."""
    if not isinstance(data, dict):
        return str(data or "no message")
    details = []
    for error in data.get("errors") or []:
        if isinstance(error, dict):
            details.append(str(error.get("message") or " ".join(
                str(error[k]) for k in ("resource", "field", "code") if error.get(k))))
        else:
            details.append(str(error))
    message = str(data.get("message") or "no message")
    return f"{message} ({'; '.join(details)})" if details else message


def _rate_limit_wait(exc: Any, cap: float = 60.0) -> float | None:
    """Seconds to wait before retrying a rate-limited request; None if it is not one."""
    headers = {k.lower(): v for k, v in (getattr(exc, "headers", None) or {}).items()}
    limited = exc.status == 429 or (exc.status == 403 and (
        "retry-after" in headers or "rate limit" in str(_message(exc.data)).lower()))
    if not limited:
        return None
    try:
        return min(cap, max(1.0, float(headers.get("retry-after", 5))))
    except ValueError:
        return 5.0


class GitHub:
    """One repository on github.com or GitHub Enterprise (`api_url` from GITHUB_API_URL)."""

    def __init__(self, token: str, repository: str, api_url: str = "https://api.github.com",
                 *, retries: int = 3, write_delay: float = 1.0, read_delay: float = 0.25,
                 timeout: int = 30) -> None:
        from github import Auth, Github, GithubRetry

        if not token:
            raise GitHubError("no GitHub token: set the github-token input (default "
                              "${{ github.token }}) or GITHUB_TOKEN")
        retry = GithubRetry(total=retries, backoff_factor=1.0, allowed_methods=IDEMPOTENT,
                            max_rate_limit_wait=300)
        self._gh = Github(auth=Auth.Token(token), base_url=api_url, retry=retry,
                          timeout=timeout, seconds_between_requests=read_delay,
                          seconds_between_writes=write_delay, lazy=True)
        self._repo = self._gh.get_repo(repository)  # lazy: the client is lazy
        self.repository = repository
        self._api_url = api_url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._permissions: dict[str, str] = {}

    def _call(self, what: str, func: Callable[[], T], rate_limit_tries: int = 3) -> T:
        from github import GithubException

        for attempt in range(rate_limit_tries):
            try:
                return func()
            except GithubException as exc:
                wait = _rate_limit_wait(exc)
                if wait is None or attempt == rate_limit_tries - 1:
                    raise GitHubError(f"GitHub API: {what} failed with HTTP {exc.status}: "
                                      f"{_message(exc.data)}") from None
                # A secondary rate limit means nothing was applied: even a POST may retry.
                log.warning("GitHub API: %s hit a rate limit; retrying in %.0f s", what, wait)
                time.sleep(wait)
            except OSError as exc:  # connection errors, timeouts, retries used up
                raise GitHubError(f"GitHub API: {what} failed: {exc}") from None
        raise AssertionError("unreachable")

    # --- issues and comments ---------------------------------------------------------------

    def comment(self, number: int, body: str) -> str:
        """POST /repos/{o}/{r}/issues/{n}/comments"""
        issue = self._repo.get_issue(number)  # lazy: no GET
        made = self._call(f"comment on #{number}", lambda: issue.create_comment(body))
        return made.html_url or ""

    def add_label(self, number: int, label: str) -> None:
        """POST /repos/{o}/{r}/issues/{n}/labels"""
        issue = self._repo.get_issue(number)
        self._call(f"label #{number}", lambda: issue.add_to_labels(label))

    def remove_label(self, number: int, label: str) -> None:
        """DELETE /repos/{o}/{r}/issues/{n}/labels/{name}; a label already gone is fine."""
        from github import GithubException

        issue = self._repo.get_issue(number)
        try:
            issue.remove_from_labels(label)
        except GithubException as exc:
            if exc.status != 404:
                raise GitHubError(f"GitHub API: unlabel #{number} failed with HTTP "
                                  f"{exc.status}: {_message(exc.data)}") from None
        except OSError as exc:  # connection errors, timeouts, retries used up
            raise GitHubError(f"GitHub API: unlabel #{number} failed: {exc}") from None

    # --- who may command the bot ---------------------------------------------------------------

    def permission(self, username: str) -> str:
        """The user's role on the repository: read, triage, write, maintain, admin, or none.
        Asked once per user per run.

        GET /repos/{o}/{r}/collaborators/{username}/permission"""
        if username not in self._permissions:
            self._permissions[username] = self._ask_permission(username)
        return self._permissions[username]

    def _ask_permission(self, username: str) -> str:
        if not LOGIN_RE.fullmatch(username):
            return "none"  # not a GitHub login: it never reaches a URL
        try:
            role = self._call(f"permission of {username}",
                              lambda: self._repo.get_collaborator_role_name(username))
            if role not in ROLES:  # a custom role: its base permission (admin/write/read)
                role = self._call(f"permission of {username}",
                                  lambda: self._repo.get_collaborator_permission(username))
        except GitHubError as exc:
            if "HTTP 404" in str(exc):  # no such user
                return "none"
            raise
        return role if role in ROLES else "none"

    # --- pull requests ---------------------------------------------------------------------

    def open_pull(self, head: str) -> Pull | None:
        """GET /repos/{o}/{r}/pulls?state=open&head={owner}:{branch}"""
        owner = self.repository.split("/")[0]
        pulls = self._call("list pull requests", lambda: list(
            islice(self._repo.get_pulls(state="open", head=f"{owner}:{head}"), 5)))
        mine = [p for p in pulls if p.head.ref == head]
        return _pull(mine[0]) if mine else None

    def pull(self, number: int) -> Pull:
        """GET /repos/{o}/{r}/pulls/{n}"""
        # The client is lazy: the GET happens when _pull reads the fields, so inside _call.
        return self._call(f"get pull request #{number}",
                          lambda: _pull(self._repo.get_pull(number)))

    def ensure_pull(self, *, head: str, base: str, title: str, body: str,
                    draft: bool = True, attempts: int = 3) -> tuple[Pull, bool]:
        """Open a PR for `head`, or update the one already open; never a duplicate.

        Returns (pull, created). POST is not retried by the HTTP layer; after a failure we
        look for the PR (the POST may have succeeded) before trying again.
        """
        for attempt in range(attempts):
            existing = self.open_pull(head)
            if existing is not None:
                return self.update_pull(existing.number, title=title, body=body), False
            try:
                made = self._call("create pull request", lambda: self._repo.create_pull(
                    base=base, head=head, title=title, body=body, draft=draft))
                return _pull(made), True
            except GitHubError as exc:
                if attempt == attempts - 1 or "HTTP 422" in str(exc) and attempt:
                    raise
                log.warning("%s; checking whether it was created before retrying", exc)
                time.sleep(2.0 * (attempt + 1))
        raise AssertionError("unreachable")

    def update_pull(self, number: int, *, title: str, body: str) -> Pull:
        """PATCH /repos/{o}/{r}/pulls/{n}"""
        pr = self._call(f"get pull request #{number}", lambda: self._repo.get_pull(number))
        self._call(f"update pull request #{number}", lambda: pr.edit(title=title, body=body))
        return self._call(f"get pull request #{number}", lambda: _pull(pr))

    def review_feedback(self, number: int, limit: int = 20) -> list[str]:
        """Review bodies and inline comments on a PR, oldest first (for /acr revise).

        GET /repos/{o}/{r}/pulls/{n}/reviews and /pulls/{n}/comments"""
        pr = self._call(f"get pull request #{number}", lambda: self._repo.get_pull(number))
        reviews = self._call("list reviews", lambda: [
            f"Review ({r.state}): {r.body}" for r in pr.get_reviews() if r.body])
        inline = self._call("list review comments", lambda: [
            f"{c.path}:{c.line or c.original_line}: {c.body}" for c in pr.get_review_comments()])
        return (reviews + inline)[-limit:]

    # --- workflow runs -----------------------------------------------------------------------

    def failed_job_logs(self, run_id: int, limit: int = 3) -> list[tuple[str, str]]:
        """(job name, log text) for the failed jobs of a run.

        GET /repos/{o}/{r}/actions/runs/{id} and .../runs/{id}/jobs, then GET
        .../actions/jobs/{id}/logs (a redirect to a short-lived download URL)."""
        run = self._call(f"get workflow run {run_id}",  # a GET even on a lazy client
                         lambda: self._repo.get_workflow_run(run_id))
        jobs = self._call(f"list jobs of run {run_id}", lambda: list(run.jobs("latest")))
        failed = [j for j in jobs if j.conclusion in ("failure", "timed_out")][:limit]
        return [(j.name, self._job_log(j.id)) for j in failed]

    def changed_files(self, sha: str, pulls: Sequence[int] = (), limit: int = 100) -> list[str]:
        """Paths the failing run's change touched: its pull request's files when the run
        belongs to one, else its head commit's. A routing feature: what kind of change broke.

        GET /repos/{o}/{r}/pulls/{n}/files, or GET /repos/{o}/{r}/commits/{sha}"""
        if pulls:
            pr = self._repo.get_pull(pulls[0])  # lazy: no GET
            return self._call(f"list files of pull request #{pulls[0]}", lambda: [
                f.filename for f in islice(pr.get_files(), limit)])
        commit = self._repo.get_commit(sha)  # lazy: the files are the GET
        return self._call(f"list files of commit {sha[:12]}", lambda: [
            f.filename for f in commit.files[:limit]])

    def _job_log(self, job_id: int) -> str:
        import requests
        import urllib3

        url = f"{self._api_url}/repos/{self.repository}/actions/jobs/{job_id}/logs"
        headers = {"Authorization": f"Bearer {self._token}",
                   "Accept": "application/vnd.github+json"}
        kept: deque[bytes] = deque()
        size = 0
        try:
            # requests drops the Authorization header when the redirect leaves the API host.
            with requests.get(url, headers=headers, timeout=self._timeout,
                              stream=True) as response:
                response.raise_for_status()
                # Keep the END of a huge log (failures are reported last), never all of it.
                for chunk in response.iter_content(64 * 1024):
                    kept.append(chunk)
                    size += len(chunk)
                    while size - len(kept[0]) >= MAX_LOG_BYTES:
                        size -= len(kept.popleft())
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            # urllib3's errors: raw.read() reports a connection dropped mid-download as is.
            raise GitHubError(f"GitHub API: download of job {job_id}'s log failed: "
                              f"{type(exc).__name__}") from None
        return b"".join(kept)[-MAX_LOG_BYTES:].decode("utf-8", errors="replace")
