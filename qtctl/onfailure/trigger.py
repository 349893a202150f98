"""What systemd tells an `OnFailure=` unit about the failure that started it (systemd >= 251
sets these in the handler's environment; a hand-run `doctor --unit` has none of them)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

INVOCATION = re.compile(r"[0-9a-f]{32}")
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
    """Read the MONITOR_* variables; an invocation id that is not 32 hex digits is dropped."""
    env = os.environ if env is None else env
    values = {k: env.get(v, "")[:MAX_VALUE] for k, v in FIELDS.items()}
    if not INVOCATION.fullmatch(values["invocation_id"]):
        values["invocation_id"] = ""
    return Trigger(**values)
