"""The sandbox user's own place: a copy of the tree, its HOME and TMPDIR; one command in it.

Before each test command the bot streams a tar of the worktree to a `tar -x` run *as the
sandbox user*; afterwards a `tar -c` run as that user streams the copy back, and the bot
extracts it with tarfile's `data` filter into a private staging dir. So the bot never follows a
link the untrusted code planted, and a file that user could not read cannot come back.

The copy is made whole once (and for each agent session, which gets a .git); after that only
what changed moves (verify/treesync.py): into the copy, the entries whose signature changed
since the last sync, and the removals; back, the entries whose change time is after the stamp
the bot set before the command (a time the sandbox user cannot forge), and the removals, read
from the copy's full listing. What the bot refused to take back is removed from the copy at the
next sync, so a link planted there cannot judge a later run.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from acr_bot.domain import TestRun
from acr_bot.errors import VerifyError
from acr_bot.verify.isolation import (
    SandboxUser,
    hidden_paths,
    jail_mounts,
    jail_prelude,
    quiet,
    user_base,
)
from acr_bot.verify.process import execute, test_run, with_junit
from acr_bot.verify.testresults import Results, parse_junit, parse_output
from acr_bot.verify.treesync import Manifest, apply_back, changes, manifest

log = logging.getLogger(__name__)
_SYNC_TIMEOUT = 600.0
_STAMP_LEAD_NS = 20_000_000  # the stamp is this far before the command: over a clock tick


@dataclass
class _Synced:
    """The copy's state after the last sync: the tree it copies and that tree's manifest."""

    tree: Path
    manifest: Manifest
    git: bool = False  # an agent session's .git is in the copy
    stale: tuple[str, ...] = ()  # entries the copy holds that were not taken back


class Workspace:
    """/tmp/acr-sandbox-*/{work,home,tmp,out}: the root is the bot's (0755), the rest the
    sandbox user's (0700). `work` is the copy of the tree; `out` holds the JUnit file."""

    PARTS = ("work", "home", "tmp", "out")

    def __init__(self, user: SandboxUser, workdir: Path | None = None) -> None:
        self.user = user
        # /tmp, not tempfile's choice: TMPDIR may point into the bot's private space.
        self.root = Path(tempfile.mkdtemp(prefix="acr-sandbox-", dir="/tmp"))
        self.root.chmod(0o755)
        for part in self.PARTS:
            (self.root / part).mkdir(mode=0o700)
        (self.root / "mnt").mkdir(mode=0o700)  # the prelude's staging point, root's
        # Removed even when the owner forgets close(): at garbage collection or exit.
        self._cleanup = weakref.finalize(self, _remove, self.root, user.sudo)
        self._synced: _Synced | None = None
        self.workdir = workdir
        self.needed: list[Path] = []  # what the commands need of the bot's files (reach.py)
        self.hidden: list[Path] = []
        self.prelude: str | None = None
        self._jail()
        owner = [user.sudo, "-n"] if user.sudo else []
        if quiet([*owner, "chown", f"{user.uid}:{user.gid}",
                   *[str(self.root / p) for p in self.PARTS]]) != 0:
            raise VerifyError(f"sandbox: local: cannot hand {self.root} to {user.name}")

    def _jail(self) -> None:
        """What the namespace hides, and the prelude that hides it (none without unshare)."""
        if self.user.unshare:
            self.hidden = hidden_paths(self.workdir, self.root, self.needed)
            fstab = self.root / "jail.fstab"  # the bot's, in its own folder
            fstab.write_text(jail_mounts(self.hidden, self.root / "mnt", self.needed))
            self.prelude = jail_prelude(fstab)

    def need(self, paths: Iterable[Path]) -> bool:
        """Keep `paths` (a command's program and interpreter) usable in the namespace;
        whether that changed what is hidden or kept."""
        new = [p for p in paths if p not in self.needed]
        if not new:
            return False
        self.needed += new
        before = (self.hidden, self.prelude)
        self._jail()
        return (self.hidden, self.prelude) != before

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def junit(self) -> Path:
        return self.root / "out" / "junit.xml"

    def env(self, env: Mapping[str, str]) -> dict[str, str]:
        """`env` with HOME and TMPDIR of the sandbox user's own; Python's user site stays the
        bot's (`pip install --user` in a set-up step), which the namespace keeps."""
        home, tmp = str(self.root / "home"), str(self.root / "tmp")
        site = {"PYTHONUSERBASE": str(user_base())} if user_base().is_dir() else {}
        return {**site, **env, "HOME": home, "TMPDIR": tmp, "USER": self.user.name,
                "LOGNAME": self.user.name}

    def sync_in(self, tree: Path, git: Path | None = None) -> None:
        """Make `work` an exact copy of `tree` (without its .git); empty `out`. With `git` (a
        `.git` directory, `gitrepo.base_repository`), the copy gets that one as its own. The
        whole tree the first time and with `git`; only what changed after that."""
        last, self._synced = self._synced, None  # a failed sync leaves no state to trust
        now = manifest(tree)
        if git is None and last is not None and last.tree == tree:
            self._sync_changes(tree, last, now)
        else:
            self._sync_all(tree, git)
        self._synced = _Synced(tree, now, git is not None)
        # The stamp leads the command by a clock tick, so the copy's own last writes must be
        # older than it: otherwise `find -cnewer` takes them for the command's, and they come
        # back into the tree as changed (new inodes, copied in again by the next sync).
        time.sleep(_STAMP_LEAD_NS / 1e9)
        stamp = time.time_ns() - _STAMP_LEAD_NS
        os.utime(self.stamp, ns=(stamp, stamp))

    @property
    def stamp(self) -> Path:
        """The bot's file whose time marks the start of a command (`find -cnewer`)."""
        path = self.root / "stamp"
        if not path.exists():
            path.touch(mode=0o644)
        return path

    def _sync_changes(self, tree: Path, last: _Synced, now: Manifest) -> None:
        """Copy what changed in `tree` since `last`; remove what went (and what is stale)."""
        copy, remove = changes(last.manifest, now)
        remove = [*remove, *last.stale, *([".git"] if last.git else [])]
        listing = self.root / "remove"
        listing.write_bytes(b"".join(f"{rel}\0".encode() for rel in remove))
        listing.chmod(0o644)
        # Folders a command left closed are opened one by one (-exec \\;) before find enters.
        script = ('cd "$1/work" && find . ../out -type d ! -perm -u=rwx -exec chmod u+rwx {} \\; '
                  '2>/dev/null; find ../out -mindepth 1 -delete && xargs -0 -r rm -rf -- < "$2" '
                  '&& exec tar -x -f - -C .')
        self._tar_in(script, [str(self.root), str(listing)],
                     [(tree / rel, rel) for rel in copy])

    def _sync_all(self, tree: Path, git: Path | None) -> None:
        """Make `work` a copy of the whole tree."""
        # chmod first: a command may have left directories it cannot itself write to.
        script = ('chmod -R u+rwX "$1" "$2" 2>/dev/null; find "$1" "$2" -mindepth 1 -delete '
                  '&& exec tar -x -f - -C "$1"')
        # GNU tar reads the bot's own tree (links stored as links): 15 times faster than
        # tarfile on 10,000 files.
        extra = ["-C", str(git.parent), git.name] if git is not None else []
        source = subprocess.Popen(["tar", "-c", "-f", "-", "--anchored", "--exclude=./.git",
                                   "-C", str(tree), ".", *extra], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL)
        assert source.stdout is not None
        proc = self.user.run(["/bin/sh", "-c", script, "sh", str(self.work),
                              str(self.root / "out")], stdin=source.stdout)
        source.stdout.close()  # the extracting side holds it now
        _finish(proc, "copy the tree into the sandbox")
        _finish(source, "read the tree", ok=(0, 1))  # 1: a file changed while it was read

    def _tar_in(self, script: str, args: list[str],
                entries: Iterable[tuple[Path, str]]) -> None:
        """Stream `entries` to `script` run as the sandbox user."""
        proc = self.user.run(["/bin/sh", "-c", script, "sh", *args], stdin=subprocess.PIPE)
        assert proc.stdin is not None
        try:
            with tarfile.open(fileobj=proc.stdin, mode="w|") as tar:
                for path, rel in entries:
                    tar.add(path, arcname=rel, recursive=False)
        except BrokenPipeError:
            pass  # the extracting side failed: its exit code says why
        finally:
            proc.stdin.close()
        _finish(proc, "copy the tree into the sandbox")

    def sync_out(self, tree: Path, staging: Path) -> Path | None:
        """Make `tree` (but its .git) an exact copy of `work` (but the copy's .git, which is
        the agent's alone); return the JUnit file, if any. Only what changed in the copy
        after the last sync_in into `tree` moves."""
        last, self._synced = self._synced, None
        if last is None or last.tree != tree:
            return self._sync_all_out(tree, staging)
        present = self._listing()
        # Also every path the tree did not have: what a moved folder holds keeps its old times.
        moved = self.root / "moved"
        moved.write_bytes(b"".join(f"work/{rel}\0".encode(errors="surrogateescape")
                                   for rel in sorted(present - set(last.manifest.entries))))
        moved.chmod(0o644)
        script = ('cd "$1" && { find work -mindepth 1 \\( -path work/.git -prune -o \\( -newer "$2" '
                  '-o -cnewer "$2" \\) -print0 \\); cat "$3"; [ -f out/junit.xml ] && printf '
                  '"out\\0out/junit.xml\\0"; } | sort -zu | exec tar -c -f - --null --no-recursion -T -')
        junit = self._tar_out(script, [str(self.root), str(self.stamp), str(moved)], staging)
        apply_back(tree, staging / "work", present)
        now = manifest(tree)
        stale = tuple(sorted(present - set(now.entries)))
        self._synced = _Synced(tree, now, last.git, stale)
        return junit

    def _listing(self) -> set[str]:
        """Every path in the copy (but its .git), as the sandbox user sees them; what a command
        left unreadable is opened first (so nothing is missing from the list)."""
        script = ('cd "$1" && find . ../out \\( -path ./.git -prune \\) -o -type d ! -perm -u=rx '
                  '-exec chmod u+rx {} \\; 2>/dev/null; find . ../out \\( -path ./.git -prune \\) -o '
                  '-type f ! -perm -u=r -exec chmod u+r {} + 2>/dev/null; '
                  'exec find . -mindepth 1 \\( -path ./.git -prune -o -print0 \\)')
        proc = self.user.run(["/bin/sh", "-c", script, "sh", str(self.work)],
                             stdout=subprocess.PIPE)
        out, _ = proc.communicate(timeout=_SYNC_TIMEOUT)
        if proc.returncode != 0:
            raise VerifyError(f"sandbox: local: cannot list the copy (exit {proc.returncode})")
        return {p.removeprefix("./") for p in out.decode(errors="surrogateescape").split("\0")
                if p}

    def _sync_all_out(self, tree: Path, staging: Path) -> Path | None:
        """Make `tree` a copy of the whole of `work`."""
        script = ('chmod -R u+rX "$1/work" "$1/out" 2>/dev/null; '
                  'exec tar -c -f - --anchored --exclude=work/.git -C "$1" work out')
        junit = self._tar_out(script, [str(self.root)], staging)
        _replace_tree(tree, staging / "work")
        return junit

    def _tar_out(self, script: str, args: list[str], staging: Path) -> Path | None:
        """Extract what `script` (run as the sandbox user) streams into `staging`; the JUnit
        file, if any."""
        proc = self.user.run(["/bin/sh", "-c", script, "sh", *args], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                _extract(tar, staging)
        except tarfile.TarError as exc:
            raise VerifyError(f"cannot copy the sandbox's tree back: {exc}") from None
        finally:
            proc.stdout.close()
            _finish(proc, "copy the tree back from the sandbox", strict=False)
        junit = staging / "out" / "junit.xml"
        return junit if junit.is_file() and not junit.is_symlink() else None

    def remove(self) -> None:
        """Delete everything, the sandbox user's files included."""
        self._cleanup()


class PlainCopy:
    """Where there is no sandbox user: a private copy of `tree` (but its .git) for the bot's
    own user, with `git` as its .git; `close` makes `tree` an exact copy of it again."""

    def __init__(self, tree: Path, git: Path | None) -> None:
        self.tree = tree
        self.path = Path(tempfile.mkdtemp(prefix="acr-agent-"))
        top = str(tree)
        shutil.copytree(tree, self.path, symlinks=True, dirs_exist_ok=True,
                        ignore=lambda folder, names: [".git"] if folder == top else [])
        if git is not None:
            shutil.copytree(git, self.path / ".git", symlinks=True)

    def close(self) -> None:
        try:
            _replace_tree(self.tree, self.path)
        finally:
            shutil.rmtree(self.path, ignore_errors=True)


def _remove(root: Path, sudo: str | None) -> None:
    if sudo is not None:  # the bot may not delete the sandbox user's files
        parts = [str(root / p) for p in Workspace.PARTS]
        quiet([sudo, "-n", "rm", "-rf", "--", *parts])
    shutil.rmtree(root, ignore_errors=True)


def _extract(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract the untrusted stream into the empty `dest`: only `work/**` and out/junit.xml,
    plain directories and files (permission bits without set-uid), no device, no hard link;
    symbolic links last (so no file is written through one), and only those that resolve
    inside `work`. Written by hand: tarfile's `data` filter needs Python 3.11.4."""
    links: list[tuple[Path, str]] = []
    for member in tar:
        name = member.name.removeprefix("./")
        parts = Path(name).parts
        wanted = (parts[:1] == ("work",) and parts[1:2] != (".git",)) or name in (
            "out", "out/junit.xml")
        if not wanted or Path(name).is_absolute() or ".." in parts:
            continue
        if member.issym():
            links.append((dest / name, member.linkname))
        elif member.isdir() or member.isfile():
            try:
                _write(tar, member, dest / name)
            except OSError as exc:
                log.info("sandbox: not copied back: %s (%s)", name, exc)
        else:
            log.info("sandbox: not copied back: %s (type %r)", name, member.type)
    _make_links(links, dest / "work")


def _write(tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path) -> None:
    if member.isdir():
        path.mkdir(parents=True, exist_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    source = tar.extractfile(member)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    with os.fdopen(os.open(path, flags, member.mode & 0o777), "wb") as out:
        if source is not None:
            shutil.copyfileobj(source, out)


def _make_links(links: list[tuple[Path, str]], root: Path) -> None:
    """Create the links, then drop every one that leads out of `root` (a link may go through
    another, so all are checked once all exist)."""
    for path, target in links:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() and not path.is_symlink():
            os.symlink(target, path)
    inside = os.path.realpath(root) + os.sep
    for path, target in links:
        if path.is_symlink() and not os.path.realpath(path).startswith(inside):
            log.info("sandbox: not copied back: %s -> %s leads out of the tree", path, target)
            path.unlink()


def _replace_tree(tree: Path, copy: Path) -> None:
    """Replace the contents of `tree` (but .git) with those of `copy`."""
    for entry in tree.iterdir():
        if entry.name == ".git":
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    if copy.is_dir():
        for entry in copy.iterdir():
            if entry.name != ".git":  # never replace the worktree's link to its repository
                shutil.move(str(entry), str(tree / entry.name))


def _finish(proc: subprocess.Popen[bytes], what: str, strict: bool = True,
            ok: tuple[int, ...] = (0,)) -> None:
    try:
        code = proc.wait(timeout=_SYNC_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if code in ok:
        return
    if strict:
        raise VerifyError(f"sandbox: local: could not {what} (exit {code}): {err[-500:]}")
    if code != 0:
        log.info("sandbox: %s: exit %s: %s", what, code, err[-500:])




def isolated_run(space: Workspace, command: str, tree: Path, *, timeout: float,
                 env: Mapping[str, str], max_output: int) -> TestRun:
    """Run `command` as the sandbox user on its copy of `tree`; `tree` then gets the copy's
    state back (what the command changed), and the results are read from the copy's JUnit."""
    if not tree.is_dir():
        raise VerifyError(f"cannot run the tests: {tree} is not a directory")
    space.sync_in(tree)
    code, seconds, output = _execute(space, command, timeout, with_junit(space.env(env),
                                     space.junit), max_output)
    results = copy_back(space, tree) or parse_output(output)
    return test_run(command, code, seconds, output, results)


def isolated_exec(space: Workspace, command: str, *, timeout: float, env: Mapping[str, str],
                  max_output: int) -> TestRun:
    """One agent command on the copy as it stands (no sync: the session copies back once)."""
    code, seconds, output = _execute(space, command, timeout, space.env(env), max_output)
    return TestRun(command, code, round(seconds, 3), output)


def copy_back(space: Workspace, tree: Path) -> Results | None:
    """`tree` gets the copy's state; returns the results of the JUnit file the run left."""
    with tempfile.TemporaryDirectory(prefix="acr-sandbox-back-") as staging:
        junit = space.sync_out(tree, Path(staging))
        return parse_junit(junit) if junit else None


def _execute(space: Workspace, command: str, timeout: float, env: Mapping[str, str],
             max_output: int) -> tuple[int | None, float, str]:
    # env -C: the bot may not be able to enter the sandbox user's directory itself (sudo).
    args = ["/usr/bin/env", "-C", str(space.work), "/bin/sh", "-c", command]
    argv, full_env = space.user.argv(args, env, space.prelude)
    return execute(argv, Path("/"), timeout, full_env, max_output, kill=space.user.kill)
