"""Choose what the model sees: the files that matter for a task, within a token budget.

Priority: files named in the task or in tracebacks, files defining symbols the task names,
failing tests and the modules they import, then files ranked by word overlap with the task.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from acr_bot.routing.features import EXTENSIONS, FILE_RE

MAX_FILE_BYTES = 200_000
MAX_SCANNED = 3_000
CHARS_PER_TOKEN = 4
# The lookbehind starts `path:line` only at a token's start: without it, a long word in a test's
# output (64 KB of "xxx...") costs quadratic time, seconds per call.
TRACE_FILE_RE = re.compile(r"File \"([^\"]+)\", line (\d+)|(?<![\w./-])([\w./-]+\.\w+):(\d+)")
SYMBOL_RE = re.compile(r"`([A-Za-z_][\w.]*)(?:\(\))?`|\b([A-Za-z_]\w*_\w+|[a-z]+[A-Z]\w*|"
                       r"[A-Z][a-z]+[A-Z]\w*)\b|\b(\w+)\(\)")
DEFINE_RE = r"^\s*(?:async\s+)?(?:def|class|function|func|fn|struct|interface|type|const|let)\s+{}\b"
DEP_PATTERNS = {
    "requirements.txt": r"^\s*([A-Za-z0-9_.-]+)",
    "pyproject.toml": r"^\s*\"([A-Za-z0-9_.-]+)\s*[<>=!~;\[\"]",
    "package.json": r"^\s*\"(@?[\w./-]+)\"\s*:\s*\"[\^~<>=*\d]",
    "go.mod": r"^\s*(?:require\s+)?([\w.-]+/[\w./-]+)\s+v",
    "Cargo.toml": r"^\s*([\w-]+)\s*=\s*(?:\"|\{)",
}


@dataclass(frozen=True)
class Context:
    """The files shown to the model, and repo facts used as routing features."""

    files: dict[str, str]
    reasons: dict[str, str] = field(default_factory=dict)  # path -> why it was chosen
    omitted: tuple[str, ...] = ()  # wanted but over budget
    languages: tuple[str, ...] = ()
    libraries: tuple[str, ...] = ()

    @property
    def tokens(self) -> int:
        return sum(len(text) for text in self.files.values()) // CHARS_PER_TOKEN


def _source_files(paths: Iterable[str]) -> list[str]:
    return [p for p in paths if p.rsplit(".", 1)[-1].lower() in EXTENSIONS]


def repo_languages(paths: Sequence[str]) -> tuple[str, ...]:
    counts = Counter(EXTENSIONS[p.rsplit(".", 1)[-1].lower()] for p in _source_files(paths))
    return tuple(lang for lang, _ in counts.most_common(2))


def repo_libraries(root: Path, paths: Sequence[str], limit: int = 40) -> tuple[str, ...]:
    """Declared dependencies (names only), so features can spot libraries a task mentions."""
    found: dict[str, None] = {}
    for path in paths:
        name = path.rsplit("/", 1)[-1]
        pattern = DEP_PATTERNS.get("requirements.txt" if name.startswith("requirements")
                                   and name.endswith(".txt") else name)
        if pattern and path.count("/") <= 1:
            text = _read(root / path) or ""
            for dep in re.findall(pattern, text, re.MULTILINE):
                found[dep.split("/")[-1].lower()] = None
    return tuple(list(found)[:limit])


def _read(path: Path) -> str | None:
    try:
        if path.is_symlink() or path.stat().st_size > MAX_FILE_BYTES:
            return None
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _match_paths(named: Iterable[str], paths: Sequence[str]) -> list[str]:
    """Repo paths that end with a named path (tracebacks hold absolute or relative paths)."""
    out: dict[str, None] = {}
    for name in named:
        name = name.replace("\\", "/").lstrip("./")
        for path in paths:
            if path == name or name.endswith("/" + path) or path.endswith("/" + name):
                out[path] = None
    return list(out)


def named_files(text: str, paths: Sequence[str]) -> list[str]:
    names = [m.group(1) for m in FILE_RE.finditer(text)]
    names += [m.group(1) or m.group(3) for m in TRACE_FILE_RE.finditer(text)]
    return _match_paths([n for n in names if n], paths)


def symbols(text: str, limit: int = 12) -> list[str]:
    found: dict[str, None] = {}
    for match in SYMBOL_RE.finditer(text[:20_000]):
        name = next(g for g in match.groups() if g)
        found[name.rsplit(".", 1)[-1]] = None
    return [s for s in found if len(s) > 2][:limit]


def test_files(test_ids: Iterable[str], paths: Sequence[str]) -> list[str]:
    """Files of failing tests: `tests/test_x.py::test_y` or JUnit's `tests.test_x`."""
    names = []
    for test_id in test_ids:
        head = test_id.split("::", 1)[0]
        names.append(head if head.endswith(".py") else head.replace(".", "/") + ".py")
    return _match_paths(names, paths)


