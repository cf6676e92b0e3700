"""Indentation of edits: REPLACE lines re-indented from the text SEARCH matched, and the parse
check that catches what re-indenting cannot (a Python file that no longer parses is sent back
to the model with the line, before any test runs)."""

from __future__ import annotations

import ast


def reindent(found: list[str], search: list[str], replace: list[str]) -> list[str]:
    """Re-indent every REPLACE line from the text SEARCH matched (it matched ignoring
    surrounding whitespace): each SEARCH indentation maps to the file's, and the first line,
    the one models most often strip, maps on its own."""
    pairs = [(_indent(want), _indent(have)) for have, want in zip(found, search) if want.strip()]
    if not pairs:
        return replace
    table: dict[str, str] = {}
    for want, have in [*pairs[1:], pairs[0]]:  # the first line maps last: it is the least sure
        table.setdefault(want, have)
    first = next((k for k, line in enumerate(replace) if line.strip()), None)
    out = []
    for k, line in enumerate(replace):
        if not line.strip():
            out.append(line)
            continue
        indent = _indent(line)
        new = pairs[0][1] if k == first and indent == pairs[0][0] else _map_indent(table, indent)
        out.append(new + line[len(indent):])
    return out


def _map_indent(table: dict[str, str], indent: str) -> str:
    """`indent` in the file's terms: mapped exactly, else from the deepest mapped indentation it
    extends, else shifted like the shallowest one."""
    if indent in table:
        return table[indent]
    bases = [want for want in table if indent.startswith(want)]
    if bases:
        want = max(bases, key=len)
        return table[want] + indent[len(want):]
    want = min(table, key=len)
    have = table[want]
    if have.endswith(want):  # the file is deeper by a prefix: add it
        return have[: len(have) - len(want)] + indent
    cut = len(want) - len(have)
    return indent[cut:] if cut > 0 and not indent[:cut].strip() else indent


def _indent(line: str) -> str:
    """The leading whitespace of a line."""
    return line[: len(line) - len(line.lstrip())]


def python_syntax_error(path: str, text: str) -> str | None:
    """`path` does not parse: the error, its line number and the line itself; else None."""
    try:
        ast.parse(text, filename=path)
    except SyntaxError as exc:
        line = (exc.text or "").rstrip("\n")
        shown = f"\n{exc.lineno:>5} | {line}" if exc.lineno and line else ""
        return (f"{path} does not parse after the change: {type(exc).__name__}: {exc.msg} "
                f"(line {exc.lineno}; the number and '|' are not part of the file):{shown}\n"
                "The tests were not run: fix the indentation or syntax of that line.")
    except ValueError:  # NUL bytes
        return f"{path} does not parse after the change: it contains NUL bytes."
    return None
