"""Run one command the way the verifier needs: in its own process group (and, where Linux
allows, as a child subreaper), killed whole at the timeout, its output bounded to a head and
a tail, and its test results read from JUnit XML or the runner's summary."""

from __future__ import annotations

import ctypes
import os
import re
import selectors
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from acr_bot.domain import TestRun
from acr_bot.errors import VerifyError
from acr_bot.verify.testresults import Results, parse_junit, parse_output

# --- running a command -----------------------------------------------------------------------

_CHUNK = 32_768
_KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class OutputBuffer:
    """Keeps the first and last `limit // 2` bytes of a stream, however long it is."""

    def __init__(self, limit: int) -> None:
        self.head_limit = max(limit, 0) // 2
        self.tail_limit = max(limit, 0) - self.head_limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def write(self, chunk: bytes) -> None:
        """Add `chunk`, dropping the middle of the stream once the buffer is full."""
        self.total += len(chunk)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            del self.tail[: max(len(self.tail) - self.tail_limit, 0)]

    def text(self) -> str:
        """The kept output as clean text, with a marker where bytes were dropped."""
        omitted = self.total - len(self.head) - len(self.tail)
        if not omitted:
            return clean_output(bytes(self.head + self.tail))
        marker = f"\n... [{omitted} bytes omitted] ...\n"
        return clean_output(bytes(self.head)) + marker + clean_output(bytes(self.tail))


def clean_output(raw: bytes) -> str:
    """Bytes as text fit for a log or a prompt: no colour codes, NULs or other control chars."""
    text = _ANSI.sub("", raw.decode("utf-8", errors="replace"))
    # A lone \r redraws a progress line; as a newline it keeps each state readable.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text)


def run_command(
    command: str,
    cwd: Path,
    *,
    timeout: float,
    env: Mapping[str, str],
    max_output: int = 64_000,
) -> TestRun:
    """Run `command` with /bin/sh in `cwd`, killed after `timeout` s; read its test results.

    A failing or hanging command is a result, not an error: VerifyError means it never started.
    """
    if not cwd.is_dir():
        raise VerifyError(f"cannot run the tests: {cwd} is not a directory")
    # The JUnit file lives outside the checkout so it never shows up in the patch or in git.
    with tempfile.TemporaryDirectory(prefix="acr-junit-") as tmp:
        junit = Path(tmp) / "junit.xml"
        code, seconds, output = execute(
            ["/bin/sh", "-c", command], cwd, timeout, with_junit(env, junit), max_output
        )
        results = parse_junit(junit) or parse_output(output)
    return test_run(command, code, seconds, output, results)


def run_shell(
    command: str, cwd: Path, *, timeout: float, env: Mapping[str, str], max_output: int
) -> TestRun:
    """One agent command: bounded like a test run, with no test results to read."""
    if not cwd.is_dir():
        raise VerifyError(f"cannot run {command!r}: {cwd} is not a directory")
    code, seconds, output = execute(["/bin/sh", "-c", command], cwd, timeout, env, max_output)
    return TestRun(command, code, round(seconds, 3), output)


def with_junit(env: Mapping[str, str], junit: Path) -> dict[str, str]:
    """`env` plus a PYTEST_ADDOPTS that makes any pytest the command starts write JUnit XML."""
    merged = dict(env)
    # An env var, not an argument: it reaches pytest even through make or a shell script.
    extra = f"--junitxml={shlex.quote(str(junit))}"
    merged["PYTEST_ADDOPTS"] = f"{merged.get('PYTEST_ADDOPTS', '')} {extra}".strip()
    return merged


def test_run(
    command: str, code: int | None, seconds: float, output: str, results: Results | None
) -> TestRun:
    """A TestRun from what the command did and what its results said."""
    if results is None:
        return TestRun(command, code, round(seconds, 3), output)
    return TestRun(
        command,
        code,
        round(seconds, 3),
        output,
        counts=results.counts,
        passed_ids=results.passed_ids,
        failed_ids=results.failed_ids,
        skipped_ids=results.skipped_ids,
        messages=results.messages,
        test_seconds=results.seconds,
    )


Kill = Callable[[int, int], None]  # os.kill, or one that may signal another user's processes


def execute(
    argv: Sequence[str], cwd: Path, timeout: float, env: Mapping[str, str], max_output: int,
    kill: Kill = os.kill,
) -> tuple[int | None, float, str]:
    """Run `argv`; return its exit code (None: timed out), its duration and its output."""
    start = time.monotonic()
    _become_subreaper()
    before = _children(os.getpid())
    proc = _spawn(argv, cwd, env)
    assert proc.stdout is not None
    sink, stop = OutputBuffer(max_output), threading.Event()
    reader = threading.Thread(
        target=_pump, args=(proc.stdout.fileno(), sink, stop), name="acr-output", daemon=True
    )
    reader.start()
    try:
        code = _wait(proc, timeout, kill)
    except BaseException:
        # Ctrl-C reaches only our own process group: the command's session would outlive us.
        _kill_group(proc, kill)
        raise
    finally:
        _kill_escaped(before | {proc.pid}, kill)
        _stop_reader(reader, stop)
        proc.stdout.close()
    return code, time.monotonic() - start, sink.text()


