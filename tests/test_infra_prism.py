"""The local GitHub API (Stoplight Prism + GitHub's OpenAPI description) works.

Needs `npm ci --prefix .ci/prism`; skipped without it, except under CI=true
where a missing install is a failure.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import github
import pytest
import requests

try:
    from tests.support import prism
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from support import prism  # type: ignore[no-redef]


def _report(config: pytest.Config, line: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


def _skip_or_fail_if_missing() -> None:
    reason = prism.prism_missing_reason()
    if reason is None:
        return
    message = f"PRISM NOT INSTALLED - GitHub API tests not run: {reason}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI=true: .ci/run must install it)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def prism_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """Base URL of a Prism serving the whole (patched) api.github.com spec."""
    _skip_or_fail_if_missing()
    with prism.prism_server() as url:
        _report(
            request.config, f"\n[prism] full GitHub spec up in {url.startup_seconds:.1f} s at {url}"
        )
        yield url


@pytest.fixture
def gh(prism_url: str) -> github.Github:
    # retry=None: PyGithub's default retries 5xx/403 with back-off.
    return github.Github(base_url=prism_url, auth=github.Auth.Token("ghs_x"), retry=None)


def test_pyGithub_pull_request_flow(gh: github.Github) -> None:
    repo = gh.get_repo("octocat/Hello-World")
    pr = repo.create_pull(
        title="acr-bot: fix", body="body", head="octocat:acr-bot/fix", base="main", draft=True
    )
    assert isinstance(pr.number, int) and pr.number > 0
    pr.add_to_labels("acr-bot")  # bare-array body: needs the spec widening
    issue = pr.as_issue()
    comment = issue.create_comment("hello")
    assert comment.id
    issue.remove_from_labels("acr-bot")
    pulls = list(repo.get_pulls(state="open", head="octocat:acr-bot/fix"))
    assert pulls and all(isinstance(p.number, int) for p in pulls)  # no Link -> one page


def test_workflow_jobs_and_log_redirect(gh: github.Github) -> None:
    repo = gh.get_repo("octocat/Hello-World")
    jobs = list(repo.get_workflow_run(30433642).jobs())
    assert jobs and jobs[0].id
    # Real GitHub answers 302 to a signed download URL; Prism does the same
    # with the spec's example Location (not on this machine: fake the download).
    assert jobs[0].logs_url().startswith("https://")


def test_invalid_request_is_rejected(prism_url: str, gh: github.Github) -> None:
    # Missing the required "head": Prism answers with the operation's 422.
    resp = requests.post(
        f"{prism_url}/repos/octocat/Hello-World/pulls",
        json={"title": "t", "base": "main"},
        timeout=30,
    )
    assert resp.status_code == 422
    found = prism.violations(resp.headers)
    assert any("head" in v["message"] for v in found), found
    with pytest.raises(github.GithubException) as err:
        gh.requester.requestJsonAndCheck(
            "POST", "/repos/octocat/Hello-World/pulls", input={"title": "t", "base": "main"}
        )
    assert err.value.status == 422


def test_valid_request_has_no_request_violations(prism_url: str) -> None:
    resp = requests.post(
        f"{prism_url}/repos/octocat/Hello-World/pulls",
        json={"title": "t", "base": "main", "head": "h", "draft": True},
        timeout=30,
    )
    assert resp.status_code == 201
    assert prism.violations(resp.headers, "request") == []
    # api.github.com in examples points back here.
    assert resp.json()["url"].startswith(prism_url)


def test_prefer_header_forces_status(gh: github.Github) -> None:
    status, _, _ = gh.requester.requestJson(
        "GET", "/repos/octocat/Hello-World", headers={"Prefer": "code=404"}
    )
    assert status == 404


def test_patched_spec(tmp_path) -> None:
    _skip_or_fail_if_missing()
    base = "http://127.0.0.1:1"
    spec = json.loads(prism.write_patched_spec(tmp_path, base).read_text())
    assert spec["servers"] == [{"url": base}]
    link_headers: list[str] = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            headers = node.get("headers")
            if isinstance(headers, dict) and any(h.lower() == "link" for h in headers):
                link_headers.append(where)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(spec, "#")
    assert link_headers == []
    assert "link" not in {h.lower() for h in spec["components"].get("headers", {})}
    assert "components/headers/link" not in json.dumps(spec)
    pulls = spec["paths"]["/repos/{owner}/{repo}/pulls"]["get"]["responses"]["200"]
    assert "Link" not in pulls.get("headers", {}) and "link" not in pulls.get("headers", {})
    example = spec["components"]["examples"]["pull-request"]["value"]
    assert example["url"].startswith(base + "/repos/")


def test_pruned_spec_starts_fast(request: pytest.FixtureRequest) -> None:
    _skip_or_fail_if_missing()
    started = time.monotonic()
    with prism.prism_server(paths=["/repos/{owner}/{repo}/pulls"]) as url:
        _report(
            request.config,
            f"\n[prism] pruned spec (1 path) up in {url.startup_seconds:.1f} s "
            f"(incl. spec writing {time.monotonic() - started:.1f} s)",
        )
        resp = requests.post(
            f"{url}/repos/o/r/pulls", json={"title": "t", "head": "h", "base": "b"}, timeout=30
        )
        assert resp.status_code == 201
        assert requests.get(f"{url}/repos/o/r", timeout=30).status_code == 404  # pruned away
