"""Put the values init knows into a job's expressions and leave the rest to the runner.

`init` copies steps out of a matrix job into a job that has no matrix, so every `matrix.*`
(and, for a reusable workflow, `inputs.*`) must become a value. An expression whose contexts
are all known is evaluated; one that still needs a runtime context (`github`, `env`,
`runner`, `steps`...) is written back with the known parts as literals, so the generated job
evaluates it itself; the contexts it still reads are returned, so that what the generated job
cannot have (`needs`) is left out. A test command, which runs outside Actions, gets shell
variables instead. Pure functions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from acr_bot.ci.expressions import (
    EXPRESSION,
    ExpressionError,
    Node,
    Partial,
    Unknown,
    evaluate,
    parse,
    to_text,
    truthy,
)

# Contexts a job that has no matrix and needs no other job has at run time.
RUNTIME = frozenset({"github", "env", "vars", "secrets", "runner", "steps", "job", "strategy"})

PRECEDENCE = {"||": 1, "&&": 2, "==": 3, "!=": 3, "<": 4, "<=": 4, ">": 4, ">=": 4}


def bind(node: Node, contexts: Mapping[str, Any]) -> Node:
    """`node` with every part that `contexts` decides replaced by its value."""
    try:
        result = evaluate(node, contexts)
        if not isinstance(result, Partial):  # `runner` itself stays a reference
            return Node("literal", result)
    except Unknown:
        pass
    if node.kind == "index" and node.value is None:
        return Node("index", None, (bind(node.args[0], contexts), bind(node.args[1], contexts)))
    if node.kind in ("index", "star"):
        return Node(node.kind, node.value, (bind(node.args[0], contexts),))
    return Node(node.kind, node.value, tuple(bind(a, contexts) for a in node.args))


def unparse(node: Node) -> str:
    if node.kind == "literal":
        return _literal(node.value)
    if node.kind == "ref":
        return str(node.value)
    if node.kind == "star":
        return f"{unparse(node.args[0])}.*"
    if node.kind == "index":
        base = unparse(node.args[0])
        return f"{base}.{node.value}" if node.value is not None else (
            f"{base}[{unparse(node.args[1])}]")
    if node.kind == "call":
        return f"{node.value}({', '.join(unparse(a) for a in node.args)})"
    if node.kind == "not":
        inner = unparse(node.args[0])
        return f"!({inner})" if node.args[0].kind == "binary" else f"!{inner}"
    left, right = (_operand(a, node.value) for a in node.args)
    return f"{left} {node.value} {right}"


def _operand(node: Node, operator: str) -> str:
    text = unparse(node)
    if node.kind == "binary" and PRECEDENCE[node.value] < PRECEDENCE[operator]:
        return f"({text})"
    return text


def _literal(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return to_text(value) or "null"
    if isinstance(value, (int, float)):
        return to_text(value)
    if isinstance(value, (list, dict)):
        return f"fromJSON({_literal(json.dumps(value))})"
    return "'" + str(value).replace("'", "''") + "'"


def contexts_in(node: Node) -> set[str]:
    """The context names a node still reads (`github`, `needs`...)."""
    if node.kind == "ref":
        return {str(node.value)}
    return set().union(*(contexts_in(a) for a in node.args)) if node.args else set()


@dataclass(frozen=True)
class Resolved:
    """A value with its expressions evaluated or bound; `needs` names runtime contexts left."""

    value: Any
    needs: frozenset[str] = frozenset()


def resolve(value: Any, contexts: Mapping[str, Any]) -> Resolved:
    """Every `${{ }}` in a string (or in a list's or mapping's strings) evaluated or bound.

    A string that is one whole expression takes the value's type (a matrix number stays a
    number); one with text around its expressions stays a string.
    """
    if isinstance(value, Mapping):
        parts = {k: resolve(v, contexts) for k, v in value.items()}
        return Resolved({k: r.value for k, r in parts.items()},
                        frozenset().union(*(r.needs for r in parts.values())))
    if isinstance(value, list):
        items = [resolve(v, contexts) for v in value]
        return Resolved([r.value for r in items], frozenset().union(*(r.needs for r in items)))
    if not isinstance(value, str) or "${{" not in value:
        return Resolved(value)
    whole = _whole(value)
    if whole:
        node = bind(parse(whole.group(1)), contexts)
        if node.kind == "literal":
            return Resolved(node.value)
        return Resolved("${{ " + unparse(node) + " }}", frozenset(contexts_in(node)))
    needs: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        node = bind(parse(match.group(1)), contexts)
        if node.kind == "literal":
            return to_text(node.value)
        needs.update(contexts_in(node))
        return "${{ " + unparse(node) + " }}"

    return Resolved(EXPRESSION.sub(replace, value), frozenset(needs))


def _whole(text: str) -> re.Match[str] | None:
    """The match when `text` is exactly one `${{ }}` expression."""
    matches = list(EXPRESSION.finditer(text.strip()))
    if len(matches) == 1 and matches[0].span() == (0, len(text.strip())):
        return matches[0]
    return None


def resolve_condition(condition: Any, contexts: Mapping[str, Any]) -> Resolved:
    """An `if:` (with or without `${{ }}`): True/False when decided, else the bound text."""
    if isinstance(condition, bool) or condition is None:
        return Resolved(condition is None or condition)
    text = str(condition).strip()
    whole = _whole(text)
    node = bind(parse(whole.group(1) if whole else text), contexts)
    if node.kind == "literal":
        return Resolved(truthy(node.value))
    return Resolved(unparse(node), frozenset(contexts_in(node)))


# --- a test command outside Actions ------------------------------------------------------------

# `${{ github.x }}` in a test command becomes the variable the runner sets for it.
RUNNER_VARIABLES = {
    "github.workspace": "GITHUB_WORKSPACE", "github.sha": "GITHUB_SHA", "github.ref": "GITHUB_REF",
    "github.ref_name": "GITHUB_REF_NAME", "github.repository": "GITHUB_REPOSITORY",
    "github.event_name": "GITHUB_EVENT_NAME", "github.actor": "GITHUB_ACTOR",
    "github.run_id": "GITHUB_RUN_ID", "runner.os": "RUNNER_OS", "runner.temp": "RUNNER_TEMP",
    "runner.arch": "RUNNER_ARCH"}


def shell_form(script: str, env: Mapping[str, Any]) -> tuple[str, list[str]]:
    """`${{ env.X }}` -> X's value (or `$X`), `${{ github.workspace }}` -> `$GITHUB_WORKSPACE`;
    the expressions that have no such form are returned too."""
    unknown: list[str] = []

    def replace(match: re.Match[str]) -> str:
        text = match.group(1).strip()
        try:
            parse(text)
        except ExpressionError:
            unknown.append(match.group(0))
            return match.group(0)
        if text.startswith("env.") and re.fullmatch(r"env\.[\w-]+", text):
            name = text[4:]
            value = env.get(name)
            if value is not None and "${{" not in to_text(value):
                return to_text(value)
            return f"${{{name}}}"
        if text in RUNNER_VARIABLES:
            return f"${{{RUNNER_VARIABLES[text]}}}"
        unknown.append(match.group(0))
        return match.group(0)

    converted = EXPRESSION.sub(replace, script)
    return "\n".join(line.rstrip() for line in converted.splitlines()), unknown
