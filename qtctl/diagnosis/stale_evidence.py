"""A failed run's evidence about a file is stale once that file changed after the run exited.

After `qtctl fix` converted a CRLF wrapper (or the operator fixed a script), the unit's last
failed run still says `can't open file 'main.py\\r'` or shows a traceback in the old code: that
run proves nothing about the file as it is now. The cause is then `changed-since-failure`,
which a restart may cure (the restart itself is the test, and fix's re-check says honestly when
it fails again). Causes with fresh checks of their own (an import that must resolve, a set-up
step's missing folder, a transient cause) are left as they are.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from qtctl.diagnosis.cause import Cause, ExecProbe

# the kinds whose evidence is about a file's content or presence
ABOUT_A_FILE = frozenset(
    {"bad-interpreter", "script-missing", "exec-not-found", "python-exception", "exit-code"}
)
OPENED = re.compile(r"can't open file '([^']+)'")
FRAME = re.compile(r'^\s*File "(/[^"]+)", line \d+')
CLOCK_SLACK_SEC = 60.0  # an mtime further in the future than this is a wrong clock, not a change
MAX_FILES = 20
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh"})

Modified = Callable[[str], float | None]


def modified(path: str) -> float | None:
    """The file's mtime (seconds), None when it is not there."""
    try:
        return os.stat(path).st_mtime
    except (OSError, ValueError):
        return None


def stale(
    cause: Cause,
    props: Mapping[str, Any],
    lines: Sequence[str],
    probe: ExecProbe | None,
    changed: Modified = modified,
    now: Callable[[], float] = time.time,
) -> Cause:
    """`cause`, or `changed-since-failure` when a file its evidence is about changed after the
    failed run exited (the run's exit time from `ExecMainExitTimestamp`)."""
    kind = cause.underlying if cause.kind == "start-limit-hit" else cause.kind
    exited = int(props.get("ExecMainExitTimestamp") or 0) / 1e6
    if kind not in ABOUT_A_FILE or exited <= 0 or _still_true(kind, probe):
        return cause
    for path in _evidence_files(lines, probe):
        mtime = changed(path)
        if mtime is not None and exited < mtime <= now() + CLOCK_SLACK_SEC:
            return Cause(
                "changed-since-failure",
                f"{path} changed at {_clock(mtime)}, after the failed run exited at "
                f"{_clock(exited)}: that run's evidence ({kind}: {cause.summary}) is stale; a "
                "restart tests the file as it is now",
                underlying=kind,
            )
    return cause


def _still_true(kind: str, probe: ExecProbe | None) -> bool:
    """What the file system says now still shows the cause: the CRLF or BOM is still in the
    script, its interpreter or the program is still missing or not executable."""
    if probe is None:
        return False
    if kind == "bad-interpreter":
        return probe.shebang_cr or probe.bom or probe.body_crlf or bool(probe.missing_interpreter)
    if kind == "exec-not-found":
        return not (probe.exists and probe.executable)
    return False


def _evidence_files(lines: Sequence[str], probe: ExecProbe | None) -> Iterator[str]:
    """The program or script systemd ran, and the files the run's own lines name (the script
    python could not open, without a CRLF line's trailing \\r; traceback frames' files)."""
    seen: set[str] = set()
    named = [probe.path] if probe and _not_an_interpreter(probe.path) else []
    for line in lines:
        opened = OPENED.search(line)
        if opened:
            named.append(opened.group(1).removesuffix("\\r").removesuffix("\r"))
        frame = FRAME.match(line)
        if frame:
            named.append(frame.group(1))
    for path in named:
        if path not in seen and len(seen) < MAX_FILES:
            seen.add(path)
            yield path


def _not_an_interpreter(path: str) -> bool:
    """An upgraded python or shell is no change to the service's own code."""
    name = os.path.basename(path)
    return path.startswith("/") and not name.startswith("python") and name not in SHELLS


def _clock(seconds: float) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(seconds))
