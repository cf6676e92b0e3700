"""Parts of files, for when a whole file does not fit: numbered windows and a repository map.

A file too big for the budget used to be dropped; the fix is usually near a line a traceback
names or a symbol the task quotes, so those lines (and a margin around them) are shown instead,
numbered so the model can tell where it is, with `...` between windows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MARGIN = 12  # lines shown either side of an anchor
TOP_DEF_RE = re.compile(r"^(?:export\s+)?(?:pub\s+)?(?:async\s+)?"
                        r"(?:def|class|function|func|fn|struct|interface|trait|type|enum)\s+"
                        r"(?:\([^)]*\)\s*)?([A-Za-z_]\w*)", re.MULTILINE)


def definition_lines(text: str, names: Iterable[str]) -> list[int]:
    """1-based lines where one of the names is defined (at any indentation)."""
    wanted = [re.escape(n) for n in names]
    if not wanted:
        return []
    pattern = re.compile(r"^\s*(?:async\s+)?(?:def|class|function|func|fn|struct|interface|type)"
                         r"\s+(?:" + "|".join(wanted) + r")\b", re.MULTILINE)
    return [text.count("\n", 0, m.start()) + 1 for m in pattern.finditer(text)]


def word_lines(text: str, weights: dict[str, float], limit: int = 3) -> list[int]:
    """The lines whose distinct task words weigh most (rare words weigh more): anchors when
    no traceback line or definition is named."""
    if not weights:
        return []
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, weights)) + r")\b", re.IGNORECASE)
    scored = []
    for number, line in enumerate(text.splitlines(), start=1):
        hits = {m.group(1).lower() for m in pattern.finditer(line)}
        if hits:
            scored.append((-sum(weights.get(h, 0.0) for h in hits), number))
    return [number for _, number in sorted(scored)[:limit]]


def windows(text: str, anchors: Iterable[int], max_chars: int) -> str:
    """Numbered lines around the anchors (merged when close), at most `max_chars` long; the
    margin narrows when even the first window would not fit."""
    wanted = sorted(set(anchors))
    for margin in (MARGIN, MARGIN // 2, 2):
        if shown := _windows(text.splitlines(), wanted, margin, max_chars):
            return shown
    return ""


def _windows(lines: list[str], anchors: list[int], margin: int, max_chars: int) -> str:
    spans: list[list[int]] = []
    for anchor in (a for a in anchors if 1 <= a <= len(lines)):
        start, end = max(1, anchor - margin), min(len(lines), anchor + margin)
        if spans and start <= spans[-1][1] + 1:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    width = len(str(len(lines)))
    out: list[str] = []
    used = 0
    for start, end in spans:
        block = [f"{n:>{width}}| {lines[n - 1]}" for n in range(start, end + 1)]
        if start > 1:
            block.insert(0, "...")
        cost = sum(len(b) + 1 for b in block)
        if used + cost > max_chars:
            break
        out += block
        used += cost
    if out and spans and spans[-1][1] < len(lines) and used <= max_chars:
        out.append("...")
    return "\n".join(out) + ("\n" if out else "")


def top_level(text: str, limit: int = 8) -> list[str]:
    """Names a file defines at its top level (columns 0): the gist of a module in one line."""
    names = list(dict.fromkeys(m.group(1) for m in TOP_DEF_RE.finditer(text)))
    return names[:limit] + (["…"] if len(names) > limit else [])


def repo_map(entries: Iterable[tuple[str, str]], max_chars: int) -> str:
    """`path: name, name, …` lines for (path, text) pairs, in the given order, within the size."""
    out: list[str] = []
    used = 0
    for path, text in entries:
        names = top_level(text)
        line = f"{path}: {', '.join(names)}" if names else path
        if used + len(line) + 1 > max_chars:
            break
        out.append(line)
        used += len(line) + 1
    return "\n".join(out)
