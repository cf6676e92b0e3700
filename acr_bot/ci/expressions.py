"""GitHub Actions expressions (what is inside `${{ ... }}`): parse and evaluate them.

Evaluation follows GitHub's rules: loose `==` (mixed types compare as numbers, strings ignore
case), `||` and `&&` return an operand, `format`, `startsWith`, `contains`, `fromJSON`...
A context that is not given raises Unknown: the runner alone knows it. Pure functions.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
TOKEN = re.compile(r"""\s*(?:
    (?P<string>'(?:[^']|'')*')
  | (?P<number>-?(?:0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?))
  | (?P<op>==|!=|<=|>=|&&|\|\||[!<>()\[\],.*])
  | (?P<name>[A-Za-z_][\w-]*)
)""", re.VERBOSE)

class Partial(dict):  # type: ignore[type-arg]
    """A context of which only some properties are known: a missing one is Unknown, not null
    (the generated job runs on Linux, so `runner.os` is known; `runner.temp` is not)."""


class ExpressionError(ValueError):
    """The text is not an expression this module can read."""


class Unknown(Exception):  # a control signal (evaluation stops), not an error
    """Evaluation needs a context only the runner has."""


@dataclass(frozen=True)
class Node:
    kind: str  # literal, ref, index, call, not, binary, star
    value: Any = None
    args: tuple[Node, ...] = ()


def parse(text: str) -> Node:
    tokens = _tokens(text)
    node, rest = _or(tokens)
    if rest:
        raise ExpressionError(f"unexpected {rest[0][1]!r} in {text.strip()!r}")
    return node


def _tokens(text: str) -> list[tuple[str, str]]:
    found, position = [], 0
    while text[position:].strip():
        match = TOKEN.match(text, position)
        if not match:
            raise ExpressionError(f"cannot read {text[position:].strip()[:20]!r}")
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind)))
        position = match.end()
    return found


Tokens = list[tuple[str, str]]


def _binary(next_level: Callable[[Tokens], tuple[Node, Tokens]], operators: set[str]
            ) -> Callable[[Tokens], tuple[Node, Tokens]]:
    def level(tokens: Tokens) -> tuple[Node, Tokens]:
        left, tokens = next_level(tokens)
        while tokens and tokens[0] == ("op", tokens[0][1]) and tokens[0][1] in operators:
            operator = tokens[0][1]
            right, tokens = next_level(tokens[1:])
            left = Node("binary", operator, (left, right))
        return left, tokens
    return level


def _unary(tokens: Tokens) -> tuple[Node, Tokens]:
    if tokens and tokens[0] == ("op", "!"):
        operand, rest = _unary(tokens[1:])
        return Node("not", None, (operand,)), rest
    return _postfix(tokens)


def _postfix(tokens: Tokens) -> tuple[Node, Tokens]:
    node, tokens = _primary(tokens)
    while tokens and tokens[0][1] in (".", "["):
        if tokens[0][1] == ".":
            if len(tokens) < 2:
                raise ExpressionError("a property name must follow '.'")
            name = tokens[1][1]
            node = Node("star", None, (node,)) if name == "*" else Node("index", name, (node,))
            tokens = tokens[2:]
        else:
            key, tokens = _or(tokens[1:])
            tokens = _expect(tokens, "]")
            node = Node("index", None, (node, key))
    return node, tokens


def _primary(tokens: Tokens) -> tuple[Node, Tokens]:
    if not tokens:
        raise ExpressionError("the expression ends too early")
    (kind, text), rest = tokens[0], tokens[1:]
    if kind == "string":
        return Node("literal", text[1:-1].replace("''", "'")), rest
    if kind == "number":
        return Node("literal", _number(text)), rest
    if text == "(":
        node, rest = _or(rest)
        return node, _expect(rest, ")")
    if kind != "name":
        raise ExpressionError(f"unexpected {text!r}")
    if text in ("true", "false", "null"):
        return Node("literal", {"true": True, "false": False, "null": None}[text]), rest
    if rest and rest[0][1] == "(":
        args, rest = _arguments(rest[1:])
        return Node("call", text, tuple(args)), rest
    return Node("ref", text), rest


def _arguments(tokens: Tokens) -> tuple[list[Node], Tokens]:
    args: list[Node] = []
    while tokens and tokens[0][1] != ")":
        arg, tokens = _or(tokens)
        args.append(arg)
        if tokens and tokens[0][1] == ",":
            tokens = tokens[1:]
    return args, _expect(tokens, ")")


def _expect(tokens: Tokens, symbol: str) -> Tokens:
    if not tokens or tokens[0][1] != symbol:
        raise ExpressionError(f"expected {symbol!r}")
    return tokens[1:]


def _number(text: str) -> float | int:
    value = float(int(text, 16)) if "x" in text.lower() else float(text)
    return int(value) if value.is_integer() else value


_compare = _binary(_unary, {"<", "<=", ">", ">="})
_equality = _binary(_compare, {"==", "!="})
_and = _binary(_equality, {"&&"})
_or = _binary(_and, {"||"})


# --- evaluation --------------------------------------------------------------------------------


def evaluate(node: Node, contexts: Mapping[str, Any]) -> Any:
    """The node's value; raises Unknown when it needs a context not in `contexts`."""
    if node.kind == "literal":
        return node.value
    if node.kind == "ref":
        if node.value not in contexts:
            raise Unknown(node.value)
        return contexts[node.value]
    if node.kind == "index":
        return _index(node, contexts)
    if node.kind == "not":
        return not truthy(evaluate(node.args[0], contexts))
    if node.kind == "binary":
        return _binary_value(node, contexts)
    if node.kind == "call":
        return _call(node.value, [evaluate(a, contexts) for a in node.args])
    raise Unknown(node.kind)  # `a.*` filters need the runner's objects


