"""QT101-QT103 against a real systemd: a ~75-unit fleet with planted faults in the sandbox."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from qtctl.sandbox import Sandbox
from tests.support.fleet import EXPECTED_CAUSES, fleet_spec

pytestmark = pytest.mark.sandbox
FAILED = [u for u, (code, _) in EXPECTED_CAUSES.items() if code == "QT101"]


def settle(box: Sandbox, timeout: float = 30.0) -> None:
    """Wait until every planted fault has happened and journald has caught up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = box.systemctl("show", "-P", "ActiveState", *FAILED).stdout.split()
        restarts = box.systemctl("show", "-P", "NRestarts", "quantum-strategy-loop.service")
        noisy = box.run("journalctl", "-u", "quantum-noisy.service", "-n", "3", "-o", "cat")
        if (
            states == ["failed"] * len(FAILED)
            and int(restarts.stdout.strip() or 0) >= 3
            and "ValueError" in noisy.stdout
        ):
            box.run("journalctl", "--sync")
            return
        time.sleep(0.2)
    raise AssertionError(f"fleet did not settle: {dict(zip(FAILED, states, strict=False))}")


@pytest.fixture(scope="module")
def fleet() -> Iterator[Sandbox]:
    with Sandbox(fleet_spec()) as box:
        settle(box)
        yield box


@pytest.fixture(scope="module")
def report(fleet: Sandbox) -> dict[str, dict[str, object]]:
    res = fleet.qtctl("--format", "json", "doctor", "--select", "QT101,QT102,QT103")
    assert res.returncode == 1, res.stderr
    doc = json.loads(res.stdout)
    return {f["subject"]: f for f in doc["findings"]}


def test_every_planted_fault_is_found_with_its_cause(report: dict[str, dict[str, object]]) -> None:
    found = {subject: (f["code"], f["cause"]) for subject, f in report.items()}
    assert found == EXPECTED_CAUSES


def test_import_error_names_the_missing_module_and_shows_the_traceback(
    report: dict[str, dict[str, object]],
) -> None:
    finding = report["quantum-risk-proposal.service"]
    assert finding["message"] == "unit failed: ModuleNotFoundError: No module named 'ai_engine'"
    detail = finding["detail"]
    assert isinstance(detail, list)
    assert detail[0] == "Result=exit-code, main process exited, status=1"
    assert detail[1].startswith("failed since ") and detail[1].endswith("restarts: 0")
    assert "ModuleNotFoundError: No module named 'ai_engine'" in detail
    assert finding["severity"] == "error" and finding["fixable"] is True


def test_crash_loop_hidden_from_systemctl_failed_is_an_error(
    fleet: Sandbox, report: dict[str, dict[str, object]]
) -> None:
    assert "quantum-strategy-loop" not in fleet.systemctl("--failed").stdout
    finding = report["quantum-strategy-loop.service"]
    assert finding["code"] == "QT103" and finding["severity"] == "error"
    assert "crash-looping now" in str(finding["message"])
    assert "KeyError: 'model_path'" in str(finding["message"])


def test_oom_kill_on_cgroup_v1_is_classified_from_the_kernel_log(
    fleet: Sandbox, report: dict[str, dict[str, object]]
) -> None:
    props = fleet.systemctl("show", "-p", "Result", "quantum-memory-hog.service").stdout
    assert props.strip() == "Result=signal"  # cgroup v1: systemd itself says only "signal"
    finding = report["quantum-memory-hog.service"]
    assert finding["message"] == "unit failed: killed by the kernel OOM killer (MemoryMax=32M)"


def test_crlf_shebang_is_a_bad_interpreter_not_a_missing_file(
    report: dict[str, dict[str, object]],
) -> None:
    message = str(report["quantum-exit-watch.service"]["message"])
    assert "exit_watch.sh starts with CRLF line endings" in message


def test_start_limit_hit_names_the_underlying_failure(report: dict[str, dict[str, object]]) -> None:
    message = str(report["quantum-signal-loop.service"]["message"])
    assert "hit its start limit" in message
    assert "python-exception: KeyError: 'model_path'" in message


def test_noisy_binary_journal_is_read_safely(report: dict[str, dict[str, object]]) -> None:
    finding = report["quantum-noisy.service"]
    assert "ValueError: feature vector has NaN" in str(finding["message"])
    for line in finding["detail"]:  # type: ignore[union-attr]
        assert all(ch >= " " or ch == "\t" for ch in line), repr(line)


def test_escaped_template_instance_is_named_exactly(report: dict[str, dict[str, object]]) -> None:
    finding = report["quantum-worker@btc\\x2dusdt.service"]
    assert "/opt/quantum/bin/worker-missing does not exist" in str(finding["message"])


def test_not_found_units_name_what_still_references_them(
    report: dict[str, dict[str, object]],
) -> None:
    legacy = report["quantum-legacy-bridge.service"]
    assert legacy["severity"] == "warning"
    assert legacy["detail"] == [
        "dangling symlink /etc/systemd/system/multi-user.target.wants/"
        "quantum-legacy-bridge.service -> /etc/systemd/system/quantum-legacy-bridge.service"
    ]
    redis = report["quantum-redis.service"]
    assert "wanted/required by quantum-position-monitor.service" in str(redis["message"])


def test_table_output_reads_as_one_story(fleet: Sandbox) -> None:
    res = fleet.qtctl("doctor", "--select", "QT101")
    assert res.returncode == 1
    assert "ERROR   QT101 quantum-risk-proposal.service" in res.stdout
    assert "cause: import-error" in res.stdout
    assert "status: critical (12 error(s)" in res.stdout
