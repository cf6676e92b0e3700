"""The docker sandbox against a real dockerd: a copy of the worktree (never a mount), no
network (the setup step may have it), CPU, memory and process limits, no host environment,
bounded output, and no container or snapshot image left behind on any path, SIGTERM
included. Ends with a whole `app.fix` whose tests run in containers.

Skipped loudly where no Docker engine can be started; ACR_REQUIRE_DOCKER=1 (set by .ci/run
when it started one) turns that into a failure.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.models.containers
import pytest

from acr_bot import app
from acr_bot.config import Settings
from acr_bot.fixing.edits import format_edits, make_edits
from acr_bot.gitrepo import git
from acr_bot.memory.store import Memory
from acr_bot.verify.docker import DockerSandbox, stray_containers

try:
    from tests.support import dockerd
    from tests.support.action_image import build_action_image
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from support import dockerd  # type: ignore[no-redef]
    from support.action_image import build_action_image  # type: ignore[no-redef]

pytestmark = pytest.mark.docker

IMAGE = dockerd.BASE_IMAGE  # python3 + git, no pytest: the tests below use unittest
SETUP_REPOSITORY = "acr-bot-setup"  # where DockerSandbox commits its setup snapshots


def _setup_images(client: docker.DockerClient) -> set[str]:
    return {image.id for image in client.images.list(name=SETUP_REPOSITORY)}


@pytest.fixture(autouse=True)
def _nothing_left_behind(docker_client: docker.DockerClient) -> Iterator[None]:
    """After every test, on every path: no sandbox container and no new setup snapshot."""
    images = _setup_images(docker_client)
    yield
    assert list(stray_containers(docker_client)) == []
    assert _setup_images(docker_client) <= images


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The inspect document of every container the sandbox starts, read right after start."""
    seen: list[dict[str, Any]] = []
    real_start = docker.models.containers.Container.start

    def start(self: docker.models.containers.Container, **kwargs: Any) -> Any:
        result = real_start(self, **kwargs)
        self.reload()
        seen.append(self.attrs)
        return result

    monkeypatch.setattr(docker.models.containers.Container, "start", start)
    return seen


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    root = tmp_path / "work"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "data.txt").write_text("original\n")
    (root / "keep.txt").write_text("keep me\n")
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def sandbox(**kwargs: Any) -> DockerSandbox:
    return DockerSandbox(IMAGE, **{"timeout": 30, **kwargs})


# --- a copy, never a mount -------------------------------------------------------------------


def test_commands_change_a_copy_and_the_host_path_is_never_mounted(
        docker_client: docker.DockerClient, workdir: Path, started: list[dict[str, Any]]) -> None:
    before = tree(workdir)
    run = sandbox().run("echo changed > pkg/data.txt && rm keep.txt && touch made.txt && "
                        "mkdir -p new/dir && cat pkg/data.txt && ls", workdir)

    assert run.exit_code == 0, run.output
    assert run.output.splitlines()[0] == "changed"  # the change happened, in there
    assert "keep.txt" not in run.output and "made.txt" in run.output
    assert tree(workdir) == before  # and not here
    assert not (workdir / "made.txt").exists() and not (workdir / "new").exists()
    [attrs] = started
    assert attrs["Mounts"] == [] and not attrs["HostConfig"].get("Binds")
    assert attrs["Config"]["WorkingDir"] == "/workspace"
    assert attrs["Config"]["Labels"].get("acr-bot.sandbox") == "1"


def test_a_checkout_owned_by_another_uid_is_writable_in_the_copy(workdir: Path) -> None:
    """On a runner the checkout belongs to uid 1001; the sandbox's root has no
    CAP_DAC_OVERRIDE, so the copy must belong to root or the tests cannot write in it."""
    for path in [workdir, *workdir.rglob("*")]:
        os.lchown(path, 1001, 1001)
    run = sandbox().run("mkdir pkg/__pycache__ && echo more >> pkg/data.txt && "
                        "touch pkg/new.txt && echo WROTE", workdir)
    assert run.exit_code == 0 and "WROTE" in run.output, run.output
    assert (workdir / "pkg" / "data.txt").read_text() == "original\n"


# --- network ---------------------------------------------------------------------------------


