"""How `qtctl demo` shows each step: a rule, why it matters, the command and what it printed."""

from __future__ import annotations

import sys

from rich.markup import escape

from qtctl.demo.scenario import DemoRun, Step
from qtctl.output import Output

INTRO = (
    "A ~70-unit trading fleet boots in a systemd sandbox (its own PID 1, network and an overlay "
    "of /: nothing touches this host). Planted, as in the real incident: a risk-proposal service "
    "dying on ModuleNotFoundError from a __file__-relative sys.path hack, an exit-watch script "
    "with CRLF line endings, the bridge's old truncated destination holding entries, two deleted "
    "but still referenced units, a stream growing without bound, a consumer group with a dead "
    "consumer, and garbage closed-trade records."
)


class StepPrinter:
    """Prints steps as they happen; with `pause`, waits for Enter between them."""

    def __init__(self, out: Output, pause: bool) -> None:
        self.out = out
        self.pause = pause and sys.stdin.isatty()
        self.count = 0

    def intro(self) -> None:
        """What is about to happen."""
        self.out.panel(INTRO, title="qtctl demo")

    def __call__(self, step: Step) -> None:
        self.count += 1
        self.out.rule(f"[bold]{self.count}. {escape(step.title)}[/]")
        self.out.line(step.why, style="dim")
        command = " ".join(("qtctl", *step.argv))
        self.out.markup(
            f"[bold cyan]$ {escape(command)}[/]  [dim]({step.seconds:.1f} s, "
            f"exit {step.returncode})[/]"
        )
        self.out.line(step.output.rstrip(), soft_wrap=True)  # qtctl's own output, quoted
        if self.pause:
            input("\n-- press Enter for the next step --")


def summary(out: Output, run: DemoRun) -> None:
    """The proof: every fault found and fixed, what is left, nothing lost."""
    rows = []
    for subject, wanted in sorted(run.as_dict()["expected"].items()):
        got = run.found.get(subject, [])
        ok = all(pair in got for pair in wanted)
        rows.append(
            (
                escape(subject),
                escape(", ".join(f"{c} {k}" for c, k in wanted)),
                "[green]yes[/]" if ok else "[bold red]MISSING[/]",
            )
        )
    out.table("planted faults", ("subject", "expected", "found"), rows)
    fixed = sum(1 for r in run.repairs if r["result"] == "fixed")
    out.line(
        f"repairs: {fixed} fixed of {len(run.repairs)}; doctor afterwards exits "
        f"{run.after_code}; lost entries: {sum(run.lost.values())}"
    )
    advisory = [f for f in run.after if f["severity"] != "error"]
    for f in advisory:
        out.line(f"left, by design: {f['code']} {f['subject']}: {f['message']}", style="dim")
    verdict = "[bold green]the fleet is healthy[/]" if run.ok else "[bold red]demo FAILED[/]"
    out.markup(
        f"{verdict} in {run.timings.get('total', 0):.1f} s "
        f"(boot {run.timings.get('boot', 0):.1f} s)"
    )
