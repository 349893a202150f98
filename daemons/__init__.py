"""The daemons qtctl ships (risk kernel, RL sizing agent, stream bridge), as qtctl.daemons.

Each daemon is one module; only the RL agent imports torch.
"""

from __future__ import annotations

# name -> "module:attribute" of the daemon's entry point; filled as each daemon lands.
DAEMONS: dict[str, str] = {
    "bridge": "qtctl.daemons.bridge.daemon:create",
    "risk-kernel": "qtctl.daemons.risk_kernel.daemon:create",
    "rl-agent": "qtctl.daemons.rl_agent.daemon:create",
}
DESCRIPTIONS: dict[str, str] = {
    "bridge": "copy source streams into destinations, effectively once, in order",
    "risk-kernel": "stop-loss / take-profit / trailing proposals for open positions, never unsafe",
    "rl-agent": "learn position-size multipliers from validated closed trades (torch)",
}
