"""BM25 over a repository's files: the one importer of `bm25s`.

Identifiers are split the way code names things (`parse_url`, `parseUrl` -> parse, url) and kept
whole, so a task saying "the url parser" and one quoting `parse_url` both reach the file. BM25
weights rare words up (inverse document frequency) and normalises by file length, so a big file
no longer wins just by containing more words.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence

from acr_bot.routing.features import STOPWORDS

IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
CAMEL_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
# Python keywords and noise every source file has: they only dilute the score.
NOISE = STOPWORDS | frozenset(["elif", "else", "lambda", "pass", "raise", "try", "except",
                               "finally", "yield", "async", "await", "assert", "global", "del",
                               "with", "as", "is", "in", "or", "if", "not", "args", "kwargs"])
INDEXED_CHARS = 100_000  # of each file: enough for its vocabulary, bounded for huge files


def tokens(text: str) -> list[str]:
    """Lower-case words of code or prose: identifiers whole plus their snake/camel parts."""
    out: list[str] = []
    for ident in IDENT_RE.findall(text):
        out.extend(_split(ident))
    return out


@functools.lru_cache(maxsize=100_000)
def _split(ident: str) -> tuple[str, ...]:
    # Cached: a repository repeats the same identifiers thousands of times.
    parts = [p for piece in ident.split("_") for p in CAMEL_RE.findall(piece)]
    whole = ident.strip("_").lower()
    out = [whole] if len(parts) > 1 and whole not in NOISE and len(whole) > 2 else []
    return (*out, *(p.lower() for p in parts if len(p) > 2 and p.lower() not in NOISE))


def path_tokens(path: str) -> list[str]:
    """A file's path as words (`sphinx/ext/autodoc/__init__.py` -> sphinx, ext, autodoc)."""
    return tokens(re.sub(r"[/.\-]", " ", path.rsplit(".", 1)[0]))


class Index:
    """BM25 scores of every document for one query; documents are token lists."""

    def __init__(self, documents: Sequence[list[str]]) -> None:
        import bm25s  # lazily: its import pulls numpy, which only the edit harness needs here

        self._size = len(documents)
        self._bm25 = bm25s.BM25()  # Lucene's BM25: k1=1.5, b=0.75
        if documents:
            # An empty document would leave bm25s without a vocabulary entry for it.
            self._bm25.index([doc or ["\x00"] for doc in documents], show_progress=False)

    def scores(self, query: list[str]) -> list[float]:
        if not self._size or not query:
            return [0.0] * self._size
        return [float(s) for s in self._bm25.get_scores(query)]

    def rarity(self, words: Sequence[str]) -> dict[str, float]:
        """log(N / document frequency) of each word found (absent words are left out)."""
        out = {}
        for word in words:
            found = sum(1 for s in self.scores([word]) if s > 0)
            if found:
                out[word] = math.log((self._size + 1) / found)
        return out


def document(path: str, text: str) -> list[str]:
    """What a file is indexed as: its path words (twice: a name is strong evidence) and body."""
    head = path_tokens(path)
    return head + head + tokens(text[:INDEXED_CHARS])


def rank(docs: dict[str, list[str]], query_text: str, index: Index | None = None
         ) -> dict[str, float]:
    """BM25 score of each path for the text (0 when it shares no word)."""
    paths = list(docs)
    index = index or Index([docs[p] for p in paths])
    scores = index.scores(list(dict.fromkeys(tokens(query_text))))
    return dict(zip(paths, scores, strict=True))
