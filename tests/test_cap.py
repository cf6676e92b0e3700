"""The dollar cap is visible: which model it leaves out and why, and when it leaves fewer
models than attempts, before the first call."""

from __future__ import annotations

from click.testing import CliRunner
from conftest import PYTEST

from acr_bot.cli import cli
from tests.support import calc


def test_the_cap_says_which_model_it_leaves_out_and_why(make_repo, make_replay) -> None:
    repo = make_repo(calc.FILES)
    replay = make_replay({
        "cheap": {"input_cost_per_token": 1e-7, "output_cost_per_token": 1e-7,
                  "replies": [{"text": calc.WRONG_FIX}]},
        "strong": {"input_cost_per_token": 1e-4, "output_cost_per_token": 1e-4,
                   "replies": [{"text": calc.FIX}]}})
    result = CliRunner().invoke(cli, [
        "fix", "--harness", "edit", "--repo", str(repo), "--test-cmd", PYTEST, "--task", calc.TASK,
        "--replay-file", str(replay), "--models", "replay/cheap,replay/strong",
        "--policy", "cheapest-first", "--max-cost-usd", "0.01", "--max-attempts", "3"])
    assert result.exit_code == 3, result.output
    lines = result.output.splitlines()
    left_out = next(i for i, line in enumerate(lines)
                    if line.startswith("cap: replay/strong is left out: its worst case $"))
    assert lines[left_out].endswith(" is over the $0.0100 left of the $0.01 cap")
    fewer = lines.index("cap: only 1 model(s) fit under the $0.01 cap (replay/cheap) for up to "
                        "3 attempts: a model may be tried again")
    first_call = next(i for i, line in enumerate(lines) if line.startswith("attempt 1:"))
    assert left_out < first_call and fewer < first_call
    assert sum(line.startswith("cap: replay/strong") for line in lines) == 1  # said once
    assert "attempt 2: replay/cheap" in result.output  # the cap is why it is tried again
