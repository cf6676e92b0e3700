"""Event classification on real webhook payloads (octokit/webhooks and real app fixtures),
on modified copies of them, and on fuzzed ones: only an Action or an EventError comes out."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, load_fixture
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acr_bot.errors import EventError
from acr_bot.github.events import (
    MAX_BODY,
    Explain,
    FixCI,
    FixIssue,
    Ignore,
    RecordVerdict,
    Refuse,
    Revise,
    classify,
    load_payload,
    marker,
)

MARKER = "<!-- acr-bot task=gh:o/r#1 attempt=abc model=m -->"
ANGULAR = "pull_request_review/angular__github-robot/pull_request_review.submitted.json"
ON_PR = "issue_comment/all-contributors__app/issue_comment.created.json"
ALL_FIXTURES = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*.json"))


def event_of(relative: str) -> tuple[str, dict[str, Any]]:
    """(event name, payload) of a fixture file; probot captures are wrapped."""
    data = load_fixture(relative)
    if "payload" in data and "action" not in data:
        return data["name"], data["payload"]
    return relative.split("/")[0], data


# --- every real fixture, as it is ----------------------------------------------------------

AS_IS = {
    "check_run/completed.1.payload.json": "nothing to do for check_run.completed",
    "check_run/completed.payload.json": "nothing to do for check_run.completed",
    "check_run/completed.with-organization.payload.json": "nothing to do for check_run.completed",
    "check_suite/completed.1.payload.json": "nothing to do for check_suite.completed",
    "check_suite/completed.payload.json": "nothing to do for check_suite.completed",
    "check_suite/completed.with-organization.payload.json":
        "nothing to do for check_suite.completed",
    ON_PR: "comment is not a /acr command",
    "issue_comment/created.1.payload.json": "comment is not a /acr command",
    "issue_comment/created.payload.json": "comment is not a /acr command",
    "issue_comment/created.with-organization.payload.json": "comment is not a /acr command",
    "issue_comment/robvanderleek__create-issue-branch/issue_comment.created.json":
        "comment is not a /acr command",
    "issues/labeled.payload.json": "label 'bug' is not the trigger label 'acr:fix'",
    "issues/labeled.with-organization.payload.json":
        "label 'bug' is not the trigger label 'acr:fix'",
    "pull_request/closed.payload.json": "closed pull request was not opened by acr-bot",
    "pull_request/closed.with-organization.payload.json":
        "closed pull request was not opened by acr-bot",
    "pull_request/robvanderleek__create-issue-branch/pull_request.closed.json":
        "closed pull request was not opened by acr-bot",
    ANGULAR: "reviewed pull request was not opened by acr-bot",
    "pull_request_review/raulriera__probot-minimum-reviews/pull_request_review.submitted.json":
        "review state 'approved' needs no action",
    "pull_request_review/submitted.payload.json": "review state 'commented' needs no action",
    "pull_request_review/submitted.with-organization.payload.json":
        "review state 'commented' needs no action",
    "pull_request_review_comment/created.payload.json":
        "nothing to do for pull_request_review_comment.created",
    "pull_request_review_comment/created.with-organization.payload.json":
        "nothing to do for pull_request_review_comment.created",
    "pull_request_review_comment/dcoapp__app/pull_request_review_comment.created.json":
        "nothing to do for pull_request_review_comment.created",
    "push/1.payload.json": "nothing to do for push",
    "push/payload.json": "nothing to do for push",
    "push/with-new-branch.payload.json": "nothing to do for push",
    "workflow_job/completed.failure.with-organization.payload.json":
        "nothing to do for workflow_job.completed",
    "workflow_job/completed.success.with-organization.payload.json":
        "nothing to do for workflow_job.completed",
    "workflow_run/completed.payload.json": "workflow run concluded 'success', not 'failure'",
    "workflow_run/completed.with-pull-requests.payload.json":
        "workflow run concluded 'success', not 'failure'",
}


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(AS_IS) == ALL_FIXTURES


@pytest.mark.parametrize("relative", ALL_FIXTURES)
def test_real_fixtures_as_they_are_need_nothing(relative: str) -> None:
    event, payload = event_of(relative)
    assert classify(event, payload) == Ignore(AS_IS[relative])


# --- issues.labeled --------------------------------------------------------------------------


@pytest.mark.parametrize("relative", ["issues/labeled.payload.json",
                                      "issues/labeled.with-organization.payload.json"])
def test_the_trigger_label_asks_for_a_fix(relative: str) -> None:
    payload = load_fixture(relative)
    payload["label"]["name"] = "acr:fix"
    action = classify("issues", payload)
    assert isinstance(action, FixIssue)
    assert (action.trigger, action.label) == ("label", "acr:fix")
    issue = payload["issue"]
    assert action.issue.number == issue["number"] == 1
    assert action.issue.title == issue["title"] and action.issue.body == issue["body"]
    assert action.issue.url == issue["html_url"]


def test_a_custom_trigger_label() -> None:
    payload = load_fixture("issues/labeled.payload.json")
    assert isinstance(classify("issues", payload, trigger_label="bug"), FixIssue)
    assert isinstance(classify("issues", payload, trigger_label="acr:fix"), Ignore)


def test_the_trigger_label_on_a_pull_request_is_ignored() -> None:
    payload = load_fixture("issues/labeled.payload.json")
    payload["label"]["name"] = "acr:fix"
    payload["issue"]["pull_request"] = {"url": "https://api.github.com/repos/o/r/pulls/1"}
    assert classify("issues", payload) == Ignore(
        "the trigger label is on a pull request, not an issue")


def test_a_huge_issue_body_is_cut() -> None:
    payload = load_fixture("issues/labeled.payload.json")
    payload["label"]["name"] = "acr:fix"
    payload["issue"]["body"] = "x" * 5_000_000
    action = classify("issues", payload)
    assert isinstance(action, FixIssue) and len(action.issue.body) == MAX_BODY


def test_a_null_issue_body_is_empty() -> None:
    payload = load_fixture("issues/labeled.payload.json")
    payload["label"]["name"] = "acr:fix"
    payload["issue"]["body"] = None
    action = classify("issues", payload)
    assert isinstance(action, FixIssue) and action.issue.body == ""


# --- issue_comment ---------------------------------------------------------------------------


def comment(body: str, association: str = "OWNER", relative: str = "issue_comment/"
            "created.payload.json") -> dict[str, Any]:
    payload = load_fixture(relative)
    payload["comment"]["body"] = body
    payload["comment"]["author_association"] = association
    return payload


@pytest.mark.parametrize("association", ["OWNER", "MEMBER", "COLLABORATOR"])
def test_fix_command_by_a_trusted_user(association: str) -> None:
    action = classify("issue_comment", comment("/acr fix", association))
    assert isinstance(action, FixIssue)
    assert (action.trigger, action.label) == ("comment", None)
    assert action.comment_id == 492700400
    assert action.issue.number == 1


@pytest.mark.parametrize("association", ["OWNER", "COLLABORATOR", "CONTRIBUTOR", "NONE",
                                         "FIRST_TIME_CONTRIBUTOR", None])
def test_a_command_carries_its_author_for_the_permission_check(association: str | None
                                                                ) -> None:
    # author_association decides nothing (a read-only collaborator is a COLLABORATOR): the
    # author's login goes to flows.py, which asks the API for their permission.
    payload = comment("/acr fix", association or "")
    if association is None:
        del payload["comment"]["author_association"]
    action = classify("issue_comment", payload)
    assert isinstance(action, FixIssue) and action.actor == "Codertocat"
    explain = classify("issue_comment", comment("/acr explain", association or ""))
    assert isinstance(explain, Explain) and explain.actor == "Codertocat"


def test_a_label_needs_no_permission_check() -> None:
    payload = load_fixture("issues/labeled.payload.json")
    payload["label"]["name"] = "acr:fix"
    action = classify("issues", payload)
    assert isinstance(action, FixIssue) and action.actor is None


def test_a_command_without_any_author_login_is_an_error() -> None:
    payload = comment("/acr fix")
    del payload["comment"]["user"]["login"]
    action = classify("issue_comment", payload)
    assert isinstance(action, FixIssue) and action.actor == payload["sender"]["login"]
    del payload["sender"]
    with pytest.raises(EventError, match="sender.login"):
        classify("issue_comment", payload)


@pytest.mark.parametrize("user", [
    {"login": "github-actions[bot]", "type": "Bot"},  # the default bot identity
    {"login": "dependabot[bot]", "type": "Bot"},
    {"login": "some-app[bot]", "type": "User"},  # a [bot] login, whatever its type
    {"login": "Codertocat", "type": "Bot"},  # a Bot type, whatever its login
])
def test_comments_by_bots_are_ignored(user: dict[str, str]) -> None:
    payload = comment("/acr fix")
    payload["comment"]["user"].update(user)
    action = classify("issue_comment", payload)
    assert isinstance(action, Ignore) and "bot" in action.reason


def test_a_comment_by_the_bots_own_login_is_ignored() -> None:
    payload = comment("/acr fix")  # by Codertocat, a User
    assert isinstance(classify("issue_comment", payload), FixIssue)
    action = classify("issue_comment", payload, bot_login="Codertocat")
    assert isinstance(action, Ignore) and "bot" in action.reason


def test_revise_on_a_pull_request() -> None:
    payload = comment("/acr revise  use statistics.median\nand keep the docstring", "MEMBER",
                      ON_PR)
    action = classify("issue_comment", payload)
    assert action == Revise(1, "use statistics.median\nand keep the docstring", 453012966,
                            actor="jakebolam")


def test_revise_with_the_instructions_on_the_next_line() -> None:
    action = classify("issue_comment", comment("/acr revise\nkeep it short", "MEMBER", ON_PR))
    assert action == Revise(1, "keep it short", 453012966, actor="jakebolam")


def test_revise_without_instructions_has_a_default() -> None:
    action = classify("issue_comment", comment("/acr revise", "MEMBER", ON_PR))
    assert isinstance(action, Revise) and action.instructions == "Address the review comments."


def test_revise_on_an_issue_and_fix_on_a_pr_are_refused_with_usage() -> None:
    on_issue = classify("issue_comment", comment("/acr revise x"))
    on_pr = classify("issue_comment", comment("/acr fix", "MEMBER", ON_PR))
    for action in (on_issue, on_pr):
        assert isinstance(action, Refuse) and "/acr revise <instructions>" in action.reason


@pytest.mark.parametrize("relative, is_pr", [("issue_comment/created.payload.json", False),
                                             (ON_PR, True)])
def test_explain(relative: str, is_pr: bool) -> None:
    payload = comment("/acr explain", "COLLABORATOR", relative)
    action = classify("issue_comment", payload)
    assert action == Explain(1, is_pr, payload["issue"]["title"], payload["issue"]["body"] or "",
                             actor=payload["comment"]["user"]["login"])


@pytest.mark.parametrize("body", ["/acrobat fix", "/acr-fix", "please /acr fix", "",
                                  "I think /acr fix would help"])
def test_text_that_is_not_an_acr_command_is_ignored(body: str) -> None:
    action = classify("issue_comment", comment(body))
    assert action == Ignore("comment is not a /acr command")


def test_a_custom_command_prefix() -> None:
    payload = comment("@fixer fix")
    assert isinstance(classify("issue_comment", payload, prefix="@fixer"), FixIssue)
    assert isinstance(classify("issue_comment", payload), Ignore)


def test_an_unknown_verb_is_refused_with_the_usage() -> None:
    action = classify("issue_comment", comment("/acr deploy"))
    assert isinstance(action, Refuse) and "unknown command 'deploy'" in action.reason


# --- workflow_run ----------------------------------------------------------------------------


def failed_run(relative: str = "workflow_run/completed.payload.json") -> dict[str, Any]:
    payload = load_fixture(relative)
    payload["workflow_run"]["conclusion"] = "failure"
    return payload


@pytest.mark.parametrize("relative", ["workflow_run/completed.payload.json",
                                      "workflow_run/completed.with-pull-requests.payload.json"])
def test_a_failed_run_asks_for_a_ci_fix(relative: str) -> None:
    action = classify("workflow_run", failed_run(relative))
    pulls = (2,) if "pull-requests" in relative else ()  # their files are the change's
    assert action == FixCI(289782451, "3484a3fb816e0859fd6e1cea078d76385ff50625", "master",
                           ".github/workflows/test.yml",
                           "https://github.com/octo-org/octo-repo/actions/runs/289782451", pulls)


@pytest.mark.parametrize("listed", ["not a list", [{"number": "2"}, {"number": True}, 7, None],
                                    None])
def test_malformed_pull_requests_of_a_run_are_no_pull_requests(listed: Any) -> None:
    payload = failed_run("workflow_run/completed.with-pull-requests.payload.json")
    payload["workflow_run"]["pull_requests"] = listed
    action = classify("workflow_run", payload)
    assert isinstance(action, FixCI) and action.pulls == ()


def test_a_failed_run_uses_the_workflow_name_when_there_is_one() -> None:
    payload = failed_run()
    payload["workflow_run"]["name"] = "CI"
    action = classify("workflow_run", payload)
    assert isinstance(action, FixCI) and action.workflow == "CI"


@pytest.mark.parametrize("conclusion", ["success", "cancelled", "timed_out", "skipped",
                                        "action_required", None])
def test_runs_that_did_not_fail_are_ignored(conclusion: str | None) -> None:
    payload = failed_run()
    payload["workflow_run"]["conclusion"] = conclusion
    assert classify("workflow_run", payload) == Ignore(
        f"workflow run concluded {conclusion!r}, not 'failure'")


def test_a_failed_run_from_a_fork_is_refused() -> None:
    payload = failed_run()
    payload["workflow_run"]["head_repository"]["full_name"] = "mallory/octo-repo"
    action = classify("workflow_run", payload)
    assert isinstance(action, Ignore) and "fork (mallory/octo-repo)" in action.reason


def test_a_failed_run_without_a_head_sha_is_an_event_error() -> None:
    payload = failed_run()
    payload["workflow_run"]["head_sha"] = None
    with pytest.raises(EventError, match="workflow_run.head_sha should be str, got NoneType"):
        classify("workflow_run", payload)


# --- pull_request.closed ---------------------------------------------------------------------

UNMERGED = "pull_request/closed.payload.json"
MERGED = "pull_request/robvanderleek__create-issue-branch/pull_request.closed.json"


def bot_pr(relative: str, wrapped: bool = False) -> dict[str, Any]:
    payload = load_fixture(relative)
    payload = payload["payload"] if wrapped else payload
    payload["pull_request"]["head"]["ref"] = "acr/issue-1"
    payload["pull_request"]["body"] = f"Fixes #1\n\nThe fix.\n\n{MARKER}"
    return payload


@pytest.mark.parametrize("relative, verdict", [(UNMERGED, "rejected"), (MERGED, "accepted")])
def test_closing_a_bot_pr_records_a_verdict(relative: str, verdict: str) -> None:
    payload = bot_pr(relative)
    action = classify("pull_request", payload)
    assert action == RecordVerdict(payload["pull_request"]["number"], verdict,
                                   {"task": "gh:o/r#1", "attempt": "abc", "model": "m"},
                                   "acr/issue-1")


@pytest.mark.parametrize("change", [
    lambda pr: pr["head"].__setitem__("ref", "feature"),  # not a bot branch
    lambda pr: pr.__setitem__("body", "Fixes #1"),  # no marker
    lambda pr: pr.__setitem__("body", None),
    lambda pr: pr["head"]["repo"].__setitem__("full_name", "mallory/fork"),  # a copied marker
    lambda pr: pr["head"].__setitem__("repo", None),
])
@pytest.mark.parametrize("relative", [UNMERGED, MERGED])
def test_closing_other_prs_is_ignored(relative: str, change: Any) -> None:
    payload = bot_pr(relative)
    change(payload["pull_request"])
    assert classify("pull_request", payload) == Ignore(
        "closed pull request was not opened by acr-bot")


def test_the_marker_is_read_from_anywhere_in_the_body() -> None:
    body = "text\n<!--acr-bot   task=ci:o/r@main attempt=0a1b\nmodel=replay/x-->\nmore"
    assert marker(body) == {"task": "ci:o/r@main", "attempt": "0a1b", "model": "replay/x"}
    assert marker("<!-- other-bot task=x -->") == {} and marker(None) == {}


# --- pull_request_review ---------------------------------------------------------------------


def test_changes_requested_on_a_bot_pr_records_a_verdict() -> None:
    payload = bot_pr(ANGULAR, wrapped=True)
    action = classify("pull_request_review", payload)
    assert action == RecordVerdict(35, "changes_requested",
                                   {"task": "gh:o/r#1", "attempt": "abc", "model": "m"},
                                   "acr/issue-1", revise=False, review_body="test2",
                                   actor="ocombe")


def test_changes_requested_revises_only_with_auto_revise() -> None:
    action = classify("pull_request_review", bot_pr(ANGULAR, wrapped=True), auto_revise=True)
    assert isinstance(action, RecordVerdict) and action.revise is True


@pytest.mark.parametrize("change", [
    lambda r: r.__setitem__("author_association", "CONTRIBUTOR"),
    lambda r: r.__setitem__("author_association", "NONE"),
    lambda r: r.pop("author_association"),
    lambda r: r.__setitem__("author_association", ["OWNER"]),
])
def test_a_review_carries_its_author_whatever_the_association(change: Any) -> None:
    payload = bot_pr(ANGULAR, wrapped=True)
    change(payload["review"])
    action = classify("pull_request_review", payload)
    assert isinstance(action, RecordVerdict) and action.actor == "ocombe"


def test_a_review_by_a_bot_is_ignored() -> None:
    payload = bot_pr(ANGULAR, wrapped=True)
    payload["review"]["user"]["type"] = "Bot"
    action = classify("pull_request_review", payload)
    assert isinstance(action, Ignore) and "bot" in action.reason


def test_an_approval_of_a_bot_pr_needs_nothing() -> None:
    payload = bot_pr(ANGULAR, wrapped=True)
    payload["review"]["state"] = "approved"
    assert classify("pull_request_review", payload) == Ignore(
        "review state 'approved' needs no action")


# --- everything else -------------------------------------------------------------------------


@pytest.mark.parametrize("event, action", [("push", None), ("check_run", "completed"),
                                           ("issues", "opened"), ("issue_comment", "edited"),
                                           ("workflow_run", "requested"),
                                           ("pull_request", "opened"), ("star", "created")])
def test_unknown_events_and_actions_need_nothing(event: str, action: str | None) -> None:
    payload = {"action": action} if action else {}
    suffix = f".{action}" if action else ""
    assert classify(event, payload) == Ignore(f"nothing to do for {event}{suffix}")


# --- load_payload ----------------------------------------------------------------------------


def test_load_payload_reads_a_fixture() -> None:
    assert load_payload(FIXTURES / "push/payload.json")["ref"] == "refs/tags/simple-tag"


@pytest.mark.parametrize("content, message", [
    (None, "cannot read the event payload"),
    ("{\"action\": ", "is not valid JSON"),
    ("[1, 2]", "is not a JSON object"),
    ("\"text\"", "is not a JSON object"),
    (b"\xff\xfe{}", "is not valid JSON"),
])
def test_load_payload_errors(tmp_path: Path, content: str | bytes | None, message: str) -> None:
    path = tmp_path / "event.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(EventError, match=message):
        load_payload(path)


def test_load_payload_without_a_path() -> None:
    with pytest.raises(EventError, match="GITHUB_EVENT_PATH is not set"):
        load_payload(None)


# --- fuzzing ---------------------------------------------------------------------------------

EVENTS = ["issues", "issue_comment", "workflow_run", "pull_request", "pull_request_review",
          "push", "check_run"]
ACTIONS = ["labeled", "created", "completed", "closed", "submitted", "opened"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=8)
KEYS = ["action", "issue", "label", "comment", "workflow_run", "pull_request", "review",
        "repository", "number", "title", "body", "name", "user", "author_association",
        "conclusion", "head_repository", "full_name", "head", "ref", "repo", "state", "id",
        "head_sha", "head_branch", "merged", "pull_request", "login", "type"]
MEANINGFUL = st.sampled_from(["/acr fix", "/acr revise x", "/acr explain", "/acr", "acr:fix",
                              "failure", "changes_requested", "acr/issue-1", MARKER, "OWNER",
                              "MEMBER", "Bot", "o/r", "labeled", "created", "closed"])
shaped = st.recursive(
    json_values | MEANINGFUL,
    lambda inner: st.dictionaries(st.sampled_from(KEYS) | st.sampled_from(ACTIONS), inner,
                                  max_size=5),
    max_leaves=15)


def classify_all(event: str, payload: Any) -> None:
    """Every option combination: an Action or an EventError, nothing else."""
    for auto_revise in (False, True):
        try:
            action = classify(event, payload, auto_revise=auto_revise, bot_login="acr")
        except EventError as exc:
            assert str(exc).startswith("event payload")
            continue
        assert isinstance(action, (FixIssue, Revise, Explain, FixCI, RecordVerdict, Refuse,
                                   Ignore))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=st.sampled_from(EVENTS), payload=st.dictionaries(
    st.sampled_from(KEYS), shaped, max_size=8), action=st.sampled_from(ACTIONS) | json_values)
def test_fuzz_random_payloads(event: str, payload: dict[str, Any], action: Any) -> None:
    payload["action"] = action
    classify_all(event, payload)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = []
    if isinstance(node, dict):
        for key, value in node.items():
            out.append((*prefix, key))
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node[:3]):
            out.append((*prefix, i))
            out += _paths(value, (*prefix, i))
    return out


def _interesting(relative: str) -> tuple[str, dict[str, Any]]:
    """A fixture made to reach deep into classify (a bot PR, a command, a failure)."""
    event, payload = event_of(relative)
    payload = copy.deepcopy(payload)
    if "label" in payload:
        payload["label"]["name"] = "acr:fix"
    if "comment" in payload and event == "issue_comment":
        payload["comment"]["body"] = "/acr revise x" if "pull_request" in payload["issue"] \
            else "/acr fix"
        payload["comment"]["author_association"] = "MEMBER"
    if "workflow_run" in payload:
        payload["workflow_run"]["conclusion"] = "failure"
    if event in ("pull_request", "pull_request_review"):
        payload["pull_request"]["head"]["ref"] = "acr/issue-1"
        payload["pull_request"]["body"] = MARKER
        payload.get("review", {})["state"] = "changes_requested"
        payload.get("review", {})["author_association"] = "OWNER"
        if payload["pull_request"]["head"].get("repo"):
            payload["pull_request"]["head"]["repo"]["full_name"] = payload["repository"][
                "full_name"]
    return event, payload


MUTABLE = [r for r in ALL_FIXTURES if r.split("/")[0] in (
    "issues", "issue_comment", "workflow_run", "pull_request", "pull_request_review")]
REPLACEMENTS = st.sampled_from([None, 0, 1.5, True, "", "x" * 3, [], {}, [1], {"a": 1}])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(relative=st.sampled_from(MUTABLE), data=st.data())
def test_fuzz_mangled_real_fixtures(relative: str, data: st.DataObject) -> None:
    event, payload = _interesting(relative)
    # the fields classify reads (mutating avatars and URLs would find nothing)
    paths = [p for p in _paths(payload) if all(k in KEYS for k in p if isinstance(k, str))]
    for _ in range(data.draw(st.integers(1, 4))):
        path = data.draw(st.sampled_from(paths))
        parent: Any = payload
        try:
            for key in path[:-1]:
                parent = parent[key]
            how = data.draw(st.sampled_from(["delete", "retype", "truncate"]))
            if how == "delete":
                del parent[path[-1]]
            elif how == "retype":
                parent[path[-1]] = data.draw(REPLACEMENTS)
            elif isinstance(parent[path[-1]], str):
                parent[path[-1]] = parent[path[-1]][:data.draw(st.integers(0, 5))]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or retyped the path
    classify_all(event, payload)


@pytest.mark.parametrize("relative", MUTABLE)
def test_the_fuzzed_fixtures_reach_an_action(relative: str) -> None:
    """The fuzz starts from payloads that do something, so it explores deep branches."""
    event, payload = _interesting(relative)
    action = classify(event, payload, auto_revise=True)
    assert not isinstance(action, Ignore) or "nothing to do" not in action.reason
    if relative.startswith(("pull_request/", "pull_request_review/")):
        assert isinstance(action, RecordVerdict), action


def test_a_json_round_trip_keeps_the_classification() -> None:
    event, payload = _interesting(MERGED)
    assert classify(event, json.loads(json.dumps(payload))) == classify(event, payload)


@pytest.mark.parametrize("relative", MUTABLE)
def test_every_field_deleted_or_retyped_one_at_a_time(relative: str) -> None:
    """The systematic half of the fuzz: each field classify reads, deleted, emptied, or
    replaced by every JSON type in turn."""
    event, original = _interesting(relative)
    replacements = [None, 0, -1, 1.5, True, "", "acr/x", [], [1], {}, {"a": 1}]
    paths = [p for p in _paths(original) if all(k in KEYS for k in p if isinstance(k, str))]
    assert paths
    for path in paths:
        for value in [*replacements, "DELETE"]:
            payload = copy.deepcopy(original)
            parent: Any = payload
            for key in path[:-1]:
                parent = parent[key]
            if value == "DELETE":
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
            classify_all(event, payload)
