"""How many restarts fix may still do: a budget per run (`fix.max_restarts`) and a rate limit
per unit across runs (`fix.restart_limit` restarts within `fix.restart_window_sec`), monit-style.

The ledger of past restarts is `<fix.state_dir>/restarts.json`: root's own, mode 0600, in a
folder no one else can write, replaced atomically (a temporary file renamed over it). A ledger
that is not qtctl's own (the fleet user could have planted it) is refused, and then every
restart is held: the rate limit cannot be proven.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterable
from pathlib import Path

from qtctl.adapters import safe_files
from qtctl.adapters.safe_files import private_umask
from qtctl.config import FixSettings

LEDGER = "restarts.json"


class LedgerRefused(Exception):
    """The ledger or its folder is not qtctl's own: its counts cannot be trusted."""


class RestartLedger:
    """Unit -> the times qtctl fix restarted it, within the rate-limit window."""

    def __init__(self, settings: FixSettings, now: float | None = None) -> None:
        self.settings = settings
        self.path = Path(settings.state_dir) / LEDGER
        self.now = time.time() if now is None else now

    def read(self) -> dict[str, list[float]]:
        """The restarts still inside the window; {} when there is no ledger yet."""
        folder = self.path.parent
        if not os.path.lexists(folder) or not os.path.lexists(self.path):
            return {}
        _check_private(folder)
        data, snapshot = safe_files.read_file(str(self.path), 4 * 2**20)
        if snapshot.uid != os.geteuid() or snapshot.mode & 0o077:
            raise LedgerRefused(
                f"{self.path} is not qtctl's own (uid {snapshot.uid}, mode "
                f"{snapshot.mode:04o}): restarts are held until it is removed"
            )
        try:
            doc = json.loads(data)
            rows = [(str(r["unit"]), float(r["at"])) for r in doc["restarts"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise LedgerRefused(f"{self.path} is damaged ({exc}): remove it") from exc
        since = self.now - self.settings.restart_window_sec
        found: dict[str, list[float]] = {}
        for unit, at in rows:
            if at >= since:
                found.setdefault(unit, []).append(at)
        return found

    def add(self, units: Iterable[str], at: float) -> None:
        """Record restarts done now (older entries beyond the window are dropped)."""
        units = list(units)
        if not units:
            return
        known = self.read()
        for unit in units:
            known.setdefault(unit, []).append(at)
        rows = [{"unit": u, "at": t} for u, times in sorted(known.items()) for t in sorted(times)]
        folder = self.path.parent
        with private_umask():
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        _check_private(folder)
        body = json.dumps({"restarts": rows}, indent=1).encode()
        safe_files.write_file(str(self.path), body, 0o600)


def rate_limited(unit: str, history: dict[str, list[float]], settings: FixSettings) -> str:
    """Why the rate limit holds a restart of `unit` now, or ''."""
    times = history.get(unit, [])
    if len(times) < settings.restart_limit:
        return ""
    window = int(settings.restart_window_sec)
    last = time.strftime("%H:%M:%S UTC", time.gmtime(max(times)))
    return (
        f"rate limit: qtctl fix restarted it {len(times)} times within {window} s (last at "
        f"{last}; fix.restart_limit = {settings.restart_limit}): a restart does not cure it"
    )


def over_budget(done: int, adding: int, settings: FixSettings) -> str:
    """Why the per-run budget holds `adding` more restarts after `done`, or ''."""
    if done + adding <= settings.max_restarts:
        return ""
    return (
        f"restart budget: this run already restarts {done} units (fix.max_restarts = "
        f"{settings.max_restarts}); run fix again once those are verified"
    )


def _check_private(folder: Path) -> None:
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise LedgerRefused(
            f"{folder} must be a folder of uid {os.geteuid()} that no one else can write (it is "
            f"uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):04o}): restarts are held"
        )
