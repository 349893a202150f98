"""The incident replay: boot the demo fleet, plant the faults, then doctor, fix, doctor, report,
each run inside the box exactly as an operator types it. The same object drives the CLI demo and
the end-to-end test, so the demo cannot silently rot."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from qtctl.daemons.rl_agent import torch_available
from qtctl.demo.fleet import CONFIG_PATH, demo_spec
from qtctl.demo.seed import EXPECTED, NEAR_MISS, UNBOUNDED, P
from qtctl.errors import SandboxError
from qtctl.sandbox import Sandbox

DAEMONS = ("qtctl-bridge.service", "qtctl-risk-kernel.service", "qtctl-rl-agent.service")
RL_AGENT_UNIT = "qtctl-rl-agent.service"
FAILING = ("quantum-risk-proposal.service", "quantum-exit-watch.service")
BEATS = ("risk-proposal", "exit-watch")
INSTALL = ("install", "--all", "--daemon-config", CONFIG_PATH)
SEED = (
    "import json, redis; from qtctl.demo.seed import plant; "
    "print(json.dumps(plant(redis.Redis(decode_responses=True))))"
)


@dataclass
class Step:
    """One command of the story and what it printed."""

    title: str
    why: str
    argv: tuple[str, ...]
    returncode: int
    output: str
    seconds: float


@dataclass
class DemoRun:
    """Everything the demo did and proved."""

    steps: list[Step] = field(default_factory=list)
    planted: dict[str, Any] = field(default_factory=dict)
    found: dict[str, list[list[str]]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    repairs: list[dict[str, Any]] = field(default_factory=list)
    after: list[dict[str, Any]] = field(default_factory=list)
    after_code: int = -1
    lost: dict[str, int] = field(default_factory=dict)
    daemon_restarts: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    rl_agent: bool = True  # False: torch is not installed, the agent is left out

    @property
    def ok(self) -> bool:
        """Every fault found and fixed, the fleet healthy, nothing lost."""
        planted = {s for s in EXPECTED}
        left = [f for f in self.after if f["subject"] in planted or f["severity"] == "error"]
        still = {f["subject"] for f in self.after}
        unfixed = [r for r in self.repairs if r["result"] != "fixed" and r["subject"] in still]
        restarted = any(self.daemon_restarts.values()) or not self.daemon_restarts
        return not (self.missing or unfixed or left or any(self.lost.values()) or restarted) and (
            self.after_code == 0
        )

    def as_dict(self) -> dict[str, Any]:
        """The versioned JSON document of `qtctl --format json demo`."""
        return {
            "schema": "qtctl.demo/1",
            "ok": self.ok,
            "expected": {s: sorted(map(list, v)) for s, v in EXPECTED.items()},
            "found": self.found,
            "missing": self.missing,
            "repairs": self.repairs,
            "after": self.after,
            "after_exit_code": self.after_code,
            "lost": self.lost,
            "daemon_restarts": self.daemon_restarts,
            "rl_agent": self.rl_agent,
            "timings": self.timings,
            "steps": [{**s.__dict__, "argv": list(s.argv)} for s in self.steps],
        }


class Demo:
    """Drive the story; `show` is called after every step (the CLI renders and may pause).
    Without torch the RL agent is left out (`install --all` skips it) and nothing waits for it."""

    def __init__(self, show: Callable[[Step], None] = lambda step: None, width: int = 100) -> None:
        self.show = show
        self.width = width
        self.run = DemoRun(rl_agent=torch_available())  # the box runs this very interpreter
        self.box = Sandbox(demo_spec(self.run.rl_agent))
        self.daemons = tuple(d for d in DAEMONS if self.run.rl_agent or d != RL_AGENT_UNIT)

    def play(self) -> DemoRun:
        """The whole story, in order."""
        started = time.monotonic()
        self.boot()
        self.run.timings["boot"] = time.monotonic() - started
        self.diagnose()
        self.repair()
        self.verify()
        self.run.timings["total"] = time.monotonic() - started
        return self.run

    def boot(self) -> None:
        """Boot the fleet, plant the incident in Redis, install qtctl's daemons, let it fail."""
        self.box.boot(timeout=60)
        box = self.box
        _wait(lambda: box.run("redis-cli", "ping").stdout.strip() == "PONG", 20, "Redis")
        seeded = box.run(sys.executable, "-c", SEED, timeout=120)
        if seeded.returncode:
            raise SandboxError(f"planting the incident failed: {seeded.stderr.strip()}")
        self.run.planted = json.loads(seeded.stdout)
        planted_at = time.monotonic()
        box.run("chmod", "o+x", "/root")  # the venv's interpreter (pyenv) for the daemon user
        self._step(
            "Install qtctl's daemons",
            "The bridge, the risk kernel and the RL agent, "
            "as hardened units (a diff, atomic writes, daemon-reload, start).",
            INSTALL,
        )
        _wait(lambda: self._states(FAILING) == ["failed"] * 2, 30, "the planted failures")
        up = ["active"] * len(self.daemons)
        _wait(lambda: self._states(self.daemons) == up, 60, "qtctl's daemons")
        # the dead consumer's idle time must pass streams.dead_consumer_sec (8 s in the demo)
        time.sleep(max(0.0, planted_at + 8.5 - time.monotonic()))
        box.run("journalctl", "--sync")

    def diagnose(self) -> None:
        """doctor (as an operator reads it), then its JSON for the proof, then the preview."""
        self._step(
            "Diagnose",
            "Every check at once: units and their journal, the code as each "
            "unit really starts, line endings, Redis streams, daemons, services.",
            ("doctor",),
        )
        doc = self._json(("doctor",))
        for f in doc["findings"]:
            self.run.found.setdefault(f["subject"], []).append([f["code"], f["cause"]])
        for subject, wanted in EXPECTED.items():
            got = {(code, cause) for code, cause in self.run.found.get(subject, [])}
            self.run.missing += [f"{subject} {c} {k}" for c, k in sorted(wanted - got)]
        self._step(
            "Preview the repairs",
            "Nothing changes yet: the exact commands, file diffs, "
            "and what is held back by which safety rule.",
            ("fix",),
        )

    def repair(self) -> None:
        """fix --apply --unsafe: journaled, backed up, verified by re-running the checks."""
        argv = ("--format", "json", "fix", "--apply", "--unsafe")
        started = time.monotonic()
        res = self.box.qtctl(*argv, timeout=300)
        doc = json.loads(res.stdout or "{}")
        self.run.repairs = [
            {k: r[k] for k in ("code", "subject", "cause", "actions", "held", "result")}
            for r in doc.get("repairs", [])
        ]
        output = "\n".join(
            f"{r['result']:>13}  {r['code']} {r['subject']}: {'; '.join(r['actions'])}"
            for r in self.run.repairs
        )
        step = Step(
            "Repair",
            "Restarts allowed (--unsafe); every change journaled with its "
            "backup, then the checks run again.",
            ("fix", "--apply", "--unsafe"),
            res.returncode,
            output + "\n" + res.stderr,
            time.monotonic() - started,
        )
        self.run.steps.append(step)
        self.show(step)

    def verify(self) -> None:
        """The fleet settles; doctor is clean; nothing was lost; the incident summary."""
        _wait(self._settled, 30, "the repaired fleet")
        step = self._step("Diagnose again", "The same checks after the repairs.", ("doctor",))
        self.run.after_code = step.returncode
        self.run.after = self._json(("doctor",))["findings"]
        self.run.lost = self._losses()
        restarts = self.box.systemctl("show", "-P", "NRestarts", *self.daemons).stdout.split()
        self.run.daemon_restarts = dict(zip(self.daemons, map(int, restarts), strict=False))
        self._step(
            "Incident summary",
            "What a cron job or a pager would receive.",
            ("report", "--format", "markdown", "--exit-zero"),
        )

    def _losses(self) -> dict[str, int]:
        """Planted entries that are nowhere now (stream, quarantine, or a fix archive)."""
        script = (
            "import json, sys, redis; from qtctl.demo.scenario import count_losses; "
            "print(json.dumps(count_losses(redis.Redis(decode_responses=True), "
            "json.loads(sys.stdin.read()))))"
        )
        res = self.box.run(sys.executable, "-c", script, input=json.dumps(self.run.planted))
        return json.loads(res.stdout) if res.returncode == 0 else {"check-failed": 1}

    def _step(self, title: str, why: str, argv: tuple[str, ...]) -> Step:
        started = time.monotonic()
        res = self.box.qtctl(*argv, env={"COLUMNS": str(self.width)}, timeout=300)
        step = Step(
            title, why, argv, res.returncode, res.stdout + res.stderr, time.monotonic() - started
        )
        self.run.steps.append(step)
        self.show(step)
        return step

    def _json(self, argv: tuple[str, ...]) -> dict[str, Any]:
        res = self.box.qtctl("--format", "json", *argv, timeout=300)
        return json.loads(res.stdout) if res.stdout.strip() else {"findings": []}

    def _settled(self) -> bool:
        """Restarted units up and beating, the handed-over entries acknowledged."""
        daemons = self._states(self.daemons)
        if self._states(FAILING) != ["active"] * 2 or daemons != ["active"] * len(self.daemons):
            return False
        beats = self.box.run("redis-cli", "exists", *(f"quantum:heartbeat:{n}" for n in BEATS))
        pending = self.box.run("redis-cli", "xpending", f"{P}trade.intent", "execution")
        return beats.stdout.strip() == str(len(BEATS)) and pending.stdout.split("\n")[0] == "0"

    def _states(self, units: tuple[str, ...]) -> list[str]:
        return self.box.systemctl("show", "-P", "ActiveState", *units).stdout.split()

    def close(self) -> None:
        """Tear the box down (its PID 1 killed; nothing of it stays on the host)."""
        self.box.close()


