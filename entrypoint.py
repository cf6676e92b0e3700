"""The Docker action's entry point: trust the mounted workspace, then hand over to acr-bot."""

import os
import subprocess
import sys

from acr_bot.github.action import main

if __name__ == "__main__":
    # The workspace is mounted from the runner with another owner; git refuses to work in it
    # unless it is marked safe (CVE-2022-24765).
    workspace = os.environ.get("GITHUB_WORKSPACE", "/github/workspace")
    subprocess.run(["git", "config", "--global", "--add", "safe.directory", workspace],
                   check=False)
    sys.exit(main())
