"""Never print a secret: the one redaction step every quoted text goes through, URL masking, and
Redis URL validation without importing redis.

`Redactor.text` masks, in this order: well-known token shapes (`sk-live-...`, `sk_live_...`,
AWS `AKIA...`, JWTs, GitHub and Slack tokens), credentials inside any URL (the password may hold
`/`, `@` and `:`), `Authorization:` / `Bearer` / `Basic` credentials, and `NAME=value` or
`"name": "value"` where NAME matches a secret pattern (`services.secret_patterns`, case-blind
globs). A name matched only by a `*KEY*`-style pattern is judged by its value as well: a Redis
key or stream name, a path, a number or a boolean is configuration, not a secret.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from qtctl.escaping import printable

REDIS_SCHEMES = ("redis", "rediss", "unix")
MASK = "****"
DEFAULT_PATTERNS = (
    "*PASS*",
    "*PASSPHRASE*",
    "*SECRET*",
    "*TOKEN*",
    "*KEY*",
    "*PRIVATE*",
    "*CREDENTIAL*",
    "AUTH*",
)
TOKEN_SHAPES = re.compile(
    r"""(?x)
    \b(?:[sr]k[-_](?:live|test)[-_][A-Za-z0-9]{4,}      # Stripe-style sk-live-... / sk_live_...
     | sk-(?:proj-)?[A-Za-z0-9_-]{20,}                   # sk-... API keys
     | (?:AKIA|ASIA)[0-9A-Z]{16}                         # AWS access key ids
     | eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*   # JWTs
     | gh[pousr]_[A-Za-z0-9]{30,}                        # GitHub tokens
     | xox[abposr]-[A-Za-z0-9-]{10,}                     # Slack tokens
    )"""
)
# userinfo up to the last `@` of the URL's word: a raw password may hold `/`, `@` and `:`
URL_CREDENTIALS = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^\s/?#@:'\"<>]*)"
    r"(?P<password>:[^\s'\"<>]*)?@"
)
USERINFO = re.compile(r"(?P<user>[^:/?#@]*)(?P<password>:.*)?@(?=[^@/?#]*(?:[/?#]|$))", re.S)
QUERY_PARAMETER = re.compile(r"([?&][^=&#]*=)([^&#]*)")
AUTH_HEADER = re.compile(
    r"(?i)(\b(?:proxy-)?authorization\b[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token|digest|"
    r"negotiate)\s+)?)([^\s\"',;]+)"
)
BARE_SCHEME = re.compile(r"(\b(?:Bearer|Basic)\s+)([A-Za-z0-9._~+/=-]{8,})")
SCHEMES = frozenset(("bearer", "basic", "token", "digest", "negotiate"))
ASSIGNMENT = re.compile(
    r"(?P<open>[\"']?)(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)(?P<close>[\"']?)"
    r"(?P<op>[ \t]*[:=][ \t]*)"
)
VALUE_END = re.compile(r"[\s\"',;&}]")
BOOLEAN = re.compile(r"(?i)true|false|yes|no|on|off|none|null")
PLAIN_VALUE = re.compile(
    r"""(?x)
    [-+]?\d+(?:\.\d+)?                               # numbers
    | (?:~|\.{1,2})?/[\w.@%+-]+(?:/[\w.@%+-]*)*        # paths
    | [A-Za-z][\w.-]*(?::[\w.*{}-]+)+                  # Redis keys: quantum:stream:trade.intent
    | [a-z][a-z0-9_-]*(?:\.[a-z0-9_-]+)+               # dotted names: trade.intent
    | [a-z]+(?:_[a-z0-9]+)+                           # snake_case names: model_path
    """
)
NOT_A_NAME = ("ERROR", "EXCEPTION", "WARNING")  # `KeyError: 'x'` is a traceback, not a key


@dataclass(frozen=True)
class Redactor:
    """The redaction step, for one set of secret-name patterns."""

    patterns: tuple[str, ...] = DEFAULT_PATTERNS

    @classmethod
    def of(cls, patterns: Sequence[str]) -> Redactor:
        """The redactor for `services.secret_patterns`."""
        return cls(tuple(patterns))

    def text(self, text: str) -> str:
        """`text` with every secret it quotes masked (idempotent)."""
        if not text:
            return text
        text = TOKEN_SHAPES.sub(MASK, text)
        text = URL_CREDENTIALS.sub(_mask_credentials, text)
        text = AUTH_HEADER.sub(rf"\g<1>{MASK}", text)
        text = BARE_SCHEME.sub(_mask_bare, text)
        return self._assignments(text)

    def shown(self, text: str, keep: str = "") -> str:
        """Quoted text as it may be shown anywhere: secrets masked, non-printables escaped
        (but those in `keep`, such as the newlines of a multi-line action)."""
        return printable(self.text(text), keep)

    def is_secret_name(self, name: str) -> bool:
        """Whether the name matches a secret pattern (by name alone)."""
        return bool(self._matching(name))

    def is_secret(self, name: str, value: str) -> bool:
        """Whether `name=value` holds a secret: judged by the name, and by the value where only
        a `*KEY*`-style pattern names it (STREAM_KEY=quantum:stream:x is configuration)."""
        if not value or value == MASK or BOOLEAN.fullmatch(value):
            return False
        matching = self._matching(name)
        if not matching or name.upper().endswith(NOT_A_NAME):
            return False
        if all(_key_only(p) for p in matching):
            return not PLAIN_VALUE.fullmatch(value)
        return True

    def _matching(self, name: str) -> list[str]:
        upper = name.upper()
        return [p for p in self.patterns if fnmatch.fnmatchcase(upper, p.upper())]

    def _assignments(self, text: str) -> str:
        out: list[str] = []
        done = 0
        for match in ASSIGNMENT.finditer(text):
            if match.start() < done:
                continue  # inside a value already masked
            start, end = _value_span(text, match)
            value = text[start:end]
            if self.is_secret(match.group("name"), value) and (
                _assigned(match, text) or _credential_like(value)
            ):
                out += [text[done:start], MASK]
                done = end
        return "".join(out) + text[done:]


def _key_only(pattern: str) -> bool:
    return pattern.upper().strip("*?_-.") == "KEY"


def _value_span(text: str, match: re.Match[str]) -> tuple[int, int]:
    """Where the assigned value lies: up to its closing quote when quoted (also when the quote
    opened before the name, as systemd's `Environment="NAME=a b"`), else up to a separator; a
    `Bearer`-style scheme word stays and the credential after it is the value."""
    start = match.end()
    quote = text[start] if start < len(text) and text[start] in "\"'" else ""
    if quote:
        start += 1
    elif match.group("open") and not match.group("close"):
        quote = match.group("open")
    end = text.find(quote, start) if quote else _end_of_word(text, start)
    end = len(text) if end < 0 else end
    scheme = text[start:end].split(" ", 1)[0]
    if scheme.lower() in SCHEMES and text[start + len(scheme) : start + len(scheme) + 1] == " ":
        start += len(scheme) + 1
        end = end if quote else _end_of_word(text, start)
    return start, end


def _assigned(match: re.Match[str], text: str) -> bool:
    """`NAME=x`, `"name": x` or `name: "x"`; a bare `name: word` is more often prose (`rl.stats_key:
    expected a string`), so there only a value that looks like a credential counts."""
    quoted_name = bool(match.group("close")) and match.group("open") == match.group("close")
    after = text[match.end() : match.end() + 1]
    return "=" in match.group("op") or quoted_name or after in ("'", '"')


def _credential_like(value: str) -> bool:
    mixed = value.lower() != value and value.upper() != value
    return len(value) >= 6 and (mixed or not value.isalpha())


def _end_of_word(text: str, start: int) -> int:
    found = VALUE_END.search(text, start)
    return found.start() if found else len(text)


def _mask_credentials(match: re.Match[str]) -> str:
    if match.group("password"):
        return f"{match.group('scheme')}{match.group('user')}:{MASK}@"
    return f"{match.group('scheme')}{MASK}@"


def _mask_bare(match: re.Match[str]) -> str:
    """`Bearer X` / `Basic X` outside a header: X when it looks like a credential (a digit or a
    symbol, or mixed case), never a word of prose such as `Basic authentication`."""
    word = match.group(2)
    mixed = word.lower() != word and word.upper() != word
    if mixed or re.search(r"[0-9._~+/=-]", word):
        return f"{match.group(1)}{MASK}"
    return match.group(0)


DEFAULT = Redactor()


class LogRedaction(logging.Filter):
    """A logging filter that masks secrets in every record's message (default patterns)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message by its redacted text; never drops a record."""
        message = record.getMessage()
        redacted = DEFAULT.text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def mask_url(url: str) -> str:
    """The URL with its password (or a lone credential) and any secret query parameter
    masked; a raw password holding `/`, `@` or `:` is masked whole."""
    scheme, sep, rest = url.partition("://")
    if sep:
        found = USERINFO.match(rest)
        if found:
            userinfo = f"{found.group('user')}:{MASK}" if found.group("password") else MASK
            rest = f"{userinfo}@{rest[found.end() :]}"
        url = f"{scheme}://{rest}"
    return QUERY_PARAMETER.sub(_mask_parameter, url)


def _mask_parameter(match: re.Match[str]) -> str:
    name = match.group(1)[1:-1]
    return f"{match.group(1)}{MASK}" if DEFAULT.is_secret(name, match.group(2)) else match.group(0)


def _raw_password(url: str) -> bool:
    """Whether the URL's password holds `/`, `?` or `#` unencoded (URL parsers cut it there)."""
    _, sep, rest = url.partition("://")
    found = USERINFO.match(rest) if sep else None
    return bool(found and re.search(r"[/?#]", found.group("password") or ""))


def validate_redis_url(url: str) -> str | None:
    """A one-line reason why `url` is not a usable Redis URL, or None when it is (never quoting
    a part of it that could be a password)."""
    if _raw_password(url):
        return "the password in the Redis URL must be percent-encoded ('/' as %2F, '?' as %3F)"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "invalid Redis URL (the port is not a number, or the host is malformed)"
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
