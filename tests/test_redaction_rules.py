"""The redaction step and the escaping rule as tables and properties: every secret kind is
masked, configuration stays readable, both are idempotent, and a Markdown code span holds any
text whole."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from qtctl.escaping import md_code, md_text, printable, shown, undecodable
from qtctl.redaction import DEFAULT, Redactor, mask_url, validate_redis_url


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("DB_PASSWORD=hunter2hunter2 and more", "DB_PASSWORD=**** and more"),
        ("export REDIS_PASS='a b c'", "export REDIS_PASS='****'"),
        ('{"passphrase": "correct horse battery"}', '{"passphrase": "****"}'),
        ('Environment="API_TOKEN=abc def" "X=1"', 'Environment="API_TOKEN=****" "X=1"'),
        (
            "PRIVATE_KEY=x1 AWS_CREDENTIALS=x2 AUTH_COOKIE=x3",
            "PRIVATE_KEY=**** AWS_CREDENTIALS=**** AUTH_COOKIE=****",
        ),
        ("--api-secret=s3cr3t", "--api-secret=****"),
        ("password: hunter2", "password: ****"),
        ("to redis://u:p/a@s:s@h:6379/0 now", "to redis://u:****@h:6379/0 now"),
        ("https://ghp_tok@github.com/x", "https://****@github.com/x"),
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer ****"),
        ('{"Authorization": "Basic dXNlcjpwYXNz"}', '{"Authorization": "Basic ****"}'),
        ("sent Bearer 1234567890abcdef", "sent Bearer ****"),
        ("sk-live-123456 sk_live_ABCDEFGH12 AKIAEXAMPLEKEY123456", "**** **** ****"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_-x", "jwt ****"),
    ],
)
def test_every_secret_kind_is_masked(text: str, masked: str) -> None:
    assert DEFAULT.text(text) == masked
    assert DEFAULT.text(masked) == masked  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "STREAM_KEY=quantum:stream:trade.intent",
        "MODEL_KEY=/etc/quantum/model.pt KEY_COUNT=12 CACHE_KEY=trade.intent",
        "BYPASS_CACHE=true TOKEN_REFRESH=off",
        "KeyError: 'model_path'",
        "rl.stats_key: expected a string, got 5",
        "Basic authentication failed",
        "line 3 (BINANCE_API_SECRET): BINANCE_API_SECRET includes the comment '# rotated'",
        "mode 0644: any user can read BINANCE_API_KEY, BINANCE_API_SECRET",
        "Environment='X=1 # old token': systemd has no inline comments",
        "redis://127.0.0.1:6379/0",
    ],
)
def test_configuration_and_prose_stay_readable(text: str) -> None:
    assert DEFAULT.text(text) == text


def test_configured_patterns_decide_the_names() -> None:
    mine = Redactor.of(("*SESSION*",))
    assert mine.text("SESSION_ID=abc123 DB_PASSWORD=x") == "SESSION_ID=**** DB_PASSWORD=x"
    assert mine.text("token sk-live-123456") == "token ****"  # shapes always apply


@given(st.text(alphabet="abcXYZ019/@:._-%", min_size=4))
def test_a_url_password_never_survives(password: str) -> None:
    for template in ("redis://u:{p}@h:1/0", "postgres://app:{p}@db.internal:5432/x"):
        assert password not in DEFAULT.text(f"dsn {template.format(p=password)} failed")
        assert password not in mask_url(template.format(p=password))


def test_a_raw_password_is_refused_without_being_quoted() -> None:
    reason = validate_redis_url("redis://default:RawSeg1/RawSeg2@h:6379/0")
    assert reason and "RawSeg" not in reason
    assert mask_url("redis://default:RawSeg1/RawSeg2@h:6379/0") == "redis://default:****@h:6379/0"


@pytest.mark.parametrize(
    ("name", "escaped"),
    [
        (b"bad\xff\xfe", "bad\\xff\\xfe"),
        (b"\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        (b"two\nlines\r", "two\\x0alines\\x0d"),
        ("bidi\u202eevil".encode(), "bidi\\u202eevil"),
        (b"quantum:heartbeat:x", "quantum:heartbeat:x"),
        (b"quantum-worker@btc\\x2dusdt.service", "quantum-worker@btc\\x2dusdt.service"),
    ],
)
def test_names_are_shown_escaped(name: bytes, escaped: str) -> None:
    assert shown(name) == escaped
    assert printable(escaped) == escaped
    assert undecodable(name.decode("utf-8", "surrogateescape")) == (b"\xff" in name)


@given(st.text())
@example("a`b``c")
@example("`")
@example("\x1b[31m|x|")
def test_a_code_span_holds_any_text_whole(text: str) -> None:
    tokens = MarkdownIt("commonmark").parseInline(md_code(text))[0].children or []
    assert [(t.type, t.content) for t in tokens] == [("code_inline", printable(text))] or (
        printable(text).strip(" ") == "" and len(tokens) == 1  # CommonMark strips lone spaces
    )


@given(st.text())
@example("    indented")
@example("1. a list")
@example("[x](http://evil.example/) <b>&amp; :heart:")
def test_escaped_markdown_text_is_only_text(text: str) -> None:
    tokens = MarkdownIt("commonmark").parse(md_text(text))
    kinds = {t.type for t in tokens} | {c.type for t in tokens for c in t.children or ()}
    assert kinds <= {"paragraph_open", "paragraph_close", "inline", "text", "softbreak"}
