"""Tests for acr_bot.fixing.edits: parsing, applying, checking and building SEARCH/REPLACE blocks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from acr_bot.domain import Edit
from acr_bot.errors import EditError, EditRefused
from acr_bot.fixing.edits import (
    FORMAT_INSTRUCTIONS,
    apply_edits,
    apply_to_tree,
    check_paths,
    format_edits,
    make_edits,
    matches_glob,
    parse_edits,
)

PROTECTED = (".github/**", ".acr/memory.json")


def block(path: str, search: str, replace: str, fence: bool = True) -> str:
    """One reply block, as a model would write it."""
    body = f"<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"
    return f"{path}\n```python\n{body}```\n" if fence else f"{path}\n{body}"


# ---------------------------------------------------------------------------- parse_edits


def test_parse_single_block() -> None:
    reply = "Here is the fix.\n\n" + block("src/a.py", "x = 1\n", "x = 2\n") + "\nDone."
    assert parse_edits(reply) == [Edit("src/a.py", "x = 1\n", "x = 2\n")]


def test_parse_multiple_blocks_with_and_without_fences() -> None:
    reply = (
        block("a.py", "a\n", "b\n")
        + "\nThen the test:\n\n"
        + block("tests/t.py", "c\n", "d\n", fence=False)
    )
    assert parse_edits(reply) == [Edit("a.py", "a\n", "b\n"), Edit("tests/t.py", "c\n", "d\n")]


@pytest.mark.parametrize(
    "decorated",
    ["`a/b.py`", "**a/b.py**", "**`a/b.py`**:", "'a/b.py'", '"a/b.py"', "a/b.py:", "  a/b.py  "],
)
def test_parse_strips_path_decorations(decorated: str) -> None:
    assert parse_edits(block(decorated, "x\n", "y\n"))[0].path == "a/b.py"


def test_parse_creation_and_deletion() -> None:
    reply = block("new.py", "", "print('hi')\n") + block("old.py", "gone\n", "")
    assert parse_edits(reply) == [Edit("new.py", "", "print('hi')\n"), Edit("old.py", "gone\n", "")]
    assert parse_edits(reply)[0].creates


def test_parse_accepts_sloppy_marker_lengths_and_crlf() -> None:
    reply = "a.py\r\n<<<<< SEARCH\r\nx\r\n=========\r\ny\r\n>>>>>>>>> REPLACE\r\n"
    assert parse_edits(reply) == [Edit("a.py", "x\n", "y\n")]


def test_parse_markers_must_start_the_line() -> None:
    reply = "a.py\n  <<<<<<< SEARCH\nx\n  =======\ny\n  >>>>>>> REPLACE\n"
    assert parse_edits(reply) == []


def test_parse_no_blocks_is_empty() -> None:
    assert parse_edits("I could not find the bug, sorry.") == []
    assert parse_edits("") == []


def test_parse_consecutive_blocks_reuse_the_previous_path() -> None:
    body = "<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n"
    edits = parse_edits("f.py\n```\n" + body + body.replace("a", "c") + "```\n")
    assert [e.path for e in edits] == ["f.py", "f.py"]
    assert edits[1].search == "c\n"


def test_parse_equals_line_inside_replace_is_content() -> None:
    edits = parse_edits(block("README.rst", "Title\n", "Title\n=======\n"))
    assert edits == [Edit("README.rst", "Title\n", "Title\n=======\n")]


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (block("a.py", "x\n", "y\n") + "b.py\n<<<<<<< SEARCH\nx\n>>>>>>> REPLACE\n", "======="),
        (block("a.py", "x\n", "y\n") + "b.py\n<<<<<<< SEARCH\nx\n=======\ny\n", ">>>>>>> REPLACE"),
        (
            "ok\n\n" + block("a.py", "x\n", "y\n") + "c.py\nx\n=======\ny\n>>>>>>> REPLACE\n",
            "SEARCH",
        ),
    ],
)
def test_parse_malformed_block_names_block_number(reply: str, problem: str) -> None:
    with pytest.raises(EditError) as info:
        parse_edits(reply)
    message = str(info.value)
    assert "Block 2" in message
    assert problem in message
    assert "path/to/file.py" in message  # the brief format reminder


def test_parse_block_without_path_is_an_error() -> None:
    with pytest.raises(EditError, match="Block 1.*no file path"):
        parse_edits("<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n")


def test_parse_reports_every_malformed_block() -> None:
    bad = "a.py\n<<<<<<< SEARCH\nx\n>>>>>>> REPLACE\n"
    with pytest.raises(EditError) as info:
        parse_edits(bad + "\n" + bad)
    assert "Block 1" in str(info.value) and "Block 2" in str(info.value)


def test_format_instructions_cover_the_rules() -> None:
    for needle in ("<<<<<<< SEARCH", "exact", "one place", "empty", "relative", "tests"):
        assert needle in FORMAT_INSTRUCTIONS


# ---------------------------------------------------------------------------- apply_edits


def test_apply_single_block() -> None:
    files = {"a.py": "def f():\n    return 1\n"}
    edits = [Edit("a.py", "    return 1\n", "    return 2\n")]
    assert apply_edits(files, edits) == {"a.py": "def f():\n    return 2\n"}


def test_apply_blocks_in_order_and_across_files() -> None:
    files = {"a.py": "x = 1\ny = 2\n", "b.py": "z = 3\n"}
    edits = [
        Edit("a.py", "x = 1\n", "x = 10\n"),
        Edit("a.py", "x = 10\ny = 2\n", "x = 10\ny = 20\n"),  # sees the first block's result
        Edit("b.py", "z = 3\n", "z = 30\n"),
    ]
    assert apply_edits(files, edits) == {"a.py": "x = 10\ny = 20\n", "b.py": "z = 30\n"}


def test_apply_omits_unchanged_files() -> None:
    files = {"a.py": "x\n", "b.py": "y\n"}
    assert apply_edits(files, [Edit("a.py", "x\n", "x\n"), Edit("b.py", "y\n", "Y\n")]) == {
        "b.py": "Y\n"
    }


def test_apply_creation() -> None:
    assert apply_edits({"n.py": None}, [Edit("n.py", "", "a\n")]) == {"n.py": "a\n"}
    assert apply_edits({}, [Edit("n.py", "", "")]) == {"n.py": ""}
    # An existing empty file can be filled; an identical re-creation is a no-op.
    assert apply_edits({"e.py": ""}, [Edit("e.py", "", "a\n")]) == {"e.py": "a\n"}
    assert apply_edits({"s.py": "a\n"}, [Edit("s.py", "", "a\n")]) == {}


def test_apply_create_then_edit_same_file() -> None:
    edits = [Edit("n.py", "", "a\nb\n"), Edit("n.py", "b\n", "c\n")]
    assert apply_edits({"n.py": None}, edits) == {"n.py": "a\nc\n"}


def test_apply_creating_an_existing_file_fails() -> None:
    with pytest.raises(EditError, match="already exists"):
        apply_edits({"a.py": "old\n"}, [Edit("a.py", "", "new\n")])


def test_apply_editing_a_missing_file_fails() -> None:
    with pytest.raises(EditError, match="does not exist"):
        apply_edits({"a.py": None}, [Edit("a.py", "x\n", "y\n")])


def test_apply_deletion() -> None:
    files = {"a.py": "a\nb\nc\n"}
    assert apply_edits(files, [Edit("a.py", "b\n", "")]) == {"a.py": "a\nc\n"}


def test_apply_search_without_trailing_newline_matches_whole_lines() -> None:
    files = {"a.py": "ab\nb\n"}
    assert apply_edits(files, [Edit("a.py", "b", "c")]) == {"a.py": "ab\nc\n"}


def test_apply_keeps_crlf_line_endings() -> None:
    files = {"a.py": "one\r\ntwo\r\nthree\r\n"}
    edits = [Edit("a.py", "two\n", "2\n2b\n")]
    assert apply_edits(files, edits) == {"a.py": "one\r\n2\r\n2b\r\nthree\r\n"}


def test_apply_keeps_a_missing_final_newline() -> None:
    files = {"a.py": "a\nb"}
    assert apply_edits(files, [Edit("a.py", "b\n", "c\nd\n")]) == {"a.py": "a\nc\nd"}
    assert apply_edits(files, [Edit("a.py", "b\n", "")]) == {"a.py": "a"}
    assert apply_edits(files, [Edit("a.py", "a\n", "z\n")]) == {"a.py": "z\nb"}


def test_apply_whitespace_tolerant_match_reindents_replace() -> None:
    files = {"a.py": "class A:\n    def f(self):\n        return 1\n"}
    edits = [Edit("a.py", "def f(self):\n    return 1\n", "def f(self):\n    return 2\n")]
    assert apply_edits(files, edits) == {"a.py": "class A:\n    def f(self):\n        return 2\n"}


def test_apply_whitespace_tolerant_match_dedents_replace() -> None:
    files = {"a.py": "def f():\n  return 1\n"}
    edits = [Edit("a.py", "    def f():\n      return 1\n", "    def f():\n      return 3\n")]
    assert apply_edits(files, edits) == {"a.py": "def f():\n  return 3\n"}


METHOD = "class A:\n    def f(self, x):\n        if x:\n            return 1\n        return 0\n"


def test_a_search_whose_first_line_lost_its_indentation_keeps_the_replace_indented() -> None:
    # The common model mistake: the first SEARCH (and REPLACE) line at column 0, the rest right.
    edit = Edit("a.py", "def f(self, x):\n        if x:\n            return 1\n",
                "def f(self, x):\n        if x:\n            return 2\n        x += 1\n")
    new = apply_edits({"a.py": METHOD}, [edit])["a.py"]
    assert new == ("class A:\n    def f(self, x):\n        if x:\n            return 2\n"
                   "        x += 1\n        return 0\n")


def test_reindenting_maps_every_level_and_new_deeper_lines() -> None:
    # The whole block at column 0: every level shifts by the file's four spaces, new levels too.
    edit = Edit("a.py", "if x:\n    return 1\n", "if x:\n    if x > 1:\n        return 2\n"
                "    return 1\n")
    new = apply_edits({"a.py": METHOD}, [edit])["a.py"]
    assert new == ("class A:\n    def f(self, x):\n        if x:\n            if x > 1:\n"
                   "                return 2\n            return 1\n        return 0\n")


def test_python_that_does_not_parse_after_the_edits_is_refused_with_the_line(
        tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(METHOD)
    edit = Edit("a.py", "        return 0\n", "      return 0\n")  # a dedent to no level
    with pytest.raises(EditError) as info:
        apply_to_tree(tmp_path, [edit], PROTECTED)
    message = str(info.value)
    assert message.startswith("a.py does not parse after the change: IndentationError: "
                              "unindent does not match any outer indentation level (line 5")
    assert "    5 |       return 0" in message and "The tests were not run" in message
    assert (tmp_path / "a.py").read_text() == METHOD  # nothing was written


def test_a_python_file_that_did_not_parse_before_may_still_not_parse(tmp_path: Path) -> None:
    (tmp_path / "tpl.py").write_text("def {{name}}():\n    pass\n")  # a template, not Python
    edit = Edit("tpl.py", "    pass\n", "    return 1\n")
    assert apply_to_tree(tmp_path, [edit], PROTECTED) == ["tpl.py"]


def test_apply_tolerates_trailing_whitespace() -> None:
    files = {"a.py": "x = 1   \ny = 2\n"}
    assert apply_edits(files, [Edit("a.py", "x = 1\n", "x = 5\n")]) == {"a.py": "x = 5\ny = 2\n"}


def test_apply_ambiguous_match_names_the_lines() -> None:
    files = {"a.py": "x = 1\nfoo()\ny = 2\nfoo()\n"}
    with pytest.raises(EditError) as info:
        apply_edits(files, [Edit("a.py", "foo()\n", "bar()\n")])
    message = str(info.value)
    assert "matches 2 places" in message and "lines 2, 4" in message
    assert "more of the surrounding lines" in message


def test_apply_not_found_shows_closest_lines_and_block_number() -> None:
    files = {"a.py": "import os\n\n\ndef total(xs):\n    return sum(xs)\n"}
    edits = [
        Edit("a.py", "import os\n", "import sys\n"),
        Edit("a.py", "def total(items):\n    return sum(xs)\n", "pass\n"),
    ]
    with pytest.raises(EditError) as info:
        apply_edits(files, edits)
    message = str(info.value)
    assert "1 of 2 edit blocks failed" in message
    assert "Block 2: a.py" in message and "Block 1" not in message
    assert "not found" in message
    assert "    4 | def total(xs):" in message
    assert "    5 |     return sum(xs)" in message


def test_apply_reports_all_failures_together() -> None:
    files = {"a.py": "a\n", "b.py": "b\n", "c.py": None}
    edits = [
        Edit("a.py", "nope\n", "x\n"),
        Edit("b.py", "b\n", "B\n"),
        Edit("c.py", "c\n", "C\n"),
        Edit("b.py", "", "other\n"),
    ]
    with pytest.raises(EditError) as info:
        apply_edits(files, edits)
    message = str(info.value)
    assert "3 of 4 edit blocks failed" in message
    for expected in ("Block 1: a.py", "Block 3: c.py", "Block 4: b.py", "already exists"):
        assert expected in message
    assert "Block 2" not in message


def test_apply_hints_when_change_already_made() -> None:
    with pytest.raises(EditError, match="already in the file"):
        apply_edits({"a.py": "y = 2\n"}, [Edit("a.py", "y = 1\n", "y = 2\n")])


def test_apply_does_not_mutate_input() -> None:
    files = {"a.py": "a\n"}
    apply_edits(files, [Edit("a.py", "a\n", "b\n")])
    assert files == {"a.py": "a\n"}


# ---------------------------------------------------------------------------- paths


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("/etc/passwd", "absolute"),
        ("../x", ".."),
        ("a/../../x", ".."),
        ("a/../b", ".."),
        ("..\\x", "backslash"),
        (".git/config", ".git"),
        ("sub/.git/hooks/pre-commit", ".git"),
        (".GIT/config", ".git"),
        (".github/workflows/ci.yml", ".github/**"),
        (".acr/memory.json", ".acr/memory.json"),
        ("./.github/ci.yml", ".github/**"),
        ("", "empty"),
        ("a\0b", "NUL"),
        (".", "no file"),
    ],
)
def test_check_paths_refuses(tmp_path: Path, path: str, rule: str) -> None:
    with pytest.raises(EditRefused) as info:
        check_paths(tmp_path, [Edit(path, "", "x\n")], PROTECTED)
    assert rule in str(info.value)
    assert repr(path) in str(info.value)


def test_check_paths_allows_ordinary_paths(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("x\n")
    edits = [Edit(p, "", "x\n") for p in ("src/a.py", "src/new/b.py", ".acr/other.json", "g.py")]
    assert check_paths(tmp_path, edits, PROTECTED) is None


def test_check_paths_refuses_symlinks(tmp_path: Path) -> None:
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    repo.mkdir()
    outside.mkdir()
    (outside / "secret.py").write_text("s\n")
    os.symlink(outside, repo / "linkdir")
    os.symlink(outside / "secret.py", repo / "link.py")
    for path in ("linkdir/secret.py", "linkdir/new.py", "link.py"):
        with pytest.raises(EditRefused, match="symbolic link"):
            check_paths(repo, [Edit(path, "s\n", "t\n")], PROTECTED)
    assert (outside / "secret.py").read_text() == "s\n"


def test_check_paths_refuses_directories(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    with pytest.raises(EditRefused, match="not a regular file"):
        check_paths(tmp_path, [Edit("pkg", "", "x\n")], PROTECTED)


def test_check_paths_lists_every_refusal(tmp_path: Path) -> None:
    edits = [Edit("/etc/passwd", "", "x"), Edit("ok.py", "", "x"), Edit(".git/HEAD", "", "x")]
    with pytest.raises(EditRefused) as info:
        check_paths(tmp_path, edits, PROTECTED)
    assert "/etc/passwd" in str(info.value) and ".git/HEAD" in str(info.value)
    assert "ok.py" not in str(info.value)


@pytest.mark.parametrize(
    ("path", "pattern", "expected"),
    [
        (".github/workflows/ci.yml", ".github/**", True),
        (".github", ".github/**", True),  # stricter than git: the directory itself too
        ("src/.github/x", ".github/**", False),
        (".acr/memory.json", ".acr/memory.json", True),
        ("x/.acr/memory.json", ".acr/memory.json", False),
        (".acr/memory.json.bak", ".acr/memory.json", False),
        ("poetry.lock", "*.lock", True),
        ("a/b/Cargo.lock", "*.lock", True),
        ("a/b/lock.py", "*.lock", False),
        ("docs/a/b/c.md", "docs/**/*.md", True),
        ("docs/c.md", "docs/**/*.md", True),
        ("docs/c.txt", "docs/**/*.md", False),
        ("secrets/key.pem", "secrets/", True),
        ("a/secrets/key.pem", "/secrets", False),
        ("src/a.py", "src/*.py", True),
        ("src/sub/a.py", "src/*.py", False),
    ],
)
def test_matches_glob(path: str, pattern: str, expected: bool) -> None:
    assert matches_glob(path, pattern) is expected


# ---------------------------------------------------------------------------- apply_to_tree


def test_apply_to_tree_writes_and_returns_sorted_paths(tmp_path: Path) -> None:
    (tmp_path / "b.py").write_text("x = 1\n")
    edits = [Edit("b.py", "x = 1\n", "x = 2\n"), Edit("pkg/sub/a.py", "", "y = 1\n")]
    assert apply_to_tree(tmp_path, edits, PROTECTED) == ["b.py", "pkg/sub/a.py"]
    assert (tmp_path / "b.py").read_text() == "x = 2\n"
    assert (tmp_path / "pkg" / "sub" / "a.py").read_text() == "y = 1\n"


def test_apply_to_tree_keeps_crlf_bytes(tmp_path: Path) -> None:
    (tmp_path / "w.py").write_bytes(b"a\r\nb\r\n")
    apply_to_tree(tmp_path, [Edit("w.py", "b\n", "c\n")], PROTECTED)
    assert (tmp_path / "w.py").read_bytes() == b"a\r\nc\r\n"


def test_apply_to_tree_normalises_dot_paths(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("1\n")
    edits = [Edit("./a.py", "1\n", "2\n"), Edit("a.py", "2\n", "3\n")]
    assert apply_to_tree(tmp_path, edits, PROTECTED) == ["a.py"]
    assert (tmp_path / "a.py").read_text() == "3\n"


def test_apply_to_tree_writes_nothing_when_a_block_fails(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("a\n")
    edits = [Edit("a.py", "a\n", "A\n"), Edit("new.py", "", "n\n"), Edit("a.py", "zzz\n", "")]
    with pytest.raises(EditError, match="Block 3"):
        apply_to_tree(tmp_path, edits, PROTECTED)
    assert (tmp_path / "a.py").read_text() == "a\n"
    assert not (tmp_path / "new.py").exists()


def test_apply_to_tree_writes_nothing_when_a_path_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("a\n")
    edits = [Edit("a.py", "a\n", "A\n"), Edit(".github/workflows/ci.yml", "", "on: push\n")]
    with pytest.raises(EditRefused, match="protected"):
        apply_to_tree(tmp_path, edits, PROTECTED)
    assert (tmp_path / "a.py").read_text() == "a\n"
    assert not (tmp_path / ".github").exists()


def test_apply_to_tree_rejects_non_utf8(tmp_path: Path) -> None:
    (tmp_path / "bin.dat").write_bytes(b"\xff\xfe\x00x\n")
    with pytest.raises(EditError, match="UTF-8"):
        apply_to_tree(tmp_path, [Edit("bin.dat", "x\n", "y\n")], PROTECTED)
    assert (tmp_path / "bin.dat").read_bytes() == b"\xff\xfe\x00x\n"


# ---------------------------------------------------------------------------- make/format


def test_make_edits_grows_context_until_unique() -> None:
    old = "a\nx\nb\nx\nc\n"
    new = "a\nx\nb\ny\nc\n"
    edits = make_edits("f.py", old, new)
    assert len(edits) == 1
    assert edits[0].search.count("\n") >= 2  # "x" alone is ambiguous
    assert apply_edits({"f.py": old}, edits) == {"f.py": new}


def test_make_edits_creation_and_no_change() -> None:
    assert make_edits("n.py", None, "a\n") == [Edit("n.py", "", "a\n")]
    assert make_edits("n.py", "same\n", "same\n") == []


def test_make_edits_on_crlf_file_keeps_crlf() -> None:
    old, new = "a\r\nb\r\nc\r\n", "a\r\nB\r\nc\r\n"
    edits = make_edits("w.py", old, new)
    assert all("\r" not in e.search + e.replace for e in edits)
    assert apply_edits({"w.py": old}, edits) == {"w.py": new}


def test_format_edits_round_trip() -> None:
    edits = [Edit("a.py", "x\n", "y\n"), Edit("b/c.py", "", "new\n"), Edit("a.py", "y\n", "")]
    text = format_edits(edits)
    assert text.count("<<<<<<< SEARCH") == 3
    assert parse_edits(text) == edits


# ---------------------------------------------------------------------------- properties

MARKERS = ["<<<<<<< SEARCH", "=======", ">>>>>>> REPLACE", "<<<<< SEARCH", "```", "a.py", ""]
LINES = st.lists(
    st.sampled_from(["a", "b", "", "  a", "x = 1", "    return x", "```"]), max_size=12
)


@given(st.text())
def test_parse_arbitrary_text_raises_only_edit_error(text: str) -> None:
    try:
        edits = parse_edits(text)
    except EditError as exc:
        assert str(exc)
    else:
        assert all(isinstance(e, Edit) for e in edits)


@given(st.lists(st.one_of(st.sampled_from(MARKERS), st.text(max_size=20)), max_size=30))
def test_parse_text_mixed_with_markers_raises_only_edit_error(lines: list[str]) -> None:
    try:
        edits = parse_edits("\n".join(lines))
    except EditError as exc:
        assert "Block" in str(exc)
    else:
        assert all(e.path for e in edits)


def _text(lines: list[str], final_newline: bool) -> str:
    text = "".join(line + "\n" for line in lines)
    return text if final_newline else text.removesuffix("\n")


@settings(max_examples=300)
@given(LINES, LINES, st.booleans())
def test_make_edits_then_apply_gives_new(
    old_lines: list[str], new_lines: list[str], nl: bool
) -> None:
    old, new = _text(old_lines, nl), _text(new_lines, nl)
    # Blocks keep the file's final-newline state; ['a', ''] without one still ends in "\n".
    assume(not old or not new or old.endswith("\n") == new.endswith("\n"))
    edits = make_edits("p.py", old, new)
    expected = {} if old == new else {"p.py": new}
    assert apply_edits({"p.py": old}, edits) == expected
    if old or new.endswith("\n") or not new:  # the text format always ends a created file in \n
        assert apply_edits({"p.py": old}, parse_edits(format_edits(edits))) == expected


@given(LINES)
def test_make_edits_creation_round_trip(lines: list[str]) -> None:
    new = _text(lines, True)
    edits = parse_edits(format_edits(make_edits("d/n.py", None, new)))
    assert apply_edits({"d/n.py": None}, edits) == {"d/n.py": new}


def test_overlong_names_are_refused_not_an_os_error(tmp_path: Path) -> None:
    long_name = "a" * 300 + ".py"
    with pytest.raises(EditRefused, match="too long"):
        check_paths(tmp_path, [Edit(long_name, "", "x\n")], [])
    with pytest.raises(EditRefused, match="too long"):
        check_paths(tmp_path, [Edit("/".join(["d" * 200] * 6) + "/x.py", "", "x\n")], [])
