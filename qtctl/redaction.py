"""Never print a secret: mask passwords in URLs and validate Redis URLs without importing redis."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

REDIS_SCHEMES = ("redis", "rediss", "unix")
MASK = "****"


def mask_url(url: str) -> str:
    """The URL with its password (and a lone username used as password) replaced by ****."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.password is None and not (parts.username and "@" in parts.netloc):
        return _mask_query_password(url)
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    cred = f"{user}:{MASK}" if parts.password is not None else MASK
    return _mask_query_password(urlunsplit(parts._replace(netloc=f"{cred}@{host}")))


def _mask_query_password(url: str) -> str:
    parts = urlsplit(url)
    if "password=" not in parts.query:
        return url
    query = "&".join(
        f"password={MASK}" if q.startswith("password=") else q for q in parts.query.split("&")
    )
    return urlunsplit(parts._replace(query=query))


def validate_redis_url(url: str) -> str | None:
    """A one-line reason why `url` is not a usable Redis URL, or None when it is."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"invalid Redis URL ({exc})"
    if parts.scheme not in REDIS_SCHEMES:
        return f"Redis URL scheme must be one of {', '.join(REDIS_SCHEMES)}://"
    if parts.scheme == "unix":
        return None if parts.path else "unix:// Redis URL needs a socket path"
    if not parts.hostname:
        return "Redis URL needs a host"
    if port is not None and not 0 < port < 65536:
        return "Redis URL port out of range"
    db = parts.path.lstrip("/")
    if db and not db.isdigit():
        return f"Redis URL database must be a number, got {db!r}"
    return None
