"""Which of lint's files git ignores (`.gitignore`, `.git/info/exclude`, the global excludes):
a build cache or a vendored tree under an ignored folder is not the fleet's code.

One `git check-ignore --no-index --stdin` for all of them. Outside a git work tree or without
git, nothing is ignored. A checkout another user owns (the fleet user's, linted as root) is
read like one's own: `safe.directory` names it on the command line. git's ownership check is
there so that the repository's config cannot run a command as the reader; here it cannot
anyway (no fsmonitor, no hooks, and check-ignore runs no pager, filter or alias). When git
still refuses, that is said once on stderr (`git_problem`) and nothing is ignored."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
from collections.abc import Iterable

from qtctl.escaping import printable

GIT_TIMEOUT = 20  # doctor.check_timeout's default: a FIFO git reads (core.excludesFile) ends
IGNORE_FILES = (".gitignore", ".git/info/exclude")
SAFE = ("-c", "core.fsmonitor=", "-c", "core.hooksPath=/dev/null")
CHECK_IGNORE = ("check-ignore", "--no-index", "-z", "--stdin")
log = logging.getLogger(__name__)


def ignored_by_git(checkout: str, paths: Iterable[str]) -> set[str]:
    """The paths (absolute, under `checkout`) that git ignores there."""
    inside = [p for p in paths if p.startswith(checkout.rstrip("/") + "/")]
    git = shutil.which("git")
    if not inside or not git or not os.path.exists(os.path.join(checkout, ".git")):
        return set()
    special = _special_ignore_file(checkout)
    if special:
        log.warning("git ignore rules not applied (every file is linted): %s", special)
        return set()
    try:
        res = subprocess.run(
            [git, *SAFE, "-c", f"safe.directory={checkout}", "-C", checkout, *CHECK_IGNORE],
            input="\0".join(inside).encode("utf-8", "surrogateescape"),
            capture_output=True,
            timeout=GIT_TIMEOUT,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("git ignore rules not applied (every file is linted): %s", printable(str(exc)))
        return set()
    if res.returncode not in (0, 1):  # 1: none ignored; 128: not a repository, refused
        why = res.stderr.decode("utf-8", "replace").strip().splitlines()[:1] or ["no reason"]
        log.warning(
            "git ignore rules not applied (every file is linted): %s", printable(why[0][:300])
        )
        return set()
    found = res.stdout.decode("utf-8", "surrogateescape").split("\0")
    return {os.path.join(checkout, p) if not os.path.isabs(p) else p for p in found if p}


def _special_ignore_file(checkout: str) -> str:
    """Why git must not read the checkout's ignore files ('' when it may): a FIFO there would
    block git (and lint) until the timeout; a device would be read without end."""
    for name in IGNORE_FILES:
        try:
            mode = os.lstat(os.path.join(checkout, name)).st_mode
        except OSError:
            continue
        if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
            return f"{printable(name)} is not a plain file"
    return ""
