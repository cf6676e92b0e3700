"""Local git: inspect the user's checkout, work in a detached worktree, commit, branch, push.

The bot never edits the user's working tree: every attempt happens in a temporary worktree at
HEAD, and a fix becomes a branch created from outside, so the user's branch and files stay put.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from .errors import GitError

BOT_NAME = "acr-bot"
BOT_EMAIL = "acr-bot@users.noreply.github.com"


def git(root: Path, *args: str, check: bool = True, env: Mapping[str, str] | None = None,
        input_text: str | None = None, timeout: float = 300) -> str:
    """Run one git command in `root` and return its stdout (stripped of the final newline)."""
    command = ["git", "-c", f"user.name={BOT_NAME}", "-c", f"user.email={BOT_EMAIL}", *args]
    try:
        done = subprocess.run(command, cwd=root, capture_output=True, text=True, env=env, check=False,
                              input=input_text, timeout=timeout, errors="replace")
    except FileNotFoundError:
        raise GitError("git is not installed or not on PATH") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {' '.join(args[:3])} timed out after {timeout:.0f} s") from None
    if check and done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise GitError(f"git {' '.join(args[:3])} failed in {root}: "
                       f"{detail[-1] if detail else 'exit ' + str(done.returncode)}")
    return done.stdout.rstrip("\n")


class GitRepo:
    """A checkout on disk."""

    def __init__(self, root: Path) -> None:
        root = Path(root).resolve()
        if not root.is_dir():
            raise GitError(f"{root} is not a directory")
        top = git(root, "rev-parse", "--show-toplevel", check=False)
        if not top:
            raise GitError(f"{root} is not inside a git repository (run `git init` and commit)")
        self.root = Path(top)

    def run(self, *args: str, **kwargs: object) -> str:
        return git(self.root, *args, **kwargs)  # type: ignore[arg-type]

    def head(self) -> str:
        sha = self.run("rev-parse", "--verify", "--quiet", "HEAD", check=False)
        if not sha:
            raise GitError(f"{self.root} has no commits yet: commit the code first")
        return sha

    def current_branch(self) -> str | None:
        return self.run("symbolic-ref", "--quiet", "--short", "HEAD", check=False) or None

    def status(self) -> str:
        """Porcelain status including untracked files: a fingerprint of the working tree."""
        return self.run("status", "--porcelain=v1", "--untracked-files=all")

    def branch_exists(self, name: str) -> bool:
        return bool(self.run("rev-parse", "--verify", "--quiet", f"refs/heads/{name}",
                             check=False))

    def free_branch_name(self, name: str) -> str:
        """`name`, or `name-2`, `name-3`... whichever does not exist yet."""
        candidate, n = name, 1
        while self.branch_exists(candidate):
            n += 1
            candidate = f"{name}-{n}"
        return candidate

    def create_branch(self, name: str, commit: str) -> None:
        self.run("branch", name, commit)

    def ls_files(self) -> list[str]:
        out = self.run("ls-files", "-z")
        return [p for p in out.split("\0") if p]

    @contextmanager
    def worktree(self, commit: str) -> Iterator[Worktree]:
        """A temporary detached worktree at `commit`, removed afterwards whatever happens."""
        path = Path(tempfile.mkdtemp(prefix="acr-worktree-"))
        try:
            self.run("worktree", "add", "--detach", "--force", str(path), commit)
            yield Worktree(path)
        finally:
            git(self.root, "worktree", "remove", "--force", str(path), check=False)
            shutil.rmtree(path, ignore_errors=True)
            git(self.root, "worktree", "prune", check=False)


class Worktree:
    """The scratch checkout where attempts are applied, tested and rolled back."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def run(self, *args: str, **kwargs: object) -> str:
        return git(self.path, *args, **kwargs)  # type: ignore[arg-type]

    def restore(self, keep: Sequence[str] = ()) -> None:
        """Back to the commit exactly: tracked files reset, untracked (not ignored) removed,
        except the untracked paths in `keep` (what the setup command made)."""
        self.run("reset", "--hard", "--quiet", "HEAD")
        self.run("clean", "-fdq", *[arg for path in keep for arg in ("-e", "/" + path)])

    def untracked(self) -> tuple[str, ...]:
        """Untracked, not ignored paths; a wholly untracked directory is one `dir/` entry."""
        out = self.run("ls-files", "--others", "--exclude-standard", "--directory", "-z")
        return tuple(p for p in out.split("\0") if p)

    def diff(self, paths: Sequence[str]) -> str:
        """The change to `paths`, new files included, as a unified diff.

        Only the edited paths: test runs leave caches and build output that are not the fix.
        """
        if not paths:
            return ""
        self.run("add", "--intent-to-add", "--", *paths)
        return self.run("diff", "HEAD", "--", *paths)

    def commit(self, message: str, paths: Sequence[str]) -> str:
        """Commit exactly `paths` and return the new commit's sha."""
        self.run("add", "-A", "--", *paths)
        self.run("commit", "--quiet", "--no-verify", "-F", "-", input_text=message)
        return self.run("rev-parse", "HEAD")


def slugify(text: str, limit: int = 40) -> str:
    """A branch-safe slug: `Median crashes on even lists!` -> `median-crashes-on-even-lists`."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    slug = ""
    for word in words:
        if len(slug) + len(word) + 1 > limit:
            break
        slug = f"{slug}-{word}" if slug else word
    return slug or "task"
