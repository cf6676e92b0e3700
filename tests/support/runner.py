"""A small stand-in for the GitHub Actions runner: runs a job's steps the way the runner does.

`run:` steps go to `bash --noprofile --norc -eo pipefail` (the runner's bash) with the
runner's variables (RUNNER_OS, RUNNER_TEMP, RUNNER_TOOL_CACHE, GITHUB_ACTION_PATH, ...), and
the file commands are honoured between steps: GITHUB_PATH entries are prepended to PATH,
GITHUB_ENV is exported, GITHUB_OUTPUT becomes `steps.<id>.outputs`. `uses: ./` expands the
composite action.yml with its inputs (defaults included); `if:` and `${{ }}` expressions are
evaluated for the forms action.yml uses. Marketplace actions have stand-ins:
actions/setup-python (its python-path output: a given interpreter) and
actions/cache/restore and /save (a folder per key).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class StepResult:
    name: str
    code: int
    seconds: float
    output: str
    outputs: dict[str, str]


@dataclass
class Job:
    """One job on one runner: a temp folder, an event, the cache stand-in, a python."""

    root: Path  # the runner's folders live here
    action_path: Path  # the checkout of acr-bot (GITHUB_ACTION_PATH for `uses: ./`)
    workspace: Path
    cache_dir: Path  # actions/cache stand-in: one sub-folder per key
    python: str  # what actions/setup-python answers as python-path
    env: dict[str, str]  # the job's environment (GITHUB_*, secrets passed through env:)
    timeout: float = 600
    steps: dict[str, dict[str, str]] = field(default_factory=dict)
    results: list[StepResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.temp = self.root / "_temp"
        self.tool_cache = self.root / "toolcache"
        for folder in (self.temp, self.tool_cache, self.cache_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.path_file = self.temp / "_runner_file_commands" / "add_path"
        self.env_file = self.temp / "_runner_file_commands" / "set_env"
        self.path_file.parent.mkdir(parents=True, exist_ok=True)
        self.path_file.touch()
        self.env_file.touch()

    # --- the job ---------------------------------------------------------------------------

    def run(self, steps: list[Mapping[str, Any]]) -> list[StepResult]:
        for step in steps:
            if str(step.get("uses", "")) == "./":
                self._composite(step.get("with") or {}, step.get("env") or {},
                                step.get("id"))
            else:
                self._step(step, {}, {})
        return self.results

    def _composite(self, given: Mapping[str, Any], env: Mapping[str, str],
                   step_id: str | None) -> None:
        action = yaml.safe_load((self.action_path / "action.yml").read_text())
        inputs = {name: str(given.get(name, self._expand(str(spec.get("default", "")), {})))
                  for name, spec in action["inputs"].items()}
        outer, self.steps = self.steps, {}  # the action's steps have their own namespace
        try:
            for step in action["runs"]["steps"]:
                self._step(step, inputs, env)
            outputs = {name: self._expand(spec["value"], inputs)
                       for name, spec in action.get("outputs", {}).items()}
        finally:
            self.steps = outer
        if step_id:
            self.steps[step_id] = outputs

    def _step(self, step: Mapping[str, Any], inputs: Mapping[str, str],
              env: Mapping[str, str]) -> None:
        condition = step.get("if")
        if condition is not None and not self._condition(str(condition), inputs):
            return
        uses = str(step.get("uses", ""))
        values = {k: self._expand(str(v), inputs) for k, v in (step.get("with") or {}).items()}
        if uses.startswith("actions/setup-python@"):
            outputs = {"python-path": self.python}
            self.results.append(StepResult(uses, 0, 0.0, "", outputs))
        elif uses.startswith("actions/cache/restore@"):
            outputs = self._restore(values["key"], values["path"])
        elif uses.startswith("actions/cache/save@"):
            outputs = self._save(values["key"], values["path"])
        elif "run" in step:
            outputs = self._shell(step, inputs, env)
        else:
            raise AssertionError(f"no stand-in for step {step}")
        if step.get("id"):
            self.steps[str(step["id"])] = outputs

    # --- stand-ins -------------------------------------------------------------------------

    def _restore(self, key: str, path: str) -> dict[str, str]:
        started = time.monotonic()
        hit = (self.cache_dir / key).is_dir()
        if hit:
            shutil.rmtree(path, ignore_errors=True)
            shutil.copytree(self.cache_dir / key, path, symlinks=True)
        self.results.append(StepResult("actions/cache/restore", 0, time.monotonic() - started,
                                       "", {"cache-hit": str(hit).lower()}))
        return {"cache-hit": str(hit).lower()}

    def _save(self, key: str, path: str) -> dict[str, str]:
        started = time.monotonic()
        if not (self.cache_dir / key).exists():  # a key is written once, as on GitHub
            shutil.copytree(path, self.cache_dir / key, symlinks=True)
        self.results.append(StepResult("actions/cache/save", 0, time.monotonic() - started,
                                       "", {}))
        return {}

    def _shell(self, step: Mapping[str, Any], inputs: Mapping[str, str],
               env: Mapping[str, str]) -> dict[str, str]:
        assert step.get("shell", "bash") == "bash", step
        script = self.temp / f"step{len(self.results)}.sh"
        script.write_text(self._expand(str(step["run"]), inputs))
        output_file = self.temp / f"output{len(self.results)}"
        output_file.touch()
        environment = {**self._environment(), **{k: self._expand(str(v), inputs)
                                                for k, v in env.items()},
                       **{k: self._expand(str(v), inputs)
                          for k, v in (step.get("env") or {}).items()},
                       "GITHUB_OUTPUT": str(output_file)}
        started = time.monotonic()
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                              cwd=self.workspace, env=environment, capture_output=True,
                              text=True, timeout=self.timeout, check=False)
        name = str(step.get("name") or step["run"])[:60]
        outputs = _file_command(output_file.read_text())
        self.results.append(StepResult(name, done.returncode, time.monotonic() - started,
                                       done.stdout + done.stderr, outputs))
        if done.returncode != 0:
            raise StepFailed(self.results[-1])
        return outputs

    def _environment(self) -> dict[str, str]:
        added = [line for line in self.path_file.read_text().splitlines() if line.strip()]
        env = {**self.env, **_file_command(self.env_file.read_text()),
               "RUNNER_OS": "Linux", "RUNNER_ARCH": "X64", "RUNNER_TEMP": str(self.temp),
               "RUNNER_TOOL_CACHE": str(self.tool_cache), "GITHUB_ACTIONS": "true",
               "CI": "true", "GITHUB_WORKSPACE": str(self.workspace),
               "GITHUB_ACTION_PATH": str(self.action_path), "GITHUB_PATH": str(self.path_file),
               "GITHUB_ENV": str(self.env_file)}
        env["PATH"] = ":".join([*reversed(added), self.env.get("PATH", "/usr/bin:/bin")])
        return env

    # --- expressions -----------------------------------------------------------------------

    def _value(self, expression: str, inputs: Mapping[str, str]) -> str:
        parts = expression.split(".")
        if parts[0] == "inputs":
            return inputs[parts[1]]
        if parts[0] == "steps" and parts[2] == "outputs":
            return self.steps.get(parts[1], {}).get(parts[3], "")
        if expression == "github.token":
            return self.env.get("GITHUB_TOKEN", "")
        literal = re.fullmatch(r"'(.*)'", expression)
        if literal:
            return literal.group(1)
        raise AssertionError(f"the runner stand-in cannot evaluate {expression!r}")

    def _expand(self, text: str, inputs: Mapping[str, str]) -> str:
        return EXPRESSION.sub(lambda m: self._value(m.group(1), inputs), text)

    def _condition(self, condition: str, inputs: Mapping[str, str]) -> bool:
        inner = EXPRESSION.fullmatch(condition.strip())
        text = inner.group(1) if inner else condition.strip()
        match = re.fullmatch(r"(\S+)\s*(==|!=)\s*(\S+)", text)
        assert match, f"the runner stand-in cannot evaluate if: {condition!r}"
        left, right = self._value(match.group(1), inputs), self._value(match.group(3), inputs)
        return (left == right) == (match.group(2) == "==")


class StepFailed(Exception):
    def __init__(self, result: StepResult) -> None:
        super().__init__(f"step {result.name!r} exited {result.code}:\n{result.output[-6000:]}")
        self.result = result


def _file_command(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT / GITHUB_ENV: `name=value` lines and `name<<DELIMITER` heredocs."""
    found: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, i + 1)
            found[name] = "\n".join(lines[i + 1:end])
            i = end + 1
            continue
        if "=" in line:
            name, value = line.split("=", 1)
            found[name] = value
        i += 1
    return found
