"""Never print a secret: mask passwords in URLs and validate Redis URLs without importing redis."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

REDIS_SCHEMES = ("redis", "rediss", "unix")
MASK = "****"


def mask_url(url: str) -> str:
    """The URL with its password (or a lone credential) and any password= parameter masked."""
    scheme, sep, rest = url.partition("://")
    if sep:
        cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
        netloc, tail = rest[:cut], rest[cut:]
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            user, colon, _ = userinfo.partition(":")
            netloc = f"{user}:{MASK}@{host}" if colon else f"{MASK}@{host}"
        url = f"{scheme}://{netloc}{tail}"
    return re.sub(r"([?&]password=)[^&#]*", rf"\g<1>{MASK}", url)


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


SECRET_ASSIGNMENT = re.compile(
    r"""(?ix)
    (["']?[\w.-]*(?:password|passwd|secret|token|api[_-]?key|private[_-]?key)[\w.-]*["']?
     \s*[:=]\s*["']?)
    ([^"'\s,;&}]+)
    """
)
URL_CREDENTIALS = re.compile(r"(\w+://[^/\s:@]*:)[^@\s/]+@")


def redact_text(text: str) -> str:
    """Free text (a response body, a log line) with secret-looking values and URL passwords
    masked."""
    text = URL_CREDENTIALS.sub(rf"\g<1>{MASK}@", text)
    return SECRET_ASSIGNMENT.sub(rf"\g<1>{MASK}", text)
