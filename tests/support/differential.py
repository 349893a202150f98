"""Feed systemd's corpora to the sandbox's real systemd and to qtctl, and compare what each read.

Units: one box per corpus folder; the probe (tests.support.corpus_probe) loads each unit over
D-Bus inside the box and reads the same files with qtctl; the box's journal gives every message
systemd logged at a file and line; `systemd-analyze verify` is run on the same files.
Env files: one oneshot unit per file, `EnvironmentFile=` it and print the environment with
`env -0` to a file; a unit that fails with Result=resources is systemd refusing the file.
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from qtctl.diagnosis.env_file import environment, refusal
from qtctl.sandbox import BoxFile, Sandbox, SandboxSpec
from tests.support.corpus import REPO, CorpusUnit

ETC = "/etc/systemd/system"
NAMES = "/etc/qtctl-corpus/units.json"
ENV_DIR = "/etc/qtctl-corpus/env"
OUT_DIR = "/run/qtctl-corpus"
AT_LINE = re.compile(r"^(/\S+?):(\d+): (.*)$")
VOLATILE = {"INVOCATION_ID", "SYSTEMD_EXEC_PID"}
INFINITY = 2**64 - 1


@dataclass
class UnitReport:
    """Both readings of one batch, and systemd's messages per file:line."""

    views: dict[str, dict[str, Any]]
    messages: dict[str, list[str]] = field(default_factory=dict)  # "path:line" -> texts
    verify: dict[str, list[str]] = field(default_factory=dict)
    qt104: list[tuple[str, str]] = field(default_factory=list)  # (unit, detail line)


def unit_spec(units: list[CorpusUnit]) -> SandboxSpec:
    """A box with the batch's unit files (and drop-ins) in /etc/systemd/system."""
    files: dict[str, BoxFile | str | bytes] = {}
    names = {}
    for unit in units:
        files[f"{ETC}/{unit.file_name}"] = BoxFile(unit.data)
        for conf, data in unit.dropins.items():
            files[f"{ETC}/{unit.name}.d/{conf}"] = BoxFile(data)
        names[unit.name] = f"{ETC}/{unit.file_name}"
    files[NAMES] = json.dumps(names)
    return SandboxSpec(files=files)


def read_units(units: list[CorpusUnit]) -> UnitReport:
    """Boot one box for the batch and read every unit both ways."""
    with Sandbox(unit_spec(units)).boot() as box:
        res = box.run(
            sys.executable,
            "-m",
            "tests.support.corpus_probe",
            NAMES,
            env={"PYTHONPATH": str(REPO)},
            timeout=120,
        )
        assert res.returncode == 0, res.stderr[-3000:]
        report = UnitReport(json.loads(res.stdout))
        report.messages = _journal_messages(box)
        paths = sorted({f"{ETC}/{u.file_name}" for u in units})
        verify = box.run("systemd-analyze", "verify", "--man=no", *paths, timeout=120)
        report.verify = _at_lines(verify.stderr.splitlines())
        report.qt104 = _qt104(box, units)
    return report


def _qt104(box: Sandbox, units: list[CorpusUnit]) -> list[tuple[str, str]]:
    """`qtctl doctor --select QT104` over the batch, as an operator runs it: every detail line."""
    patterns = sorted({u.name for u in units} | {u.file_name for u in units})
    box.write("/etc/qtctl/qtctl.toml", f"[fleet]\nunits = {json.dumps(patterns)}\n")
    res = box.qtctl("--format", "json", "doctor", "--select", "QT104", timeout=240)
    assert res.returncode in (0, 1), res.stderr[-3000:]
    findings = json.loads(res.stdout)["findings"]
    return [(f["subject"], line) for f in findings if f["code"] == "QT104" for line in f["detail"]]


def _journal_messages(box: Sandbox) -> dict[str, list[str]]:
    box.run("journalctl", "--sync")
    raw = box.run("journalctl", "-o", "json", "--no-pager", "_PID=1", timeout=60).stdout
    lines = []
    for entry in raw.splitlines():
        record = json.loads(entry)
        message = record.get("MESSAGE")
        if isinstance(message, list):  # journalctl gives non-UTF-8 messages as bytes
            message = bytes(message).decode("utf-8", "replace")
        if isinstance(message, str):
            lines.append(message)
    return _at_lines(lines)


