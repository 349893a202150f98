"""Configuration: defaults < TOML file < QTCTL__SECTION__KEY env < CLI flags, parsed once."""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qtctl.config_rl import RlSettings
from qtctl.config_values import coerce, read_file, validate
from qtctl.errors import ConfigError
from qtctl.redaction import DEFAULT_PATTERNS, mask_url

DEFAULT_CONFIG_PATH = Path("/etc/qtctl/qtctl.toml")
ENV_PREFIX = "QTCTL__"
SEVERITY_CHOICES = ("info", "warning", "error", "never")

# Keys removed so that each fact has one home. A config still setting one is refused, naming the
# home: mapping it over would change what a daemon writes or copies, not only what a check reads.
MOVED = {
    "daemons.rl_stats_key": ("rl.stats_key", "the hash the RL agent writes and QT502 reads"),
    "daemons.rl_rewards_stream": ("rl.reward_stream", "the stream the RL agent and QT502 read"),
    "daemons.bridge_routes": (
        "bridge.routes",
        "the routes qtctl's bridge copies and QT503 watches (list only what it is to copy)",
    ),
}


def _choices(*values: str) -> dict[str, Any]:
    return {"choices": values}


@dataclass(frozen=True)
class RedisSettings:
    """How qtctl and its daemons reach the fleet's Redis."""

    url: str = field(default="redis://127.0.0.1:6379/0", metadata={"redis_url": True})
    socket_timeout: float = field(default=2.0, metadata={"min": 0.05})
    require_persistence: bool = False
    memory_warn_pct: float = field(default=90.0, metadata={"min": 1, "max": 100})


@dataclass(frozen=True)
class FleetSettings:
    """Which systemd units are the fleet, and which of them fix must never restart."""

    units: tuple[str, ...] = ("quantum-*", "qtctl-*")
    protected: tuple[str, ...] = (
        "quantum-execution*",
        "quantum-apply-layer*",
        "quantum-emergency-exit*",
    )
    live_mode: bool = False
    live_mode_var: str = "TRADING_MODE"
    live_mode_values: tuple[str, ...] = ("live", "real", "production")
    code_roots: tuple[str, ...] = ("/home/qt/quantum_trader",)
    expected_units: tuple[str, ...] = ()
    expected_count: int = field(default=0, metadata={"min": 0})
    inventory_file: str = "/var/lib/qtctl/inventory.json"


@dataclass(frozen=True)
class SystemdSettings:
    """How qtctl reaches systemd and its journal."""

    bus_address: str = ""
    journal_lines: int = field(default=12, metadata={"min": 1})
    restart_warn: int = field(default=5, metadata={"min": 1})
    flap_window_sec: float = field(default=3600.0, metadata={"min": 1})


@dataclass(frozen=True)
class DoctorSettings:
    """What doctor runs and when it fails."""

    fail_on: str = field(default="error", metadata=_choices(*SEVERITY_CHOICES))
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    check_timeout: float = field(default=20.0, metadata={"min": 0.1})


@dataclass(frozen=True)
class HostSettings:
    """Host resource thresholds."""

    disk_paths: tuple[str, ...] = ("/",)
    disk_warn_pct: float = field(default=80.0, metadata={"min": 0, "max": 100})
    disk_error_pct: float = field(default=90.0, metadata={"min": 0, "max": 100})
    redis_data_dir: str = ""  # empty: ask Redis (CONFIG GET dir)
    model_dir: str = "/models"
    memory_warn_gib: float = field(default=2.0, metadata={"min": 0})
    memory_error_gib: float = field(default=0.5, metadata={"min": 0})
    journal_dirs: tuple[str, ...] = ("/var/log/journal", "/run/log/journal")
    journal_warn_mb: float = field(default=4096.0, metadata={"min": 1})


