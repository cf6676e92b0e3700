"""Who untrusted commands (setup, tests, the agent's shell) run as, and what they can see.

Why a user and not a scrubbed environment: every process of the bot's own user can read the
bot's initial environment in /proc/<pid>/environ (token, API keys), its files (a .git/config
with a persisted token, RUNNER_TEMP) and rewrite its installed package or memory file. A process
of another uid, with no supplementary groups and no_new_privs, can do none of that: the kernel
refuses /proc/<pid>/environ across users. Where unshare works, each command also gets its own
PID namespace (no other process to see, none left behind) and mount namespace (the bot's home,
RUNNER_TEMP and checkout are an empty tmpfs; the toolchains on PATH inside them are mounted
back). A probe run as that user checks the bot's paths before the first command, and the bot
tightens (or refuses) what stays reachable. The copy of the tree it works on: workspace.py.
"""

from __future__ import annotations

import functools
import logging
import os
import pwd
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from acr_bot.errors import VerifyError

log = logging.getLogger(__name__)
SANDBOX_USER = "acr-sandbox"


@dataclass(frozen=True)
class SandboxUser:
    """The unprivileged user untrusted commands run as, and how this process becomes it."""

    name: str
    uid: int
    gid: int
    setpriv: str
    sudo: str | None = None  # the bot is not root: it switches through passwordless sudo
    unshare: str | None = None  # PID and mount namespaces work here

    def argv(self, args: Sequence[str], env: Mapping[str, str],
             prelude: str | None = None) -> tuple[list[str], dict[str, str]]:
        """The command line and environment that run `args` as this user with `env`; with
        `prelude` (a root shell script: the mounts) and namespaces, in new PID and mount
        namespaces: the command sees no process but its own, and the prelude's view of files."""
        drop = [self.setpriv, f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups",
                "--no-new-privs", "--"]
        if prelude is not None and self.unshare is not None:
            # --kill-child: when the namespace's first process dies, the kernel kills the rest.
            drop = [self.unshare, "--pid", "--fork", "--kill-child", "--mount-proc", "--mount",
                    "--propagation", "private", "--", "/bin/sh", "-c", prelude, "acr-jail", *drop]
        if self.sudo is None:
            return [*drop, *args], dict(env)
        # sudo resets the environment (PATH too): hand it over explicitly. It holds no secret:
        # it is the scrubbed environment, so its appearing in sudo's command line is harmless.
        pairs = [f"{name}={value}" for name, value in env.items()]
        return [self.sudo, "-n", "--", "/usr/bin/env", "-i", *pairs, *drop, *args], {}

    def kill(self, pid: int, sig: int) -> None:
        """os.kill for this user's processes (negative pid: a group), through sudo if need be."""
        try:
            os.kill(pid, sig)
        except PermissionError:
            if self.sudo is None:
                raise
            subprocess.run([self.sudo, "-n", "kill", f"-{int(sig)}", "--", str(pid)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)

    def run(self, args: Sequence[str], env: Mapping[str, str] | None = None, *,
            stdin: int | IO[bytes] | None = None, stdout: int | None = None,
            prelude: str | None = None) -> subprocess.Popen[bytes]:
        """Start a helper process (sync, probe) as this user."""
        argv, full_env = self.argv(args, env if env is not None else _helper_env(), prelude)
        return subprocess.Popen(argv, env=full_env, stdin=stdin, stdout=stdout,
                                stderr=subprocess.PIPE, cwd="/")


def _helper_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C"}


@functools.lru_cache(maxsize=None)
def sandbox_user(name: str = SANDBOX_USER) -> SandboxUser | str:
    """The sandbox user, created when missing; or why this process cannot switch to one."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return "setpriv (util-linux) is not installed"
    sudo = None
    if os.geteuid() != 0:
        sudo = shutil.which("sudo")
        if sudo is None or quiet([sudo, "-n", "true"]) != 0:
            return "the bot is not root and has no passwordless sudo"
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        if (problem := _useradd(name, sudo)) is not None:
            return problem
        entry = pwd.getpwnam(name)
    if entry.pw_uid in (0, os.getuid()) or entry.pw_gid == 0:
        raise VerifyError(f"sandbox: local: the user {name!r} is root or the bot itself "
                          f"(uid {entry.pw_uid}); remove it, or use sandbox: docker")
    unshare = shutil.which("unshare")
    probe = [unshare or "unshare", "--pid", "--fork", "--mount-proc", "--mount", "true"]
    if unshare is None or quiet([sudo, "-n", *probe] if sudo else probe) != 0:
        unshare = None  # e.g. a container without CAP_SYS_ADMIN: the user alone must do
    return SandboxUser(name, entry.pw_uid, entry.pw_gid, setpriv, sudo, unshare)


def _useradd(name: str, sudo: str | None) -> str | None:
    """Create a system user with no home, no login shell and no groups but its own."""
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    argv = [useradd, "--system", "--user-group", "--no-create-home", "--home-dir",
            "/nonexistent", "--shell", "/usr/sbin/nologin", name]
    code = quiet([sudo, "-n", *argv] if sudo else argv)
    if code not in (0, 9):  # 9: created meanwhile by another run
        return f"could not create the user {name!r} (useradd exit {code})"
    return None


def quiet(argv: Sequence[str]) -> int:
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=60, check=False).returncode
    except (OSError, subprocess.TimeoutExpired):
        return -1


# --- keeping the bot's own paths out of reach ---------------------------------------------------


def hidden_paths(workdir: Path | None, workspace: Path,
                 needed: Sequence[Path] = ()) -> list[Path]:
    """The bot's private directories, hidden (an empty tmpfs) from commands in the namespace:
    its home, RUNNER_TEMP and the runner's file commands, the checkout being fixed (its .git
    holds a persisted token), and every other private folder (one "other" users may not enter)
    on the way to a toolchain, so that the toolchain can be kept. Outermost first; never the
    sandbox's own place or a parent of it (HOME=/ or HOME=/tmp)."""
    found = [Path.home(), Path(pwd.getpwuid(os.geteuid()).pw_dir), *_runner_dirs()]
    repo = _repository_of(workdir) if workdir else None
    if repo is not None:
        found.append(repo)
    found += [folder for path in toolchains(needed) for folder in private_folders(path)]
    paths = sorted({p.resolve() for p in found if p.is_dir()}, key=lambda p: len(p.parts))
    return [p for p in paths if p != Path("/") and not workspace.is_relative_to(p)]