def test_no_network_by_default(workdir: Path, started: list[dict[str, Any]]) -> None:
    probe = ("import socket, time\nstart = time.monotonic()\ntry:\n"
             "    socket.create_connection(('1.1.1.1', 80), timeout=10)\n"
             "    print('CONNECTED')\nexcept OSError as exc:\n"
             "    print('REFUSED', type(exc).__name__, round(time.monotonic() - start, 2))\n")
    (workdir / "probe.py").write_text(probe)
    run = sandbox().run("python3 probe.py; ls /sys/class/net", workdir)

    assert "CONNECTED" not in run.output
    refused = next(line for line in run.output.splitlines() if line.startswith("REFUSED"))
    assert float(refused.split()[-1]) < 2.0  # fails fast, no waiting for a timeout
    assert run.output.split("\n", 1)[1].split() == ["lo"]  # loopback only
    [attrs] = started
    assert attrs["Config"]["NetworkDisabled"] is True
    assert attrs["NetworkSettings"]["Networks"] == {}


@pytest.fixture
def host_listener() -> Iterator[tuple[int, list[Any]]]:
    """A TCP listener on all of the host's addresses that answers `hi`."""
    server = socket.socket()
    server.bind(("0.0.0.0", 0))
    server.listen()
    accepted: list[Any] = []

    def serve() -> None:
        while True:
            try:
                conn, peer = server.accept()
            except OSError:
                return
            accepted.append(peer)
            conn.sendall(b"hi")
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield server.getsockname()[1], accepted
    finally:
        server.close()


def test_network_for_setup_reaches_the_host_in_setup_only(
        docker_client: docker.DockerClient, workdir: Path, host_listener: tuple[int, list[Any]],
        started: list[dict[str, Any]]) -> None:
    port, accepted = host_listener
    bridges = docker_client.networks.list(names=["bridge"])
    gateway = (bridges[0].attrs["IPAM"]["Config"] or [{}])[0].get("Gateway") if bridges else None
    (workdir / "probe.py").write_text(
        "import socket, sys\ntry:\n"
        f"    s = socket.create_connection(({gateway or '192.0.2.1'!r}, {port}), timeout=5)\n"
        "    print('GOT', s.recv(2).decode())\nexcept OSError as exc:\n"
        "    print('NO NETWORK', exc)\n")
    box = sandbox(network_for_setup=True)
    try:
        setup = box.prepare("python3 probe.py; ls /sys/class/net", workdir)
        run = box.run("python3 probe.py; ls /sys/class/net", workdir)
    finally:
        box.close()

    assert setup is not None and setup.exit_code == 0, setup.output
    assert "eth0" in setup.output.split()
    assert "NO NETWORK" in run.output and run.output.split("\n", 1)[1].split() == ["lo"]
    setup_attrs, run_attrs = started
    assert setup_attrs["Config"].get("NetworkDisabled") in (None, False)
    assert setup_attrs["HostConfig"]["NetworkMode"] != "none"
    assert list(setup_attrs["NetworkSettings"]["Networks"]) != []
    assert run_attrs["Config"]["NetworkDisabled"] is True
    assert run_attrs["NetworkSettings"]["Networks"] == {}
    if gateway:  # a daemon started with --bridge=none has no route to the host at all
        assert "GOT hi" in setup.output, setup.output
        assert len(accepted) == 1  # from the setup step, never from the test run


# --- limits ----------------------------------------------------------------------------------


def test_limits_are_set_on_the_container(workdir: Path, started: list[dict[str, Any]]) -> None:
    run = sandbox(cpus=1.5, memory="256m", pids=64).run("true", workdir)
    assert run.exit_code == 0
    [attrs] = started
    host = attrs["HostConfig"]
    assert host["NanoCpus"] == 1_500_000_000
    assert host["Memory"] == host["MemorySwap"] == 256 * 1024 * 1024
    assert host["PidsLimit"] == 64
    assert host["CapDrop"] == ["ALL"] and "no-new-privileges" in host["SecurityOpt"]


def test_a_process_allocating_4gb_is_oom_killed(workdir: Path) -> None:
    started = time.monotonic()
    run = sandbox(memory="256m").run(
        "python3 -c \"x = b'x' * (4 * 1024 ** 3); print('ALLOCATED', len(x))\"", workdir)
    assert run.exit_code == 137, run.output  # SIGKILL by the OOM killer
    assert "ALLOCATED" not in run.output
    assert time.monotonic() - started < 20


SPAWNER = """\
import subprocess, sys
children = []
try:
    while len(children) < 500:
        children.append(subprocess.Popen(["sleep", "30"]))
except OSError as exc:
    print("STOPPED AT", len(children), exc.errno)
    sys.exit(3)
print("NOT CONTAINED", len(children))
"""