@dataclass(frozen=True)
class ServiceSettings:
    """Services at run time: health endpoints, listeners, env files, heartbeats, resources."""

    health_paths: tuple[str, ...] = ("/health", "/healthz", "/metrics")
    probe_timeout_sec: float = field(default=1.0, metadata={"min": 0.05, "max": 30})
    max_body_bytes: int = field(default=4096, metadata={"min": 64, "max": 1_048_576})
    loopback_only: bool = True
    public_listeners: tuple[str, ...] = ()  # `unit` or `unit:port` globs allowed on 0.0.0.0/::
    env_dirs: tuple[str, ...] = ("/etc/quantum",)
    secret_patterns: tuple[str, ...] = DEFAULT_PATTERNS  # QT703 and every redaction
    heartbeats: tuple[str, ...] = field(default=(), metadata={"key_seconds": True})
    heartbeat_ttl_keys: tuple[str, ...] = ()  # keys (globs) that must carry a TTL
    heartbeat_error_factor: float = field(default=5.0, metadata={"min": 1})
    redis_uptime_slack_sec: float = field(default=600.0, metadata={"min": 0})
    redis_restart_recent_sec: float = field(default=86400.0, metadata={"min": 1})
    memory_warn_pct: float = field(default=90.0, metadata={"min": 1, "max": 100})
    cpu_warn_pct: float = field(default=90.0, metadata={"min": 1, "max": 100})
    cpu_sample_sec: float = field(default=0.2, metadata={"min": 0, "max": 5})
    nofile_warn_pct: float = field(default=80.0, metadata={"min": 1, "max": 100})


@dataclass(frozen=True)
class StreamSettings:
    """The fleet's Redis streams and the thresholds they are judged by (defaults: the contract)."""

    prefix: str = "quantum:stream:"
    expected: tuple[str, ...] = (
        "trade.intent",
        "ai.signal_generated",
        "execution.result",
        "trade.execution.result",
        "trade.closed",
        "rl_rewards",
    )
    live: tuple[str, ...] = (
        "trade.intent",
        "ai.signal_generated",
        "execution.result",
        "trade.execution.result",
    )
    length_warn: int = field(default=100_000, metadata={"min": 1})
    length_error: int = field(default=1_000_000, metadata={"min": 1})
    memory_error_mb: float = field(default=512.0, metadata={"min": 0.001})
    stale_after_sec: float = field(default=3600.0, metadata={"min": 1})
    lag_warn: int = field(default=1_000, metadata={"min": 1})
    lag_error: int = field(default=10_000, metadata={"min": 1})
    pending_idle_sec: float = field(default=300.0, metadata={"min": 1})
    dead_consumer_sec: float = field(default=600.0, metadata={"min": 1})
    scan_count: int = field(default=1000, metadata={"min": 10})
    retention_maxlen: int = field(default=100_000, metadata={"min": 1})
    retention_max_age_sec: float = field(default=0.0, metadata={"min": 0})
    group_start_id: str = field(default="$", metadata=_choices("$", "0"))
    per_stream: Mapping[str, Mapping[str, Any]] = field(
        default_factory=dict, metadata={"per_stream": True}
    )


@dataclass(frozen=True)
class RiskSettings:
    """Where the risk kernel publishes proposals and reads positions (the contract's keys)."""

    proposal_prefix: str = "quantum:risk:proposal:"
    position_prefix: str = "quantum:state:positions:"
    publish_interval_sec: float = field(default=10.0, metadata={"min": 0.1})
    market_prefix: str = "quantum:marketstate:"
    stats_key: str = "quantum:risk:kernel:stats"
    proposal_stream: str = "risk.proposal"  # under streams.prefix; append-only log
    stream_maxlen: int = field(default=10_000, metadata={"min": 1})
    market_max_age_sec: float = field(default=120.0, metadata={"min": 1})
    poll_sec: float = field(default=1.0, metadata={"min": 0.05, "max": 10})
    min_stop_pct: float = field(default=0.5, metadata={"min": 0.01})
    min_tp_pct: float = field(default=1.0, metadata={"min": 0.01})
    min_trail_pct: float = field(default=0.5, metadata={"min": 0.01})
    min_distance_pct: float = field(default=0.1, metadata={"min": 0})
    liquidation_buffer_pct: float = field(default=1.0, metadata={"min": 0})
    state_key: str = "quantum:risk:kernel:state"  # the kernel's memory, one field per symbol
    stoploss_pct: float = field(default=0.0, metadata={"min": 0, "max": 99})  # 0: sigma distance
    trailing_stop: bool = True
    trailing_stop_positive: float = field(default=0.0, metadata={"min": 0, "max": 99})
    trailing_stop_positive_offset: float = field(default=0.0, metadata={"min": 0})
    trailing_only_offset_is_reached: bool = False
    tp_policy: str = field(
        default="fixed-at-entry", metadata=_choices("fixed-at-entry", "none", "minimal-roi")
    )
    minimal_roi: tuple[str, ...] = ("0=4", "30=2", "60=1")  # MINUTES=PCT on margin
    max_tp_pct: float = field(default=50.0, metadata={"min": 0.1, "max": 95})
    maintenance_margin_pct: float = field(default=0.5, metadata={"min": 0, "max": 50})
    price_age_from: str = field(default="auto", metadata=_choices("auto", "field", "change"))
    price_max_age_sec: float = field(default=120.0, metadata={"min": 1})
    publisher_units: tuple[str, ...] = (  # units that write the proposal hashes (QT501)
        "quantum-risk-proposal.service",
        "qtctl-risk-kernel.service",
    )


