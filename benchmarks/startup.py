"""How fast the composite action (action.yml) gets from nothing to the first model call.

Runs the action's own steps (scripts/action.sh) the way the runner does:

- cold: `action.sh install` makes a fresh venv from requirements.lock (uv, bootstrapped by
  pip from scripts/installer.lock), then acr-bot starts and fixes the demo project until the
  first model call. Measured twice: with empty package caches (everything downloaded from
  PyPI: a runner's first run) and with the local pip/uv caches warm (the download's share).
- warm: the venv that cold run left (with the byte code its first start wrote) is archived and
  restored with tar (actions/cache's own format; the download of the archive from GitHub's
  cache service is not included), then the same start.

"First model call" is the moment `acr-bot fix` prints `attempt 1: <model>` - the line the
fix loop writes just before it calls the model (a replayed model, so no network); the
baseline test run of the demo project happens before it and is included. Prints JSON.
Targets (issue #13): warm <= 15 s, cold <= 60 s.

    python benchmarks/startup.py [--python /usr/bin/python3] [--skip-uncached]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from acr_bot import demo  # noqa: E402

TARGETS = {"warm_s": 15.0, "cold_s": 60.0}


def _env(tmp: Path, caches: Path) -> dict[str, str]:
    # The machine's own settings pass (TLS certificates, proxies), as on a runner.
    own = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_"))}
    return {**own, "HOME": str(tmp / "home"), "LANG": "C.UTF-8",
            "PIP_CACHE_DIR": str(caches / "pip"), "UV_CACHE_DIR": str(caches / "uv"),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1", "LITELLM_OFFLINE_MODE": "true",
            "GITHUB_OUTPUT": str(tmp / "output")}


def install(python: str, venv: Path, env: dict[str, str]) -> float:
    started = time.monotonic()
    subprocess.run(["bash", str(ROOT / "scripts" / "action.sh"), "install", python, str(venv)],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def first_model_call(venv: Path, tmp: Path, env: dict[str, str]) -> float:
    """Seconds from starting acr-bot (its venv's python, -E -s, acr_bot from the checkout,
    as action.sh runs it) to the first model call on the demo project."""
    project = demo.build_project(tmp / f"demo-{time.monotonic_ns()}")
    replay = tmp / "replay.json"
    replay.write_text(json.dumps(demo.replay_models()))
    command = [str(venv / "bin" / "python"), "-E", "-s", "-m", "acr_bot", "fix",
               "--repo", str(project), "--task", demo.TASK, "--models",
               "replay/mini,replay/mid,replay/pro", "--replay-file", str(replay),
               "--memory", str(tmp / "memory.json")]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if line.startswith("attempt 1:"):
                return time.monotonic() - started
        raise RuntimeError(f"acr-bot fix ended (exit {process.wait()}) before a model call")
    finally:
        process.kill()
        process.wait()


def restore(venv: Path, archive: Path) -> float:
    shutil.rmtree(venv)
    started = time.monotonic()
    subprocess.run(["tar", "-xf", str(archive), "-C", str(venv.parent)], check=True)
    return time.monotonic() - started


def cold(python: str, tmp: Path, caches: Path, label: str) -> tuple[dict[str, Any], Path]:
    env = _env(tmp, caches)
    venv = tmp / f"venv-{label}"
    seconds = install(python, venv, env)
    call = first_model_call(venv, tmp, env)
    return {"install_s": round(seconds, 2), "first_model_call_s": round(call, 2),
            "total_s": round(seconds + call, 2)}, venv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=shutil.which("python3", path="/usr/bin:/bin")
                        or sys.executable, help="acr-bot's own Python (setup-python's)")
    parser.add_argument("--skip-uncached", action="store_true",
                        help="skip the cold run with empty package caches (needs PyPI)")
    args = parser.parse_args()
    result: dict[str, Any] = {"python": args.python, "cpus": os.cpu_count(),
                              "load_average": [round(x, 2) for x in os.getloadavg()],
                              "targets": TARGETS}
    with tempfile.TemporaryDirectory(prefix="acr-startup-") as name:
        tmp = Path(name)
        (tmp / "home").mkdir()
        caches = tmp / "caches"
        if not args.skip_uncached:
            result["cold_empty_package_cache"], _ = cold(args.python, tmp, caches, "empty")
        result["cold_warm_package_cache"], venv = cold(args.python, tmp, caches, "cached")
        archive = tmp / "venv.tar"
        subprocess.run(["tar", "-cf", str(archive), "-C", str(venv.parent), venv.name],
                       check=True)
        seconds = restore(venv, archive)
        call = first_model_call(venv, tmp, _env(tmp, caches))
        result["warm"] = {"restore_s": round(seconds, 2), "first_model_call_s": round(call, 2),
                          "total_s": round(seconds + call, 2),
                          "archive_mb": round(archive.stat().st_size / 1e6, 1)}
    cold_total = result.get("cold_empty_package_cache", result["cold_warm_package_cache"])
    result["meets_targets"] = {"warm": result["warm"]["total_s"] <= TARGETS["warm_s"],
                               "cold": cold_total["total_s"] <= TARGETS["cold_s"]}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
