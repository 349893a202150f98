"""A cycle's outputs formatted column by column: one `tolist()` per array instead of a numpy
scalar per field per row (the per-row formatting was a third of a 1,000-position cycle)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from qtctl.daemons.risk_kernel.kernel import Inputs, Proposals, reason_codes

REGIMES = ("trend", "mean_reversion", "chop")


def _g(values: np.ndarray) -> list[str]:
    return [f"{v:.10g}" for v in values.tolist()]


def _pct(values: np.ndarray) -> list[str]:
    return [f"{v * 100:.6f}" for v in values.tolist()]


@dataclass(frozen=True)
class Columns:
    """Every per-row string the proposal hash and its stream entry carry."""

    stop: list[str]
    take_profit: list[str]
    trailing: list[str]
    activation: list[str]
    stop_dist: list[str]
    tp_dist: list[str]
    trail_gap: list[str]
    weights: list[tuple[str, str, str]]
    weights_json: list[str]
    regime: list[str]
    reasons: list[str]
    side: list[str]
    peak: list[str]
    exit_now: list[bool]
    valid: list[bool]
    timestamp: str
    computed_at: str

    @classmethod
    def of(cls, x: Inputs, out: Proposals, now: float) -> Columns:
        """Format every column once."""
        w = out.weights.tolist()
        regime = np.argmax(out.weights, axis=1).tolist() if len(w) else []
        return cls(
            stop=_g(out.stop_loss),
            take_profit=_g(out.take_profit),
            trailing=["" if v != v else f"{v:.10g}" for v in out.trailing_stop.tolist()],
            activation=_g(out.trailing_activation),
            stop_dist=_pct(out.stop_dist),
            tp_dist=_pct(out.tp_dist),
            trail_gap=_pct(out.trail_gap),
            weights=[(f"{a:.6f}", f"{b:.6f}", f"{c:.6f}") for a, b, c in w],
            weights_json=[
                json.dumps({"trend": a, "mean_reversion": b, "chop": c}) for a, b, c in w
            ],
            regime=[REGIMES[r] for r in regime],
            reasons=[reason_codes(r) for r in out.reasons.tolist()],
            side=["LONG" if s > 0 else "SHORT" for s in x.side.tolist()],
            peak=_g(x.peak),
            exit_now=out.exit_now.tolist(),
            valid=out.valid.tolist(),
            timestamp=f"{now:.3f}",
            computed_at=datetime.fromtimestamp(now, UTC).isoformat(),
        )
