"""An agent session's copy (`sandbox: local`, as the sandbox user): made at the start with its
own .git, and at close what the commands changed comes back (but that .git), through the same
checks as a test run's copy (links leading out dropped), whatever the commands did to it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from acr_bot.gitrepo import git
from acr_bot.verify.isolation import sandbox_user
from acr_bot.verify.local import LocalSandbox

pytestmark = pytest.mark.skipif(isinstance(sandbox_user(), str),
                                reason="no sandbox user can be made here (not root, no sudo)")

FILES = {"a.txt": "a\n", "b.txt": "b\n", "d/c.txt": "c\n", "e/f.txt": "f\n", "g": "g\n",
         "h/x.txt": "x\n", "same/untouched.txt": "u\n"}


def test_close_brings_back_what_the_commands_changed(make_repo) -> None:
    tree = make_repo(FILES)
    sandbox = LocalSandbox(timeout=60)
    try:
        shell = sandbox.session(tree)
        done = [shell.exec(command, 30, 10_000) for command in (
            "echo a2 >> a.txt && rm b.txt && rm -r e",
            "mkdir -p n/deep && echo new > n/deep/new.txt",
            "rm g && mkdir g && echo in > g/in.txt",  # a file becomes a folder
            "rm -r h && echo now-a-file > h",  # and a folder a file
            "ln -s a.txt link_in && ln -s /etc/passwd link_out && mv d d2",
            "mkdir locked && echo kept > locked/f.txt && chmod 000 locked",
            "git status --short | wc -l")]
        shell.close()
    finally:
        sandbox.close()

    assert [run.exit_code for run in done] == [0] * 7, [run.output for run in done]
    assert (tree / "a.txt").read_text() == "a\na2\n"
    assert not (tree / "b.txt").exists() and not (tree / "e").exists()
    assert (tree / "n" / "deep" / "new.txt").read_text() == "new\n"
    assert (tree / "g" / "in.txt").read_text() == "in\n"
    assert (tree / "h").read_text() == "now-a-file\n"
    assert os.readlink(tree / "link_in") == "a.txt"
    assert not (tree / "link_out").is_symlink()  # it leads out of the tree: dropped
    assert (tree / "d2" / "c.txt").read_text() == "c\n" and not (tree / "d").exists()
    assert (tree / "locked" / "f.txt").read_text() == "kept\n"
    assert (tree / "same" / "untouched.txt").read_text() == "u\n"
    assert git(tree, "rev-list", "--count", "HEAD") == "1"  # the copy's .git stayed there


def test_a_later_session_starts_from_the_tree_as_it_is(make_repo) -> None:
    tree = make_repo(FILES)
    sandbox = LocalSandbox(timeout=60)
    try:
        first = sandbox.session(tree)
        first.exec("echo round-1 >> a.txt && echo scratch > s.txt", 30, 1_000)
        first.close()
        (tree / "s.txt").unlink()  # the bot drops a scratch file between the rounds
        second = sandbox.session(tree)
        seen = second.exec("git status --short && git log --format=%s", 30, 1_000)
        second.close()
    finally:
        sandbox.close()
    assert seen.output == " M a.txt\ninitial\n"
