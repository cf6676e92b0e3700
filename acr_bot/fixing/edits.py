"""The SEARCH/REPLACE edit format: parse, apply and render edits, with model-facing errors.

Which paths may be edited is decided in paths.py (`check_paths`, re-exported here).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from difflib import SequenceMatcher
from pathlib import Path, PurePosixPath

from acr_bot.domain import Edit
from acr_bot.errors import EditError
from acr_bot.fixing.indent import python_syntax_error, reindent
from acr_bot.fixing.paths import check_paths, matches_glob

__all__ = ["FORMAT_INSTRUCTIONS", "apply_edits", "apply_to_tree", "check_paths", "format_edits",
           "make_edits", "matches_glob", "parse_edits", "python_syntax_error"]

FORMAT_INSTRUCTIONS = """\
Describe every change as a SEARCH/REPLACE block, like this:

path/to/file.py
```python
<<<<<<< SEARCH
the existing lines to change, copied exactly
=======
the lines to put in their place
>>>>>>> REPLACE
```

Rules:
- Put the file's path alone on the line before the block. Paths are relative to the repository
  root: no absolute paths, no `..`.
- SEARCH must be an exact copy of lines that exist in the file now: same indentation, comments,
  blank lines and quotes. Never abbreviate with "..." and never copy line numbers.
- Include enough lines in SEARCH to match one place in the file only, but keep blocks short:
  the lines to change plus a few unique lines around them.
- Use one block per change. Several blocks may edit the same file; they apply in order, each to
  the result of the previous ones.
- To delete lines, leave REPLACE empty.
- To create a new file, leave SEARCH empty and put the whole content of the file in REPLACE.
- Never make tests pass by deleting, skipping, weakening or xfail-marking them: fix the code
  under test instead.
"""

# Parse errors end with the example alone: the rules are already in the system prompt.
_FORMAT_BRIEF = FORMAT_INSTRUCTIONS.split("\nRules:")[0]

# Models miscount marker characters, so accept 5-9; markers must still start the line.
_HEAD = re.compile(r"^<{5,9} ?SEARCH>?\s*$", re.IGNORECASE)
_DIVIDER = re.compile(r"^={5,9}\s*$")
_TAIL = re.compile(r"^>{5,9} ?REPLACE<?\s*$", re.IGNORECASE)
_FENCE = re.compile(r"^\s*(```|~~~)")
_MAX_SHOWN = 40  # lines of a file quoted back to the model in one error
# No real answer comes near these; a reply past them is garbage or an attack (a 10 MB file, or
# thousands of blocks whose failures each cost a fuzzy search of the file).
MAX_BLOCKS = 200
MAX_WRITE_CHARS = 1_000_000


# ---------------------------------------------------------------------------- parsing


def parse_edits(text: str) -> list[Edit]:
    """Read the SEARCH/REPLACE blocks of a model's reply; [] when it holds none."""
    lines = text.replace("\r\n", "\n").split("\n")
    edits: list[Edit] = []
    problems: list[str] = []
    i, block_end, path = 0, 0, ""
    while i < len(lines):
        if _TAIL.match(lines[i]):
            problems.append(
                f"Block {len(edits) + len(problems) + 1} (reply line {i + 1}): "
                "found >>>>>>> REPLACE without a <<<<<<< SEARCH line before it."
            )
            i += 1
            block_end = i
        elif _HEAD.match(lines[i]):
            number = len(edits) + len(problems) + 1
            # Blocks that follow one another with no path line in between keep the previous path.
            path = _path_before(lines, i, block_end) or path
            end, edit, problem = _read_block(lines, i, path)
            if edit is None:
                problems.append(f"Block {number} (reply line {i + 1}): {problem}")
            else:
                edits.append(edit)
            i = block_end = end
        else:
            i += 1
    if problems:
        raise EditError(
            "Your edit blocks are malformed:\n" + "\n".join(problems) + "\n\n" + _FORMAT_BRIEF
        )
    return edits


