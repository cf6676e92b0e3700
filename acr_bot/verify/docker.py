"""The docker sandbox: setup and test commands in a sibling container, through the docker SDK.

This is the only module that imports `docker`. The container gets a copy of the worktree
(never a mount of the runner's checkout), no network (the setup step may have it when the
user allows), CPU, memory and process limits, no host environment at all, and it is removed
on every path: success, failure, timeout, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from acr_bot.domain import TestRun
from acr_bot.errors import VerifyError
from acr_bot.gitrepo import base_repository
from acr_bot.verify.process import OutputBuffer, test_run
from acr_bot.verify.testresults import parse_junit, parse_output
from acr_bot.verify.treesync import walk

log = logging.getLogger(__name__)
WORKDIR = "/workspace"
JUNIT = "/tmp/acr-junit.xml"
LABEL = "acr-bot.sandbox"


class DockerSandbox:
    """Runs commands in containers from `image` (after the setup step, from its snapshot)."""

    name = "docker"

    def __init__(self, image: str, *, timeout: float = 600, max_output: int = 64_000,
                 network_for_setup: bool = False, cpus: float = 2.0, memory: str = "2g",
                 pids: int = 512, client: Any = None) -> None:
        self.image = image
        self.timeout = timeout
        self.max_output = max_output
        self.network_for_setup = network_for_setup
        self.limits = {"nano_cpus": int(cpus * 1e9), "mem_limit": memory,
                       "memswap_limit": memory, "pids_limit": pids}
        self._client = client
        self._run_image = image
        self._snapshot: str | None = None
        self._warned: set[str] = set()

    def warn_once(self, message: str) -> None:
        """A warning said once per run, however many agent sessions meet the same thing."""
        if message not in self._warned:
            self._warned.add(message)
            log.warning("%s", message)

    @property
    def client(self) -> Any:
        if self._client is None:
            import docker

            try:
                self._client = docker.from_env()
                self._client.ping()
            except docker.errors.DockerException as exc:
                raise VerifyError(f"sandbox: docker needs a running Docker engine ({exc}); "
                                  "use sandbox: local, or start dockerd") from None
        return self._client

    def _ensure_image(self) -> None:
        import docker

        try:
            self.client.images.get(self.image)
        except docker.errors.ImageNotFound:
            try:
                self.client.images.pull(self.image)
            except docker.errors.DockerException as exc:
                raise VerifyError(f"sandbox image {self.image!r} is not available here and "
                                  f"could not be pulled: {exc}") from None

    def prepare(self, setup_command: str | None, workdir: Path) -> TestRun | None:
        """Run the setup command and snapshot the container, so test runs start set up."""
        self._ensure_image()
        if not setup_command:
            return None
        run, snapshot = self._execute(setup_command, workdir, self.image,
                                      network=self.network_for_setup, keep=True)
        # Only a snapshot we made is ours to remove: after a failed setup there is none, and
        # close() must never remove the user's own image.
        self._snapshot = snapshot
        self._run_image = snapshot or self.image
        return run

    def run(self, command: str, workdir: Path) -> TestRun:
        run, _ = self._execute(command, workdir, self._run_image, network=False, keep=False)
        return run

    def session(self, workdir: Path) -> DockerShell:
        """One container for an agent attempt, on a copy of `workdir` (from the setup
        snapshot), kept for the attempt's commands; closing it copies the changed tree back
        and removes the container."""
        self._ensure_image()
        if not workdir.is_dir():
            raise VerifyError(f"cannot start the agent's container: {workdir} is not a directory")
        with base_repository(workdir) as dot:
            return DockerShell(self, workdir, dot)

    def close(self) -> None:
        if self._snapshot:
            try:
                self.client.images.remove(self._snapshot, force=True)
            except Exception as exc:  # noqa: BLE001 - never mask the run's own result
                log.warning("sandbox: could not remove snapshot %s: %s", self._snapshot, exc)
            self._snapshot = None

    def _execute(self, command: str, workdir: Path, image: str, *, network: bool,
                 keep: bool) -> tuple[TestRun, str | None]:
        """Create, fill, start, wait, collect, remove. Returns the run and, with `keep`, a
        snapshot image of the finished container."""
        if not workdir.is_dir():
            raise VerifyError(f"cannot run the tests: {workdir} is not a directory")
        # The entrypoint is replaced, not inherited: with an image that has one (a CI image,
        # acr-bot's own action image), the command would only be its arguments.
        container = self.client.containers.create(
            image, [command], entrypoint=["/bin/sh", "-c"], working_dir=WORKDIR, detach=True,
            environment={"PYTEST_ADDOPTS": f"--junitxml={JUNIT}", "CI": "true",
                         "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"},
            network_disabled=not network, labels={LABEL: "1"}, cap_drop=["ALL"],
            security_opt=["no-new-privileges"], **self.limits)
        try:
            container.put_archive("/", _tar(workdir))
            started = time.monotonic()
            code, output = self._wait(container)
            seconds = time.monotonic() - started
            results = self._junit(container) or parse_output(output)
            snapshot = None
            if keep and code == 0:
                snapshot = container.commit(repository="acr-bot-setup",
                                            tag=uuid.uuid4().hex[:12]).id
            return test_run(command, code, seconds, output, results), snapshot
        finally:
            container.remove(force=True)  # every path: success, failure, timeout, Ctrl-C

    def _wait(self, container: Any) -> tuple[int | None, str]:
        """Start the container and collect bounded output; kill it at the timeout."""
        sink = OutputBuffer(self.max_output)
        container.start()
        reader = threading.Thread(target=_pump, args=(container, sink), daemon=True)
        reader.start()
        try:
            status = container.wait(timeout=self.timeout)
            code: int | None = int(status.get("StatusCode", 1))
        except Exception:  # noqa: BLE001 - the SDK raises requests' timeout types
            container.kill()
            code = None
        reader.join(timeout=5)
        return code, sink.text()

    def _junit(self, container: Any) -> Any:
        import docker

        try:
            stream, _ = container.get_archive(JUNIT)
        except docker.errors.NotFound:
            return None
        data = b"".join(stream)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar, \
                tempfile.TemporaryDirectory(prefix="acr-junit-") as tmp:
            member = tar.extractfile(tar.getmembers()[0])
            path = Path(tmp) / "junit.xml"
            path.write_bytes(member.read() if member else b"")
            return parse_junit(path)


# Kills every process of the container but PID 1 (tini), the keep-alive and this shell: what a
# command started never outlives it, as with the local sandbox.
_KILL_REST = ('for d in /proc/[0-9]*; do p=${d#/proc/}; case " 1 $KEEP $$ " in *" $p "*) ;; '
              '*) kill -9 "$p" 2>/dev/null;; esac; done')
_REAP = f"{_KILL_REST}; exit 0"
# One exec per command: the command in the shell, then what it left behind dies, and the exec
# ends with the command's code (a daemon holding the output open dies with the rest).
_COMMAND = f'"$0" -c "$1"; rc=$?; {_KILL_REST}; exit $rc'


class DockerShell:
    """The container of one agent attempt: commands run with `exec`, no network, limited."""

    def __init__(self, sandbox: DockerSandbox, workdir: Path, git: Path | None = None) -> None:
        """`git`: the copy's own .git (`gitrepo.base_repository`); it stays in the container."""
        self.sandbox, self.workdir = sandbox, workdir
        self.shell, self.keep = "/bin/sh", ""
        self.container = sandbox.client.containers.create(
            sandbox._run_image, ["infinity"], entrypoint=["sleep"], working_dir=WORKDIR,
            detach=True,
            init=True, environment=_AGENT_ENV, network_disabled=True, labels={LABEL: "1"},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"], **sandbox.limits)
        try:
            self.container.put_archive("/", _tar(workdir, git))
            self.container.start()
            self.before = _local_tree(workdir)  # what was just put there
            self.keep = self._run("cat /proc/1/task/1/children", 10)[1].split()[0]
            has = self._run("for p in bash git; do command -v $p >/dev/null && echo $p; done",
                            10)[1].split()
            # bash where the image has it (models write bash); /bin/sh otherwise.
            self.shell = "bash" if "bash" in has else "/bin/sh"
            if git is not None and "git" not in has:
                sandbox.warn_once(f"sandbox: docker: the image {sandbox._run_image} has no git: "
                                  "the agent's git commands (git diff, git checkout -- FILE) "
                                  "will fail, as they did not in the scaffold the routing data "
                                  "comes from; use an image with git")
        except BaseException:
            self.container.remove(force=True)
            raise

    def exec(self, command: str, timeout: float, limit: int) -> TestRun:
        started = time.monotonic()
        code, output = self._run(_COMMAND, timeout, limit, env={"KEEP": self.keep},
                                 argv=[self.shell, command])
        return TestRun(command, code, round(time.monotonic() - started, 3), output)

    def _run(self, command: str, timeout: float, limit: int = 64_000,
             env: dict[str, str] | None = None,
             argv: Sequence[str] = ()) -> tuple[int | None, str]:
        """One exec (`command` in /bin/sh, with `argv` as $0...); at the deadline every
        process but the keep-alive is killed."""
        api = self.sandbox.client.api
        shell = ["/bin/sh", "-c", command, *argv] if argv else [self.shell, "-c", command]
        exec_id = api.exec_create(self.container.id, shell, workdir=WORKDIR,
                                  environment=env)["Id"]
        sink = OutputBuffer(limit)
        reader = threading.Thread(target=_drain, args=(api.exec_start(exec_id, stream=True),
                                                       sink), daemon=True)
        reader.start()
        reader.join(timeout)
        if reader.is_alive():  # hung, or a daemon holds the output open
            self._run(_REAP, 10, env={"KEEP": self.keep})
            reader.join(5)
            return None, sink.text()
        return api.exec_inspect(exec_id).get("ExitCode"), sink.text()

    def close(self) -> None:
        """Copy what the commands changed back to the workspace; remove the container."""
        try:
            _copy_back(self.container, self.workdir, self.before)
        finally:
            self.container.remove(force=True)


_AGENT_ENV = {"HOME": "/tmp", "CI": "true", "PYTHONDONTWRITEBYTECODE": "1", "PAGER": "cat",
              "MANPAGER": "cat", "GIT_PAGER": "cat", "PIP_PROGRESS_BAR": "off", "TQDM_DISABLE": "1",
              "GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_0": "core.hooksPath",
              "GIT_CONFIG_VALUE_0": "/dev/null", "GIT_CONFIG_KEY_1": "core.fsmonitor",
              "GIT_CONFIG_VALUE_1": "false"}


def _drain(stream: Any, sink: OutputBuffer) -> None:
    try:
        for chunk in stream:
            sink.write(chunk)
    except Exception as exc:  # noqa: BLE001 - the exec ends when its processes are killed
        log.debug("sandbox: exec stream ended: %s", exc)


def _tree(container: Any) -> dict[str, bytes]:
    """Every regular file and link under WORKDIR: relative path -> content (link: target)."""
    stream, _ = container.get_archive(WORKDIR + "/.")
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        for member in tar.getmembers():
            name = member.name.split("/", 1)[1] if "/" in member.name else ""
            if not name or name == ".git" or name.startswith(".git/"):
                continue
            if member.isfile():
                handle = tar.extractfile(member)
                files[name] = b"F" + (handle.read() if handle else b"")
            elif member.issym():
                files[name] = b"L" + member.linkname.encode()
    return files


def _local_tree(root: Path) -> dict[str, bytes]:
    """`_tree` of the local `root` (what `_tar` puts in the container)."""
    files: dict[str, bytes] = {}
    for path, rel in walk(root):  # all but the top-level .git, links not followed
        if path.is_symlink():
            files[rel] = b"L" + os.readlink(path).encode()
        elif path.is_file():
            files[rel] = b"F" + path.read_bytes()
    return files


def _copy_back(container: Any, workdir: Path, before: dict[str, bytes]) -> None:
    """Apply the container's changes to `workdir`: changed and new files written, deleted ones
    removed. Links come back as links, never followed; nothing lands outside `workdir`."""
    after = _tree(container)
    root = workdir.resolve()
    for name in before.keys() - after.keys():
        target = root / name
        if target.is_file() or target.is_symlink():
            target.unlink()
    for name, data in after.items():
        if before.get(name) == data:
            continue
        target = (root / name)
        if ".." in Path(name).parts or not _inside(root, target.parent):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.is_file():
            target.unlink()
        if data[:1] == b"L":
            target.symlink_to(data[1:].decode())
        else:
            target.write_bytes(data[1:])


def _inside(root: Path, path: Path) -> bool:
    """Whether `path` (made of no symlinked parent) lies within `root`."""
    try:
        return path.resolve().is_relative_to(root) and not any(
            p.is_symlink() for p in [path, *path.parents] if p.is_relative_to(root) and p != root)
    except OSError:
        return False


def _pump(container: Any, sink: OutputBuffer) -> None:
    try:
        for chunk in container.logs(stream=True, follow=True):
            sink.write(chunk)
    except Exception as exc:  # noqa: BLE001 - the container may be removed under us
        log.debug("sandbox: log stream ended: %s", exc)


def _tar(root: Path, git: Path | None = None) -> bytes:
    """The worktree (without its .git; with `git` as .git when given) as a tar archive rooted
    at WORKDIR; symlinks stay links. Owned by the container's root: the commands run as root
    without CAP_DAC_OVERRIDE, so a checkout owned by the runner's uid (1001) would otherwise be
    read-only in there. GNU tar reads the bot's own tree: 15 times faster than tarfile on
    10,000 files."""
    top = WORKDIR.strip("/")
    names = sorted(name for name in os.listdir(root) if name != ".git")
    # Only what the tree holds: WORKDIR itself stays as the image (or docker) made it.
    own_git = ["-C", str(git.parent), git.name] if git is not None else []
    files = ["-C", str(root), "--", *names] if names else []
    argv = ["tar", "-c", "-f", "-", "--owner=0", "--group=0", "--numeric-owner",
            f"--transform=s,^,{top}/,S", "-T", "/dev/null", *own_git, *files]
    done = subprocess.run(argv, capture_output=True, check=False)
    if done.returncode not in (0, 1):  # 1: a file changed while it was read
        raise VerifyError(f"cannot copy {root} into the container: "
                          f"{done.stderr.decode(errors='replace').strip()[-300:]}")
    return done.stdout


def stray_containers(client: Any) -> Iterator[Any]:
    """Sandbox containers still present (there should be none after any run)."""
    yield from client.containers.list(all=True, filters={"label": LABEL})
