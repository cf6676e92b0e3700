"""Choose what the model sees: the files that matter for a task, within a token budget.

Every source file of the tree is ranked by BM25 against the task and the test output
(`retrieval`). Evidence lifts a file above that ranking: a path the task or a traceback names, a
failing test (JUnit class ids included) and the modules it imports, the definition of a symbol the
task quotes. Evidence that points at many files at once (a bare `conf.py`, a `setUp` defined
everywhere) is split between them, so it can no longer crowd out the file the words point to.
Files are taken in that order until the budget is spent; one too big for what is left is shown
as numbered windows around the lines that matter (`excerpts`), and a map of the next-ranked
files (paths and top-level definitions) closes the context.
"""

from __future__ import annotations

import functools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from acr_bot.fixing import excerpts, retrieval
from acr_bot.routing.features import EXTENSIONS, FILE_RE

MAX_FILE_BYTES = 1_000_000
CHARS_PER_TOKEN = 4
STRONG = 4.0  # a named path or a failing test: always ahead of files found by words alone
MAX_WANTED = 40  # files considered for the prompt; the rest can only appear in the map
MIN_EXCERPT_CHARS = 1_500
# A file is shown whole if it takes at most WHOLE_SHARE of the room left, else as windows of at
# most EXCERPT_SHARE of the budget: one big module cannot push the next-ranked files out.
# Measured on benchmarks/context_recall.py (README): 1/3 of the budget showed more files in
# part but fewer whole; 2/3 of what is left keeps both above the old selection.
WHOLE_SHARE = 2 / 3
EXCERPT_SHARE = 1 / 12
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
    excerpts: dict[str, str] = field(default_factory=dict)  # path -> numbered windows
    repo_map: str = ""  # `path: top-level names` of further ranked files

    @property
    def tokens(self) -> int:
        shown = [*self.files.values(), *self.excerpts.values(), self.repo_map]
        return sum(len(text) for text in shown) // CHARS_PER_TOKEN

    @property
    def shown(self) -> tuple[str, ...]:
        """Paths the model sees, whole or in part."""
        return (*self.files, *self.excerpts)


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


