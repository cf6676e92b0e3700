"""The agent's protocol next to the scaffold its routing data came from: mini-SWE-agent 1.x's
SWE-bench configuration, kept verbatim in tests/fixtures/mini-swe-agent/ and rendered here with
Jinja as the scaffold renders it. Every difference not listed in ARCHITECTURE.md fails a test."""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import pytest
import yaml

from acr_bot.domain import TestRun
from acr_bot.fixing import agent_prompts as P
from acr_bot.fixing.agent import observation, submission
from acr_bot.verify.process import OutputBuffer

FIXTURES = Path(__file__).parent / "fixtures" / "mini-swe-agent"
SCAFFOLD = yaml.safe_load((FIXTURES / "swebench.yaml").read_text())
DEFAULTS = yaml.safe_load((FIXTURES / "agent-defaults.yaml").read_text())
# The instance template's sections that differ on purpose (ARCHITECTURE.md, "The agent next
# to its scaffold"); every other section must be the scaffold's, word for word.
CHANGED_SECTIONS = {"Important Boundaries", "Command Execution Rules", "Environment Details",
                    "Submission"}


def render(template: str, **values: object) -> str:
    return jinja2.Template(template, undefined=jinja2.StrictUndefined).render(**values)


def scaffold_observation(returncode: int, output: str) -> str:
    template = SCAFFOLD["agent"]["action_observation_template"]
    return render(template, output={"returncode": returncode, "output": output})


def captured(output: str, limit: int = 10_000) -> str:
    """What acr-bot keeps of `output` while the command runs (head and tail)."""
    buffer = OutputBuffer(limit)
    buffer.write(output.encode())
    return buffer.text()


def sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1].strip() for i in range(1, len(parts), 2)}


def ours_instance(reproduce: bool = False) -> str:
    boundaries, workflow = ((P.REPRODUCE_BOUNDARIES, P.REPRODUCE_WORKFLOW) if reproduce
                            else (P.BOUNDARIES, P.WORKFLOW))
    return P.INSTANCE.format(task="{{task}}", protected="x", test_command="t", baseline="b",
                             boundaries=boundaries.format(protected="x", layout="tests/"),
                             workflow=workflow.format(layout="tests/"),
                             new_tests=P.NEW_TESTS.format(layout="tests/"),
                             command_seconds=60, network=P.NO_NETWORK, submit=P.SUBMIT,
                             submit_naming=P.SUBMIT_NAMING, history="")


def test_the_system_prompt_and_format_error_are_the_scaffolds() -> None:
    assert P.SYSTEM == SCAFFOLD["agent"]["system_template"].rstrip("\n")
    scaffold = render(SCAFFOLD["agent"]["format_error_template"], actions=["a", "b"])
    assert P.FORMAT_ERROR.format(found=2) == scaffold.rstrip("\n")


def test_the_first_prompt_is_the_scaffolds_but_the_listed_sections() -> None:
    theirs = sections(render(SCAFFOLD["agent"]["instance_template"], task="{{task}}"))
    ours = sections(ours_instance())
    assert ours.keys() == theirs.keys()
    for name in theirs.keys() - CHANGED_SECTIONS:
        assert ours[name] == theirs[name], name
    # The changed sections keep the scaffold's lines, in order, and add or drop only these.
    rules = theirs["Command Execution Rules"].splitlines()
    assert [line for line in ours["Command Execution Rules"].splitlines()
            if "is killed after" not in line] == rules
    environment = theirs["Environment Details"].splitlines()
    assert ours["Environment Details"].splitlines() == [
        line for line in environment if "you can install it" not in line]
    submission_ = theirs["Submission"].removesuffix("</instructions>")
    assert ours["Submission"].startswith(submission_)  # the same line, then naming new files
    assert ours_instance().startswith(render(SCAFFOLD["agent"]["instance_template"],
                                             task="{{task}}").split("## Overview")[0])


def test_an_issues_first_prompt_differs_only_in_boundaries_and_workflow() -> None:
    """When nothing fails before the change, the agent is told to write a reproducing test:
    steps 2 and 4 of the workflow, and the boundaries, differ; nothing else does."""
    plain, issue = sections(ours_instance()), sections(ours_instance(reproduce=True))
    assert plain.keys() == issue.keys()
    assert {name for name in plain if plain[name] != issue[name]} == {
        "Important Boundaries", "Recommended Workflow"}
    theirs = render(SCAFFOLD["agent"]["instance_template"], task="{{task}}")
    workflow = sections(theirs)["Recommended Workflow"].splitlines()
    ours = issue["Recommended Workflow"].splitlines()
    assert [i for i, (a, b) in enumerate(zip(workflow, ours)) if a != b] == [1, 3]
    assert "Write a test that reproduces the issue in the repository's tests (tests/)" in ours[1]


def test_the_submission_line_is_the_scaffolds() -> None:
    assert f"```bash\n{P.SUBMIT}\n```" in SCAFFOLD["agent"]["instance_template"]
    assert P.SENTINEL in DEFAULTS["submit_lines"]


@pytest.mark.parametrize("output", ["1 2 3\n", "no newline at the end", "", "a\n\n\n",
                                    "x" * 9_999])
def test_short_output_is_shown_as_the_scaffold_shows_it(output: str) -> None:
    run = TestRun("cmd", 0, 0.1, captured(output))
    assert observation(run, 60) == scaffold_observation(0, output)


def test_long_output_keeps_head_and_tail_as_the_scaffold_does() -> None:
    output = "".join(f"line {i}\n" for i in range(5_000))  # 43,890 characters
    run = TestRun("cmd", 1, 0.1, captured(output))
    assert observation(run, 60) == scaffold_observation(1, output)


def test_a_timeout_says_what_the_scaffold_says_and_the_limit() -> None:
    theirs = render(DEFAULTS["timeout_template"], action={"action": "sleep 600"},
                    output="partial\n")
    run = TestRun("sleep 600", None, 120.0, "partial\n")
    ours = observation(run, 120)
    assert ours.replace(" after 120 seconds", "") == theirs


@pytest.mark.parametrize(("output", "line"), [
    # The scaffold's own submission line: the diff after the sentinel names nothing.
    (f"{P.SENTINEL}\ndiff --git a/calc.py b/calc.py\n--- a/calc.py\n+++ b/calc.py\n",
     P.SENTINEL),
    (f"\n  {P.SENTINEL} src/new.py\n", f"{P.SENTINEL} src/new.py"),
    (f"{P.SENTINEL}X\n", None),  # not the sentinel
    (f"building\n{P.SENTINEL}\n", None),  # only the first line counts, as in the scaffold
])
def test_only_the_first_line_of_the_output_submits(output: str, line: str | None) -> None:
    assert submission(TestRun("echo", 0, 0.0, output)) == line


def test_the_prompt_says_there_is_no_network_only_where_it_is_true() -> None:
    from acr_bot.domain import Task
    from acr_bot.fixing.agent import opening
    from acr_bot.fixing.harness import Brief

    brief = Brief(Task("t", "title"), "pytest", TestRun("pytest", 0, 0.1, ""))
    local = opening(brief, 60, network=True)[1]["content"]
    docker = opening(brief, 60, network=False)[1]["content"]
    assert "There is no network" not in local and "There is no network." in docker
