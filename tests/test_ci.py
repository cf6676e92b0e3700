"""The pure parts of reading a CI workflow (acr_bot/ci/): GitHub's expression rules, matrix
combinations and the entry init copies, and what a `run:` script does. No files, no network.
The real workflows are in test_init_corpus.py."""

from __future__ import annotations

import pytest

from acr_bot.ci.commands import is_check, read_script
from acr_bot.ci.expressions import Partial, evaluate, parse
from acr_bot.ci.matrix import choose, combinations, is_variant
from acr_bot.ci.resolve import resolve, resolve_condition, shell_form


def value(text: str, **contexts: object) -> object:
    return evaluate(parse(text), contexts)


@pytest.mark.parametrize(("text", "expected"), [
    ("matrix.tox || format('py{0}', matrix.python)", "py3.12"),  # click, flask
    ("matrix.npm-i != ''", False),  # express: a missing key is null, and null == ''
    ("matrix.target == ''", True),
    ("!(matrix.os == 'ubuntu-latest' && matrix.python == '3.12') && '--cov' || '--no-cov'",
     "--no-cov"),  # polars
    ("matrix.OS == 'UBUNTU-LATEST'", True),  # names and strings ignore case
    ("matrix.python == 3.12", True),  # mixed types compare as numbers
    ("startsWith(matrix.os, 'ubuntu') && 'Linux' || 'other'", "Linux"),
    ("fromJSON('{\"ubuntu-latest\":\"Ubuntu\"}')[matrix.os]", "Ubuntu"),  # urllib3
    ("matrix.xfail && true || false", False),
    ("format('{{0}} {0}', 'a')", "{0} a"),
])
def test_expressions_follow_githubs_rules(text: str, expected: object) -> None:
    assert value(text, matrix={"python": "3.12", "os": "ubuntu-latest", "target": None}) == (
        expected)


def test_what_only_the_runner_knows_is_kept_with_the_known_parts_bound() -> None:
    known = {"matrix": {"python": "3.12", "go": 18}}
    assert resolve("${{ runner.os }}-1.${{ matrix.go }}.x-${{ hashFiles('go.sum') }}",
                   known).value == "${{ runner.os }}-1.18.x-${{ hashFiles('go.sum') }}"
    condition = resolve_condition("github.ref_name != 'main' && matrix.python == '3.12'", known)
    assert condition.value == "github.ref_name != 'main' && true"
    assert condition.needs == {"github"}
    assert resolve("${{ needs.build.outputs.key }}", known).needs == {"needs"}
    assert resolve("${{ matrix.go }}", known).value == 18  # a whole expression keeps its type
    assert resolve_condition("! matrix.use_coverage", {"matrix": {}}).value is True
    linux = {"runner": Partial({"os": "Linux"})}  # the generated job runs on Linux
    assert resolve_condition("runner.os == 'Windows'", linux).value is False  # vite, pip
    assert resolve("${{ runner.temp }}/x", linux).value == "${{ runner.temp }}/x"


def test_a_test_command_gets_shell_variables_for_what_actions_would_fill_in() -> None:
    script, unknown = shell_form(
        "${{ env.CARGO }} test ${{ env.TARGET_FLAGS }}\ncd ${{ github.workspace }} && "
        "${{ env.LATER }} ${{ steps.x.outputs.y }}", {"CARGO": "cargo", "TARGET_FLAGS": ""})
    assert script == "cargo test\ncd ${GITHUB_WORKSPACE} && ${LATER} ${{ steps.x.outputs.y }}"
    assert unknown == ["${{ steps.x.outputs.y }}"]