def test_process_spawning_stops_at_the_pids_limit(workdir: Path) -> None:
    (workdir / "spawn.py").write_text(SPAWNER)
    run = sandbox(pids=48).run("python3 spawn.py", workdir)
    assert run.exit_code == 3, run.output
    stopped = next(line for line in run.output.splitlines() if line.startswith("STOPPED AT"))
    assert 10 < int(stopped.split()[2]) < 48


def test_a_fork_bomb_is_contained_and_ends_at_the_timeout(workdir: Path) -> None:
    started = time.monotonic()
    # The shell (the container's PID 1) lives on, so the bomb keeps forking until the timeout.
    run = sandbox(pids=64, timeout=2).run("f(){ f|f& }; f; sleep 300", workdir)
    seconds = time.monotonic() - started
    assert run.exit_code is None and run.timed_out and not run.green
    assert "Cannot fork" in run.output  # the pids limit is what stopped it
    # Far below the 300 s the command would take, with room for tearing down 64 processes
    # on a loaded machine (a tighter bound only measured the machine's load).
    assert seconds < 60


# --- timeout, environment, output ------------------------------------------------------------


def test_the_timeout_kills_the_container(docker_client: docker.DockerClient,
                                         workdir: Path) -> None:
    started = time.monotonic()
    run = sandbox(timeout=1.5).run("echo before; sleep 300; echo after", workdir)
    seconds = time.monotonic() - started
    assert run.exit_code is None and run.timed_out
    assert seconds < 60  # killed at the timeout, not after the 300 s the command asks for
    assert "before" in run.output and "after" not in run.output


