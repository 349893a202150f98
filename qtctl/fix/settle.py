"""After a restart: did the unit come up and stay up? "fixed" is only said of a unit that is
active past its `RestartSec=` plus `fix.settle_sec`, in the same invocation it came up in.

A unit that fails, exits, crash-loops (a new invocation or a higher restart counter while
watched) or never finishes starting is not settled, and the evidence says what systemd saw.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qtctl.adapters.systemd import SystemdAdapter

POLL_SEC = 0.1
START_WAIT_SEC = 30.0  # at most this long for a unit to finish starting, on top of the window


@dataclass
class _Watch:
    """One restarted unit being watched."""

    unit: str
    up_since: float = 0.0
    first: tuple[str, int] = ("", 0)  # (invocation, restart counter) when it came up
    verdict: str | None = None  # '' settled, else the evidence


def settle(systemd: SystemdAdapter, units: Sequence[str], settle_sec: float) -> dict[str, str]:
    """Unit -> '' when it stayed active for RestartSec= + settle_sec, else what systemd saw."""
    if not units:
        return {}
    window = max(_restart_sec(_props(systemd, u)) for u in units) + settle_sec
    watches = [_Watch(u) for u in dict.fromkeys(units)]
    started = time.monotonic()
    while any(w.verdict is None for w in watches):
        now = time.monotonic()
        for watch in (w for w in watches if w.verdict is None):
            _step(systemd, watch, now, window, now - started > window + START_WAIT_SEC)
        time.sleep(POLL_SEC)
    return {w.unit: w.verdict or "" for w in watches}


def _step(systemd: SystemdAdapter, watch: _Watch, now: float, window: float, late: bool) -> None:
    state = systemd.unit_state(watch.unit)
    if state == "active":
        if not watch.up_since:
            props = _props(systemd, watch.unit)
            if not _job_pending(props):  # an active unit being restarted is still the old one
                watch.up_since, watch.first = now, _identity(props)
        elif now - watch.up_since >= window:
            watch.verdict = _judge(systemd, watch, window)
        return
    props = _props(systemd, watch.unit)
    if _job_pending(props) and not late:
        return  # the restart job has not run yet: the state is the old one
    if state in ("failed", "inactive"):
        oneshot_done = props.get("Type") == "oneshot" and props.get("Result") == "success"
        watch.verdict = "" if oneshot_done else _evidence(props, f"{state} again")
    elif watch.up_since:
        watch.verdict = _evidence(props, f"went {state} after coming up")
    elif props.get("SubState") == "auto-restart":
        watch.verdict = _evidence(props, "crash-looping")
    elif late:
        watch.verdict = _evidence(props, f"still {state}")


def _job_pending(props: Mapping[str, Any]) -> bool:
    job = props.get("Job")
    return isinstance(job, list | tuple) and bool(job) and bool(job[0])


def _judge(systemd: SystemdAdapter, watch: _Watch, window: float) -> str:
    props = _props(systemd, watch.unit)
    if _identity(props) != watch.first:
        return _evidence(props, f"restarted by systemd within {window:.1f} s of coming up")
    return ""


def _evidence(props: Mapping[str, Any], what: str) -> str:
    code = {1: "exited", 2: "killed", 3: "dumped"}.get(int(props.get("ExecMainCode") or 0), "")
    status = int(props.get("ExecMainStatus") or 0)
    main = f", main process {code} status={status}" if code else ""
    return (
        f"{what}: {props.get('ActiveState')} ({props.get('SubState')}), "
        f"Result={props.get('Result')}{main}, restarts {props.get('NRestarts', 0)}"
    )


def _identity(props: Mapping[str, Any]) -> tuple[str, int]:
    raw = props.get("InvocationID") or []
    invocation = bytes(raw).hex() if isinstance(raw, list) else str(raw)
    return invocation, int(props.get("NRestarts") or 0)


def _restart_sec(props: Mapping[str, Any]) -> float:
    usec = int(props.get("RestartUSec") or 0)
    return usec / 1e6 if usec < 2**63 else 0.0


def _props(systemd: SystemdAdapter, unit: str) -> Mapping[str, Any]:
    """Fresh properties by name (LoadUnit: no glob, so an escaped instance name is exact)."""
    path = systemd.manager_call(b"LoadUnit", b"s", unit.encode())
    return systemd.unit_properties(path, unit.endswith(".service"))