def _read_block(lines: list[str], head: int, path: str) -> tuple[int, Edit | None, str]:
    """Read one block from its SEARCH line: (next line index, edit, problem)."""
    i = head + 1
    while i < len(lines) and not _DIVIDER.match(lines[i]):
        if _HEAD.match(lines[i]) or _TAIL.match(lines[i]):
            # Resume at a following SEARCH, but swallow this block's own REPLACE marker.
            return i + bool(_TAIL.match(lines[i])), None, "the SEARCH section has no ======= line."
        i += 1
    if i == len(lines):
        return i, None, "the SEARCH section has no ======= line."
    divider = i
    i += 1
    # A ======= inside REPLACE is content (reStructuredText underlines): only REPLACE ends it.
    while i < len(lines) and not _TAIL.match(lines[i]):
        if _HEAD.match(lines[i]):
            return i, None, "the block has no >>>>>>> REPLACE line at its end."
        i += 1
    if i == len(lines):
        return i, None, "the block has no >>>>>>> REPLACE line at its end."
    if not path:
        return i + 1, None, "no file path on the line before <<<<<<< SEARCH."
    search, replace = lines[head + 1 : divider], lines[divider + 1 : i]
    return i + 1, Edit(path, _join(search), _join(replace)), ""


def _path_before(lines: list[str], head: int, stop: int) -> str:
    """The path: the last non-blank, non-fence line before `head`, undecorated."""
    for line in reversed(lines[stop:head]):
        if line.strip() and not _FENCE.match(line):
            return _clean_path(line)
    return ""


def _clean_path(line: str) -> str:
    """Strip the decorations models put around a path: **, backticks, quotes, '#', ':'."""
    previous, path = None, line
    while path != previous:
        previous = path
        path = path.strip().lstrip("#").strip().strip("*`'\"").rstrip(":")
    return path


def _join(lines: list[str]) -> str:
    """Lines back to text, every line ending in a newline."""
    return "".join(line + "\n" for line in lines)


def format_edits(edits: Sequence[Edit]) -> str:
    """Render edits as the SEARCH/REPLACE text that parse_edits reads."""
    blocks = [
        f"{e.path}\n```\n<<<<<<< SEARCH\n{_join(_lines_of(e.search))}=======\n"
        f"{_join(_lines_of(e.replace))}>>>>>>> REPLACE\n```\n"
        for e in edits
    ]
    return "\n".join(blocks)


# ---------------------------------------------------------------------------- applying


class _Failure(Exception):
    """One block did not apply; the message is written for the model."""


def apply_edits(files: Mapping[str, str | None], edits: Sequence[Edit]) -> dict[str, str]:
    """Apply edits in order to `files` (None: absent); return the changed files' new content.

    A path missing from `files` counts as absent. Raises one EditError listing every failed block.
    """
    current = dict(files)
    failures: list[str] = []
    for number, edit in enumerate(edits, 1):
        try:
            # An earlier block may leave no newline to learn from: keep the original's style.
            eol = _eol(files.get(edit.path) or "")
            current[edit.path] = _apply_one(current.get(edit.path), edit, eol)
        except _Failure as failure:
            failures.append(f"## Block {number}: {edit.path}\n{failure}")
    if failures:
        raise EditError(
            f"{len(failures)} of {len(edits)} edit blocks failed, so none was applied and the "
            "files are unchanged.\n\n" + "\n\n".join(failures) + "\n\nReply with corrected "
            "SEARCH/REPLACE blocks for ALL your changes, including the blocks that were fine."
        )
    return {p: c for p, c in current.items() if c is not None and c != files.get(p)}


def _apply_one(content: str | None, edit: Edit, eol: str) -> str:
    """The content after one edit; raises _Failure."""
    if edit.creates:
        # An existing empty file (a fresh __init__.py) can only be filled by "creating" it.
        if content and _lines_of(content) != _lines_of(edit.replace):
            raise _Failure(
                "The file already exists, so it cannot be created with an empty SEARCH. To change "
                "it, SEARCH for the existing lines to replace."
            )
        return edit.replace if not content else content
    if content is None:
        raise _Failure(
            "The file does not exist. Check the path (relative to the repository root); to "
            "create a new file, leave SEARCH empty."
        )
    lines, eol, final_newline = _load(content, eol)
    bodies = [_body(line) for line in lines]
    search, replace = _lines_of(edit.search), _lines_of(edit.replace)
    start = _locate(bodies, search, replace)
    found = bodies[start : start + len(search)]
    if found != search:
        replace = reindent(found, search, replace)
    lines[start : start + len(search)] = [body + eol for body in replace]
    return _dump(lines, final_newline)