@functools.lru_cache(maxsize=4)
def _by_basename(paths: tuple[str, ...]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        found[path.rsplit("/", 1)[-1]].append(path)
    return found


def _match_paths(named: Iterable[str], paths: Sequence[str]) -> list[str]:
    """Repo paths that end with a named path (tracebacks hold absolute or relative paths)."""
    by_basename = _by_basename(tuple(paths))  # a test output can name hundreds of files
    out: dict[str, None] = {}
    for name in named:
        name = name.replace("\\", "/").lstrip("./")
        for path in by_basename.get(name.rsplit("/", 1)[-1], ()):
            if path == name or name.endswith("/" + path) or path.endswith("/" + name):
                out[path] = None
    return list(out)


def _names(text: str) -> list[str]:
    names = [m.group(1) for m in FILE_RE.finditer(text)]
    names += [m.group(1) or m.group(3) for m in TRACE_FILE_RE.finditer(text)]
    return list(dict.fromkeys(n for n in names if n))


def named_files(text: str, paths: Sequence[str]) -> list[str]:
    return _match_paths(_names(text), paths)


def trace_lines(text: str, paths: Sequence[str]) -> dict[str, list[int]]:
    """Lines a traceback or a `path:line` names, per repo path: anchors for excerpts."""
    found: dict[str, list[int]] = defaultdict(list)
    for match in TRACE_FILE_RE.finditer(text):
        name, line = (match.group(1), match.group(2)) if match.group(1) else match.group(3, 4)
        for path in _match_paths([name], paths):
            found[path].append(int(line))
    return dict(found)


def symbols(text: str, limit: int = 12) -> list[str]:
    found: dict[str, None] = {}
    for match in SYMBOL_RE.finditer(text[:20_000]):
        name = next(g for g in match.groups() if g)
        found[name.rsplit(".", 1)[-1]] = None
    return [s for s in found if len(s) > 2][:limit]


def _test_modules(test_id: str) -> list[str]:
    """Candidate files of a test id, longest first: JUnit's `pkg.test_mod.TestCls::test_x` is
    `pkg/test_mod.py`, but so could `pkg/test_mod/TestCls.py` be (Java's layout)."""
    head = re.sub(r"\[.*$", "", test_id).split("::", 1)[0]
    if head.endswith(".py") or "/" in head:
        return [head]
    parts = head.split(".")
    return ["/".join(parts[:n]) + ".py" for n in range(len(parts), 0, -1)]


def test_files(test_ids: Iterable[str], paths: Sequence[str]) -> list[str]:
    """Files of failing tests: `tests/test_x.py::test_y` or JUnit's `tests.test_x.TestC::test_y`."""
    out: dict[str, None] = {}
    for test_id in test_ids:
        for candidate in _test_modules(test_id):
            if found := _match_paths([candidate], paths):
                out.update(dict.fromkeys(found))
                break
    return list(out)


def imported_files(text: str, paths: Sequence[str]) -> list[str]:
    """Repo modules a Python file imports (`from pkg.mod import x` -> pkg/mod.py)."""
    modules = re.findall(r"^\s*(?:from\s+([\w.]+)\s+import|import\s+([\w.]+))", text, re.MULTILINE)
    names = []
    for module in (a or b for a, b in modules):
        stem = module.replace(".", "/")
        names += [stem + ".py", stem + "/__init__.py"]
    return _match_paths(names, paths)


class _Evidence:
    """Weights that lift files above the BM25 ranking, and the strongest reason for each."""

    def __init__(self) -> None:
        self.weight: dict[str, float] = defaultdict(float)
        self.reason: dict[str, tuple[float, str]] = {}

    def add(self, path: str, weight: float, reason: str) -> None:
        self.weight[path] += weight
        if weight > self.reason.get(path, (0.0, ""))[0]:
            self.reason[path] = (weight, reason)

    def split(self, found: Sequence[str], weight: float, reason: str) -> None:
        """Evidence that fits several files is worth less for each: a bare `conf.py` that 116
        test roots share says little about which one the task means."""
        for path in found:
            self.add(path, weight / len(found), reason)


def _named_evidence(evidence: _Evidence, text: str, paths: Sequence[str]) -> None:
    for name in _names(text):
        found = _match_paths([name], paths)
        bare = "/" not in name.replace("\\", "/").lstrip("./")
        if len(found) == 1 or (found and not bare and len(found) <= 2):
            for path in found:
                evidence.add(path, STRONG, "named in the task or a traceback")
        elif found:
            evidence.split(found, 2.0, f"one of {len(found)} files called {name}")
    for module in dict.fromkeys(re.findall(r"\b([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)\b", text)):
        stem = module.replace(".", "/")
        if found := _match_paths([stem + ".py", stem + "/__init__.py"], paths):
            evidence.split(found, 2.0, f"module {module}, named in the task")


def _symbol_evidence(evidence: _Evidence, texts: dict[str, str], names: Sequence[str]) -> None:
    """Files defining a symbol the task names; a symbol many files define weighs little."""
    if not names:
        return
    pattern = re.compile(DEFINE_RE.format("(" + "|".join(map(re.escape, names)) + ")"),
                         re.MULTILINE)
    defining: dict[str, list[str]] = defaultdict(list)
    for path, text in texts.items():
        for name in dict.fromkeys(pattern.findall(text)):
            defining[name].append(path)
    for name, found in defining.items():
        evidence.split(found, 2.0, f"defines `{name}`, named in the task")


def _test_evidence(evidence: _Evidence, texts: dict[str, str], failing: Sequence[str],
                   paths: Sequence[str]) -> None:
    for path in test_files(failing, paths):
        evidence.add(path, STRONG, "failing test")
        for dep in imported_files(texts.get(path, ""), paths):
            evidence.add(dep, 1.0, f"imported by {path}")


def _ranked(scores: dict[str, float], evidence: _Evidence) -> list[str]:
    """Evidence first (a named file always leads), BM25 (scaled to 0..1) orders within it."""
    top = max(scores.values(), default=0.0) or 1.0
    total = {p: s / top for p, s in scores.items()}
    for path, weight in evidence.weight.items():
        total[path] = total.get(path, 0.0) + weight
    return sorted((p for p, s in total.items() if s > 0), key=lambda p: (-total[p], p))


def _read_sources(root: Path, paths: Sequence[str]) -> dict[str, str]:
    """Every readable source file of the tree (no cut by count: the last one may be the one)."""
    texts = {}
    for path in _source_files(paths):
        if (text := _read(root / path)) is not None:
            texts[path] = text
    return texts


def build_context(root: Path, task_text: str, paths: Sequence[str], *, failing: Sequence[str] = (),
                  test_output: str = "", budget_tokens: int = 24_000) -> Context:
    """Pick files for the prompt, most relevant first, until the token budget is spent."""
    texts = _read_sources(root, paths)
    evidence = _Evidence()
    _named_evidence(evidence, f"{task_text}\n{test_output}", paths)
    names = symbols(task_text)
    _symbol_evidence(evidence, texts, names)
    _test_evidence(evidence, texts, failing, paths)
    # Paths in the output are evidence already; their words would pull in every sibling file.
    query = f"{task_text}\n{TRACE_FILE_RE.sub(' ', FILE_RE.sub(' ', test_output[-4_000:]))}"
    docs = {p: retrieval.document(p, texts.get(p, "")) for p in _source_files(paths)}
    index = retrieval.Index(list(docs.values()))
    ranked = _ranked(retrieval.rank(docs, query, index), evidence)
    words = [w for w in dict.fromkeys(retrieval.tokens(task_text)) if len(w) > 3][:40]
    anchors = _Anchors(trace_lines(f"{task_text}\n{test_output}", paths), names,
                       index.rarity(words))
    reasons = {p: evidence.reason[p][1] if p in evidence.reason else "shares words with the task"
               for p in ranked}
    return _fill(texts, ranked, reasons, anchors, budget_tokens * CHARS_PER_TOKEN,
                 languages=repo_languages(paths), libraries=repo_libraries(root, paths))


@dataclass(frozen=True)
class _Anchors:
    """What marks a line as worth showing when only part of a file fits."""

    traced: dict[str, list[int]]
    names: Sequence[str]
    words: dict[str, float]  # task word -> rarity

    def lines(self, path: str, text: str) -> list[int]:
        named = self.traced.get(path, []) + excerpts.definition_lines(text, self.names)
        return named or excerpts.word_lines(text, self.words)


def _fill(texts: dict[str, str], ranked: Sequence[str], reasons: dict[str, str],
          anchors: _Anchors, budget: int, **facts: tuple[str, ...]) -> Context:
    """Whole files while they fit (none above WHOLE_SHARE of what is left), else windows;
    then the map."""
    map_chars = min(budget // 10, 6_000)
    left = budget - map_chars
    files: dict[str, str] = {}
    parts: dict[str, str] = {}
    omitted = []
    for path in ranked[:MAX_WANTED]:
        text = texts.get(path)
        if text is None:
            continue
        if len(text) <= left * WHOLE_SHARE:
            files[path] = text
            left -= len(text)
        elif left >= MIN_EXCERPT_CHARS and (
                part := excerpts.windows(text, anchors.lines(path, text),
                                         int(min(left, budget * EXCERPT_SHARE)))):
            parts[path] = part
            left -= len(part)
        else:
            omitted.append(path)
    rest = ((p, texts[p]) for p in ranked if p in texts and p not in files and p not in parts)
    return Context(files=files, reasons={p: reasons[p] for p in (*files, *parts)},
                   omitted=tuple(omitted), excerpts=parts,
                   repo_map=excerpts.repo_map(rest, map_chars), **facts)
