"""Routing features: typed tokens extracted from a task, and hashed vectors built from them.

Features never hold secrets or file contents: only short tokens such as `lang:python`,
`kind:bug`, `err:KeyError`, `lib:numpy`, `file:stats.py`, `tag:bcb` and a few content words.
The memory stores the tokens; vectors are recomputed (feature hashing, no model download).
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from acr_bot.domain import Features, Task
from acr_bot.secrets import strip_secrets

if TYPE_CHECKING:
    import numpy as np

DIM = 128
MAX_COMPACT = 200  # bytes of tokens per memory record; keeps records under ~400 bytes
WEIGHTS = {"lang": 1.5, "kind": 1.5, "err": 1.5, "lib": 1.2, "file": 1.0, "tag": 2.5,
           "size": 0.8, "w": 0.6, "src": 1.0, "chg": 1.2}

EXTENSIONS = {
    "py": "python", "js": "javascript", "jsx": "javascript", "mjs": "javascript",
    "ts": "typescript", "tsx": "typescript", "go": "go", "rs": "rust", "java": "java",
    "kt": "kotlin", "rb": "ruby", "php": "php", "c": "c", "h": "c", "cc": "cpp",
    "cpp": "cpp", "hpp": "cpp", "cs": "csharp", "swift": "swift", "scala": "scala",
    "sh": "shell", "lua": "lua", "r": "r", "jl": "julia", "ex": "elixir", "dart": "dart",
}
TRACE_LANGUAGES = (
    (r"Traceback \(most recent call last\)|File \"[^\"]+\.py\", line \d+", "python"),
    (r"^panic: |^--- FAIL: Test|\.go:\d+", "go"),
    (r"thread '[^']+' panicked|cargo test|\.rs:\d+:\d+", "rust"),
    (r"at .+\((?:[^()]+\.[cm]?[jt]sx?):\d+:\d+\)|npm ERR!", "javascript"),
    (r"Exception in thread \"|at [\w.$]+\([\w]+\.java:\d+\)", "java"),
)
KINDS = {
    "test-failure": r"\bfailed\b|\bFAILED\b|assertion|test(?:s)? fail|\bCI\b|failing",
    "bug": r"\bbug\b|crash|error|exception|wrong|incorrect|broken|unexpected|regression|"
           r"\bfails?\b|doesn't work|does not work|traceback|raises",
    "feature": r"\badd\b|support|feature|implement|\ballow\b|\bnew\b|enhancement|option",
    "docs": r"\bdocs?\b|documentation|typo|docstring|readme",
    "perf": r"\bslow\b|performance|memory leak|\bfaster\b|speed",
    "refactor": r"refactor|deprecat|cleanup|clean up|rename",
    "build": r"\bbuild\b|compil|install|dependenc|packag|\bimport error\b",
    "security": r"security|vulnerab|\bCVE-|injection|\bXSS\b",
}
ERROR_RE = re.compile(r"\b([A-Z][A-Za-z0-9]*(?:Error|Exception|Warning|Fault))\b")
FILE_RE = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w-]+\.(" + "|".join(EXTENSIONS) + r"))\b")
IMPORT_RE = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", re.MULTILINE)
SITE_RE = re.compile(r"(?:site-packages|node_modules|dist-packages)/(@?[\w.-]+)")
BUILD_FILES = frozenset({"pyproject.toml", "setup.py", "setup.cfg", "requirements.txt",
                         "package.json", "package-lock.json", "yarn.lock", "go.mod", "go.sum",
                         "cargo.toml", "cargo.lock", "makefile", "dockerfile", "tox.ini",
                         "noxfile.py", "poetry.lock", "uv.lock", "pnpm-lock.yaml"})
WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{2,}")
STOPWORDS = frozenset(["the", "and", "for", "that", "this", "with", "from", "not", "are", "but", "was", "have", "has", "had", "you", "your", "when", "what", "which", "will", "would", "should", "could", "can", "cannot", "into", "then", "than", "there", "their", "they", "them", "its", "also", "just", "like", "more", "some", "such", "only", "other", "about", "after", "before", "because", "been", "being", "both", "each", "does", "doing", "done", "how", "here", "where", "while", "why", "all", "any", "most", "very", "use", "used", "using", "get", "got", "set", "one", "two", "out", "off", "over", "under", "again", "further", "once", "same", "new", "now", "way", "may", "might", "must", "need", "make", "made", "see", "seen", "seems", "issue", "issues", "please", "thanks", "thank", "hello", "want", "expected", "actual", "example", "following", "instead", "code", "file", "line", "lines", "run", "running", "work", "works", "working", "test", "tests", "error", "errors", "bug", "fix", "return", "returns", "value", "values", "true", "false", "none", "null", "self", "def", "class", "import", "print"])


def _sanitize(token: str) -> str:
    return re.sub(r"\s+", "_", token.strip())[:60]


def languages(text: str, language: str | None = None, files: Iterable[str] = ()) -> list[str]:
    """Languages named by metadata, by file extensions, or by traceback styles."""
    found: Counter[str] = Counter()
    if language:
        found[language.lower()] += 100
    for path in files:
        ext = path.rsplit(".", 1)[-1].lower() if "." in path else ""
        if ext in EXTENSIONS:
            found[EXTENSIONS[ext]] += 2
    for pattern, lang in TRACE_LANGUAGES:
        if re.search(pattern, text, re.MULTILINE):
            found[lang] += 3
    return [lang for lang, _ in found.most_common(2)]


def task_kind(text: str, source: str = "cli") -> str:
    if source == "ci":
        return "test-failure"
    head = text[:4000]
    scores = {kind: len(re.findall(pattern, head, re.IGNORECASE)) for kind, pattern in KINDS.items()}
    best = max(scores, key=lambda k: scores[k])
    return best if scores[best] else "other"


def error_types(text: str, limit: int = 3) -> list[str]:
    found = Counter(ERROR_RE.findall(text))
    if re.search(r"\bpanic(?:ked)?\b", text):
        found["panic"] += 1
    if re.search(r"segmentation fault|SIGSEGV", text, re.IGNORECASE):
        found["segfault"] += 1
    return [name for name, _ in found.most_common(limit)]


def mentioned_files(text: str, limit: int = 3) -> list[str]:
    seen = dict.fromkeys(m.group(1) for m in FILE_RE.finditer(text))
    return [p for p in seen if not p.startswith(".")][:limit]


def libraries(text: str, known: Iterable[str] = (), limit: int = 3) -> list[str]:
    """Libraries imported in code snippets, seen in traceback paths, or known deps named in text."""
    found: Counter[str] = Counter()
    for name in IMPORT_RE.findall(text) + SITE_RE.findall(text):
        found[name.lower()] += 2
    words = {w.lower() for w in WORD_RE.findall(text[:20_000])}
    for dep in known:
        if dep.lower() in words:
            found[dep.lower()] += 1
    return [name for name, _ in found.most_common(limit)]


def content_words(text: str, limit: int = 8) -> list[str]:
    """The most frequent informative words (identifiers split on case and underscores)."""
    counts: Counter[str] = Counter()
    for word in WORD_RE.findall(text[:20_000]):
        for part in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", word):
            part = part.lower()
            if len(part) >= 3 and part not in STOPWORDS and not part.isdigit():
                counts[part] += 1
    return [w for w, _ in counts.most_common(limit)]


def extract(text: str, *, language: str | None = None, tags: Sequence[str] = (),
            source: str = "cli", known_libraries: Iterable[str] = (),
            repo_languages: Sequence[str] = (), files: Sequence[str] = (),
            changed: Sequence[str] = ()) -> Features:
    """Features of a task from its text and metadata; deterministic, no I/O.

    `tags`: what the event says about the task (repository, issue labels); `source`: the
    trigger (issue, ci, revise, cli; a benchmark row has none); `files`: failing test files
    the bot saw (test ids `path::name` are cut to their path); `changed`: the paths the
    triggering change touched (a red CI run's commit or pull request)."""
    text = strip_secrets(text)
    files = list(dict.fromkeys([*(f.split("::", 1)[0] for f in files[:3]),
                                *mentioned_files(text)]))[:4]
    langs = languages(text, language, [*files, *changed]) or list(repo_languages[:1])
    tokens = [f"lang:{x}" for x in langs]
    tokens += [f"kind:{task_kind(text, source)}"]
    tokens += [f"tag:{_sanitize(t)}" for t in tags]
    tokens += [f"src:{source}"] if source != "bench" else []
    tokens += [f"err:{x}" for x in error_types(text)]
    tokens += [f"lib:{x}" for x in libraries(text, known_libraries)]
    tokens += [f"file:{p.rsplit('/', 1)[-1]}" for p in files]
    tokens += changed_tokens(changed)
    tokens += [f"size:{int(math.log2(len(text) + 1))}"]
    tokens += [f"w:{w}" for w in content_words(text)]
    return Features(_fit(tokens))


def changed_tokens(paths: Sequence[str], limit: int = 3) -> list[str]:
    """What a change touched, coarsely: its top folders (`chg:src`, `chg:docs`) and whether
    it touched tests or the build (`chg:tests`, `chg:build`), most touched first. A change
    to the lock file breaks CI differently from one to the parser."""
    found: Counter[str] = Counter()
    for path in paths[:300]:
        parts = path.strip("/").split("/")
        name = parts[-1].lower()
        if any(re.fullmatch(r"tests?|__tests__|spec", p) for p in parts[:-1]) or re.match(
                r"(test_.*|.*_test)\.\w+$|.*\.(test|spec)\.\w+$", name):
            found["tests"] += 1
        elif name in BUILD_FILES or parts[0] in (".github", "ci", ".ci"):
            found["build"] += 1
        else:
            found[parts[0] if len(parts) > 1 else "root"] += 1
    return [f"chg:{_sanitize(k)}" for k, _ in found.most_common(limit)]


def cell_key(features: Features) -> str:
    """A task's cell: its language, kind and metadata tags (what a static table keys on)."""
    return " ".join(sorted(t for t in features.tokens if t.split(":", 1)[0] in ("lang", "kind",
                                                                                 "tag")))


def task_features(task: Task, known_libraries: Iterable[str] = (),
                  repo_languages: Sequence[str] = (), files: Sequence[str] = ()) -> Features:
    return extract(task.text, language=task.language, tags=task.tags, source=task.source,
                   known_libraries=known_libraries, repo_languages=repo_languages, files=files,
                   changed=task.changed)


def _fit(tokens: list[str]) -> tuple[str, ...]:
    """Unique tokens, trimmed from the end (content words go first) to MAX_COMPACT bytes."""
    out: list[str] = []
    size = 0
    for token in dict.fromkeys(_sanitize(t) for t in tokens):
        width = len(token.encode()) + 1  # bytes: file names and tags may be non-ASCII
        if size + width > MAX_COMPACT:
            continue
        out.append(token)
        size += width
    return tuple(out)


# --- vectors -------------------------------------------------------------------------------

_SLOTS: dict[str, tuple[int, float]] = {}


def _slot(token: str) -> tuple[int, float]:
    """Hash bucket and signed weight of one token (memoised: tokens repeat a lot)."""
    slot = _SLOTS.get(token)
    if slot is None:
        h = zlib.crc32(token.encode())
        kind = token.split(":", 1)[0]
        sign = 1.0 if (h >> 31) & 1 else -1.0
        slot = (h % DIM, sign * WEIGHTS.get(kind, 1.0))
        if len(_SLOTS) < 1_000_000:
            _SLOTS[token] = slot
    return slot


def vectorize(tokens: Iterable[str]) -> np.ndarray:
    """An L2-normalised float32 vector of DIM dims (signed feature hashing)."""
    import numpy as np  # here, not at import: the CLI starts without numpy

    vec = np.zeros(DIM, dtype=np.float32)
    for token in tokens:
        index, weight = _slot(token)
        vec[index] += weight
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm else vec


def matrix(compacts: Sequence[str]) -> np.ndarray:
    """Vectors for many compact feature strings, each distinct string hashed once."""
    import numpy as np

    unique: dict[str, int] = {}
    index = np.fromiter((unique.setdefault(c, len(unique)) for c in compacts), dtype=np.int64,
                        count=len(compacts))
    rows = np.zeros((len(unique), DIM), dtype=np.float32)
    for compact, row in unique.items():
        rows[row] = vectorize(compact.split())
    return rows[index] if len(compacts) else np.zeros((0, DIM), dtype=np.float32)
