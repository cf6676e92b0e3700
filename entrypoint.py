"""The Action's entry point, in both forms: the composite action on the runner
(scripts/action.sh runs it with acr-bot's own venv) and the container (Dockerfile)."""

import os
import subprocess
import sys

from acr_bot.github.action import main

if __name__ == "__main__":
    if os.environ.get("ACR_BOT_CONTAINER") == "1":
        # In the container the workspace is mounted from the runner with another owner; git
        # refuses to work in it unless it is marked safe (CVE-2022-24765). On the runner the
        # checkout is the job user's own: the user's git config is left alone.
        workspace = os.environ.get("GITHUB_WORKSPACE", "/github/workspace")
        subprocess.run(["git", "config", "--global", "--add", "safe.directory", workspace],
                       check=False)
    sys.exit(main())