def count_losses(client: Any, planted: dict[str, Any]) -> dict[str, int]:
    """Run inside the box after the fix: how many planted entries exist nowhere."""
    from pathlib import Path

    from qtctl.adapters.stream_archive import read_archive
    from qtctl.stream_ids import order

    archives = Path("/var/lib/qtctl/fixes").glob("*/*.jsonl.gz")
    archived = {e["id"]: e["fields"] for archive in archives for e in read_archive(archive)}
    target = f"{P}trade.execution.result"
    quarantined = {
        f["quarantined_from_id"] for _, f in client.xrange(f"{P}trade.closed:quarantine")
    }
    first, last, count = planted["ticks"]
    kept = {i for i, f in client.xrange(UNBOUNDED, first, last) if f.get("seeded") == "1"}
    low, high = order(first), order(last)
    ticks = len(kept) + sum(
        1
        for i, fields in archived.items()
        if fields.get("seeded") == "1" and low <= order(i) <= high and i not in kept
    )
    return {
        "near-miss entries": _absent(client, target, planted["near_miss"]),
        "ticks": count - ticks,
        "garbage records": sum(1 for i in planted["garbage"] if i not in quarantined),
        "dead consumer's entries": _absent(client, f"{P}trade.intent", planted["dead_pending"]),
        "near-miss stream left behind": int(client.exists(NEAR_MISS)),
    }


def _absent(client: Any, stream: str, ids: list[str]) -> int:
    """How many of the IDs the stream does not hold (one pipelined round trip)."""
    pipe = client.pipeline(transaction=False)
    for entry_id in ids:
        pipe.xrange(stream, entry_id, entry_id)
    return sum(1 for found in pipe.execute() if not found)


def _wait(ready: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.2)
    raise SandboxError(f"the demo fleet did not get ready in time: {what}")
