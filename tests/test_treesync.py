"""The sandbox copy synced incrementally: made once, then only what changed moves, both ways
(verify/treesync.py, verify/workspace.py). Every check compares the copy with the tree, as the
sandbox user really sees it, after real commands in the real sandbox."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from acr_bot.verify.isolation import sandbox_user
from acr_bot.verify.treesync import Manifest, changes, manifest
from acr_bot.verify.workspace import Workspace, copy_back, isolated_exec


@pytest.fixture
def space(tmp_path: Path):
    user = sandbox_user()
    if isinstance(user, str):
        pytest.skip(f"no sandbox user here: {user}")
    workspace = Workspace(user, tmp_path)
    yield workspace
    workspace.remove()


def tree_of(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("A = 1\n")
    (root / "pkg" / "sub" / "b.py").write_text("B = 2\n")
    (root / "run.sh").write_text("echo hi\n")
    (root / "link.py").symlink_to("pkg/a.py")
    (root / ".git").write_text("gitdir: /elsewhere\n")  # a worktree's link: never copied
    return root


def state(root: Path) -> dict[str, tuple[str, int, str]]:
    """Every entry under `root` (but .git): type, permission bits, content or link target."""
    out = {}
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        if here == root:
            dirs[:] = [d for d in dirs if d != ".git"]
            files = [f for f in files if f != ".git"]
        for name in dirs + files:
            path = here / name
            info = path.lstat()
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = ("l", 0, os.readlink(path))
            elif path.is_dir():
                out[rel] = ("d", 0, "")
            else:
                out[rel] = ("f", stat.S_IMODE(info.st_mode), path.read_text())
    return out


def run(space: Workspace, tree: Path, command: str) -> str:
    """A test command: sync in, run in the copy, copy back (as isolated_run does)."""
    space.sync_in(tree)
    result = isolated_exec(space, command, timeout=60, env={"PATH": os.environ["PATH"]},
                           max_output=10_000)
    copy_back(space, tree)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_copy_follows_deletions_renames_symlinks_and_permissions(space, tmp_path) -> None:
    tree = tree_of(tmp_path)
    run(space, tree, "true")
    assert state(space.work) == state(tree)
    # The bot changes the tree between runs: each kind of change reaches the copy.
    (tree / "pkg" / "sub" / "b.py").unlink()                      # deletion
    (tree / "pkg" / "a.py").rename(tree / "pkg" / "c.py")         # rename (the link now dangles)
    (tree / "link.py").unlink()
    (tree / "link.py").symlink_to("pkg/c.py")                     # a link retargeted
    (tree / "run.sh").chmod(0o755)                                # permissions
    (tree / "pkg" / "sub").rmdir()
    (tree / "pkg" / "sub").write_text("now a file\n")             # a folder became a file
    (tree / "new" / "deep").mkdir(parents=True)
    (tree / "new" / "deep" / "x.py").write_text("X = 3\n")
    out = run(space, tree, "cat link.py; ls -l run.sh; cat pkg/sub; test ! -e pkg/a.py")
    assert "A = 1" in out and "\n-rwx" in out and "now a file" in out
    assert state(space.work) == state(tree)


def test_what_a_command_changes_comes_back(space, tmp_path) -> None:
    tree = tree_of(tmp_path)
    run(space, tree, "true")
    run(space, tree, "rm pkg/sub/b.py && mv pkg/a.py pkg/moved.py && chmod +x run.sh && "
        "ln -s moved.py pkg/alias.py && mkdir -p made/here && echo z > made/here/z.txt && "
        "printf same > keep.txt && rm link.py && mkdir link.py")
    assert state(tree) == state(space.work)
    assert not (tree / "pkg" / "sub" / "b.py").exists() and (tree / "pkg" / "moved.py").exists()
    assert os.access(tree / "run.sh", os.X_OK) and (tree / "link.py").is_dir()
    assert os.readlink(tree / "pkg" / "alias.py") == "moved.py"
    assert (tree / ".git").read_text() == "gitdir: /elsewhere\n"  # the tree's own .git stays


def test_only_the_changes_move_after_the_first_sync(space, tmp_path) -> None:
    tree = tree_of(tmp_path)
    for i in range(300):
        (tree / "pkg" / f"m{i}.py").write_text(f"M = {i}\n")
    # Past the racy window before each manifest: a file written within RACY_S of the first
    # sync's manifest is copied again by the next sync, by design (copy too much, never too
    # little), and that is not what this test is about.
    time.sleep(0.2)
    run(space, tree, "true")
    before = {p: (space.work / p).stat().st_ino for p in ("pkg/m1.py", "pkg/m2.py")}
    time.sleep(0.2)  # past the racy window: an untouched file keeps its inode in the copy
    (tree / "pkg" / "m2.py").write_text("M = 'changed'\n")
    run(space, tree, "cat pkg/m2.py")
    assert (space.work / "pkg" / "m1.py").stat().st_ino == before["pkg/m1.py"]  # not copied
    assert (space.work / "pkg" / "m2.py").read_text() == "M = 'changed'\n"
    mark = (tree / "pkg" / "m3.py").stat().st_ino
    run(space, tree, "echo new > pkg/m4.py")
    assert (tree / "pkg" / "m3.py").stat().st_ino == mark  # not rewritten on the way back
    assert (tree / "pkg" / "m4.py").read_text() == "new\n"


def test_a_link_the_bot_would_not_take_back_is_gone_before_the_next_run(space, tmp_path) -> None:
    """A link leading out of the tree is refused on the way back; it must not stay in the copy
    to judge a later run (a conftest.py pointing at a file outside, say)."""
    tree = tree_of(tmp_path)
    run(space, tree, "ln -s /etc/passwd conftest.py && mkfifo pipe")
    assert not (tree / "conftest.py").is_symlink() and not (tree / "pipe").exists()
    run(space, tree, "test ! -e conftest.py && test ! -e pipe")
    assert state(space.work) == state(tree)


def test_an_agent_session_copy_gets_git_and_the_next_test_run_does_not(space, tmp_path) -> None:
    tree = tree_of(tmp_path)
    git = tmp_path / "dotgit"
    (git / "objects").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    space.sync_in(tree, git)
    isolated_exec(space, "echo edited > pkg/a.py", timeout=60,
                  env={"PATH": os.environ["PATH"]}, max_output=1000)
    copy_back(space, tree)
    assert (tree / "pkg" / "a.py").read_text() == "edited\n"
    run(space, tree, "test ! -e .git")


def test_a_file_rewritten_in_the_same_clock_tick_still_counts_as_changed(tmp_path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    (root / "f").write_text("aaaa")
    old = manifest(root)
    (root / "f").write_text("bbbb")  # same size, likely the same coarse timestamp
    os.utime(root / "f", ns=(old.entries["f"][3], old.entries["f"][3]))
    copy, remove = changes(old, manifest(root))
    assert copy == ["f"] and remove == []
    settled = Manifest(old.entries, old.taken_ns + 10 ** 10)  # long after: signatures decide
    assert changes(settled, Manifest(old.entries, settled.taken_ns)) == ([], [])