def test_matrix_include_and_exclude_as_github_documents_them() -> None:
    # docs.github.com: "Expanding or adding matrix configurations"
    matrix = {"fruit": ["apple", "pear"], "animal": ["cat", "dog"],
              "include": [{"color": "green"}, {"color": "pink", "animal": "cat"},
                          {"fruit": "apple", "shape": "circle"}, {"fruit": "banana"},
                          {"fruit": "banana", "animal": "cat"}]}
    assert combinations(matrix) == [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"}]
    excluded = {"os": ["a", "b"], "v": [1, 2], "exclude": [{"os": "a", "v": 2}]}
    assert combinations(excluded) == [{"os": "a", "v": 1}, {"os": "b", "v": 1},
                                      {"os": "b", "v": 2}]
    assert combinations("${{ fromJSON(needs.a.outputs.m) }}") is None
    assert combinations({"include": [{"x": 1}, {"x": 2}]}) == [{"x": 1}, {"x": 2}]


def test_the_entry_is_linux_newest_cpython_and_no_variant() -> None:
    combos = combinations({"python": ["3.9", "3.12", "3.13-dev", "pypy-3.10"],
                           "os": ["ubuntu-latest", "windows-latest"],
                           "include": [{"python": "3.12", "os": "ubuntu-latest",
                                        "deps": "minimum"}]})
    assert combos is not None
    choice = choose(combos, lambda e: e["os"] == "ubuntu-latest")
    # the include entry merged into 3.12/ubuntu (it overwrites nothing): a variant, so the
    # plain 3.12 is gone; then 3.9 on Linux is the newest plain entry
    assert combos[2] == {"python": "3.12", "os": "ubuntu-latest", "deps": "minimum"}
    assert choice.entry == {"python": "3.9", "os": "ubuntu-latest"}
    assert "Linux" in choice.reason and "3.9" in choice.reason
    assert is_variant({"tox": "py312-min"}) and is_variant({"python": "3.15-dev"})
    assert not is_variant({"os": "ubuntu-latest", "deps": "latest", "python": "3.14"})


@pytest.mark.parametrize(("script", "runner"), [
    ("tox -e generate-gh-release-notes -- \"$VERSION\" notes.md", None),  # pytest's release
    ("pip install coverage tox", None),  # cachetools' install step
    ("tox", "tox"),
    ("uv run --locked --no-default-groups --group dev tox run", "tox"),
    ("tox -e docs-checklinks", None),
    ("coverage run --include='x/*.py' -m unittest", "unittest"),
    (". venv/bin/activate\npip install .\npython -m pytest tests/", "pytest"),
    ("RICHGO_FORCE_COLOR=1 PATH=$HOME/go/bin/:$PATH make test", "make test"),
    ("make ci", None),
    ("npm run test-ci", "npm test"),
    ("pnpm run test-docs", None),
    ("cargo test --all-features --no-run -p x", None),  # a build
    ("cargo test --workspace", "cargo test"),
    ("go test ./...", "go test"),
    ("nox -s test-3.12", "nox"),
    ("nox -s lint", None),
    ("hatch test", "hatch test"),
    ("uv run pre-commit run --all-files", None),
])
def test_what_a_run_script_does(script: str, runner: str | None) -> None:
    assert read_script(script).runner == runner


def test_installs_and_checks_are_not_tests() -> None:
    assert read_script("uv sync --upgrade").installs
    assert read_script("python -m pip install -U pip").installs
    assert is_check("Run static analysis", "hatch fmt --check")
    assert is_check("Check types", "hatch run types:check")
    assert is_check("", "cargo fmt --all --check") and is_check("", "python -m pyright src")
    assert not is_check("Run tests", "make test")


def test_a_workflow_that_runs_on_tags_only_is_a_release() -> None:
    from pathlib import Path

    from acr_bot.ci.workflows import Workflow

    release = Workflow(Path("r.yml"), {"on": {"push": {"tags": ["v*"]}}, "jobs": {}})
    ci = Workflow(Path("c.yml"), {"on": {"push": {"branches": ["main"], "tags": ["v*"]}},
                                  "jobs": {}})
    assert "push" not in release.triggers and "push" in ci.triggers
    assert Workflow(Path("x.yml"), {"on": "push", "jobs": {}}).triggers == {"push"}