@dataclass(frozen=True)
class BridgeSettings:
    """`qtctl run bridge`: routes `source->destination[|destination...]` (names without prefix)."""

    routes: tuple[str, ...] = ("execution.result->trade.execution.result",)
    start_id: str = field(default="$", metadata=_choices("$", "0"))
    batch_min: int = field(default=64, metadata={"min": 1})
    batch_max: int = field(default=1000, metadata={"min": 1, "max": 20000})
    block_ms: int = field(default=500, metadata={"min": 1, "max": 5000})
    max_entry_bytes: int = field(default=512 * 1024, metadata={"min": 64})
    batch_max_bytes: int = field(default=1024 * 1024, metadata={"min": 1024})
    maxlen: int = field(default=0, metadata={"min": 0})  # destination retention, 0: none
    state_prefix: str = "quantum:qtctl:bridge:"
    dead_letter_suffix: str = ":dead-letter"
    allow_no_readers: tuple[str, ...] = ()  # destinations acknowledged to have no group
    allow_near_miss: tuple[str, ...] = ()  # destinations acknowledged as near-misses
    require_fields: tuple[str, ...] = ()  # entries lacking one go to the dead-letter stream
    per_route: Mapping[str, Mapping[str, Any]] = field(
        default_factory=dict, metadata={"per_route": True}
    )


@dataclass(frozen=True)
class DaemonHealthSettings:
    """Thresholds for what the fleet's daemons publish (QT502-QT504).

    Where they publish it is set once, in the daemon's own section (`rl.stats_key`, ...)."""

    rl_stats_interval_sec: float = field(default=60.0, metadata={"min": 1})
    rl_recent: int = field(default=50, metadata={"min": 5})
    bridge_lag_warn: int = field(default=100, metadata={"min": 1})
    bridge_lag_error: int = field(default=10_000, metadata={"min": 1})
    bridge_age_warn_sec: float = field(default=60.0, metadata={"min": 1})
    bridge_age_error_sec: float = field(default=600.0, metadata={"min": 1})
    trade_scan: int = field(default=1000, metadata={"min": 1, "max": 100_000})


@dataclass(frozen=True)
class CodeSettings:
    """Scanning the fleet's code roots."""

    max_file_mb: float = field(default=50.0, metadata={"min": 0.001})
    max_files: int = field(default=500_000, metadata={"min": 1})
    exclude_dirs: tuple[str, ...] = ()  # folder names the code scan skips too (dot-folders: code)


@dataclass(frozen=True)
class SecretSettings:
    """QT703's judgement of which env-file values are secrets (redaction masks regardless)."""

    allow_names: tuple[str, ...] = ()  # name globs never judged secret (STREAM_KEY)
    not_secret_values: tuple[str, ...] = ()  # value globs never judged secret (quantum:*)


@dataclass(frozen=True)
class ReportSettings:
    """`qtctl report`: where --redis-publish writes, and how long a second run waits."""

    redis_key: str = "quantum:qtctl:health"
    redis_stream: str = "quantum:stream:health"
    lock_wait_sec: float = field(default=30.0, metadata={"min": 0})
    output_mode: str = field(default="0644", metadata={"file_mode": True})
    lock_dir: str = ""  # '': beside a root-only output, else /run/qtctl (root) or the user's
    period_sec: float = field(default=300.0, metadata={"min": 1})  # this host's report timer
    stale_periods: float = field(default=3.0, metadata={"min": 1})  # `qtctl fleet`: host stale
    incident_stream: str = "quantum:stream:qtctl.incidents"  # `doctor --unit --publish`


@dataclass(frozen=True)
class FixSettings:
    """Where fix keeps its journal and backups."""

    state_dir: str = "/var/lib/qtctl"
    convert_source_files: bool = False
    settle_sec: float = field(default=5.0, metadata={"min": 0})  # active past RestartSec= + this
    max_restarts: int = field(default=10, metadata={"min": 0})  # restarts in one fix run
    restart_limit: int = field(default=3, metadata={"min": 1})  # restarts of a unit per window
    restart_window_sec: float = field(default=3600.0, metadata={"min": 1})  # of restart_limit
    redis_unit: str = ""  # the unit that runs the fleet's Redis on this host ('' = not one)


