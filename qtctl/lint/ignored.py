"""Which of lint's files git ignores (`.gitignore`, `.git/info/exclude`, the global excludes):
a build cache or a vendored tree under an ignored folder is not the fleet's code.

One `git check-ignore --no-index --stdin` for all of them. Outside a git work tree, without
git, or when git refuses the repository (another user's, under `safe.directory`), nothing is
ignored. The repository's own config cannot run a command here: no fsmonitor, no hooks."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable

GIT_TIMEOUT = 60
SAFE = ("-c", "core.fsmonitor=", "-c", "core.hooksPath=/dev/null")


def ignored_by_git(checkout: str, paths: Iterable[str]) -> set[str]:
    """The paths (absolute, under `checkout`) that git ignores there."""
    inside = [p for p in paths if p.startswith(checkout.rstrip("/") + "/")]
    git = shutil.which("git")
    if not inside or not git or not os.path.exists(os.path.join(checkout, ".git")):
        return set()
    try:
        res = subprocess.run(
            [git, *SAFE, "-C", checkout, "check-ignore", "--no-index", "-z", "--stdin"],
            input="\0".join(inside).encode("utf-8", "surrogateescape"),
            capture_output=True,
            timeout=GIT_TIMEOUT,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return set()
    if res.returncode not in (0, 1):  # 1: none ignored; 128: not a repository, refused
        return set()
    found = res.stdout.decode("utf-8", "surrogateescape").split("\0")
    return {os.path.join(checkout, p) if not os.path.isabs(p) else p for p in found if p}
