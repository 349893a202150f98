"""What doctor and lint share after their run: the format chosen, acks and baselines applied,
the results printed, and the exit code decided (by `qtctl.engine.exitcodes`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from qtctl.formats import check_format, show
from qtctl.formats.model import Results

if TYPE_CHECKING:
    from qtctl.acks import Ack
    from qtctl.cli.context import GlobalOptions
    from qtctl.config import Config
    from qtctl.output import Output

OUTPUT_FORMATS = ("table", "json", "markdown")  # the ones `qtctl.output.Output` knows


@dataclass(frozen=True)
class Presentation:
    """How one run is shown and judged."""

    fmt: str
    statistics: bool = False
    baseline: str | None = None
    write_baseline: str | None = None
    state_acks: bool = True  # doctor: `qtctl ack` entries count; lint: only a baseline


def output_for(opts: GlobalOptions, fmt: str | None) -> tuple[Output, str]:
    """The Output (its own format where it has it) and the format name asked for."""
    chosen = check_format(fmt or opts.format)
    return opts.output(chosen if chosen in OUTPUT_FORMATS else "table"), chosen


def present(out: Output, config: Config, results: Results, how: Presentation) -> int:
    """Apply acks, print, and return the exit code of what is not acknowledged."""
    from qtctl import acks
    from qtctl.engine.exitcodes import exit_code

    now = acks.now()
    if how.write_baseline:
        reason = f"baseline written by qtctl {results.tool}"
        acks.write_baseline(how.write_baseline, acks.baseline_document(results, reason, now))
        out.note(f"wrote {len(results.entries)} finding(s) to {how.write_baseline}")
    given: list[tuple[acks.Ack, str]] = []
    if how.state_acks:
        given += [(a, "state") for a in _state_acks(out, config)]
    for path in filter(None, (how.baseline, how.write_baseline)):
        given += [(a, path) for a in acks.read_baseline(path)]
    results = acks.apply_acks(results, given, now) if given else results
    show(out, results, how.fmt, how.statistics, config.lint.docs_url)
    return exit_code(results.counted, config.doctor.fail_on)


def _state_acks(out: Output, config: Config) -> list[Ack]:
    """The `qtctl ack` entries; a store qtctl cannot trust or read is not applied (a planted
    file must not hide findings) and doctor still runs: its findings all count."""
    from qtctl.acks import AckStore
    from qtctl.errors import UsageError

    try:
        return AckStore(config.fix.state_dir).load()
    except UsageError as exc:
        out.note(f"acks not applied: {exc}")
        return []