@dataclass(frozen=True)
class LintSettings:
    """`qtctl lint`: where a unit's deploy paths are in the checkout, and the rule docs' URL."""

    path_map: tuple[str, ...] = ()  # DEPLOY=CHECKOUT entries; none: fleet.code_roots -> "."
    docs_url: str = ""  # SARIF helpUri base (`#qt104` appended); '' leaves helpUri out


@dataclass(frozen=True)
class Config:
    """The effective configuration; `sources` says where each key path's value came from."""

    redis: RedisSettings = RedisSettings()
    fleet: FleetSettings = FleetSettings()
    systemd: SystemdSettings = SystemdSettings()
    doctor: DoctorSettings = DoctorSettings()
    host: HostSettings = HostSettings()
    code: CodeSettings = CodeSettings()
    secrets: SecretSettings = SecretSettings()
    streams: StreamSettings = StreamSettings()
    services: ServiceSettings = ServiceSettings()
    risk: RiskSettings = RiskSettings()
    daemons: DaemonHealthSettings = DaemonHealthSettings()
    fix: FixSettings = FixSettings()
    lint: LintSettings = LintSettings()
    report: ReportSettings = ReportSettings()
    bridge: BridgeSettings = BridgeSettings()
    rl: RlSettings = field(default_factory=RlSettings)
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def items(self) -> list[tuple[str, Any, str]]:
        """Every key path with its value and source, secrets masked."""
        rows = []
        for section in _sections():
            for f in dataclasses.fields(_section_type(section)):
                path = f"{section}.{f.name}"
                value = getattr(getattr(self, section), f.name)
                if f.metadata.get("redis_url"):
                    value = mask_url(value)
                rows.append((path, value, self.sources.get(path, "default")))
        return rows


def _sections() -> list[str]:
    return [f.name for f in dataclasses.fields(Config) if f.name != "sources"]


def _section_type(section: str) -> type:
    return typing.get_type_hints(Config)[section]  # type: ignore[no-any-return]


def resolve_config_path(explicit: str | None, env: Mapping[str, str]) -> tuple[Path, bool]:
    """The config file to read and whether the user named it (a named file must exist)."""
    if explicit:
        return Path(explicit), True
    if env.get("QTCTL_CONFIG"):
        return Path(env["QTCTL_CONFIG"]), True
    return DEFAULT_CONFIG_PATH, False


def load_config(
    path: str | None = None,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Build the effective config from defaults, the file, the environment and flags."""
    env = os.environ if env is None else env
    values: dict[str, dict[str, Any]] = {s: {} for s in _sections()}
    sources: dict[str, str] = {}
    file_path, required = resolve_config_path(path, env)
    for key, value in read_file(file_path, required).items():
        _assign(values, sources, key, value, f"file:{file_path}")
    for key, value in _env_values(env).items():
        _assign(values, sources, key, value, f"env:{ENV_PREFIX}{key.replace('.', '__').upper()}")
    for key, value in (flags or {}).items():
        if value is not None:
            _assign(values, sources, key, value, "flag")
    sections = {s: _build_section(s, values[s]) for s in values}
    return Config(**sections, sources=sources)


def _env_values(env: Mapping[str, str]) -> dict[str, str]:
    found = {}
    for name, value in env.items():
        if name.startswith(ENV_PREFIX) and name.count("__") == 2:
            section, key = name[len(ENV_PREFIX) :].lower().split("__")
            found[f"{section}.{key}"] = value
    return found


def _assign(
    values: dict[str, dict[str, Any]], sources: dict[str, str], key: str, value: Any, src: str
) -> None:
    if key in MOVED:
        home, role = MOVED[key]
        raise ConfigError(f"removed (from {src}); set {home} instead, {role}", key=key)
    section, _, name = key.partition(".")
    if section not in values:
        raise ConfigError(f"unknown section (from {src})", key=key)
    known = {f.name for f in dataclasses.fields(_section_type(section))}
    if name not in known:
        raise ConfigError(f"unknown key (from {src}); known: {', '.join(sorted(known))}", key=key)
    values[section][name] = value
    sources[key] = src


def _build_section(section: str, raw: Mapping[str, Any]) -> Any:
    cls = _section_type(section)
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in raw:
            path = f"{section}.{f.name}"
            value = coerce(path, raw[f.name], hints[f.name], f.metadata)
            kwargs[f.name] = validate(path, value, f.metadata)
    return cls(**kwargs)
