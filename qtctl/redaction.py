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
import functools
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
    "*AUTH",  # REDIS_AUTH, REDISCLI_AUTH, X-AUTH (AUTHOR and AUTHORITY stay out)
    "*_AUTH_*",
    "*_PWD*",  # MYSQL_PWD (PWD and OLDPWD, the working folders, stay out)
    "*COOKIE*",
)
# Every pattern below is anchored where a run of its characters starts (a look-behind), so the
# regex engine never restarts inside a run: redaction stays linear in the text's length.
TOKEN_SHAPES = re.compile(
    r"""(?x)
    \b(?:[sr]k[-_](?:live|test)[-_][A-Za-z0-9]{4,}      # Stripe-style sk-live-... / sk_live_...
     | (?:AKIA|ASIA)[0-9A-Z]{16}                         # AWS access key ids
     | gh[pousr]_[A-Za-z0-9]{30,}                        # GitHub tokens
     | xox[abposr]-[A-Za-z0-9-]{10,}                     # Slack tokens
    )
    | (?<![A-Za-z0-9_-])(?:sk-(?:proj-)?[A-Za-z0-9_-]{20,}     # sk-... API keys
     | eyJ[A-Za-z0-9_-]{4,}+\.eyJ[A-Za-z0-9_-]{4,}+\.[A-Za-z0-9_-]*+)   # JWTs
    """
)
PEM_BLOCK = re.compile(
    r"(-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY[A-Z0-9 ]{0,20}-----)(.*?)"
    r"(-----END [A-Z0-9 ]{1,80}-----|\Z)",
    re.S,
)
# one line of a PEM (or any long base64) body quoted alone: mixed case and a digit, 40+ chars
BASE64_LINE = re.compile(
    r"(?<![A-Za-z0-9+/=._:-])(?=[A-Za-z0-9+/]*+=*+(?![A-Za-z0-9+/=._:-]))"
    r"(?=[A-Za-z0-9+/]*?[A-Z])(?=[A-Za-z0-9+/]*?[a-z])(?=[A-Za-z0-9+/]*?[0-9])"
    r"[A-Za-z0-9+/]{40,}+=*+"
)
URL_SCHEME = re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*+://")
USER_END = re.compile(r"[\s/?#@:]")
WHITESPACE = re.compile(r"\s")
DIGITS = re.compile(r"\d*+")
LINE_END, AT, SCHEME_MARK = re.compile(r"[\r\n]"), re.compile("@"), re.compile("://")
USERINFO = re.compile(r"(?P<user>[^:/?#@]*)(?P<password>:.*)?@(?=[^@/?#]*(?:[/?#]|$))", re.S)
QUERY_PARAMETER = re.compile(r"([?&][^=&#]*=)([^&#]*)")
AUTH_HEADER = re.compile(
    r"(?i)(\b(?:proxy-)?authorization\b[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token|digest|"
    r"negotiate)\s+)?)([^\s\"',;]+)"
)
BARE_SCHEME = re.compile(r"(\b(?:Bearer|Basic)\s+)([A-Za-z0-9._~+/=-]{8,})")
SCHEMES = frozenset(("bearer", "basic", "token", "digest", "negotiate"))
# a whole run of name characters, then `:` or `=`: tried once per run, never inside one
ASSIGNMENT = re.compile(
    r"(?P<open>[\"']?)(?<![A-Za-z0-9_.-])(?P<run>[A-Za-z0-9_.-]++)"
    r"(?P<close>[\"']?)(?P<op>[ \t]*+[:=][ \t]*+)"
)
NAME_START = re.compile(r"[0-9.-]*+")
VALUE_END = re.compile(r"[\s\"',;&}]")
# where an unquoted `NAME=value` ends, as a shell or systemd reads it: the end of the line, or
# the next `NAME=` after a blank, `;` or `&` (`A=1 B=2`, `?a=1&b=2`)
NEXT_ASSIGNMENT = re.compile(
    r"(?<![ \t;&])[ \t;&]++-{0,2}[\"']?[A-Za-z_][A-Za-z0-9_.-]*+[\"']?[ \t]*+=|[\r\n]"
)
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
LONGEST_PLAIN = 512  # a longer value is not configuration anyone reads: it is masked
# `*_KEY` names that hold a credential unless the value is a Redis key or a path; the names of
# configuration (`STREAM_KEY`, `CACHE_KEY`) are judged by every plain shape
CREDENTIAL_KEY = re.compile(r"(?i)api[-_.]?key|(?:^|[-_.])key$|[a-z]key$")
CONFIG_KEY = re.compile(
    r"(?i)(?:^|[-_.])(?:stream|cache|model|stats|redis|queue|lock|group|seen|channel|topic|prefix|"
    r"index|sort|partition|routing|hash|lookup|primary|foreign|state|cursor|shard|dedup|public|"
    r"idempotency|result|config|field|metric|counter|hot|sort)[-_.]?key$"
)
SHOWN_LIMIT = 4096  # characters of one quoted text: a 200,000-character key name is cut
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
        """`text` with every secret it quotes masked (idempotent; linear in its length)."""
        if not text:
            return text
        text = PEM_BLOCK.sub(_mask_pem, text)
        text = TOKEN_SHAPES.sub(MASK, text)
        text = BASE64_LINE.sub(MASK, text)
        text = _url_credentials(text)
        text = AUTH_HEADER.sub(rf"\g<1>{MASK}", text)
        text = BARE_SCHEME.sub(_mask_bare, text)
        return self._assignments(text)

    def shown(self, text: str, keep: str = "", limit: int | None = None) -> str:
        """Quoted text as it may be shown anywhere: secrets masked, non-printables escaped
        (but those in `keep`, such as the newlines of a multi-line action), and cut after
        `limit` characters (one-line text: SHOWN_LIMIT unless told; 0: never)."""
        limit = (0 if keep else SHOWN_LIMIT) if limit is None else limit
        return printable(cut(self.text(text), limit), keep)

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
        if not all(_key_only(p) for p in matching):
            return True
        if len(value) > LONGEST_PLAIN:
            return True
        if CREDENTIAL_KEY.search(name) and not CONFIG_KEY.search(name):
            return not (PLAIN_VALUE.fullmatch(value) and re.search(r"[:/]", value))
        return not PLAIN_VALUE.fullmatch(value)

    def _matching(self, name: str) -> tuple[str, ...]:
        upper = name.upper()
        if not _any_pattern(self.patterns).match(upper):
            return ()  # the common case: one regex step for all the patterns
        return (
            _matching(self.patterns, upper) if len(upper) <= 128 else _match(self.patterns, upper)
        )

    def _assignments(self, text: str) -> str:
        out: list[str] = []
        done = 0
        finders = _Finders(text)
        for match in ASSIGNMENT.finditer(text):
            if match.start() < done:
                continue  # inside a value already masked
            run = match.group("run")
            name = run[NAME_START.match(run).end() :]  # type: ignore[union-attr]
            if not name or not self._matching(name):
                continue
            start, end = _value_span(text, match, name != run, finders)
            value = text[start:end]
            if self.is_secret(name, value) and (
                _assigned(match, text, name) or _credential_like(value)
            ):
                out += [text[done:start], MASK]
                done = end
        return "".join(out) + text[done:]


