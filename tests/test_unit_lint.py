"""Unit-file parsing and lint rules on text (fast, no sandbox)."""

from __future__ import annotations

from qtctl.diagnosis.unit_file import all_values, effective, parse_text
from qtctl.diagnosis.unit_lint import UnitView, lint


def view(
    *texts: str,
    requires: tuple[str, ...] = (),
    not_found: frozenset[str] = frozenset(),
    name: str = "quantum-x.service",
) -> UnitView:
    files = tuple(parse_text(t, f"/etc/systemd/system/f{i}") for i, t in enumerate(texts))
    return UnitView(name, files, requires, not_found, {})


def test_parse_follows_systemd_syntax() -> None:
    parsed = parse_text(
        "# comment\n[Unit]\nDescription=a \\\n  b\n; other comment\n[Service]\r\n"
        "ExecStart=/bin/true\nEnvironment=A=1\nEnvironment=\nEnvironment=B=2\nnonsense\n",
        "/u",
    )
    assert [(d.section, d.key, d.value, d.line) for d in parsed.directives] == [
        # systemd keeps the continuation's indentation ("a" + 2 spaces for the backslash and
        # its space + "  b") and reports the assignment at its last line
        ("Unit", "Description", "a    b", 4),
        ("Service", "ExecStart", "/bin/true", 7),
        ("Service", "Environment", "A=1", 8),
        ("Service", "Environment", "", 9),
        ("Service", "Environment", "B=2", 10),
    ]
    assert parsed.ignored == ((11, "not an assignment: 'nonsense'"),)
    assert [d.value for d in all_values([parsed], "Service", "Environment")] == ["B=2"]
    assert effective([parsed], "Service", "ExecStart") == "/bin/true"


def test_a_drop_in_overrides_the_fragment() -> None:
    v = view("[Service]\nExecStart=/bin/true\nRestart=no\n", "[Service]\nRestart=always\n")
    assert v.value("Restart") == "always"
    assert "no-restart" not in {p.kind for p in lint(v)}


def test_rules() -> None:
    v = view(
        "[Unit]\nAfter=a.service a.service\nWantedBy=multi-user.target\n[Service]\n"
        "ExecStart=/opt/venv/bin/python3 /home/qt/app.py\nProtectHome=true\n"
        "CPUShares=100\nEnvironment=X=1 ; note\nRestart=no\n[Sevice]\nUser=x\n",
        requires=("quantum-redis.service",),
        not_found=frozenset({"quantum-redis.service"}),
    )
    assert (
        sorted(p.kind for p in lint(v))
        == sorted(
            [
                "syntax",  # [Sevice]
                "wrong-section",  # WantedBy= in [Unit]
                "inline-comment",
                "requires-missing",
                "protect-home",
                "deprecated",  # CPUShares=
                "no-restart",
                "python-as-root",
                "no-limits",
                "wrong-section",  # User= under the unknown [Sevice] section is not counted twice
            ][:-1]
        )
    )
    assert lint(v)[0].severity.name == "ERROR"


def test_oneshot_and_exec_prefixes_are_fine() -> None:
    v = view(
        "[Service]\nType=oneshot\nExecStart=-/usr/bin/python3 /x.py\nUser=app\n"
        "MemoryMax=1G\nCPUQuota=20%\n"
    )
    assert [p.kind for p in lint(v)] == ["bad-user"]  # 'app' does not exist here