def _at_lines(lines: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in lines:
        match = AT_LINE.match(line)
        if match:
            found.setdefault(f"{match.group(1)}:{match.group(2)}", []).append(match.group(3))
    return found


def env_spec(cases: list[tuple[str, bytes]]) -> SandboxSpec:
    """A box with one oneshot unit per env file, and one without any (the baseline)."""
    files: dict[str, BoxFile | str | bytes] = {}
    units = {}
    for index, (_, data) in enumerate([("baseline", b""), *cases]):
        env = f"EnvironmentFile={ENV_DIR}/{index}\n" if index else ""
        files[f"{ENV_DIR}/{index}"] = BoxFile(data)
        units[f"qtctl-envprobe-{index}.service"] = (
            f"[Service]\nType=oneshot\n{env}ExecStart=/usr/bin/env -0\n"
            f"StandardOutput=truncate:{OUT_DIR}/{index}\n"
        )
    return SandboxSpec(units=units, files=files, dbus=False)


def read_envs(cases: list[tuple[str, bytes]]) -> dict[str, tuple[str, str]]:
    """Per case: ('agree' | 'disagree' | 'unobservable', why)."""
    with Sandbox(env_spec(cases)).boot() as box:
        box.run("mkdir", "-p", OUT_DIR)
        names = [f"qtctl-envprobe-{i}.service" for i in range(len(cases) + 1)]
        box.systemctl("start", "--no-block", *names)
        states = _settle(box, names)
        outputs = {i: _env_output(box, i) for i in range(len(cases) + 1)}
    baseline = outputs[0] or {}
    verdicts = {}
    for index, (where, data) in enumerate(cases, 1):
        verdicts[where] = _env_verdict(data, states[names[index]], outputs[index], baseline)
    return verdicts


def _settle(box: Sandbox, names: list[str], timeout: float = 60) -> dict[str, tuple[str, str]]:
    deadline = time.monotonic() + timeout
    while True:
        res = box.systemctl("show", "-p", "Id,ActiveState,Result", *names)
        states = {}
        for block in res.stdout.strip().split("\n\n"):
            props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
            states[props.get("Id", "")] = (props.get("ActiveState", ""), props.get("Result", ""))
        pending = [n for n in names if states.get(n, ("", ""))[0] in ("activating", "", "active")]
        if not pending or time.monotonic() > deadline:
            return states
        time.sleep(0.2)


def _env_output(box: Sandbox, index: int) -> dict[str, str] | None:
    try:
        raw = box.host_path(f"{OUT_DIR}/{index}").read_bytes()
    except OSError:
        return None
    pairs = (item.decode("utf-8", "surrogateescape").partition("=") for item in raw.split(b"\0"))
    return {key: value for key, _, value in pairs if key}


def _env_verdict(
    data: bytes, state: tuple[str, str], output: dict[str, str] | None, baseline: dict[str, str]
) -> tuple[str, str]:
    refused = refusal(data)
    if state == ("failed", "resources"):
        if refused is not None:
            return "agree", "both refuse"
        return "disagree", "systemd refuses the file, qtctl reads it"
    if state[0] != "inactive" or output is None:
        return "unobservable", f"unit ended {state}"
    if refused is not None:
        return "disagree", f"qtctl refuses ({refused.reason}), systemd reads it"
    ours = environment(data)
    for key, value in output.items():
        if key in VOLATILE and key not in ours:
            continue
        if (key not in baseline or baseline[key] != value) and ours.get(key) != value:
            return "disagree", f"systemd sets {key}={value[:60]!r}, qtctl {ours.get(key)!r}"
    for key, value in ours.items():
        if output.get(key) != value:
            return "disagree", f"qtctl sets {key}={value[:60]!r}, systemd {output.get(key)!r}"
    return "agree", ""


def unit_differences(name: str, view: dict[str, Any]) -> list[str]:
    """Where qtctl's reading of a unit differs from systemd's, for the keys qtctl reads."""
    s, q = view["systemd"], view["qtctl"]
    state = s["LoadState"]
    ours = q["refused"][0] if q["refused"] else "loaded"
    if state != ours and {state, ours} != {"bad-setting", "error"}:  # both: refused
        return [f"systemd {state} {s['LoadError'][1]!r}, qtctl {q['refused'] or 'loads it'}"]
    if state != "loaded":
        return []
    found = [
        f"{key}: qtctl names {sorted(set(q[key]) - set(s[key]))} that systemd does not"
        for key in ("Requires", "Requisite", "Wants", "BindsTo", "PartOf", "Before", "After")
        if set(q[key]) - set(s[key])
    ]
    if name.endswith(".service"):
        found += _service_differences(s, q)
    return found


def _service_differences(s: dict[str, Any], q: dict[str, Any]) -> list[str]:
    pairs = {
        "ExecStart": (s["ExecStart"], q["ExecStart"]),
        "WorkingDirectory": (s["WorkingDirectory"], q["WorkingDirectory"]),
        "Environment": (sorted(s["Environment"]), sorted(q["Environment"])),
        "EnvironmentFiles": (s["EnvironmentFiles"], q["EnvironmentFiles"]),
        "Type": (s["Type"], q["Type"]),
        "Restart": (s["Restart"], q["Restart"] or "no"),
        "ProtectHome": (s["ProtectHome"], q["ProtectHome"] or "no"),
        "DynamicUser": (s["DynamicUser"], q["DynamicUser"] == "yes"),
        "RemainAfterExit": (s["RemainAfterExit"], q["RemainAfterExit"] == "yes"),
        "CPUQuota": (s["CPUQuotaPerSecUSec"] != INFINITY, bool(q["CPUQuota"])),
    }
    if not s["DynamicUser"]:  # else systemd makes the user up at start, and qtctl reads none
        pairs.update({key: (s[key], q[key]) for key in ("User", "Group")})
    for key in ("MemoryMax", "MemoryHigh", "MemoryLimit"):
        pairs[key] = (s[key] != INFINITY, q[key] not in ("", "infinity"))
    return [f"{k}: systemd {a!r}, qtctl {b!r}" for k, (a, b) in pairs.items() if a != b]


DOCUMENTED_ONLY = ("BlockIOWeight=", "StartupBlockIOWeight=", "StartLimitInterval=")
DOCUMENTED_ONLY += ("PermissionsStartOnly=",)  # deprecated in the manual; systemd 252 is silent


def unconfirmed_claims(report: UnitReport) -> list[str]:
    """qtctl's own claims about a file and line that systemd contradicts or says nothing
    about there: no message at that line, nor (inline comment) the comment kept in the value."""
    found = []
    for name, view in report.views.items():
        for claim in view["qtctl"]["claims"]:
            if not _confirmed(report, claim):
                found.append(f"{name}: {claim['where']}: {claim['kind']}: {claim['text']}")
    return found


def _confirmed(report: UnitReport, claim: dict[str, str]) -> bool:
    where = claim["where"]
    if where in report.messages or where in report.verify:
        return True
    if claim["kind"] == "inline-comment":
        comment = re.search(r"\s([#;].*)'", claim["text"])
        return bool(comment) and comment.group(1) in claim["shown"]  # type: ignore[union-attr]
    return claim["kind"] == "deprecated" and claim["text"].startswith(DOCUMENTED_ONLY)


def unconfirmed_qt104(report: UnitReport) -> list[str]:
    """QT104 detail lines naming a file and line where systemd logged nothing (verify's own
    lines pass through QT104, qtctl's are checked like the claims above)."""
    claims = {c["where"]: c for v in report.views.values() for c in v["qtctl"]["claims"]}
    found = []
    for unit, line in report.qt104:
        match = AT_LINE.match(line)
        if not match:
            continue
        where = f"{match.group(1)}:{match.group(2)}"
        claim = claims.get(where, {"where": where, "kind": "", "text": match.group(3)})
        if not _confirmed(report, claim):
            found.append(f"{unit}: {line}")
    return found


def qt104_lines(report: UnitReport) -> set[str]:
    """The file:line places QT104 names."""
    return {f"{m.group(1)}:{m.group(2)}" for _, line in report.qt104 if (m := AT_LINE.match(line))}