def toolchains(needed: Sequence[Path] = ()) -> list[Path]:
    """What the untrusted commands may need of the bot's files: the folders on PATH (pyenv, a
    venv, ~/.cargo/bin), this Python, rustup's toolchains (which ~/.cargo/bin's proxies run),
    the user site of `pip install --user`, and `needed` (a test command's program and its
    interpreter, `verify/reach.py`)."""
    home = Path.home()
    wanted = [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    wanted += [Path(sys.executable), Path(sys.executable).resolve(), Path(sys.base_prefix)]
    wanted += [Path(os.environ.get("RUSTUP_HOME") or home / ".rustup"), user_base()]
    return [p for p in [*wanted, *needed] if p.is_absolute() and p.exists()]


def user_base() -> Path:
    """Where `pip install --user` put packages (Python's user base of the bot's home)."""
    return Path(os.environ.get("PYTHONUSERBASE") or Path.home() / ".local")


def private_folders(path: Path) -> list[Path]:
    """The folders above `path` that other users may not enter (no o+x) and that are the
    bot's own (another user's private folder is not the bot's to open)."""
    found = []
    for folder in reversed(path.parents):
        try:
            info = folder.stat()
        except OSError:
            break
        if not info.st_mode & 0o001:
            if info.st_uid != os.geteuid():
                break
            found.append(folder)
    return found


def kept_paths(hide: Sequence[Path], needed: Sequence[Path] = ()) -> list[Path]:
    """What stays visible inside a hidden directory: the toolchains (`toolchains`), so the
    repo's own test command still runs. Each is one top-level entry of the hidden directory."""
    keep: list[Path] = []
    for path in toolchains(needed):
        for hidden in hide:
            if path.is_relative_to(hidden) and path != hidden:
                top = hidden / path.relative_to(hidden).parts[0]
                if top.exists() and top not in keep:
                    keep.append(top)
    return keep


def jail_mounts(hide: Sequence[Path], stage: Path, needed: Sequence[Path] = ()) -> str:
    """The mounts that make the sandbox user's view, as an fstab for one `mount -a` (one
    process, where a shell script of mounts took a dozen per command). Outermost first, each
    hidden dir becomes an empty tmpfs, its kept toolchains set aside under `stage` first and
    mounted back at their own paths; a hidden dir inside a kept one (RUNNER_TEMP in a tool
    cache, the home under a private folder) is hidden again, with its own kept toolchains; one
    already gone with an outer tmpfs needs nothing."""
    lines: list[str] = []
    tops: dict[Path, list[Path]] = {}  # hidden dir -> its kept toolchains
    for folder in sorted(hide, key=lambda p: len(p.parts)):
        if _gone(folder, tops):
            continue
        keep = kept_paths([folder], needed)
        count = sum(len(k) for k in tops.values())
        staged = [stage / str(count + i) for i in range(len(keep))]
        lines += [_bind(path, place) for path, place in zip(keep, staged)]
        lines.append(f"acr-hidden {_fstab(folder)} tmpfs mode=0755,size=1m 0 0")
        lines += [_bind(place, path) for path, place in zip(keep, staged)]
        tops[folder] = keep
    return "".join(line + "\n" for line in lines)


def jail_prelude(fstab: Path) -> str:
    """The root shell script run inside the new mount namespace before dropping to the
    sandbox user: the mounts of `fstab` (`jail_mounts`), then the command."""
    return f'mount -a -T {shlex.quote(str(fstab))} && exec "$@"'


def _bind(source: Path, target: Path) -> str:
    return f"{_fstab(source)} {_fstab(target)} none rbind,X-mount.mkdir 0 0"


def _fstab(path: Path) -> str:
    """`path` as an fstab field (octal escapes for what would split or end it)."""
    return "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in str(path))


def _gone(folder: Path, tops: Mapping[Path, Sequence[Path]]) -> bool:
    """Whether `folder` went with the innermost tmpfs above it (it is in none of its kept)."""
    above = [hidden for hidden in tops if folder.is_relative_to(hidden)]
    if not above:
        return False
    inner = max(above, key=lambda hidden: len(hidden.parts))
    return not any(folder.is_relative_to(kept) for kept in tops[inner])


def bot_paths(workdir: Path | None) -> tuple[list[Path], list[Path]]:
    """(must not be readable, must not be writable) by the sandbox user."""
    secret = [Path.home(), *_runner_dirs()]
    frozen = [Path(__file__).resolve().parents[1], Path(sys.prefix)]
    repo = _repository_of(workdir) if workdir else None
    if repo is not None:
        secret.append(repo / ".git")
        frozen += [repo, repo / ".acr", repo / ".acr" / "memory.json"]
    return [p for p in secret if p.exists()], [p for p in frozen if p.exists()]


# The runner's files: writing GITHUB_ENV or GITHUB_PATH changes what later steps run.
_RUNNER_FILES = ("GITHUB_ENV", "GITHUB_PATH", "GITHUB_OUTPUT", "GITHUB_STATE",
                 "GITHUB_STEP_SUMMARY")


def _runner_dirs() -> list[Path]:
    """RUNNER_TEMP and the folders of the runner's file commands (in the Action's container
    they are mounted at /github/file_commands, outside RUNNER_TEMP)."""
    found = [Path(os.environ["RUNNER_TEMP"])] if os.environ.get("RUNNER_TEMP") else []
    for name in _RUNNER_FILES:
        if os.environ.get(name):
            folder = Path(os.environ[name]).parent
            if folder not in found and folder != Path("/"):
                found.append(folder)
    return found


def _repository_of(workdir: Path) -> Path | None:
    """The checkout a worktree belongs to (its `.git` file names the common git dir)."""
    marker = workdir / ".git"
    try:
        text = marker.read_text() if marker.is_file() else ""
    except OSError:
        return None
    if not text.startswith("gitdir:"):
        return workdir if marker.is_dir() else None
    gitdir = Path(text.split(":", 1)[1].strip())  # <repo>/.git/worktrees/<name>
    return gitdir.parents[2] if gitdir.parent.name == "worktrees" else None


def reachable(user: SandboxUser, secret: Sequence[Path], frozen: Sequence[Path],
              prelude: str | None = None) -> list[str]:
    """What the sandbox user can read (or traverse) of `secret` and write of `frozen`."""
    script = ('for p in "$@"; do case "$p" in r:*) f=${p#r:}; { [ -r "$f" ] || { [ -d "$f" ] '
              '&& [ -x "$f" ]; }; } && echo "read $f";; w:*) f=${p#w:}; [ -w "$f" ] && '
              'echo "write $f";; esac; done; exit 0')
    args = [f"r:{p}" for p in secret] + [f"w:{p}" for p in frozen]
    proc = user.run(["/bin/sh", "-c", script, "sh", *args], stdout=subprocess.PIPE,
                    prelude=prelude)
    out, err = proc.communicate(timeout=60)
    if proc.returncode != 0:
        raise VerifyError(f"sandbox: local: cannot run as {user.name}: "
                          f"{err.decode(errors='replace').strip()[-300:]}")
    return out.decode(errors="replace").splitlines()


def protect(user: SandboxUser, workdir: Path | None, hidden: Sequence[Path] = (),
            prelude: str | None = None) -> list[str]:
    """Take away "other" access from the bot's own paths the sandbox user can reach (through
    the namespace's `prelude`, when there is one); refuse when one stays reachable. Returns
    what was tightened."""
    secret, frozen = bot_paths(workdir)
    # A hidden directory is an empty tmpfs in the namespace but for the kept toolchains.
    secret = [p for p in secret if not any(p.resolve().is_relative_to(h) for h in hidden)]
    found = reachable(user, secret, frozen, prelude)
    tightened = []
    for line in found:
        how, _, name = line.partition(" ")
        if _tighten(Path(name), 0o007 if how == "read" else 0o002, user.sudo):
            tightened.append(f"{how} {name}")
    left = reachable(user, secret, frozen, prelude) if found else []
    if left:
        raise VerifyError(f"sandbox: local: the sandbox user {user.name} can still "
                          f"{left[0]} (the bot could not change that): fix its permissions, "
                          "or use sandbox: docker")
    return tightened


def _tighten(path: Path, bits: int, sudo: str | None) -> bool:
    """Take `bits` of "other" access away from `path`: the bot's own, or any as root (the
    runner's checkout mounted into the Action's container belongs to the runner's uid)."""
    mode = path.stat().st_mode & 0o7777 & ~bits
    try:
        path.chmod(mode)
        return True
    except PermissionError:
        return sudo is not None and quiet([sudo, "-n", "chmod", f"{mode:o}", str(path)]) == 0
