"""Routing features: typed tokens from task text, and the hashed vectors built from them."""

from __future__ import annotations

import math
from dataclasses import replace
import zlib

import numpy as np
import pytest

from acr_bot.domain import Features, Task
from acr_bot.routing.features import DIM, MAX_COMPACT, extract, matrix, task_features, vectorize

PY_TRACE = """median crashes on an empty list

Traceback (most recent call last):
  File "/home/ci/proj/stats/core.py", line 14, in median
    return ordered[middle]
IndexError: list index out of range
"""
GO_TRACE = "panic: runtime error: index out of range [3] with length 3\n\tmain.go:12 +0x1d\n"
RUST_TRACE = "thread 'main' panicked at 'attempt to subtract with overflow', src/lib.rs:10:5"


def tokens(text: str, **kwargs: object) -> tuple[str, ...]:
    return extract(text, **kwargs).tokens  # type: ignore[arg-type]


# --- language --------------------------------------------------------------------------------


@pytest.mark.parametrize("text, language", [
    (PY_TRACE, "python"),
    (GO_TRACE, "go"),
    (RUST_TRACE, "rust"),
    ("The button in src/components/Menu.tsx is misaligned", "typescript"),
    ("Build breaks in lib/parser.rb after the upgrade", "ruby"),
])
def test_language_from_tracebacks_and_extensions(text: str, language: str) -> None:
    assert extract(text).get("lang")[0] == language


def test_metadata_language_wins_and_repo_language_is_the_fallback() -> None:
    assert extract(PY_TRACE, language="Rust").get("lang")[0] == "rust"
    assert extract("something is off", repo_languages=("go", "python")).get("lang") == ("go",)
    assert extract("something is off").get("lang") == ()


# --- kind, errors, libraries, files, size, words ---------------------------------------------


@pytest.mark.parametrize("text, source, kind", [
    ("The parser crashes with an exception on empty input", "cli", "bug"),
    ("Add support for a new --json option", "cli", "feature"),
    ("Fix a typo in the README docs", "cli", "docs"),
    ("The export is slow: improve performance", "cli", "perf"),
    ("Whatever the words say", "ci", "test-failure"),
    ("zzz qqq", "cli", "other"),
])
def test_kind(text: str, source: str, kind: str) -> None:
    assert extract(text, source=source).get("kind") == (kind,)


def test_error_types() -> None:
    text = PY_TRACE + "\nthen a KeyError, another KeyError and a ValueError\n"
    errors = extract(text).get("err")
    assert errors[0] == "KeyError" and set(errors) == {"KeyError", "IndexError", "ValueError"}
    assert extract(GO_TRACE).get("err") == ("panic",)
    assert extract("it dies: Segmentation fault (core dumped)").get("err") == ("segfault",)


def test_libraries_from_imports_site_packages_and_known_deps() -> None:
    text = ("import numpy as np\nfrom pandas import DataFrame\n"
            '  File "/usr/lib/python3.11/site-packages/requests/api.py", line 3\n')
    libs = extract(text).get("lib")
    assert set(libs) == {"numpy", "pandas", "requests"}
    named = extract("results differ after upgrading Polars", known_libraries=["polars", "httpx"])
    assert named.get("lib") == ("polars",)
    assert extract("results differ", known_libraries=["polars"]).get("lib") == ()


def test_files_size_and_content_words() -> None:
    text = "median() in stats/core.py returns the wrong median for even-length lists. " * 3
    features = extract(text)
    assert features.get("file") == ("core.py",)
    assert features.get("size") == (str(int(math.log2(len(text) + 1))),)
    words = features.get("w")
    assert words[0] == "median"
    assert "the" not in words and "returns" not in words  # stopwords
    assert extract("x").get("size") != extract("x" * 5000).get("size")


def test_task_features_use_the_task_metadata() -> None:
    task = Task(id="gh:1", title="Widget explodes", body="KeyError in widget.py",
                source="ci", language="python", tags=("bcb", "hard mode"))
    features = task_features(task, known_libraries=["widget"])
    assert features.get("kind") == ("test-failure",)
    assert features.get("lang")[0] == "python"
    assert set(features.get("tag")) == {"bcb", "hard_mode"}
    assert features.get("err") == ("KeyError",)


# --- what features never hold --------------------------------------------------------------


SECRETS = [
    "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "sk-proj-Zyxwvutsrqponmlkjihgfedcba98",
    "AKIAIOSFODNN7EXAMPLE",
    "hunter2hunter2",
    "s3cr3tpassw0rd",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.abcDEFghiJKL",
]


