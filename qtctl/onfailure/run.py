"""`qtctl doctor --unit NAME [--publish-incident]` after the full doctor run."""

from __future__ import annotations

from qtctl.config import Config
from qtctl.engine.report import Report
from qtctl.errors import UsageError
from qtctl.onfailure.publish import headline, incident_fields, publish_incident
from qtctl.onfailure.scope import about_unit
from qtctl.onfailure.trigger import from_environment
from qtctl.output import Output

UNIT_SUFFIXES = (".service", ".socket", ".timer", ".target", ".path", ".mount")


def unit_name(text: str) -> str:
    """A unit name as given, `.service` added when it has no unit suffix."""
    name = text.strip()
    if not name or "/" in name or any(ord(c) < 32 for c in name):
        raise UsageError(f"--unit {text!r}: not a unit name")
    return name if name.endswith(UNIT_SUFFIXES) else f"{name}.service"


def for_unit(config: Config, report: Report, unit: str, publish: bool, out: Output) -> Report:
    """The report cut down to the unit; published as its incident when asked."""
    name = unit_name(unit)
    scoped = about_unit(report, {name})
    if publish:
        fields = incident_fields(name, scoped, from_environment())
        out.note(headline(fields))
        problem = publish_incident(config, fields)
        if problem:
            out.error(problem)
    return scoped
