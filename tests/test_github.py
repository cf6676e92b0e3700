"""The GitHub client: (a) every request it makes passes GitHub's own OpenAPI description
(Stoplight Prism), (b) faults on a stateful fake: 5xx after a write, retries, rate limits,
422/409, redirects of log downloads, GitHub Enterprise URLs."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import urllib3

from acr_bot.errors import GitHubError
from acr_bot.github.client import MAX_LOG_BYTES, GitHub, Pull

try:
    from tests.support import prism
    from tests.support.fake_github import FakeGitHub
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from support import prism  # type: ignore[no-redef]
    from support.fake_github import FakeGitHub  # type: ignore[no-redef]

TOKEN = "ghs_" + "k" * 36
REPO = "octo/repo"

# --- (a) the contract: GitHub's OpenAPI description, served by Prism -------------------------

PATHS = [
    "/repos/{owner}/{repo}/pulls",
    "/repos/{owner}/{repo}/pulls/{pull_number}",
    "/repos/{owner}/{repo}/pulls/{pull_number}/reviews",
    "/repos/{owner}/{repo}/pulls/{pull_number}/comments",
    "/repos/{owner}/{repo}/issues/{issue_number}/comments",
    "/repos/{owner}/{repo}/issues/{issue_number}/labels",
    "/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}",
    "/repos/{owner}/{repo}/actions/runs/{run_id}",
    "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs",
    "/repos/{owner}/{repo}/actions/jobs/{job_id}/logs",
    "/repos/{owner}/{repo}/collaborators/{username}/permission",
    "/repos/{owner}/{repo}/pulls/{pull_number}/files",
    "/repos/{owner}/{repo}/commits/{ref}",
]


@pytest.fixture(scope="session")
def prism_url() -> Iterator[str]:
    """One Prism for the session, serving only the operations the client uses (fast start)."""
    reason = prism.prism_missing_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"Prism is not installed: {reason}", pytrace=False)
        pytest.skip(f"Prism is not installed: {reason}")
    with prism.prism_server(paths=PATHS) as url:
        yield url


class Exchange:
    """Every HTTP exchange the client makes, with what Prism said about the request."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int, list[dict[str, Any]], dict[str, str]]] = []

    def check(self) -> None:
        assert self.seen, "no request was made"
        for method, url, status, problems, _ in self.seen:
            assert problems == [], f"{method} {url}: Prism found {problems}"
            assert status < 400 or status == 404 and method == "DELETE", (method, url, status)


@pytest.fixture
def exchanges(monkeypatch: pytest.MonkeyPatch, prism_url: str) -> Exchange:
    """Record every response; answer the off-machine log storage host locally (Prism's 302
    points at pipelines.actions.githubusercontent.com, which no test may reach)."""
    record = Exchange()
    real_send = requests.adapters.HTTPAdapter.send

    def send(self: Any, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        host = urlsplit(request.url).hostname
        if host != "127.0.0.1":
            response = requests.Response()
            response.status_code, response.url, response.request = 200, request.url, request
            response.raw = urllib3.HTTPResponse(body=io.BytesIO(b"the job's log\n"), status=200,
                                                preload_content=False)
            record.seen.append(("GET", str(request.url), 200, [], dict(request.headers)))
            return response
        response = real_send(self, request, *args, **kwargs)
        record.seen.append((str(request.method), str(request.url), response.status_code,
                            prism.violations(response.headers, "request"),
                            dict(request.headers)))
        return response

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)
    return record


@pytest.fixture
def contract_gh(prism_url: str) -> GitHub:
    return GitHub(TOKEN, "octocat/Hello-World", prism_url, retries=0, write_delay=0,
                  read_delay=0)


def test_contract_create_a_pull_request(contract_gh: GitHub, exchanges: Exchange) -> None:
    # The spec's example list holds a PR for head "new-topic": not ours, so a POST follows.
    pull, created = contract_gh.ensure_pull(head="acr/issue-1", base="main", title="Fix #1: x",
                                            body="Fixes #1", draft=True)
    assert created and isinstance(pull, Pull) and pull.number == 1347
    exchanges.check()
    assert [(m, urlsplit(u).path) for m, u, *_ in exchanges.seen] == [
        ("GET", "/repos/octocat/Hello-World/pulls"), ("POST", "/repos/octocat/Hello-World/pulls")]
    assert "head=octocat%3Aacr%2Fissue-1" in exchanges.seen[0][1]


def test_contract_update_the_open_pull_request(contract_gh: GitHub, exchanges: Exchange) -> None:
    # "new-topic" is the head of the spec's example PR, so it counts as already open.
    pull, created = contract_gh.ensure_pull(head="new-topic", base="main", title="t", body="b")
    assert not created and pull.number == 1347 and pull.head == "new-topic"
    exchanges.check()
    assert [m for m, *_ in exchanges.seen] == ["GET", "PATCH"]  # list, then edit