class _Finders:
    """`pattern.search` from growing offsets, answered once per stretch of text: a search from
    inside the stretch that ended at a match ends there too."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.last: dict[re.Pattern[str], tuple[int, int]] = {}

    def next(self, pattern: re.Pattern[str], start: int) -> int:
        """Where the first match of `pattern` at or after `start` begins (len(text): none)."""
        since, at = self.last.get(pattern, (-1, -1))
        if since <= start <= at:
            return at
        found = pattern.search(self.text, start)
        at = found.start() if found else len(self.text)
        self.last[pattern] = (start, at)
        return at


QUOTE_FINDERS = {q: re.compile(re.escape(q)) for q in "\"'"}


@functools.lru_cache(maxsize=16)
def _any_pattern(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(fnmatch.translate(p.upper()) for p in patterns) or "(?!)")


def _match(patterns: tuple[str, ...], upper: str) -> tuple[str, ...]:
    return tuple(p for p in patterns if fnmatch.fnmatchcase(upper, p.upper()))


_matching = functools.lru_cache(maxsize=4096)(_match)


def cut(text: str, limit: int) -> str:
    """`text` cut after `limit` characters (0: never), saying how much was left out."""
    if limit <= 0 or len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def _key_only(pattern: str) -> bool:
    return pattern.upper().strip("*?_-.") == "KEY"


def _value_span(text: str, match: re.Match[str], bare: bool, finders: _Finders) -> tuple[int, int]:
    """Where the assigned value lies: up to its closing quote when quoted (also when the quote
    opened before the name, as systemd's `Environment="NAME=a b"`); unquoted after `=`, up to
    the end of the line or the next `NAME=`; after `:`, one word. A `Bearer`-style scheme word
    stays and the credential after it is the value."""
    start = match.end()
    quote = text[start] if start < len(text) and text[start] in "\"'" else ""
    if quote:
        start += 1
    elif match.group("open") and not match.group("close") and not bare:
        quote = match.group("open")
    if quote:
        end = finders.next(QUOTE_FINDERS[quote], start)
    elif "=" in match.group("op"):
        end = finders.next(NEXT_ASSIGNMENT, start)
        while end > start and text[end - 1] in " \t\r":
            end -= 1
    else:
        end = finders.next(VALUE_END, start)
    head = text[start : min(end, start + 12)]
    scheme = head.split(" ", 1)[0]
    if scheme.lower() in SCHEMES and text[start + len(scheme) : start + len(scheme) + 1] == " ":
        start += len(scheme) + 1
        end = end if quote or "=" in match.group("op") else finders.next(VALUE_END, start)
    return start, max(start, end)


def _assigned(match: re.Match[str], text: str, name: str) -> bool:
    """`NAME=x`, `"name": x` or `name: "x"`; a bare `name: word` is more often prose (`rl.stats_key:
    expected a string`), so there only a value that looks like a credential counts, or any
    value of an API key header (`x-api-key: abc`)."""
    quoted_name = bool(match.group("close")) and match.group("open") == match.group("close")
    after = text[match.end() : match.end() + 1]
    return (
        "=" in match.group("op")
        or quoted_name
        or after in ("'", '"')
        or bool(re.search(r"(?i)api[-_.]?key$|cookie$|auth$", name))
    )


def _credential_like(value: str) -> bool:
    mixed = value.lower() != value and value.upper() != value
    return len(value) >= 6 and (mixed or not value.isalpha())


def _mask_pem(match: re.Match[str]) -> str:
    sep = "\n" if "\n" in match.group(2) else " "
    return f"{match.group(1)}{sep}{MASK}{sep if match.group(3) else ''}{match.group(3)}"


def _url_credentials(text: str) -> str:
    """Every URL's password (or lone credential) masked: the userinfo runs to the URL word's
    last `@` (a raw password may hold `/`, `@`, `:`, quotes and `<>`), or, where a password
    holds a blank, to the next `@` on its line."""
    out: list[str] = []
    done = 0
    find = _Finders(text)
    last_at = (-1, -1, -1)  # (word end, searched from, the word's last `@` or -1)
    for match in URL_SCHEME.finditer(text):
        start = match.end()
        stop = find.next(USER_END, start)
        if match.start() < done or stop >= len(text) or text[stop] not in "@:":
            continue
        if text[stop] == "@":
            out += [text[done:start], MASK]
            done = stop
            continue
        word_end = find.next(WHITESPACE, stop)
        if last_at[0] != word_end or stop < last_at[1]:
            last_at = (word_end, stop, text.rfind("@", stop, word_end))
        at = last_at[2] if last_at[2] > stop else -1
        port = DIGITS.match(text, stop + 1).end()  # type: ignore[union-attr]
        if at < 0 and port < word_end and text[port] not in "/?#":  # not host:port: a blank
            line_end = find.next(LINE_END, word_end)
            at = find.next(AT, word_end)
            at = at if at < min(line_end, find.next(SCHEME_MARK, word_end)) else -1
        if at > stop:
            out += [text[done : stop + 1], MASK]
            done = at
    return "".join(out) + text[done:]


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
