"""The memory kept in the repository, on its own branch, safe under concurrent runs.

The memory branch holds one file. A run reads it from there (never from a PR branch: records
from any other branch are not trusted), appends its records, and writes back with optimistic
concurrency: fetch, union-merge, commit on top of what was fetched, push without force; when
the push is rejected because another run got there first, fetch again and retry with jitter.
Union merge by record id means no interleaving of runs can lose a record.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from acr_bot.domain import Record
from acr_bot.errors import GitError
from acr_bot.gitrepo import PushRejected, Remote, fetch, git, push
from acr_bot.memory.store import Memory, merge, write

LOCAL_REF = "refs/acr/memory"


class BranchMemory:
    """The memory file on `branch` of `remote`, read and written through `repo`'s objects."""

    def __init__(self, repo: Path, remote: Remote, branch: str, path: str,
                 tries: int = 30, base_delay: float = 0.2) -> None:
        self.repo = Path(repo)
        self.remote = remote
        self.branch = branch
        self.path = path
        self.tries = tries
        self.base_delay = base_delay

    def read(self) -> Memory | None:
        """The memory on the branch, or None when the branch does not exist yet."""
        head = fetch(self.repo, self.remote, self.branch, LOCAL_REF)
        return None if head is None else self._at(head)

    def _at(self, commit: str) -> Memory:
        text = git(self.repo, "show", f"{commit}:{self.path}", check=False)
        if not text.strip():
            return Memory(None)
        return Memory.from_text(text, f"{self.branch}:{self.path}")

    def append(self, records: Sequence[Record], seed_memory: Memory | None = None,
               message: str = "") -> int:
        """Add `records` to the branch (and `seed_memory`'s, when the branch is new).

        Returns how many records the branch holds afterwards."""
        ours = Memory(None, records)
        for attempt in range(self.tries):
            head = fetch(self.repo, self.remote, self.branch, LOCAL_REF)
            base = self._at(head) if head else (seed_memory or Memory(None))
            merged = merge(base, ours)
            merged._check_writable()
            commit = self._commit(merged, head, message or f"acr-bot: {len(records)} records")
            try:
                push(self.repo, self.remote, commit, self.branch)
                return len(merged.records)
            except PushRejected:
                # Another run pushed first: back off with jitter, then merge with theirs.
                time.sleep(random.uniform(0, self.base_delay * (2 ** min(attempt, 4))))
        raise GitError(f"could not push the memory to {self.branch} after {self.tries} tries: "
                       "too many concurrent runs; the records stay in this run's log")

    def _commit(self, memory: Memory, parent: str | None, message: str) -> str:
        """A commit on top of `parent`: its tree with the memory file replaced. Other files on
        the branch stay (a README, or other repositories' memories on a shared branch)."""
        with tempfile.TemporaryDirectory(prefix="acr-memory-") as tmp:
            file = Path(tmp) / "memory.json"
            write(file, memory)
            blob = git(self.repo, "hash-object", "-w", str(file))
            index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            if parent:
                git(self.repo, "read-tree", parent, env=index)
            git(self.repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{self.path}",
                env=index)
            tree = git(self.repo, "write-tree", env=index)
        parents = ["-p", parent] if parent else []
        return git(self.repo, "commit-tree", tree, *parents, "-m", message)