def test_contract_read_a_pull_request_and_its_feedback(contract_gh: GitHub,
                                                       exchanges: Exchange) -> None:
    assert contract_gh.pull(1347).base == "master"
    feedback = contract_gh.review_feedback(1347)
    assert feedback and all(isinstance(line, str) for line in feedback)
    exchanges.check()


def test_contract_comment_and_labels(contract_gh: GitHub, exchanges: Exchange) -> None:
    assert contract_gh.comment(1347, "acr-bot opened a PR").startswith("https://github.com/")
    contract_gh.add_label(1347, "acr-bot")
    contract_gh.remove_label(1347, "acr:fix")
    exchanges.check()
    assert [m for m, *_ in exchanges.seen] == ["POST", "POST", "DELETE"]
    assert urlsplit(exchanges.seen[2][1]).path.endswith("/labels/acr:fix") or \
        urlsplit(exchanges.seen[2][1]).path.endswith("/labels/acr%3Afix")


def test_contract_jobs_and_log_download(contract_gh: GitHub, exchanges: Exchange) -> None:
    # The spec's example jobs all succeeded, so failed_job_logs downloads nothing; the log
    # endpoint is then called directly with the example job's id.
    assert contract_gh.failed_job_logs(29679449) == []
    assert contract_gh._job_log(399444496) == "the job's log\n"
    exchanges.check()
    run, (_, jobs_url, *_), (_, log_url, status, _, api_headers), (_, blob, _, _, headers) = \
        exchanges.seen
    assert run[1].endswith("/actions/runs/29679449")
    # PyGithub follows the run's own jobs_url: the spec's example run (30433642, octo-org).
    assert urlsplit(jobs_url).path.endswith("/jobs") and "filter=latest" in jobs_url
    assert log_url.endswith("/actions/jobs/399444496/logs") and status == 302
    assert urlsplit(blob).hostname == "pipelines.actions.githubusercontent.com"
    assert api_headers["Authorization"] == f"Bearer {TOKEN}"
    assert "Authorization" not in headers  # the token never goes to the storage host


def test_contract_the_actors_permission(contract_gh: GitHub, exchanges: Exchange) -> None:
    # The spec's example answers role_name "admin"; asked once per user per run.
    assert contract_gh.permission("octocat") == "admin"
    assert contract_gh.permission("octocat") == "admin"
    exchanges.check()
    assert [(m, urlsplit(u).path) for m, u, *_ in exchanges.seen] == [
        ("GET", "/repos/octocat/Hello-World/collaborators/octocat/permission")]


def test_contract_the_files_a_change_touched(contract_gh: GitHub, exchanges: Exchange) -> None:
    # The spec's examples: a pull request touching file1.txt; a commit touching file1.txt.
    assert contract_gh.changed_files("6dcb09b5b57875f334f61aebed695e2e4193db5e", [1347]) == [
        "file1.txt"]
    assert contract_gh.changed_files("6dcb09b5b57875f334f61aebed695e2e4193db5e") == [
        "file1.txt"]
    exchanges.check()
    assert [urlsplit(u).path for _, u, *_ in exchanges.seen] == [
        "/repos/octocat/Hello-World/pulls/1347/files",
        "/repos/octocat/Hello-World/commits/6dcb09b5b57875f334f61aebed695e2e4193db5e"]


def test_the_files_of_an_unknown_commit_are_a_clear_error(fake: FakeGitHub) -> None:
    client = GitHub(TOKEN, REPO, fake.api_url, retries=0, write_delay=0, read_delay=0)
    fake.commit_files["a" * 40] = ["src/calc.py", "tests/test_calc.py"]
    assert client.changed_files("a" * 40) == ["src/calc.py", "tests/test_calc.py"]
    with pytest.raises(GitHubError, match="list files of commit bbbbbbbbbbbb failed with HTTP 422"):
        client.changed_files("b" * 40)


def test_a_login_that_is_no_login_never_reaches_a_url(fake: FakeGitHub) -> None:
    client = GitHub(TOKEN, REPO, fake.api_url, retries=0, write_delay=0, read_delay=0)
    assert client.permission("../../admin") == "none"
    assert client.permission("") == "none"
    assert fake.requests == []


def test_contract_an_invalid_request_would_be_caught(prism_url: str) -> None:
    """The check above can fail: Prism rejects a request that breaks the description."""
    response = requests.post(f"{prism_url}/repos/o/r/pulls", json={"title": "t"}, timeout=30)
    assert response.status_code == 422 and prism.violations(response.headers, "request")


# --- (b) faults, on the stateful fake --------------------------------------------------------


@pytest.fixture
def fake(httpserver: Any) -> FakeGitHub:
    return FakeGitHub(httpserver, REPO)


