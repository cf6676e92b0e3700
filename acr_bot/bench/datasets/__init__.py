"""The routing datasets shipped with the package, found by name (`acr-bot bench --dataset NAME`).

The files are package data (see README.md here for format, sources and licences), so an installed
wheel finds them as well as a checkout does.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

NAMES = ("coderouterbench", "swebench-verified")


def resolve(name_or_path: str) -> Path:
    """A shipped dataset's file for a known name, else the argument as a path (checked later)."""
    if name_or_path in NAMES:
        # The package is installed as plain files (no zip import), so this is a real path.
        return Path(str(resources.files(__name__) / f"{name_or_path}.jsonl.gz"))
    return Path(name_or_path)