def _spawn(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start `argv` in a new session, so its whole process tree can be killed as one group."""
    try:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except (OSError, ValueError) as exc:  # ValueError: a NUL or "=" in the environment
        raise VerifyError(f"cannot run the tests ({argv[-1]!r} in {cwd}): {exc}") from exc


def _wait(proc: subprocess.Popen[bytes], timeout: float, kill: Kill) -> int | None:
    """The command's exit code, or None if it ran past `timeout`; nothing it started survives."""
    code = proc.wait() if _exited(proc, timeout) else None
    # Also after a clean exit: a server left running (`cmd &`) would hold our pipe open and leak
    # into the next attempt.
    _kill_group(proc, kill)
    return code


def _exited(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Whether `proc` exits within `timeout` s. Waits on a pidfd where there is one: Popen.wait
    with a timeout polls with sleeps of up to 50 ms, which a short command pays in full."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux >= 5.3, or the process is already gone
        try:
            proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            return bool(selector.select(timeout=timeout))
    finally:
        os.close(fd)


def _pump(fd: int, sink: OutputBuffer, stop: threading.Event) -> None:
    """Copy the command's output into `sink` until EOF, or until `stop` is set."""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while not stop.is_set():
            if not selector.select(timeout=0.1):
                continue
            chunk = os.read(fd, _CHUNK)
            if not chunk:
                return
            sink.write(chunk)


def _stop_reader(reader: threading.Thread, stop: threading.Event) -> None:
    """Let the reader drain the pipe, then stop it even if someone still holds the pipe open."""
    # Once the group is dead the pipe hits EOF at once; only a process that left the group
    # (setsid, a daemon) can keep it open, and we do not wait for that.
    reader.join(timeout=1.0)
    stop.set()
    reader.join()


def _kill_group(proc: subprocess.Popen[bytes], kill: Kill = os.kill) -> None:
    """SIGTERM the command's process group, then SIGKILL whatever outlives the grace period."""
    if not _group_alive(proc):
        return
    _signal_group(proc.pid, signal.SIGTERM, kill)
    _wait_group(proc, _KILL_GRACE)
    _signal_group(proc.pid, signal.SIGKILL, kill)
    _wait_group(proc, 1.0)
    try:
        proc.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        pass  # stuck in the kernel (D state): nothing more we can do


def _become_subreaper() -> None:
    """Have orphans re-parented to us rather than to init (Linux), so that a daemon the command
    started in a new session (`setsid`, double fork), out of reach of the group kill, is still
    ours to find and kill."""
    global _SUBREAPER
    if _SUBREAPER is None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            _SUBREAPER = libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        except (OSError, AttributeError):
            _SUBREAPER = False


_PR_SET_CHILD_SUBREAPER = 36
_SUBREAPER: bool | None = None


def _processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, session id) of every process /proc shows (none without /proc)."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
            out[int(stat.parent.name)] = (int(fields[1]), int(fields[3]))
        except (OSError, ValueError, IndexError):
            continue  # the process exited while we looked
    return out


def _children(pid: int) -> set[int]:
    """The direct children of `pid`, from its threads' /proc children lists (a few small
    reads, where a scan of every process costs tens of ms on a busy machine); the scan where
    the kernel has no such list."""
    found, listed = set(), False
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        tasks = []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as handle:
                found.update(int(child) for child in handle.read().split())
            listed = True
        except (OSError, ValueError):
            continue
    if listed:
        return found
    return {child for child, (parent, _) in _processes().items() if parent == pid}


def _kill_escaped(known: set[int], kill: Kill = os.kill) -> None:
    """SIGKILL what the command left behind outside its process group: the orphans from its
    session re-parented to us, and everything below them; then reap them. (Our own children
    stay in our session: a thread's subprocess is never taken for one.)"""
    me, session = os.getpid(), os.getsid(0)
    for _ in range(10):  # a process forking in a loop may add children between the rounds
        if not _children(me) - known:  # the usual case, without scanning every process
            return
        table = _processes()
        new = {pid for pid, (parent, sid) in table.items()
               if parent == me and sid != session and pid not in known}
        if not new:
            return
        doomed, frontier = set(new), set(new)
        while frontier:
            frontier = {pid for pid, (parent, _) in table.items()
                        if parent in frontier and pid not in doomed}
            doomed |= frontier
        for pid in doomed:
            try:
                kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        _reap(new, deadline=time.monotonic() + 1.0)


def _reap(children: set[int], deadline: float) -> None:
    """Collect the exit status of killed children (no zombies), waiting until `deadline`."""
    pending = set(children)
    while pending:
        for pid in list(pending):
            try:
                done = os.waitpid(pid, os.WNOHANG)[0] == pid
            except ChildProcessError:
                done = True
            if done:
                pending.discard(pid)
        if pending:
            if time.monotonic() > deadline:
                return  # stuck in the kernel (D state): nothing more we can do
            time.sleep(0.01)


def _wait_group(proc: subprocess.Popen[bytes], seconds: float) -> None:
    """Wait up to `seconds` for the process group to die."""
    deadline = time.monotonic() + seconds
    while _group_alive(proc) and time.monotonic() < deadline:
        time.sleep(0.02)


def _signal_group(pgid: int, sig: signal.Signals, kill: Kill = os.kill) -> None:
    """Send `sig` to a process group that may already be gone."""
    try:
        kill(-pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(proc: subprocess.Popen[bytes]) -> bool:
    """Whether a live (not zombie) process remains in the command's group."""
    proc.poll()  # reap the shell itself, so it does not linger as a zombie group member
    try:
        os.killpg(proc.pid, 0)  # start_new_session made the shell's pid the group id
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _live_member(proc.pid)


def _live_member(pgid: int) -> bool:
    """Whether /proc shows a non-zombie process in group `pgid` (True where there is no /proc)."""
    # killpg(pgid, 0) also succeeds for zombies, which a container's init may never reap.
    proc_root = Path("/proc")
    if not (proc_root / "self" / "stat").is_file():
        return True
    for stat in proc_root.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # the process exited while we looked
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


