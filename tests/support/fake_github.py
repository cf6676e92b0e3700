"""A small stateful GitHub REST API on pytest-httpserver, with scriptable faults.

Prism checks each request against GitHub's own OpenAPI description but remembers nothing;
this fake remembers pull requests, comments and labels across calls, so whole flows (open a
PR, re-run, update it, never duplicate) and faults (5xx after a write, secondary rate limits,
409/422) can be tested end to end. Responses carry the fields PyGithub reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response


MAINTAINERS = {"Codertocat": "admin", "jakebolam": "write", "ocombe": "maintain",
               "maintainer": "write"}


@dataclass
class Fault:
    method: str
    path: str  # regex matched against the request path
    status: int
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    after: bool = False  # apply the request first, then fail (a 5xx after the write happened)
    body: Any = None  # the JSON error document (default: {"message": ...} for the status)


class FakeGitHub:
    """`prefix`: where the API is mounted, e.g. "/api/v3" as on GitHub Enterprise Server."""

    def __init__(self, server: Any, repository: str = "octo/repo", prefix: str = "") -> None:
        self.server = server
        self.repository = repository
        root = server.url_for("").rstrip("/")
        self.prefix = prefix.rstrip("/")
        self.base = root + self.prefix
        # Job logs are served from another host (as GitHub's signed storage URLs are): the
        # same server under another name, so clients must treat it as a different origin.
        host = "127.0.0.1" if "//localhost:" in root else "localhost"
        self.storage = re.sub(r"//[^:/]+", f"//{host}", root, count=1)
        self.pulls: dict[int, dict[str, Any]] = {}
        self.comments: list[dict[str, Any]] = []
        self.labels: dict[int, list[str]] = {}
        self.jobs: dict[int, list[dict[str, Any]]] = {}
        self.logs: dict[int, str] = {}
        self.reviews: dict[int, list[dict[str, Any]]] = {}
        self.commit_files: dict[str, list[str]] = {}  # sha -> paths the commit changed
        self.pull_files: dict[int, list[str]] = {}  # pull request number -> paths it changes
        # login -> role_name (read, triage, write, maintain, admin or a custom role's name);
        # a login not here is not a GitHub user (404), as for a made-up name. The authors of
        # the fixtures' comments and reviews maintain the repository unless a test says not.
        self.permissions: dict[str, str] = dict(MAINTAINERS)
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, Any]] = []
        self.headers: list[dict[str, str]] = []  # each request's headers, as self.requests
        self.next_number = 100
        server.expect_request(re.compile(".*")).respond_with_handler(self.handle)

    # --- helpers for tests --------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return self.base

    def fail(self, method: str, path: str, status: int, times: int = 1, after: bool = False,
             headers: dict[str, str] | None = None, body: Any = None) -> None:
        self.faults.append(Fault(method, path, status, times, headers or {}, after, body))

    def calls(self, method: str, pattern: str) -> list[Any]:
        return [body for m, p, body in self.requests if m == method and re.search(pattern, p)]

    def add_failed_run(self, run_id: int, log: str, name: str = "tests") -> None:
        job_id = run_id * 10 + 1
        self.jobs[run_id] = [{"id": job_id, "run_id": run_id, "name": name,
                              "conclusion": "failure", "status": "completed",
                              "url": f"{self.base}/repos/{self.repository}/actions/jobs/{job_id}"},
                             {"id": job_id + 1, "run_id": run_id, "name": "lint",
                              "conclusion": "success", "status": "completed",
                              "url": f"{self.base}/repos/{self.repository}/actions/jobs/"
                                     f"{job_id + 1}"}]
        self.logs[job_id] = log

    def add_pull(self, head: str, body: str, base: str = "main", number: int | None = None,
                 title: str = "A bot PR") -> dict[str, Any]:
        number = number or self._number()
        pr = self._pull_doc(number, head, base, title, body)
        self.pulls[number] = pr
        return pr

    # --- the server ----------------------------------------------------------------------------

    def _number(self) -> int:
        self.next_number += 1
        return self.next_number

    def _fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.method == method and re.search(fault.path, path):
                fault.times -= 1
                return fault
        return None

    def handle(self, request: Request) -> Response:
        body = request.get_json(silent=True) if request.data else None
        self.requests.append((request.method, request.path, body))
        self.headers.append(dict(request.headers))
        fault = self._fault(request.method, request.path)
        if fault and not fault.after:
            return self._error(fault)
        response = self._route(request, body)
        return self._error(fault) if fault else response

    def _error(self, fault: Fault) -> Response:
        message = {403: "You have exceeded a secondary rate limit.",
                   409: "Conflict", 422: "Validation Failed"}.get(fault.status, "Server Error")
        doc = fault.body if fault.body is not None else {"message": message}
        return Response(json.dumps(doc), fault.status,
                        {"Content-Type": "application/json", **fault.headers})

    def _route(self, request: Request, body: Any) -> Response:
        path = request.path
        if self.prefix and path.startswith(self.prefix + "/"):
            path = path[len(self.prefix):]
        elif self.prefix and not path.startswith("/blob/"):
            path = "/not-under-the-api-prefix" + path
        repo = f"/repos/{self.repository}"
        routes = [
            ("GET", rf"^{repo}$", lambda m: self._repo()),
            ("POST", rf"^{repo}/issues/(\d+)/comments$", lambda m: self._comment(m, body)),
            ("POST", rf"^{repo}/issues/(\d+)/labels$", lambda m: self._label(m, body)),
            ("DELETE", rf"^{repo}/issues/(\d+)/labels/(.+)$", lambda m: self._unlabel(m)),
            ("GET", rf"^{repo}/pulls$", lambda m: self._list_pulls(request)),
            ("POST", rf"^{repo}/pulls$", lambda m: self._create_pull(body)),
            ("GET", rf"^{repo}/pulls/(\d+)$", lambda m: self._get_pull(m)),
            ("PATCH", rf"^{repo}/pulls/(\d+)$", lambda m: self._edit_pull(m, body)),
            ("GET", rf"^{repo}/pulls/(\d+)/reviews$", lambda m: self._reviews(m)),
            ("GET", rf"^{repo}/pulls/(\d+)/comments$", lambda m: []),
            ("GET", rf"^{repo}/pulls/(\d+)/files$", lambda m: self._files(
                self.pull_files.get(int(m.group(1)), []))),
            ("GET", rf"^{repo}/commits/([0-9a-f]{{40}})$", lambda m: self._commit(m)),
            ("GET", rf"^{repo}/actions/runs/(\d+)$", lambda m: self._run(m)),
            ("GET", rf"^{repo}/actions/runs/(\d+)/jobs$", lambda m: self._jobs(m)),
            ("GET", rf"^{repo}/actions/jobs/(\d+)/logs$", lambda m: self._log_redirect(m)),
            ("GET", r"^/blob/logs/(\d+)$", lambda m: self._log(m)),
            ("GET", rf"^{repo}/collaborators/([^/]+)/permission$",
             lambda m: self._permission(m)),
        ]
        for method, pattern, action in routes:
            match = re.match(pattern, path)
            if match and request.method == method:
                result = action(match)
                if isinstance(result, Response):
                    return result
                return Response(json.dumps(result), 201 if method == "POST" else 200,
                                {"Content-Type": "application/json"})
        return Response(json.dumps({"message": "Not Found"}), 404,
                        {"Content-Type": "application/json"})

    def _repo(self) -> dict[str, Any]:
        owner, name = self.repository.split("/")
        return {"id": 1, "name": name, "full_name": self.repository,
                "owner": {"login": owner}, "default_branch": "main",
                "url": f"{self.base}/repos/{self.repository}"}

    def _comment(self, m: re.Match[str], body: Any) -> dict[str, Any]:
        number = int(m.group(1))
        doc = {"id": len(self.comments) + 1, "body": body["body"], "issue": number,
               "html_url": f"https://github.test/{self.repository}/issues/{number}"
                           f"#issuecomment-{len(self.comments) + 1}"}
        self.comments.append(doc)
        return doc

    def _label(self, m: re.Match[str], body: Any) -> list[dict[str, str]]:
        number = int(m.group(1))
        names = body if isinstance(body, list) else body.get("labels", [])
        current = self.labels.setdefault(number, [])
        current.extend(n for n in names if n not in current)
        return [{"name": n} for n in current]

    def _unlabel(self, m: re.Match[str]) -> Any:
        number, name = int(m.group(1)), m.group(2)
        current = self.labels.get(number, [])
        if name not in current:
            return Response(json.dumps({"message": "Label does not exist"}), 404,
                            {"Content-Type": "application/json"})
        current.remove(name)
        return [{"name": n} for n in current]

    def _pull_doc(self, number: int, head: str, base: str, title: str, body: str,
                  draft: bool = True) -> dict[str, Any]:
        url = f"{self.base}/repos/{self.repository}/pulls/{number}"
        repo = {"full_name": self.repository, "name": self.repository.split("/")[1]}
        return {"number": number, "id": number, "url": url, "state": "open", "title": title,
                "body": body, "draft": draft,
                "html_url": f"https://github.test/{self.repository}/pull/{number}",
                "head": {"ref": head, "sha": "0" * 40, "repo": repo,
                         "label": f"{self.repository.split('/')[0]}:{head}"},
                "base": {"ref": base, "sha": "1" * 40, "repo": repo}}

    def _list_pulls(self, request: Request) -> list[dict[str, Any]]:
        head = request.args.get("head", "")
        state = request.args.get("state", "open")
        found = [p for p in self.pulls.values() if p["state"] == state or state == "all"]
        if head:
            found = [p for p in found if p["head"]["label"] == head]
        return found

    def _create_pull(self, body: Any) -> Any:
        if any(p["head"]["ref"] == body["head"] and p["state"] == "open"
               for p in self.pulls.values()):
            return Response(json.dumps({"message": "Validation Failed", "errors": [
                {"message": f"A pull request already exists for {body['head']}."}]}), 422,
                {"Content-Type": "application/json"})
        number = self._number()
        pr = self._pull_doc(number, body["head"], body["base"], body.get("title", ""),
                            body.get("body", ""), bool(body.get("draft")))
        self.pulls[number] = pr
        return pr

    def _get_pull(self, m: re.Match[str]) -> Any:
        pr = self.pulls.get(int(m.group(1)))
        return pr if pr else Response(json.dumps({"message": "Not Found"}), 404,
                                      {"Content-Type": "application/json"})

    def _edit_pull(self, m: re.Match[str], body: Any) -> Any:
        pr = self.pulls[int(m.group(1))]
        pr.update({k: v for k, v in body.items() if k in ("title", "body", "state")})
        return pr

    def _permission(self, m: re.Match[str]) -> Any:
        login = m.group(1)
        role = self.permissions.get(login)
        if role is None:
            return Response(json.dumps({"message": "Not Found"}), 404,
                            {"Content-Type": "application/json"})
        # `permission` is the legacy field: maintain reads as write, triage as read, and a
        # custom role as its base (here: write).
        legacy = {"maintain": "write", "triage": "read"}.get(role, role)
        if legacy not in ("admin", "write", "read", "none"):
            legacy = "write"
        return {"permission": legacy, "role_name": role,
                "user": {"login": login, "id": 1, "type": "User"}}

    def _reviews(self, m: re.Match[str]) -> list[dict[str, Any]]:
        return self.reviews.get(int(m.group(1)), [])

    @staticmethod
    def _files(paths: list[str]) -> list[dict[str, Any]]:
        return [{"sha": "0" * 40, "filename": p, "status": "modified", "additions": 1,
                 "deletions": 1, "changes": 2} for p in paths]

    def _commit(self, m: re.Match[str]) -> Any:
        sha = m.group(1)
        if sha not in self.commit_files:
            return Response(json.dumps({"message": f"No commit found for SHA: {sha}"}), 422,
                            {"Content-Type": "application/json"})
        return {"sha": sha, "url": f"{self.base}/repos/{self.repository}/commits/{sha}",
                "commit": {"message": "a change"}, "files": self._files(self.commit_files[sha])}

    def _run(self, m: re.Match[str]) -> dict[str, Any]:
        run_id = int(m.group(1))
        url = f"{self.base}/repos/{self.repository}/actions/runs/{run_id}"
        return {"id": run_id, "url": url, "jobs_url": f"{url}/jobs", "conclusion": "failure",
                "status": "completed"}

    def _jobs(self, m: re.Match[str]) -> dict[str, Any]:
        jobs = self.jobs.get(int(m.group(1)), [])
        return {"total_count": len(jobs), "jobs": jobs}

    def _log_redirect(self, m: re.Match[str]) -> Response:
        # Real GitHub answers 302 to a short-lived storage URL on another host.
        return Response("", 302, {"Location": f"{self.storage}/blob/logs/{m.group(1)}"})

    def _log(self, m: re.Match[str]) -> Response:
        return Response(self.logs.get(int(m.group(1)), ""), 200, {"Content-Type": "text/plain"})


@contextmanager
def serve_fake_github(repository: str) -> Iterator[FakeGitHub]:
    """A FakeGitHub on 127.0.0.1: a container with network_mode="host" reaches it there too,
    and no traffic leaves the loopback interface."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    try:
        yield FakeGitHub(server, repository=repository)
    finally:
        server.clear()
        if server.is_running():
            server.stop()
