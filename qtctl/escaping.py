"""Names and text from the fleet, as they may be shown: escaped, never interpreted.

Redis keys, stream, group, consumer and field names, unit names and journal lines may hold any
bytes. The one rule for every format: a character that is not printable is shown as `\\xNN`
(`\\uNNNN` above U+00FF), a byte that was not UTF-8 (read with `surrogateescape`) as the byte it
was; Markdown gets names as code spans nothing can break out of and other text with its
punctuation escaped. Backslashes stay as they are: systemd's own escapes (`\\x2d`) read right.
"""

from __future__ import annotations

import re

SURROGATES = range(0xDC80, 0xDD00)  # how surrogateescape carries a byte that was not UTF-8
MD_PUNCTUATION = re.compile(r"([\\`*_\[\]<>|~&#!])")
MD_BLOCK_START = re.compile(r"^([-+=>]|\d+[.)])")
MD_PLAIN_NAME = re.compile(r"[A-Za-z0-9./ -]*")
# what chat and GitHub renderers act on in plain text: @mentions (`@channel`), bare autolinks
# (`https://…`, `www.`) and emoji shortcodes (`:heart:`); a zero-width space breaks each one
MD_TRIGGER = re.compile(r"(?<!\w)(@)(?=\w)|(?<=\w)(:)(?=//)|\b(www)(\.)|(?<!\w)(:)(?=[\w\\+-]+:)")
ZWSP = "\u200b"


def printable(text: str, keep: str = "") -> str:
    """`text` with every non-printable character (and every byte that was not UTF-8) escaped;
    characters in `keep` (such as a newline between lines) stay."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch in keep else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    if code in SURROGATES:
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def shown(name: str | bytes) -> str:
    """A name as it is shown anywhere: bytes decoded as UTF-8 where they are, escaped where not."""
    if isinstance(name, bytes):
        name = name.decode("utf-8", "surrogateescape")
    return printable(name)


def undecodable(name: str) -> bool:
    """Whether a name read with `surrogateescape` held bytes that are not UTF-8 (it cannot be
    sent back to Redis as text, nor shown as it is)."""
    return any(ord(ch) in SURROGATES for ch in name)


def md_code(text: str) -> str:
    """A Markdown code span of `text` (escaped first) that no backtick inside can close."""
    body = printable(text)
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if body.startswith(("`", " ")) or body.endswith(("`", " ")) else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def md_name(text: str) -> str:
    """A name in Markdown: as it is when nothing in it can be read as Markdown, else a code
    span (`_`, `@`, `:`, `#` and the like: emphasis, mentions, emoji shortcodes, links)."""
    return text if MD_PLAIN_NAME.fullmatch(text) else md_code(text)


def md_text(text: str) -> str:
    """Free text in Markdown: escaped, its punctuation taken literally (no emphasis, links,
    HTML, entities or table cells), one line, never the start of a list or heading, and no
    mention, autolink or emoji shortcode a chat or GitHub renderer would act on."""
    body = MD_PUNCTUATION.sub(r"\\\1", printable(text)).lstrip(" ")  # 4 spaces: a code block
    return MD_TRIGGER.sub(_break_trigger, MD_BLOCK_START.sub(_quote_marker, body))


def _break_trigger(match: re.Match[str]) -> str:
    if match.group(3):  # `www.`
        return f"www{ZWSP}."
    return f"{ZWSP}:" if match.group(2) else f"{match.group(0)}{ZWSP}"  # `@`, `:` of `:x:`


def _quote_marker(match: re.Match[str]) -> str:
    marker = match.group(1)
    return f"{marker[:-1]}\\{marker[-1]}"