def _locate(bodies: list[str], search: list[str], replace: list[str]) -> int:
    """Where `search` matches once: exactly, else ignoring surrounding whitespace."""
    for strip in (False, True):
        starts = _matches(bodies, search, strip)
        if len(starts) == 1:
            return starts[0]
        if len(starts) > 1:
            where = ", ".join(str(s + 1) for s in starts[:10])
            raise _Failure(
                f"The SEARCH text matches {len(starts)} places (starting at lines {where}). "
                "Add more of the surrounding lines to SEARCH so that it matches exactly one place."
            )
    if not bodies:
        raise _Failure("The file is empty: fill it with an empty SEARCH and the whole content.")
    hint = ""
    if _matches(bodies, replace, strip=True):
        hint = "\nThe REPLACE lines are already in the file: maybe this change is already made."
    return _not_found(bodies, search, hint)


def _not_found(bodies: list[str], search: list[str], hint: str) -> int:
    """Raise the not-found failure, quoting the file lines most like `search`."""
    start, ratio = _closest(bodies, search)
    shown = bodies[start : start + min(len(search), _MAX_SHOWN)]
    numbered = "\n".join(f"{start + k + 1:>5} | {line}" for k, line in enumerate(shown))
    raise _Failure(
        "The SEARCH text was not found in the file. SEARCH must copy existing lines exactly.\n"
        f"The closest lines in the file ({ratio:.0%} similar; the numbers and '|' are not part "
        f"of the file):\n{numbered}{hint}"
    )


def _matches(bodies: list[str], search: list[str], strip: bool = False) -> list[int]:
    """Start indexes where `search` equals a run of lines (ignoring surrounding blanks: strip)."""
    if strip:
        bodies, search = [line.strip() for line in bodies], [line.strip() for line in search]
    n = len(search)
    if n == 0:
        return []
    return [i for i in range(len(bodies) - n + 1) if bodies[i : i + n] == search]


def _closest(bodies: list[str], search: list[str]) -> tuple[int, float]:
    """The start and similarity of the window of len(search) lines most like `search`."""
    matcher = SequenceMatcher(None, autojunk=False)
    matcher.set_seq2("\n".join(search))  # seq2 is the one SequenceMatcher caches
    best, best_ratio = 0, -1.0
    for start in range(max(1, len(bodies) - len(search) + 1)):
        matcher.set_seq1("\n".join(bodies[start : start + len(search)]))
        # The cheap upper bounds skip most windows without the quadratic ratio().
        if matcher.real_quick_ratio() > best_ratio and matcher.quick_ratio() > best_ratio:
            ratio = matcher.ratio()
            if ratio > best_ratio:
                best, best_ratio = start, ratio
    return best, best_ratio


def _lines_of(text: str) -> list[str]:
    """A SEARCH/REPLACE text as lines: a missing final newline is implied, CRLF becomes LF."""
    text = text.replace("\r\n", "\n")
    return text.removesuffix("\n").split("\n") if text else []


def _body(line: str) -> str:
    """A file line without its line ending."""
    return line.removesuffix("\n").removesuffix("\r")


def _eol(content: str, default: str = "\n") -> str:
    """The line ending most of the file's lines use."""
    if "\n" not in content:
        return default
    return "\r\n" if content.count("\r\n") * 2 > content.count("\n") else "\n"


def _load(content: str, default_eol: str) -> tuple[list[str], str, bool]:
    """Split a file into lines that keep their endings; also its usual ending and final newline."""
    eol = _eol(content, default_eol)
    final_newline = content == "" or content.endswith("\n")
    if not final_newline:
        content += eol  # restored by _dump, so blocks can match the last line as a whole line
    return [part + "\n" for part in content.split("\n")[:-1]], eol, final_newline