def client(fake: FakeGitHub, retries: int = 2, api_url: str | None = None) -> GitHub:
    return GitHub(TOKEN, REPO, api_url or fake.api_url, retries=retries, write_delay=0,
                  read_delay=0, timeout=10)


def test_a_502_after_the_post_created_the_pr_makes_no_duplicate(fake: FakeGitHub,
                                                                sleeps: list[float]) -> None:
    fake.fail("POST", r"/pulls$", 502, after=True)
    pull, created = client(fake).ensure_pull(head="acr/issue-1", base="main", title="Fix #1",
                                             body="Fixes #1")
    assert list(fake.pulls) == [pull.number] == [101]
    assert not created  # found, not made, on the second look
    assert len(fake.calls("POST", r"/pulls$")) == 1  # the POST itself was never repeated
    assert fake.pulls[101]["body"] == "Fixes #1" and fake.pulls[101]["draft"] is True


def test_a_502_on_a_get_is_retried(fake: FakeGitHub, sleeps: list[float]) -> None:
    fake.add_pull("acr/issue-1", "body", number=7)
    fake.fail("GET", r"/pulls$", 502, times=2)
    found = client(fake, retries=2).open_pull("acr/issue-1")
    assert found is not None and found.number == 7
    assert len(fake.calls("GET", r"/pulls$")) == 3


def test_a_secondary_rate_limit_with_retry_after_is_waited_out(fake: FakeGitHub) -> None:
    fake.add_pull("acr/issue-1", "body", number=7)
    fake.fail("GET", r"/pulls/7$", 403, headers={"Retry-After": "1"})
    started = time.monotonic()
    assert client(fake).pull(7).number == 7
    assert time.monotonic() - started >= 1.0
    assert len(fake.calls("GET", r"/pulls/7$")) == 2


def test_a_403_that_is_not_a_rate_limit_is_not_retried(fake: FakeGitHub) -> None:
    fake.fail("GET", r"/pulls/7$", 403,
              body={"message": "Resource not accessible by integration"})
    with pytest.raises(GitHubError, match="HTTP 403: Resource not accessible by integration"):
        client(fake).pull(7)
    assert len(fake.calls("GET", r"/pulls/7$")) == 1


def test_a_422_on_create_is_a_clear_error(fake: FakeGitHub, sleeps: list[float]) -> None:
    fake.fail("POST", r"/pulls$", 422, times=5, body={
        "message": "Validation Failed", "documentation_url": "https://docs.github.com/rest",
        "errors": [{"resource": "PullRequest", "code": "custom",
                    "message": "No commits between main and acr/issue-1"}]})
    with pytest.raises(GitHubError) as error:
        client(fake).ensure_pull(head="acr/issue-1", base="main", title="t", body="b")
    assert str(error.value) == ("GitHub API: create pull request failed with HTTP 422: "
                                "Validation Failed (No commits between main and acr/issue-1)")
    assert len(fake.calls("POST", r"/pulls$")) == 2  # looked again once, then gave up
    assert fake.pulls == {}


def test_a_409_is_an_error(fake: FakeGitHub, sleeps: list[float]) -> None:
    fake.fail("POST", r"/pulls$", 409, times=10)
    with pytest.raises(GitHubError, match="create pull request failed with HTTP 409: Conflict"):
        client(fake).ensure_pull(head="acr/issue-1", base="main", title="t", body="b")
    assert len(fake.calls("POST", r"/pulls$")) == 3  # bounded
    fake.fail("POST", r"/comments$", 409)
    with pytest.raises(GitHubError, match="comment on #3 failed with HTTP 409"):
        client(fake).comment(3, "hello")
    assert len(fake.calls("POST", r"/comments$")) == 1  # a POST is never repeated blindly


@pytest.mark.parametrize("call, method, path", [
    (lambda gh: gh.pull(7), "GET", r"/pulls/7$"),
    (lambda gh: gh.open_pull("acr/x"), "GET", r"/pulls$"),
    (lambda gh: gh.failed_job_logs(9), "GET", r"/runs/9$"),
    (lambda gh: gh.failed_job_logs(9), "GET", r"/runs/9/jobs$"),
    (lambda gh: gh.remove_label(7, "acr:fix"), "DELETE", r"/labels/"),
])
def test_persistent_5xx_is_an_error_after_bounded_retries(fake: FakeGitHub, sleeps: list[float],
                                                          call: Any, method: str,
                                                          path: str) -> None:
    fake.fail(method, path, 503, times=1000)
    with pytest.raises(GitHubError, match="failed"):
        call(client(fake, retries=2))
    assert len(fake.calls(method, path)) == 3  # one try and two retries
    assert sum(sleeps) < 10


