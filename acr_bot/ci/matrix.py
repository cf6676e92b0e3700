"""A job's matrix: its combinations (GitHub's include/exclude rules) and the one init copies.

The generated job runs once, so one combination is chosen: on Linux, the newest CPython the
matrix lists (then the newest of its other version axes: Node, Go, Docutils...), and no
variant that tests something else than the code as released (minimum or pinned dependencies,
development or nightly toolchains, a typing or docs run). Pure functions.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from acr_bot.ci.expressions import equal, to_text

Entry = dict[str, Any]
VARIANT = re.compile(r"^(min|minimum|minimal|lowest\w*|oldest|pinned|msrv|dev|devel|"
                     r"development|nightly|beta|alpha|rc\d*|pre|prerelease|bleeding|head|"
                     r"typing|types|mypy|lint|docs?|experimental)$")
VERSION = re.compile(r"^v?\d+(?:\.\d+)*(?:\.x)?$")
NEWEST = ("stable", "latest", "lts", "current")  # version words that mean "the newest"


@dataclass(frozen=True)
class Choice:
    entry: Entry
    reason: str  # one line: which entry and why


def combinations(matrix: Any) -> list[Entry] | None:
    """The matrix's combinations in GitHub's order; None when it is an expression."""
    if matrix is None:
        return [{}]
    if not isinstance(matrix, Mapping):
        return None
    axes = {k: v for k, v in matrix.items() if k not in ("include", "exclude")}
    if any(not isinstance(v, list) for v in axes.values()):
        return None
    combos = [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]
    combos = [c for c in combos if not any(_matches(c, e) for e in _objects(matrix, "exclude"))]
    if not axes:
        return [dict(extra) for extra in _objects(matrix, "include")] or [{}]
    originals = list(combos)
    for extra in _objects(matrix, "include"):
        targets = [c for c in originals if all(k not in axes or equal(c[k], v)
                                               for k, v in extra.items())]
        for combo in targets:
            combo.update(extra)
        if not targets:
            combos.append(dict(extra))
    return combos


def _objects(matrix: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    items = matrix.get(key) or []
    return [i for i in items if isinstance(i, Mapping)] if isinstance(items, list) else []


def _matches(combo: Entry, pattern: Mapping[str, Any]) -> bool:
    return all(k in combo and (_matches(combo[k], v) if isinstance(v, Mapping) and isinstance(
        combo[k], Mapping) else equal(combo[k], v)) for k, v in pattern.items())


def choose(combos: Sequence[Entry], linux: Callable[[Entry], bool]) -> Choice:
    """The combination to copy, with the reason in one line."""
    if len(combos) == 1:
        only = combos[0]
        return Choice(only, f"matrix entry {describe(only)} (the only one)" if only else
                      "no matrix")
    keys = list(dict.fromkeys(k for combo in combos for k in combo))
    ranked = sorted(range(len(combos)), key=lambda i: _rank(combos[i], i, keys, linux),
                    reverse=True)
    best = combos[ranked[0]]
    why = ["Linux" if linux(best) else "no Linux entry"]
    for key, value in best.items():
        if version_of(value) and not isinstance(value, bool):
            what = "CPython" if "python" in key.lower() else key
            why.append(f"newest {what} listed ({to_text(value)})")
    why.append("no min/dev/nightly variant" if not is_variant(best) else "every entry is a variant")
    return Choice(best, f"matrix entry {describe(best)} of {len(combos)}: {', '.join(why)}")


def _rank(entry: Entry, index: int, keys: list[str], linux: Callable[[Entry], bool]
          ) -> tuple[Any, ...]:
    return (linux(entry), not is_variant(entry), _cpython(entry), _versions(entry, keys),
            -len(entry), -index)


def is_variant(entry: Mapping[str, Any]) -> bool:
    """Whether any value names a min/dev/nightly/typing... run (`py312-min`, `3.14-dev`)."""
    return any(VARIANT.match(token) for value in _values(entry)
               for token in re.split(r"[^a-z0-9]+", to_text(value).lower()) if token)


def _values(entry: Mapping[str, Any]) -> list[Any]:
    found: list[Any] = []
    for value in entry.values():
        found.extend(_values(value) if isinstance(value, Mapping) else [value])
    return found


def _cpython(entry: Entry) -> tuple[float, ...]:
    """The CPython version of the entry's python axis; () when it has none (or PyPy)."""
    for key, value in entry.items():
        if "python" in key.lower() or key.lower() in ("py", "pyver"):
            version = version_of(value)
            if version and version[0] != float("inf"):
                return version
    return ()


def _versions(entry: Entry, keys: list[str]) -> tuple[tuple[float, ...], ...]:
    """The entry's other version axes (Node, Go, Docutils...), in the matrix's key order."""
    return tuple(version_of(entry.get(k)) or (-1.0,) for k in keys if "python" not in k.lower())


def version_of(value: Any) -> tuple[float, ...]:
    """`3.12` -> (3, 12); `stable` -> (inf,); anything else -> ()."""
    text = to_text(value).strip().lower()
    if text in NEWEST:
        return (float("inf"),)
    if not VERSION.match(text):
        return ()
    return tuple(float(p) for p in text.lstrip("v").removesuffix(".x").split("."))


def describe(entry: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {to_text(v)}" for k, v in entry.items()) + "}"