def test_the_environment_holds_nothing_of_the_host(workdir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {"GITHUB_TOKEN": "ghs_" + uuid.uuid4().hex,
               "OPENAI_API_KEY": "sk-" + uuid.uuid4().hex,
               "INPUT_GITHUB-TOKEN": "ghs_" + uuid.uuid4().hex,
               "PLAIN_HOST_SETTING": "plain-" + uuid.uuid4().hex}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    host_path = "/opt/host-only-" + uuid.uuid4().hex
    monkeypatch.setenv("PATH", f"{host_path}:{os.environ['PATH']}")
    run = sandbox().run("env", workdir)

    assert run.exit_code == 0
    env = dict(line.split("=", 1) for line in run.output.splitlines() if "=" in line)
    assert env["HOME"] == "/tmp" and env["CI"] == "true"  # the dump is real
    for name, value in secrets.items():  # not even harmless host variables
        assert name not in env and value not in run.output
    assert host_path not in env["PATH"] and "/.venv/" not in env["PATH"]
    assert os.environ["HOME"] not in run.output  # conftest's per-test home


def test_output_is_bounded_with_an_omission_marker(workdir: Path) -> None:
    started = time.monotonic()
    run = sandbox(max_output=20_000).run(
        "echo FIRST; head -c 50000000 /dev/zero | tr '\\0' x; echo; echo LAST", workdir)
    assert run.exit_code == 0
    assert len(run.output) < 21_000
    assert "bytes omitted] ..." in run.output
    assert run.output.startswith("FIRST") and run.output.rstrip().endswith("LAST")
    assert time.monotonic() - started < 30


JUNIT_WRITER = """\
open('/tmp/acr-junit.xml', 'w').write('''<testsuites><testsuite name="s">
<testcase classname="t" name="a"/><testcase classname="t" name="b"><failure/></testcase>
<testcase classname="t" name="c"><skipped/></testcase></testsuite></testsuites>''')
raise SystemExit(1)
"""
UNITTEST = """\
import unittest


class T(unittest.TestCase):
    def test_one(self):
        self.assertEqual(1, 1)

    def test_two(self):
        self.assertEqual(1, 2)
"""


def test_junit_results_are_read_from_the_container(workdir: Path) -> None:
    (workdir / "writer.py").write_text(JUNIT_WRITER)
    run = sandbox().run('test "$PYTEST_ADDOPTS" = --junitxml=/tmp/acr-junit.xml && '
                        "python3 writer.py", workdir)
    assert run.exit_code == 1, run.output
    assert run.counts is not None
    assert (run.counts.passed, run.counts.failed, run.counts.skipped) == (1, 1, 1)
    assert run.passed_ids == {"t::a"} and run.failed_ids == {"t::b"}


def test_unittest_runs_and_its_failure_is_reported(workdir: Path) -> None:
    (workdir / "test_two.py").write_text(UNITTEST)
    run = sandbox().run("python3 -m unittest -v", workdir)
    assert run.exit_code == 1 and "FAILED (failures=1)" in run.output
    # acr_bot.verify.testresults has no unittest parser: no counts, the exit code decides.
    if run.counts is not None:
        assert (run.counts.passed, run.counts.failed) == (1, 1)


# --- setup snapshots -------------------------------------------------------------------------


def test_setup_is_snapshotted_for_the_runs_and_the_snapshot_removed(
        docker_client: docker.DockerClient, workdir: Path) -> None:
    box = sandbox()
    setup = box.prepare("echo built > /opt/setup-made && echo generated > gen.txt", workdir)
    assert setup is not None and setup.exit_code == 0
    snapshot = box._snapshot
    assert snapshot and docker_client.images.get(snapshot)
    run = box.run("cat /opt/setup-made gen.txt", workdir)
    assert run.output.split() == ["built", "generated"]
    assert not (workdir / "gen.txt").exists()
    box.close()
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(snapshot)


def test_a_failed_setup_never_removes_the_users_image(docker_client: docker.DockerClient,
                                                     workdir: Path) -> None:
    alias = f"acr-bot-test-alias:{uuid.uuid4().hex[:12]}"
    docker_client.images.get(IMAGE).tag(alias)
    try:
        box = DockerSandbox(alias, timeout=30)
        setup = box.prepare("exit 4", workdir)
        assert setup is not None and setup.exit_code == 4
        run = box.run("echo still-runs", workdir)
        assert "still-runs" in run.output
        box.close()
        assert alias in docker_client.images.get(alias).tags
    finally:
        try:
            docker_client.images.remove(alias)
        except docker.errors.ImageNotFound:
            pass


# --- removed on every path -------------------------------------------------------------------


@pytest.mark.parametrize("command, timeout, code", [
    ("exit 0", 30, 0), ("echo failing; exit 7", 30, 7), ("sleep 30", 1, None)])
def test_the_container_is_removed_after_success_failure_and_timeout(
        docker_client: docker.DockerClient, workdir: Path, started: list[dict[str, Any]],
        command: str, timeout: float, code: int | None) -> None:
    run = sandbox(timeout=timeout).run(command, workdir)
    assert run.exit_code == code
    [attrs] = started
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(attrs["Id"])


def test_the_container_is_removed_when_waiting_is_interrupted(
        docker_client: docker.DockerClient, workdir: Path, started: list[dict[str, Any]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(self: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(docker.models.containers.Container, "wait", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sandbox().run("sleep 30", workdir)
    [attrs] = started
    assert attrs["State"]["Running"] is True  # it was running when the wait broke off
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(attrs["Id"])


def _bot_env() -> dict[str, str]:
    return {**os.environ, "LITELLM_OFFLINE_MODE": "true", "PYTHONUNBUFFERED": "1"}


def test_sigterm_to_acr_bot_fix_removes_its_container(
        docker_client: docker.DockerClient, make_repo, make_replay, tmp_path: Path) -> None:
    marker = f"acr-sigterm-{uuid.uuid4().hex[:8]}"
    config = (f"sandbox: docker\nsandbox_image: {IMAGE}\n"
              f"test_command: python3 -c 'import time; time.sleep(60)' {marker}\n")
    repo = make_repo({"app.py": "X = 1\n", ".github/acr-bot.yml": config})
    replay = make_replay({"m": ["never asked"]})
    memory = tmp_path / "memory.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "acr_bot", "fix", "--repo", str(repo), "--task", "anything",
         "--models", "replay/m", "--replay-file", str(replay), "--memory", str(memory),
         "--harness", "edit"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_bot_env())
    try:
        deadline = time.monotonic() + 60
        running = []
        while time.monotonic() < deadline and not running:
            running = [c for c in stray_containers(docker_client) if c.status == "running"]
            assert proc.poll() is None, proc.stdout.read()  # type: ignore[union-attr]
            time.sleep(0.1)
        assert running, "the baseline container never started"
        assert marker in " ".join(running[0].attrs["Config"]["Cmd"])
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        seconds = time.monotonic() - sent
    finally:
        if proc.poll() is None:  # the test failed before its SIGTERM: still let it clean up
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    output = proc.stdout.read().decode(errors="replace")  # type: ignore[union-attr]
    assert code == 128 + signal.SIGTERM, output
    assert seconds < 15
    assert list(stray_containers(docker_client)) == []
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert git(repo, "status", "--porcelain") == ""
    assert not memory.exists()  # no attempt was made, so nothing to remember


# --- a whole fix, tests in containers --------------------------------------------------------

CALC = "def mul(a, b):\n    return a + b\n"
FIXED = "def mul(a, b):\n    return a * b\n"
TESTS = """\
import unittest

from calc import mul


class MulTest(unittest.TestCase):
    def test_small(self):
        self.assertEqual(mul(2, 2), 4)

    def test_mul(self):
        self.assertEqual(mul(3, 4), 12)
"""


def test_app_fix_end_to_end_in_docker(docker_client: docker.DockerClient, make_repo,
                                      make_replay, tmp_path: Path,
                                      started: list[dict[str, Any]]) -> None:
    repo = make_repo({"calc.py": CALC, "test_calc.py": TESTS, ".gitignore": "__pycache__/\n"})
    wrong = "Add one.\n\n" + format_edits(make_edits("calc.py", CALC, CALC.replace(
        "a + b", "a * b + 1")))
    right = "Multiply.\n\n" + format_edits(make_edits("calc.py", CALC, FIXED))
    replay = make_replay({"cheap": [wrong], "strong": [right]})
    settings = replace(Settings(), models=("replay/cheap", "replay/strong"), replay_file=replay,
                       test_command="python3 -m unittest -v", policy="cheapest-first",
                       llm_retries=0, sandbox="docker", sandbox_image=IMAGE,
                       setup_command="echo setup-done > /opt/ready", test_timeout=60,
                       harness="edit")
    memory_file = tmp_path / "memory.json"
    head = git(repo, "rev-parse", "HEAD")

    result = app.fix(repo, app.task_from_text("mul() adds instead of multiplying"), settings,
                     memory_file=memory_file)

    assert result.outcome == "fixed", (result.reason, [a.detail for a in result.attempts])
    assert [(a.model, a.outcome) for a in result.attempts] == [
        ("replay/cheap", "tests_failed"), ("replay/strong", "passed")]
    assert result.baseline is not None and result.baseline.exit_code == 1
    assert "FAILED (failures=1)" in result.baseline.output
    assert result.final is not None and result.final.exit_code == 0
    assert "Ran 2 tests" in result.final.output and "OK" in result.final.output
    if result.final.counts is None:  # no unittest parser: the exit code decided
        assert "judged by the exit code alone" in result.attempts[-1].detail
    else:
        assert result.final.counts.passed == 2
    # the setup ran once, with network off; baseline + 2 verify runs started from its snapshot
    assert len(started) == 4
    assert all(a["Config"]["NetworkDisabled"] is True for a in started)
    assert len({a["Image"] for a in started[1:]}) == 1
    assert started[1]["Image"] != started[0]["Image"]
    # the fix is a branch; the checkout is untouched; memory has both attempts
    assert git(repo, "show", f"{result.branch}:calc.py") == FIXED.rstrip("\n")
    assert git(repo, "rev-parse", "HEAD") == head and git(repo, "status", "--porcelain") == ""
    records = Memory.load(memory_file).records
    assert [(r.model, r.outcome) for r in records] == [
        ("replay/cheap", "tests_failed"), ("replay/strong", "passed")]
    assert json.loads(memory_file.read_text())["records"]


def test_the_command_runs_whatever_the_images_entrypoint(
        docker_client: docker.DockerClient, make_repo, make_replay, tmp_path: Path) -> None:
    # acr-bot's own action image: its ENTRYPOINT is entrypoint.py, which answers
    # "not running inside GitHub Actions" to anything passed as arguments.
    image, _, _ = build_action_image(docker_client)
    assert docker_client.images.get(image).attrs["Config"]["Entrypoint"]
    repo = make_repo({"calc.py": CALC, "test_calc.py": TESTS, ".gitignore": "__pycache__/\n"})
    right = "Multiply.\n\n" + format_edits(make_edits("calc.py", CALC, FIXED))
    settings = replace(Settings(), models=("replay/strong",), replay_file=make_replay(
        {"strong": [right]}), test_command="python3 -m unittest -v", llm_retries=0,
        sandbox="docker", sandbox_image=image, test_timeout=60, harness="edit")

    result = app.fix(repo, app.task_from_text("mul() adds instead of multiplying"), settings,
                     memory_file=tmp_path / "memory.json")

    assert result.baseline is not None
    assert "not running inside GitHub Actions" not in result.baseline.output
    assert "FAILED (failures=1)" in result.baseline.output, result.baseline.output
    assert result.outcome == "fixed", (result.reason, [a.detail for a in result.attempts])
    assert result.final is not None and "Ran 2 tests" in result.final.output
    # The agent harness's container too (it idles in `sleep`, commands come by exec).
    sandbox = DockerSandbox(image, timeout=30)
    shell = sandbox.session(repo)
    try:
        assert shell.exec("echo from-the-shell", 10, 1000).output.strip() == "from-the-shell"
    finally:
        shell.close()
        sandbox.close()