def imported_files(text: str, paths: Sequence[str]) -> list[str]:
    """Repo modules a Python file imports (`from pkg.mod import x` -> pkg/mod.py)."""
    modules = re.findall(r"^\s*(?:from\s+([\w.]+)\s+import|import\s+([\w.]+))", text, re.MULTILINE)
    names = []
    for module in (a or b for a, b in modules):
        stem = module.replace(".", "/")
        names += [stem + ".py", stem + "/__init__.py"]
    return _match_paths(names, paths)


def _overlap_ranked(root: Path, task_words: set[str], paths: Sequence[str]) -> list[str]:
    scored = []
    for path in _source_files(paths)[:MAX_SCANNED]:
        text = _read(root / path)
        if text is None:
            continue
        words = set(re.findall(r"[a-z]{3,}", (path + " " + text[:50_000]).lower()))
        score = len(task_words & words)
        if score:
            scored.append((score, path))
    scored.sort(key=lambda sp: (-sp[0], sp[1]))
    return [p for _, p in scored]


def _defining(root: Path, names: Sequence[str], paths: Sequence[str]) -> list[str]:
    if not names:
        return []
    pattern = re.compile("|".join(DEFINE_RE.format(re.escape(n)) for n in names), re.MULTILINE)
    out = []
    for path in _source_files(paths)[:MAX_SCANNED]:
        text = _read(root / path)
        if text and pattern.search(text):
            out.append(path)
    return out


def build_context(root: Path, task_text: str, paths: Sequence[str], *, failing: Sequence[str] = (),
                  test_output: str = "", budget_tokens: int = 24_000) -> Context:
    """Pick files for the prompt, most relevant first, until the token budget is spent."""
    evidence = f"{task_text}\n{test_output}"
    wanted: dict[str, str] = {}
    for path in named_files(evidence, paths):
        wanted.setdefault(path, "named in the task or a traceback")
    for path in _defining(root, symbols(task_text), paths):
        wanted.setdefault(path, "defines a symbol the task names")
    for path in test_files(failing, paths):
        wanted.setdefault(path, "failing test")
        for dep in imported_files(_read(root / path) or "", paths):
            wanted.setdefault(dep, f"imported by {path}")
    words = set(re.findall(r"[a-z]{3,}", task_text.lower()))
    for path in _overlap_ranked(root, words, paths)[:20]:
        wanted.setdefault(path, "shares words with the task")
    return _fill(root, wanted, paths, budget_tokens)


def _fill(root: Path, wanted: dict[str, str], paths: Sequence[str], budget: int) -> Context:
    files: dict[str, str] = {}
    omitted = []
    left = budget * CHARS_PER_TOKEN
    for path in wanted:
        text = _read(root / path)
        if text is None:
            continue
        if len(text) > left:
            omitted.append(path)
            continue
        files[path] = text
        left -= len(text)
    return Context(files=files, reasons={p: wanted[p] for p in files}, omitted=tuple(omitted),
                   languages=repo_languages(paths), libraries=repo_libraries(root, paths))
