"""Local git: inspect the user's checkout, work in a detached worktree, commit, branch, push.

The bot never edits the user's working tree: every attempt happens in a temporary worktree at
HEAD, and a fix becomes a branch created from outside, so the user's branch and files stay put.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from acr_bot.errors import GitError
from acr_bot.secrets import scrub_env

BOT_NAME = "acr-bot"
BOT_EMAIL = "acr-bot@users.noreply.github.com"
SAFE_CONFIG = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false")
# Who the agent's own commits in its copy are by (they never leave the copy).
AGENT_IDENTITY = (("user.name", "acr-bot agent"), ("user.email", "agent@acr-bot.invalid"))


def git(root: Path, *args: str, check: bool = True, env: Mapping[str, str] | None = None,
        input_text: str | None = None, timeout: float = 300) -> str:
    """Run one git command in `root` and return its stdout (stripped of the final newline).

    The repository is not trusted: a test run can plant hooks or an fsmonitor command in its
    git dir. So no hook or fsmonitor ever runs, and git gets an environment without the
    bot's credentials; `env` adds what one command needs (the token for one push, say)."""
    command = ["git", *SAFE_CONFIG, "-c", f"user.name={BOT_NAME}", "-c",
               f"user.email={BOT_EMAIL}", *args]
    full_env = {**scrub_env(os.environ), "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    try:
        done = subprocess.run(command, cwd=root, capture_output=True, text=True,
                              env=full_env, check=False, input=input_text, timeout=timeout,
                              errors="replace")
    except FileNotFoundError:
        raise GitError("git is not installed or not on PATH") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {' '.join(args[:3])} timed out after {timeout:.0f} s") from None
    if check and done.returncode != 0:
        output = (done.stderr or done.stdout).strip()
        error = GitError(f"git {' '.join(args[:3])} failed in {root}: {_headline(output)}"
                         if output else f"git {args[0]} exited {done.returncode}")
        error.output = output  # type: ignore[attr-defined]
        raise error
    return done.stdout.rstrip("\n")


def _headline(output: str) -> str:
    """The line that says what went wrong (git ends with hints, not with the error)."""
    lines = output.splitlines()
    for line in lines:
        if line.startswith(("fatal:", "error:", " ! [")):
            return line.strip()
    return lines[-1].strip()


class Remote:
    """Where to fetch from and push to, with the token passed explicitly for this command
    only (an http extra header in the environment, never in argv, URLs or config files), so
    neither a checkout's stored credentials nor a leaked process list matter."""

    def __init__(self, url: str, token: str = "") -> None:
        self.url = url
        self.token = token

    def env(self) -> dict[str, str]:
        if not self.token or not self.url.startswith(("https://", "http://")):
            return {"GIT_TERMINAL_PROMPT": "0"}
        scheme, rest = self.url.split("://", 1)
        key = f"http.{scheme}://{rest.split('/', 1)[0]}/.extraheader"
        basic = base64.b64encode(f"x-access-token:{self.token}".encode()).decode()
        # The empty value first resets headers configured elsewhere (actions/checkout's).
        return {"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_COUNT": "2",
                "GIT_CONFIG_KEY_0": key, "GIT_CONFIG_VALUE_0": "",
                "GIT_CONFIG_KEY_1": key, "GIT_CONFIG_VALUE_1": f"AUTHORIZATION: basic {basic}"}

    def __repr__(self) -> str:  # never print the token
        return f"Remote({self.url!r})"


class PushRejected(GitError):
    """The remote moved on since we fetched (non-fast-forward); fetch, merge, try again."""


def fetch(root: Path, remote: Remote, branch: str, into: str) -> str | None:
    """Fetch `branch` of `remote` into local ref `into`; its sha, or None if it does not exist."""
    # One round trip (not ls-remote, then fetch): concurrent writers race less.
    try:
        git(root, "fetch", "--quiet", "--no-tags", remote.url,
            f"+refs/heads/{branch}:{into}", env=remote.env(), timeout=300)
    except GitError as exc:
        if "couldn't find remote ref" in getattr(exc, "output", str(exc)):
            return None
        raise
    return git(root, "rev-parse", into)


def push(root: Path, remote: Remote, commit: str, branch: str,
         expect: str | None = None, force: bool = False) -> None:
    """Push `commit` to `branch`. With `force`, only if the branch is still at `expect`."""
    args = ["push", "--quiet", "--no-verify", remote.url, f"{commit}:refs/heads/{branch}"]
    if force:
        args.insert(3, f"--force-with-lease=refs/heads/{branch}:{expect or ''}")
    try:
        git(root, *args, env=remote.env(), timeout=300)
    except GitError as exc:
        text = getattr(exc, "output", str(exc))
        if any(s in text for s in ("rejected", "non-fast-forward", "fetch first", "stale info",
                                   "failed to update ref", "cannot lock ref")):
            # One line that says what happened, not git's multi-line report (the Action
            # prints it as the run's error).
            rejected = PushRejected(f"push to {branch} was rejected: the branch moved on since "
                                    f"it was read (another run pushed to it): {_headline(text)}")
            rejected.output = text  # type: ignore[attr-defined]
            raise rejected from None
        raise


SLUG_RE = re.compile(r"^(?:https?://|ssh://|git@)[^/:]+[:/](?:[^/]*@)?([\w.-]+/[\w.-]+?)(?:\.git)?/?$")


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

    def slug(self) -> str | None:
        """owner/name of the `origin` remote (an https, ssh or git@ URL), else None."""
        url = self.run("config", "--get", "remote.origin.url", check=False)
        match = SLUG_RE.match(url.strip())
        return match.group(1) if match else None

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


@contextmanager
def base_repository(tree: Path) -> Iterator[Path | None]:
    """A `.git` directory for an agent's copy of `tree` (in a temporary place, removed after):
    one commit, `tree`'s HEAD, on branch `main`, with its index. Shallow (that commit's objects
    only), no remote, no hooks, no credentials. Copied next to the tree's files, it shows their
    changes against the attempt's base as working-tree changes, and nothing the agent does with
    it reaches the bot's repository. None when `tree` is not the top of a checkout."""
    top = git(tree, "rev-parse", "--show-toplevel", check=False)
    head = git(tree, "rev-parse", "--verify", "--quiet", "HEAD", check=False)
    if not head or not top or Path(top).resolve() != tree.resolve():
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="acr-base-git-") as tmp:
        repo = Path(tmp) / "repo"
        git(Path(tmp), "init", "--quiet", "--template=", "--initial-branch=main", str(repo))
        dot = repo / ".git"
        objects = git(tree, "rev-list", "--objects", "--no-walk", head)
        # No delta search (--window=0): the pack lives for one session.
        git(tree, "pack-objects", "-q", "--window=0", str(dot / "objects" / "pack" / "pack"),
            input_text=objects + "\n")
        (dot / "shallow").write_text(head + "\n")
        git(repo, "update-ref", "refs/heads/main", head)
        git(repo, "read-tree", head)
        for key, value in AGENT_IDENTITY:
            git(repo, "config", key, value)
        yield dot


def slugify(text: str, limit: int = 40) -> str:
    """A branch-safe slug: `Median crashes on even lists!` -> `median-crashes-on-even-lists`."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    slug = ""
    for word in words:
        if len(slug) + len(word) + 1 > limit:
            break
        slug = f"{slug}-{word}" if slug else word
    return slug or "task"
