"""The only module that imports redis: connect, classify connection failures, mask the URL."""

from __future__ import annotations

from typing import Any

from qtctl.config import RedisSettings
from qtctl.errors import AdapterUnavailable
from qtctl.redaction import mask_url


class RedisAdapter:
    """A connected Redis client for checks; connection failures become AdapterUnavailable."""

    def __init__(self, client: Any, url: str) -> None:
        self.client = client
        self.url = url

    @classmethod
    def connect(cls, settings: RedisSettings) -> RedisAdapter:
        """Connect and PING, or raise AdapterUnavailable with a one-line, masked reason."""
        import redis

        masked = mask_url(settings.url)
        try:
            client = redis.Redis.from_url(
                settings.url,
                socket_timeout=settings.socket_timeout,
                socket_connect_timeout=settings.socket_timeout,
                decode_responses=False,
            )
            client.ping()
        except redis.AuthenticationError as exc:
            raise AdapterUnavailable("redis", f"authentication failed at {masked}: {exc}") from None
        except redis.TimeoutError:
            raise AdapterUnavailable(
                "redis", f"timed out after {settings.socket_timeout:g} s connecting to {masked}"
            ) from None
        except redis.ConnectionError as exc:
            raise AdapterUnavailable("redis", f"cannot connect to {masked}: {_why(exc)}") from None
        except (redis.RedisError, ValueError) as exc:
            raise AdapterUnavailable("redis", f"{masked}: {exc}") from None
        return cls(client, masked)

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()


def _why(exc: Exception) -> str:
    text = str(exc)
    if "SSL" in text or "ssl" in text or "wrong version number" in text:
        return f"TLS handshake failed ({text}); check rediss:// versus redis://"
    return text
