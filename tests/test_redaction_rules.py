"""The redaction step and the escaping rule as tables and properties: every secret kind is
masked, configuration stays readable, both are idempotent, and a Markdown code span holds any
text whole."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from qtctl.diagnosis.env_file import masked
from qtctl.escaping import md_code, md_text, printable, shown, undecodable
from qtctl.redaction import DEFAULT, MASK, SHOWN_LIMIT, Redactor, mask_url, validate_redis_url


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # systemd (an env file, Environment=) reads the whole line as the value: no tail stays
        ("DB_PASSWORD=hunter2hunter2 and more", "DB_PASSWORD=****"),
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


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("DB_PASSWORD=pre,COMMATAIL2", "COMMATAIL2"),
        ("TOKEN=a b SPACETAIL6", "SPACETAIL6"),
        ("DB_PASSWORD=a;b&c}d'e\"SEMITAIL7", "SEMITAIL7"),
        ("redis://user:pa'ss\"WORD3@host:6379/0", "WORD3"),
        ("redis://user:pa<ss>ANGLE4@host", "ANGLE4"),
        ("redis://user:pa ss BLANK5@host/0", "BLANK5"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nPEMBODY1x\n"
            "-----END RSA PRIVATE KEY-----",
            "PEMBODY1x",
        ),
        ("-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXk PEMCUT2", "PEMCUT2"),
        ("line 3: MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7", "MIIEvQIBADANBgkq"),
        ("REDISCLI_AUTH=cliauthleak", "cliauthleak"),
        ("REDIS_AUTH=redisauthleak", "redisauthleak"),
        ("MYSQL_PWD=mysqlpwdleak", "mysqlpwdleak"),
        ("SESSION_COOKIE=cookieleak", "cookieleak"),
        ("API_KEY=horse_battery_staple3", "horse_battery"),
        ("BINANCE_API_KEY=1234567890", "1234567890"),
        ("SIGNING_KEY=trade.intent.sig", "trade.intent"),
        ("x-api-key: alphaonlyleak", "alphaonlyleak"),
    ],
)
def test_no_tail_or_shape_of_a_secret_leaks(text: str, leak: str) -> None:
    masked = DEFAULT.text(text)
    assert leak not in masked and MASK in masked, masked
    assert DEFAULT.text(masked) == masked  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "PWD=/root/quantum OLDPWD=/tmp",
        "CACHE_KEY=trade.intent STREAM_KEY=quantum:stream:trade.intent",
        "redis://127.0.0.1:6379/0 is down; mail ops@corp.example",
        "-----BEGIN CERTIFICATE----- public, not a secret",
    ],
)
def test_more_configuration_stays_readable(text: str) -> None:
    assert DEFAULT.text(text) == text


MB = 1 << 20
HOSTILE_SHAPES = (  # each once quadratic (or worse) in the redaction step
    "A" * 4096,
    "a-" * 2048,
    "a=" * 2048,
    "K_KEY:" * 700,
    'A_KEY="' * 600,
    "a://u:" * 700,
    "eyJ-" * 1024,
    "API_KEY=a:" * 400,
    "PASSWORD=" + " " * 4096,
    "TOKEN=x" + ";" * 4096,
    "DB_PASSWORD=" + "x" * 4096,
    "-----BEGIN " + "A" * 4096,
)


def hostile_text(size: int) -> str:
    piece = "\n".join(HOSTILE_SHAPES)
    return (piece * (size // len(piece) + 1))[:size]


def test_a_megabyte_of_hostile_text_redacts_in_linear_time() -> None:
    """1 MB of long name runs, `=`/`:` chains, open quotes and long values: well under a second
    (the old step took 64 s for 40,000 name characters), and 4x the text is not 16x the time."""
    timings = {}
    for size in (MB // 4, MB):
        text = hostile_text(size)
        started = time.perf_counter()
        DEFAULT.text(text)
        timings[size] = time.perf_counter() - started
    assert timings[MB] < 1.0, timings
    assert timings[MB] < 8 * max(timings[MB // 4], 0.01), timings
    for shape in ("A" * MB, "a=" * (MB // 2), "a://u:" * (MB // 6)):
        started = time.perf_counter()
        DEFAULT.text(shape)
        assert time.perf_counter() - started < 2.5, shape[:8]


def test_a_long_quoted_text_is_cut_and_says_how_much() -> None:
    shown = DEFAULT.shown("k" * 10_000)
    assert shown == "k" * SHOWN_LIMIT + f"… ({10_000 - SHOWN_LIMIT} more characters)"
    assert DEFAULT.shown("a\nb" * 5000, keep="\n") == "a\nb" * 5000  # a diff stays whole


def test_an_env_file_diff_masks_the_value_systemd_reads() -> None:
    """`masked` (the env-file diff of fix) hides the whole value as systemd reads it: the rest
    of the line (no inline comments) and every line a backslash or an open quote runs on to."""
    text = (
        "API_SECRET=abc\\\nCONTTAIL9\nDB_PASSWORD=hunter #2SECRETTAIL\n"
        'LOGIN_TOKEN="a\nQUOTETAIL8"\n# a comment\nLEVEL=debug #x\n'
    )
    shown = masked(text, DEFAULT.is_secret_name)
    for leak in ("CONTTAIL9", "2SECRETTAIL", "QUOTETAIL8"):
        assert leak not in shown, shown
    assert shown.splitlines() == [
        "API_SECRET=****",
        "****",
        "DB_PASSWORD=****",
        "LOGIN_TOKEN=****",
        "****",
        "# a comment",
        "LEVEL=debug #x",
    ]


@pytest.mark.parametrize(
    ("text", "trigger"),
    [
        ("ping @channel and @here", re.compile(r"(?<!\w)@\w")),
        ("see https://evil.example/x", re.compile(r"https?://")),
        ("or www.evil.example", re.compile(r"www\.")),
        ("so :heart: :rotating_light:", re.compile(r":[\w+-]+:")),
    ],
)
def test_markdown_free_text_mentions_links_and_shortcodes_are_inert(
    text: str, trigger: re.Pattern[str]
) -> None:
    """Chat tools and GitHub act on these in plain text (CommonMark does not): broken apart."""
    shown = md_text(text)
    assert not trigger.search(shown.replace("\\", "")), shown  # as a renderer reads it
    assert shown.replace("\u200b", "").replace("\\", "") == text.replace("\\", "")
