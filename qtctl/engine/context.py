"""What a check may touch: config, clock and lazily-connected adapters."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qtctl.config import Config
from qtctl.errors import AdapterUnavailable

if TYPE_CHECKING:
    from qtctl.adapters.redis_client import RedisAdapter
    from qtctl.adapters.systemd import SystemdAdapter


@dataclass
class CheckContext:
    """Shared by every check of one run; adapters connect on first use, once."""

    config: Config
    clock: Callable[[], float] = time.time
    _cache: dict[str, Any] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def systemd(self) -> SystemdAdapter:
        """The systemd adapter, or AdapterUnavailable."""
        from qtctl.adapters.systemd import SystemdAdapter

        adapter: SystemdAdapter = self._adapter(
            "systemd", lambda: SystemdAdapter.connect(self.config.systemd)
        )
        return adapter

    def redis(self) -> RedisAdapter:
        """The Redis adapter, or AdapterUnavailable."""
        from qtctl.adapters.redis_client import RedisAdapter

        adapter: RedisAdapter = self._adapter(
            "redis", lambda: RedisAdapter.connect(self.config.redis)
        )
        return adapter

    def memo(self, key: str, factory: Callable[[], Any]) -> Any:
        """Compute a value once per run and share it between checks (the fleet snapshot)."""
        slot = f"memo:{key}"
        with self._lock:
            if slot not in self._cache:
                self._cache[slot] = factory()
            return self._cache[slot]

    def _adapter(self, name: str, factory: Callable[[], Any]) -> Any:
        if name not in self._cache:
            try:
                self._cache[name] = factory()
            except AdapterUnavailable as exc:
                self._cache[name] = exc
        value = self._cache[name]
        if isinstance(value, AdapterUnavailable):
            raise value
        return value

    def close(self) -> None:
        """Release every connected adapter."""
        for key, value in self._cache.items():
            if not key.startswith("memo:") and hasattr(value, "close"):
                value.close()
        self._cache.clear()
