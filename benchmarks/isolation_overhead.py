"""What isolating untrusted commands costs with `sandbox: local`: seconds per command as the
bot's own user (run_command) and as acr-sandbox in namespaces on a copy (LocalSandbox.run: copy
in, run, copy back), on a small tree and on a generated tree of N files; and one agent command
in a session (no copy per command). Prints JSON. Needs root or passwordless sudo.

    python benchmarks/isolation_overhead.py [--files 1000] [--repeat 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acr_bot.secrets import scrub_env  # noqa: E402
from acr_bot.verify.isolation import sandbox_user  # noqa: E402
from acr_bot.verify.local import LocalSandbox  # noqa: E402
from acr_bot.verify.process import run_command  # noqa: E402


def _tree(root: Path, files: int) -> Path:
    """`files` small Python files in folders of 50, about 1 KB each."""
    for i in range(files):
        path = root / f"pkg{i // 50}" / f"mod{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"def f{i}(x):\n    return x + {i}\n" * 25)
    return root


def _ms(action: Callable[[], object], repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}


def measure(files: int, repeat: int) -> dict[str, object]:
    user = sandbox_user()
    if isinstance(user, str):
        return {"error": f"no sandbox user here: {user}"}
    env = scrub_env(os.environ)
    out: dict[str, object] = {"namespaces": user.unshare is not None, "via_sudo": bool(user.sudo),
                              "command": "true", "repeat": repeat}
    with tempfile.TemporaryDirectory() as tmp:
        for label, count in (("small_tree_3_files", 3), (f"tree_{files}_files", files)):
            tree = _tree(Path(tmp) / label, count)
            sandbox = LocalSandbox(timeout=60)
            try:
                sandbox.run("true", tree)  # the first run creates the copy and probes
                out[label] = {
                    "own_user": _ms(lambda: run_command("true", tree, timeout=60, env=env),
                                    repeat),
                    "isolated": _ms(lambda: sandbox.run("true", tree), repeat),
                }
                shell = sandbox.session(tree)
                out[label]["agent_command_isolated"] = _ms(  # type: ignore[index]
                    lambda: shell.exec("true", 60, 10_000), repeat)
                shell.close()
            finally:
                sandbox.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    print(json.dumps(measure(args.files, args.repeat), indent=2))


if __name__ == "__main__":
    main()
