"""What systemd tells an `OnFailure=` unit about the failure that started it (systemd >= 251
sets these in the handler's environment; a hand-run `doctor --unit` has none of them)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from qtctl.escaping import shown

INVOCATION = re.compile(r"[0-9a-f]{32}")
# what systemd puts there: a result word (`exit-code`), a CLD_* code name, a status number or a
# signal name (`TERM`); anything else is dropped, not published as data a consumer misreads
SHAPES = {
    "result": re.compile(r"[a-z][a-z-]{0,40}"),
    "exit_code": re.compile(r"exited|killed|dumped|trapped|stopped|continued"),
    "exit_status": re.compile(r"\d{1,3}|[A-Z][A-Z0-9+]{1,15}"),
    "invocation_id": INVOCATION,
}
FIELDS = {
    "unit": "MONITOR_UNIT",
    "result": "MONITOR_SERVICE_RESULT",
    "exit_code": "MONITOR_EXIT_CODE",
    "exit_status": "MONITOR_EXIT_STATUS",
    "invocation_id": "MONITOR_INVOCATION_ID",
}
MAX_VALUE = 200


@dataclass(frozen=True)
class Trigger:
    """The failure that triggered this run; every field '' when not run by OnFailure=."""

    unit: str = ""
    result: str = ""
    exit_code: str = ""
    exit_status: str = ""
    invocation_id: str = ""

    @property
    def present(self) -> bool:
        """Whether systemd started us because of a failure."""
        return bool(self.result or self.invocation_id)

    def as_dict(self) -> dict[str, str]:
        """The fields as published."""
        return {k: getattr(self, k) for k in FIELDS}


def from_environment(env: Mapping[str, str] | None = None) -> Trigger:
    """Read the MONITOR_* variables: each escaped as a name is (a byte that is not UTF-8 as
    `\\xNN`) and cut to MAX_VALUE; a result, exit code, exit status or invocation id not of
    the shape systemd gives is dropped."""
    env = os.environ if env is None else env
    values = {k: shown(env.get(v, ""))[:MAX_VALUE] for k, v in FIELDS.items()}
    for key, shape in SHAPES.items():
        if not shape.fullmatch(values[key]):
            values[key] = ""
    return Trigger(**values)
