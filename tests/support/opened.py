"""Run a process as another user with some of root's files reachable, the way the bot keeps a
toolchain reachable for its sandbox user (verify/isolation.py): a checkout in a `0700` folder
(`mktemp -d`, /root) is otherwise closed to any other user."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from acr_bot.verify.isolation import jail_mounts, jail_prelude, private_folders


def opened(argv: Sequence[str], paths: Sequence[Path], stage: Path) -> list[str]:
    """`argv` (which drops to the other user itself) in a mount namespace where every private
    folder of root's on the way to `paths` is empty but for them; `argv` as it is when there is
    no such folder. `stage`: a folder of root's for the mounts' bookkeeping."""
    hide = sorted({folder for path in paths for folder in private_folders(path)},
                  key=lambda folder: len(folder.parts))
    if not hide:
        return list(argv)
    fstab = stage / "opened.fstab"
    fstab.write_text(jail_mounts(hide, stage / "mnt", paths))
    return ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
            jail_prelude(fstab), "acr-opened", *argv]