def _dump(lines: list[str], final_newline: bool) -> str:
    """Join lines back, restoring a missing final newline."""
    text = "".join(lines)
    return text if final_newline else text.removesuffix("\n").removesuffix("\r")


# ---------------------------------------------------------------------------- building


def make_edits(path: str, old: str | None, new: str) -> list[Edit]:
    """Blocks that turn `old` into `new` (None or "": a creation), each unique where it applies.

    The result keeps old's line endings and final-newline state: blocks cannot change those.
    """
    if not old:
        return [Edit(path, "", new)] if old is None or new else []
    current, target = _lines_of(old), _lines_of(new)
    edits: list[Edit] = []
    opcodes = SequenceMatcher(None, current, target, autojunk=False).get_opcodes()
    for tag, i1, i2, j1, j2 in opcodes:
        if tag == "equal":
            continue
        # Earlier blocks already turned old[:i1] into new[:j1], so this change starts at j1.
        lo, hi = _unique_span(current, j1, j1 + i2 - i1)
        replace = current[lo:j1] + target[j1:j2] + current[j1 + i2 - i1 : hi]
        edits.append(Edit(path, _join(current[lo:hi]), _join(replace)))
        current[lo:hi] = replace
    return edits


def _unique_span(lines: list[str], lo: int, hi: int) -> tuple[int, int]:
    """Grow lines[lo:hi] by context, alternately above and below, until it is unique and non-empty."""
    above = True
    while (hi == lo or len(_matches(lines, lines[lo:hi])) > 1) and (lo > 0 or hi < len(lines)):
        if (above and lo > 0) or hi == len(lines):
            lo -= 1
        else:
            hi += 1
        above = not above
    return lo, hi


# ---------------------------------------------------------------------------- the tree


def apply_to_tree(root: Path, edits: Sequence[Edit], protected: Sequence[str]) -> list[str]:
    """Check, apply and write edits under `root`; return the changed paths, sorted.

    Nothing is written unless every check and every block succeeds.
    """
    _check_size(edits)
    check_paths(root, edits, protected)
    edits = [Edit("/".join(PurePosixPath(e.path).parts), e.search, e.replace) for e in edits]
    files = {e.path: _read(root, e.path) for e in edits}
    results = apply_edits(files, edits)
    _check_syntax(files, results)
    for path, content in results.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode("utf-8"))
    return sorted(results)


def _check_syntax(before: Mapping[str, str | None], after: Mapping[str, str]) -> None:
    """Raise EditError when a Python file that parsed before the edits no longer does."""
    for path, content in after.items():
        if not path.endswith(".py"):
            continue
        problem = python_syntax_error(path, content)
        if problem and not python_syntax_error(path, before.get(path) or ""):
            raise EditError(f"{problem}\nNone of the edits was applied: reply with corrected "
                            "SEARCH/REPLACE blocks for ALL your changes.")


def _check_size(edits: Sequence[Edit]) -> None:
    """Raise EditError when a reply has more blocks, or more text, than any real fix needs."""
    if len(edits) > MAX_BLOCKS:
        raise EditError(
            f"Too many edit blocks: the reply has {len(edits)} edit blocks, and at most "
            f"{MAX_BLOCKS} are accepted in one reply. Nothing was applied: make the smallest "
            "change that solves the task."
        )
    size = sum(len(e.replace) for e in edits)
    if size > MAX_WRITE_CHARS:
        raise EditError(
            f"The edits are too large: they would write {size:,} characters, and at most "
            f"{MAX_WRITE_CHARS:,} are accepted in one reply. Nothing was applied: make a smaller "
            "change."
        )


def _read(root: Path, path: str) -> str | None:
    """A file's text, or None when it does not exist; non-UTF-8 content is an EditError."""
    target = root / path
    if not target.exists():
        return None
    try:
        return target.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EditError(f"{path} is not valid UTF-8 text, so it cannot be edited.") from exc