def test_persistent_5xx_on_create_is_an_error_without_a_duplicate(fake: FakeGitHub,
                                                                 sleeps: list[float]) -> None:
    fake.fail("POST", r"/pulls$", 500, times=1000)
    with pytest.raises(GitHubError, match="create pull request failed with HTTP 500"):
        client(fake).ensure_pull(head="acr/issue-1", base="main", title="t", body="b")
    assert len(fake.calls("POST", r"/pulls$")) == 3
    assert len(fake.calls("GET", r"/pulls$")) == 3  # looked before each try


def test_an_unreachable_api_is_an_error(sleeps: list[float]) -> None:
    port = prism.free_port()  # nothing listens there
    gh = GitHub(TOKEN, REPO, f"http://127.0.0.1:{port}", retries=1, write_delay=0, read_delay=0)
    for call in (lambda: gh.pull(1), lambda: gh.comment(1, "x"),
                 lambda: gh.remove_label(1, "acr:fix")):
        with pytest.raises(GitHubError, match="failed"):
            call()


def test_job_logs_follow_the_redirect_without_the_token(fake: FakeGitHub) -> None:
    fake.add_failed_run(42, "FAILED tests/test_a.py::test_x - assert 1 == 2\n")
    logs = client(fake).failed_job_logs(42)
    assert logs == [("tests", "FAILED tests/test_a.py::test_x - assert 1 == 2\n")]
    paths = [p for _, p, _ in fake.requests]
    assert paths == [f"/repos/{REPO}/actions/runs/42", f"/repos/{REPO}/actions/runs/42/jobs",
                     f"/repos/{REPO}/actions/jobs/421/logs", "/blob/logs/421"]  # failed job only
    api, storage = fake.headers[2], fake.headers[3]
    assert api["Authorization"] == f"Bearer {TOKEN}"
    assert urlsplit(fake.storage).hostname != urlsplit(fake.api_url).hostname
    assert storage["Host"].split(":")[0] == urlsplit(fake.storage).hostname
    assert "Authorization" not in storage


def test_a_huge_job_log_is_cut_at_the_download_keeping_its_end(fake: FakeGitHub) -> None:
    end = "FAILED tests/test_core.py::test_median_even - assert 3 == 2.5\n"
    fake.add_failed_run(43, "x" * (3 * MAX_LOG_BYTES) + end)
    [(_, text)] = client(fake).failed_job_logs(43)
    assert len(text) == MAX_LOG_BYTES
    assert text.endswith(end)  # the failures are reported last: they are what is kept
    fake.add_pull("after", "the server still answers", number=5)
    assert client(fake).pull(5).body == "the server still answers"


def test_a_failed_log_download_is_an_error(fake: FakeGitHub) -> None:
    fake.add_failed_run(44, "log")
    fake.fail("GET", r"/blob/logs/441$", 500)
    with pytest.raises(GitHubError, match="download of job 441's log failed: HTTPError"):
        client(fake).failed_job_logs(44)


def test_removing_a_label_that_is_not_there_is_fine(fake: FakeGitHub) -> None:
    client(fake).remove_label(3, "acr:fix")
    assert fake.calls("DELETE", r"/issues/3/labels/acr:fix$") == [None]
    fake.labels[3] = ["acr:fix", "bug"]
    client(fake).remove_label(3, "acr:fix")
    assert fake.labels[3] == ["bug"]


def test_a_label_removal_that_fails_otherwise_is_an_error(fake: FakeGitHub) -> None:
    fake.fail("DELETE", r"/labels/", 403, body={"message": "Must have admin rights"})
    with pytest.raises(GitHubError, match="unlabel #3 failed with HTTP 403: Must have admin"):
        client(fake).remove_label(3, "acr:fix")


def test_no_token_is_a_clear_error() -> None:
    with pytest.raises(GitHubError, match="no GitHub token"):
        GitHub("", REPO)


def test_github_enterprise_base_url(httpserver: Any) -> None:
    fake = FakeGitHub(httpserver, REPO, prefix="/api/v3")
    assert fake.api_url.endswith("/api/v3")
    fake.add_failed_run(45, "boom")
    gh = client(fake)

    pull, created = gh.ensure_pull(head="acr/issue-2", base="main", title="Fix #2", body="b")
    assert created and pull.number == 101
    again, created = gh.ensure_pull(head="acr/issue-2", base="main", title="Fix #2", body="c")
    assert not created and again.number == 101 and fake.pulls[101]["body"] == "c"
    gh.comment(2, "done")
    gh.add_label(101, "acr-bot")
    gh.remove_label(2, "acr:fix")
    assert gh.failed_job_logs(45) == [("tests", "boom")]
    assert gh.pull(101).head == "acr/issue-2"

    api = [p for _, p, _ in fake.requests if not p.startswith("/blob/")]
    assert api and all(p.startswith("/api/v3/repos/octo/repo/") for p in api)
    assert fake.labels[101] == ["acr-bot"] and fake.comments[0]["body"] == "done"