def _pieces(secret: str, size: int = 6) -> set[str]:
    return {secret[i:i + size].lower() for i in range(len(secret) - size + 1)}


def test_features_never_hold_secrets() -> None:
    text = f"""Deploy script fails with KeyError

My token is {SECRETS[0]} and the config has API_KEY={SECRETS[1]}.
AWS: {SECRETS[2]}
password: {SECRETS[3]}
clone https://bob:{SECRETS[4]}@example.com/repo.git
Authorization: Bearer {SECRETS[5]}
"""
    features = extract(text)
    joined = features.compact().lower()
    for secret in SECRETS:
        leaked = [p for p in _pieces(secret) if p in joined]
        assert not leaked, (secret, leaked, features.tokens)
    # The rest of the task still gives features.
    assert features.get("err") == ("KeyError",)
    assert "deploy" in features.get("w")


def test_features_never_hold_file_contents_and_stay_small() -> None:
    code = "\n".join(f"def function_number_{i}(argument):\n    return argument * {i}"
                     for i in range(400))
    text = f"Refactor the helpers\n\n```python\n{code}\n```\n" + "x" * 100_000
    features = extract(text, tags=("t" * 500,))
    assert len(features.compact().encode()) <= MAX_COMPACT
    assert all(len(t) <= 60 and " " not in t and "\n" not in t for t in features.tokens)
    assert "return argument" not in features.compact()


def test_compact_is_bounded_in_bytes_for_non_ascii_names() -> None:
    names = " ".join(f"{c * 50}.py" for c in "éüß")
    features = extract(f"see {names}", tags=("ütf8-tägs" * 6,))
    assert len(features.compact().encode()) <= MAX_COMPACT
    assert Features.parse(features.compact()) == features


# --- vectors -------------------------------------------------------------------------------


def test_vectorize_is_deterministic_and_normalised() -> None:
    tokens = extract(PY_TRACE).tokens
    a, b = vectorize(tokens), vectorize(list(tokens))
    assert a.shape == (DIM,) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert np.array_equal(vectorize(reversed(tokens)), a)  # order does not matter
    assert float(np.linalg.norm(a)) == pytest.approx(1.0, abs=1e-6)
    assert not vectorize([]).any()
    # crc32, not Python's salted hash: a token lands in the same slot in every process.
    one = vectorize(["lang:python"])
    assert list(np.flatnonzero(one)) == [zlib.crc32(b"lang:python") % DIM]
    assert abs(float(one.sum())) == pytest.approx(1.0)


def test_matrix_matches_vectorize() -> None:
    compacts = ["lang:python kind:bug", "lang:go kind:feature", "lang:python kind:bug"]
    rows = matrix(compacts)
    assert rows.shape == (3, DIM)
    for row, compact in zip(rows, compacts):
        assert np.allclose(row, vectorize(compact.split()))
    assert matrix([]).shape == (0, DIM)


def test_similar_tasks_are_closer_than_unrelated_ones() -> None:
    one = vectorize(extract(PY_TRACE).tokens)
    two = vectorize(extract("""median() raises IndexError for an empty list

Traceback (most recent call last):
  File "stats/core.py", line 20, in median
IndexError: list index out of range
""").tokens)
    other = vectorize(extract("Add dark mode support to the settings page in app.tsx").tokens)
    assert float(one @ two) > float(one @ other) + 0.3
    assert float(one @ two) > 0.5


def test_a_changed_files_feature_says_what_the_change_touched() -> None:
    from acr_bot.routing.features import changed_tokens

    assert changed_tokens(["src/pkg/core.py", "src/pkg/util.py", "tests/test_core.py",
                           "pyproject.toml", "docs/index.rst"]) == ["chg:src", "chg:tests",
                                                                    "chg:build"]
    assert changed_tokens(["web/app.test.ts", "pkg/parser_test.go", "lib/__tests__/a.js",
                           ".github/workflows/ci.yml", "README.md"]) == [
        "chg:tests", "chg:build", "chg:root"]
    assert changed_tokens([]) == []
    ci = Task("ci:o/r@main", "CI failure in tests on main", "1 failed", "ci",
              changed=("cmd/server/main.go", "go.mod"))
    tokens = task_features(ci).tokens
    assert "lang:go" in tokens  # the change's files name the language the log does not
    assert {"chg:cmd", "chg:build"} <= set(tokens)
    assert not any(t.startswith("chg:") for t in task_features(replace(ci, changed=())).tokens)
