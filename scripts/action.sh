#!/usr/bin/env bash
# acr-bot on the job's runner: the `run:` steps of action.yml (a composite action).
#
#   action.sh key PYTHON        -> outputs venv=..., key=... and baselines... for actions/cache
#   action.sh install PYTHON VENV   a fresh venv from requirements.lock (hash-checked, by uv)
#   action.sh run VENV          the same entrypoint.py as the container form
#
# acr-bot lives in its own venv, made with its own Python (actions/setup-python with
# update-environment: false): the job's python, PATH and site-packages stay the user's, so
# the repository's tests run with the toolchains the user's set-up steps installed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

case "${1:-}" in
key)
    python=$2
    version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$here/pyproject.toml")
    pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    lock=$(sha256sum "$here/requirements.lock" | cut -c1-16)
    name="$version-py$pyver-$lock"
    {
        echo "venv=${RUNNER_TOOL_CACHE:-$HOME/.cache}/acr-bot/$name"
        echo "key=acr-bot-$name-${RUNNER_OS:-unknown}-${RUNNER_ARCH:-unknown}"
        # The baseline test runs (acr_bot/verify/baselines.py, config.cache_dir): a key per
        # run (a key is written once), the newest of any commit restored by its prefix.
        baselines="${XDG_CACHE_HOME:-$HOME/.cache}/acr-bot/baselines"
        mkdir -p "$baselines"
        echo "baselines=$baselines"
        echo "baselines-prefix=acr-baselines-${RUNNER_OS:-unknown}-"
        echo "baselines-key=acr-baselines-${RUNNER_OS:-unknown}-${GITHUB_SHA:-none}-${GITHUB_RUN_ID:-0}-${GITHUB_RUN_ATTEMPT:-1}"
    } >>"$GITHUB_OUTPUT"
    ;;
install)
    python=$2 venv=$3
    rm -rf "$venv"
    "$python" -m venv "$venv"
    # uv installs the lock in seconds where pip takes a minute; it is bootstrapped by pip,
    # pinned and hash-checked like everything else. --no-deps: the lock is complete;
    # --require-hashes: nothing else gets in.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
        --require-hashes -r "$here/scripts/installer.lock"
    # --compile-bytecode: the cache is saved before the first start, so it holds the byte
    # code a warm start would otherwise compile.
    "$venv/bin/uv" pip install --quiet --python "$venv/bin/python" --no-deps \
        --require-hashes --compile-bytecode -r "$here/requirements.lock"
    # The installer is not needed at run time: a smaller cache archive restores faster.
    "$venv/bin/python" -m pip uninstall --quiet --yes uv
    ;;
run)
    venv=$2
    # -E -s: no PYTHONPATH/PYTHONHOME from the job's set-up steps, no user site-packages.
    # acr_bot is imported from the action's checkout (entrypoint.py's folder).
    export LITELLM_OFFLINE_MODE=true  # litellm's bundled price table, no download at import
    exec "$venv/bin/python" -E -s "$here/entrypoint.py"
    ;;
*)
    echo "usage: $0 key PYTHON | install PYTHON VENV | run VENV" >&2
    exit 2
    ;;
esac