def _index(node: Node, contexts: Mapping[str, Any]) -> Any:
    base = evaluate(node.args[0], contexts)
    key = node.value if len(node.args) == 1 else evaluate(node.args[1], contexts)
    if isinstance(base, Mapping):
        lowered = {str(k).lower(): v for k, v in base.items()}
        if isinstance(base, Partial) and str(key).lower() not in lowered:
            raise Unknown(str(key))
        return lowered.get(str(key).lower())
    if isinstance(base, list) and isinstance(key, (int, float)) and 0 <= key < len(base):
        return base[int(key)]
    return None


def _binary_value(node: Node, contexts: Mapping[str, Any]) -> Any:
    operator = node.value
    left = evaluate(node.args[0], contexts)
    if operator == "&&":
        return evaluate(node.args[1], contexts) if truthy(left) else left
    if operator == "||":
        return left if truthy(left) else evaluate(node.args[1], contexts)
    right = evaluate(node.args[1], contexts)
    if operator in ("==", "!="):
        return equal(left, right) == (operator == "==")
    if isinstance(left, str) and isinstance(right, str):
        return _ordered(operator, left.lower(), right.lower())
    return _ordered(operator, _to_number(left), _to_number(right))


def _ordered(operator: str, a: Any, b: Any) -> bool:
    return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[operator])


def _call(name: str, args: list[Any]) -> Any:
    lowered = name.lower()
    if lowered == "format" and args:
        return _format(str(to_text(args[0])), [to_text(a) for a in args[1:]])
    if lowered in ("startswith", "endswith") and len(args) == 2:
        text, part = to_text(args[0]).lower(), to_text(args[1]).lower()
        return text.startswith(part) if lowered == "startswith" else text.endswith(part)
    if lowered == "contains" and len(args) == 2:
        if isinstance(args[0], list):
            return any(equal(item, args[1]) for item in args[0])
        return to_text(args[1]).lower() in to_text(args[0]).lower()
    if lowered == "fromjson" and len(args) == 1:
        return json.loads(to_text(args[0]))
    if lowered == "tojson" and len(args) == 1:
        return json.dumps(args[0], indent=2)
    if lowered == "join" and args:
        separator = to_text(args[1]) if len(args) > 1 else ","
        items = args[0] if isinstance(args[0], list) else [args[0]]
        return separator.join(to_text(i) for i in items)
    raise Unknown(name)  # hashFiles, success(), always()...: the runner knows


def _format(template: str, values: list[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) in ("{{", "}}"):
            return match.group(0)[0]
        return values[int(match.group(1))] if int(match.group(1)) < len(values) else ""
    return re.sub(r"\{\{|\}\}|\{(\d+)\}", replace, template)


def truthy(value: Any) -> bool:
    if isinstance(value, float) and math.isnan(value):
        return False
    return isinstance(value, (list, dict)) or value not in (None, False, 0, "")


def _to_number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip() or 0)
        except ValueError:
            return math.nan
    return math.nan


def equal(left: Any, right: Any) -> bool:
    """GitHub's loose equality: strings ignore case; other mixed types compare as numbers."""
    if isinstance(left, str) and isinstance(right, str):
        return left.lower() == right.lower()
    if isinstance(left, (list, dict)) or isinstance(right, (list, dict)):
        return left is right
    return _to_number(left) == _to_number(right)


def to_text(value: Any) -> str:
    """How a value reads when an expression is put into a string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)
