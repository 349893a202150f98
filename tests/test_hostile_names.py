"""Hostile names never break or steer qtctl: Redis keys, group, consumer and field names with
any bytes (not UTF-8, ANSI/OSC escapes, rich markup, emoji shortcodes, backticks, newlines,
pipes, HTML) are shown escaped in every format, and one undecodable key is one finding about
that key while everything else is still checked (doctor, report, and the risk kernel)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from markdown_it import MarkdownIt

from tests.conftest import REPO, run_cli
from tests.support.redis_server import RedisServer
from tests.test_report import SAMPLE

P = b"quantum:stream:"
HOSTILE = {  # raw key -> how every format shows it
    P + b"bad\xff\xfe": "quantum:stream:bad\\xff\\xfe",
    P + b"\x1b[31mred\x1b[0m": "quantum:stream:\\x1b[31mred\\x1b[0m",
    P + b"\x1b]8;;http://evil.example/\x07click\x1b]8;;\x07": (
        "quantum:stream:\\x1b]8;;http://evil.example/\\x07click\\x1b]8;;\\x07"
    ),
    P + b"[bold]loud[/bold]": "quantum:stream:[bold]loud[/bold]",
    P
    + b"[link=http://evil.example/]x[/link]": "quantum:stream:[link=http://evil.example/]x[/link]",
    b"quantum:heartbeat:risk-proposal": "quantum:heartbeat:risk-proposal",
    P + b"a`b``c": "quantum:stream:a`b``c",
    P + b"two\nlines": "quantum:stream:two\\x0alines",
    P + b"a|b": "quantum:stream:a|b",
    P + b"<img src=x onerror=alert(1)>": "quantum:stream:<img src=x onerror=alert(1)>",
    P + b"[click](http://evil.example/)": "quantum:stream:[click](http://evil.example/)",
    P + b"ok": "quantum:stream:ok",
}
UNDECODABLE_STREAM = "quantum:stream:bad\\xff\\xfe"
BAD_GROUP = b"readers\xff\x1b[2J"
ANSI_GROUP = b"\x1b[1mgroup\x1b[0m"
ANSI_CONSUMER = b"c\x1b]0;pwned\x07"
HEARTBEATS = {
    b"quantum:heartbeat:risk-proposal-svc": "quantum:heartbeat:risk-proposal-svc",
    b"quantum:heartbeat:\xff\x00": "quantum:heartbeat:\\xff\\x00",
    b"quantum:heartbeat:[red]x[/red]": "quantum:heartbeat:[red]x[/red]",
}
BAD_PROPOSAL = b"quantum:risk:proposal:\xfeBAD"
HELD_PROPOSAL = b"quantum:risk:proposal:[bold]XRP:heart:"
RAW_MARKERS = ("\x1b", "\x07", "\U0001f493", "\u2764")  # escapes, BEL, emoji for :heart(beat):


@pytest.fixture
def hostile(redis_server: RedisServer, isolated_env: Path) -> redis.Redis:
    client = redis.Redis(port=redis_server.port)
    for key in HOSTILE:
        client.xadd(key, {b"f\x1b[7m\xff": b"v\xfe", b"i": b"1"})
        client.xadd(key, {b"i": b"2"})
    ok = P + b"ok"
    client.xgroup_create(ok, BAD_GROUP, id="0")  # lag 2, never read: its name is not UTF-8
    client.xgroup_create(ok, ANSI_GROUP, id="0")
    client.xreadgroup(ANSI_GROUP, ANSI_CONSUMER, {ok: ">"}, count=1)  # 1 pending, then idle
    old = str(time.time() - 3600).encode()
    for key in HEARTBEATS:
        client.set(key, old)
    client.hset(BAD_PROPOSAL, mapping={b"stop_loss": b"1", b"\xff": b"\xfe"})
    reason = b"market \x1b[31mstate\x1b[0m lacks p_trend :heart: [bold]x[/bold]"
    valid = {b"position_side": b"LONG", b"stop_loss": b"90", b"take_profit": b"110"}
    valid |= {b"price": b"100", b"timestamp": str(time.time()).encode()}
    held = {**valid, b"trading_state": b"held", b"held_reason": reason}
    client.hset(HELD_PROPOSAL, mapping=held)
    isolated_env.write_text(
        f"[redis]\nurl = '{redis_server.url}'\n[doctor]\nselect = ['QT4', 'QT501', 'QT704']\n"
        "[streams]\nexpected = []\nlength_warn = 1\nlag_warn = 1\ndead_consumer_sec = 1\n"
        "[services]\nheartbeats = ['quantum:heartbeat:*=10']\n"
    )
    time.sleep(1.1)  # the consumer is idle past streams.dead_consumer_sec
    return client


def clean(res: subprocess.CompletedProcess[str]) -> str:
    """The run did not crash, and nothing raw reached the terminal."""
    assert res.returncode in (0, 1, 2), res.stderr
    assert "Traceback" not in res.stderr and "QT000" not in res.stdout, res.stdout + res.stderr
    for marker in RAW_MARKERS:
        assert marker not in res.stdout + res.stderr, (marker, res.stdout)
    return res.stdout


def test_doctor_json_names_every_key_escaped_and_checks_the_rest(hostile: redis.Redis) -> None:
    doc = json.loads(clean(run_cli("--format", "json", "doctor")))
    found = [(f["code"], f["subject"], f["cause"]) for f in doc["findings"]]
    undecodable = [f for f in found if f[1] == UNDECODABLE_STREAM]
    assert undecodable == [("QT405", UNDECODABLE_STREAM, "undecodable-name")]
    long = {subject for code, subject, _ in found if code == "QT401"}
    assert long == set(HOSTILE.values()) - {UNDECODABLE_STREAM}  # every other stream checked
    groups = {subject: cause for code, subject, cause in found if code == "QT403"}
    assert groups == {
        "quantum:stream:ok group readers\\xff\\x1b[2J": "lag",
        "quantum:stream:ok group \\x1b[1mgroup\\x1b[0m": "lag",
    }
    [dead] = [f for f in doc["findings"] if f["code"] == "QT404"]
    assert dead["subject"].endswith("consumer c\\x1b]0;pwned\\x07")
    beats = {subject: cause for code, subject, cause in found if code == "QT704"}
    assert beats == {
        "quantum:heartbeat:risk-proposal-svc": "stale",
        "quantum:heartbeat:\\xff\\x00": "undecodable-name",
        "quantum:heartbeat:[red]x[/red]": "stale",
    }
    proposals = {subject: cause for code, subject, cause in found if code == "QT501"}
    assert proposals == {
        "quantum:risk:proposal:\\xfeBAD": "undecodable-name",
        "quantum:risk:proposal:[bold]XRP:heart:": "held",
    }
    [held] = [f for f in doc["findings"] if f["cause"] == "held"]
    assert "market \\x1b[31mstate\\x1b[0m lacks p_trend :heart: [bold]x[/bold]" in held["message"]


def test_doctor_table_shows_names_literally(hostile: redis.Redis) -> None:
    out = clean(run_cli("-v", "doctor"))
    for shown in (*HOSTILE.values(), *HEARTBEATS.values()):
        assert shown in out, shown  # never markup, never an emoji, never a control sequence
    assert "quantum💓" not in out and ":heart: [bold]x[/bold]" in out


def test_markdown_code_spans_cannot_be_broken_out_of(hostile: redis.Redis) -> None:
    for args in (("doctor", "--format", "markdown"), ("report", "--format", "markdown")):
        tokens = MarkdownIt("commonmark").enable("table").parse(clean(run_cli(*args)))
        inline = [child for t in tokens for child in t.children or ()]
        kinds = {t.type for t in inline} | {t.type for t in tokens}
        assert not kinds & {"html_inline", "html_block", "link_open", "image"}, (args, kinds)
        spans = {t.content for t in inline if t.type == "code_inline"}
        assert set(HOSTILE.values()) - spans == set(), args  # each name whole, in one span
        rows = [t for t in tokens if t.type == "tr_open"]
        cells = [t for t in tokens if t.type == "td_open"]
        assert len(cells) == 6 * (len(rows) - 1) or not rows, args  # no `|` split a row


def test_prometheus_and_nagios_stay_parseable(hostile: redis.Redis) -> None:
    text = clean(run_cli("report", "--format", "prometheus"))
    samples = [line for line in text.splitlines() if not line.startswith("#")]
    assert all(SAMPLE.match(line) for line in samples), samples
    # a newline as the exposition format escapes it (it round-trips); other controls as text
    assert 'qtctl_stream_length{stream="quantum:stream:two\\nlines"} 2' in samples
    assert 'qtctl_stream_length{stream="quantum:stream:\\\\x1b[31mred\\\\x1b[0m"} 2' in samples
    nagios = run_cli("report", "--format", "nagios")
    first, *long_output = clean(nagios).splitlines()
    assert nagios.returncode == 2 and first.startswith("QTCTL CRITICAL - ")  # critical
    assert long_output and all("|" not in line and "\x1b" not in line for line in long_output)
    perf = first.split(" | ", 1)[1]  # one finding per long-output line cannot forge perfdata
    item = r"'[a-z_]+'=[0-9.]+s?(;[^; ]*){0,4}"
    assert re.fullmatch(rf"{item}( {item})*", perf), perf


def test_report_json_escapes_stream_and_group_names(hostile: redis.Redis) -> None:
    doc = json.loads(clean(run_cli("report", "--format", "json")))
    streams = {s["name"]: s for s in doc["streams"]}
    assert set(streams) == set(HOSTILE.values()) - {UNDECODABLE_STREAM}
    groups = {g["name"] for g in streams["quantum:stream:ok"]["groups"]}
    assert groups == {"readers\\xff\\x1b[2J", "\\x1b[1mgroup\\x1b[0m"}


def test_risk_kernel_skips_an_undecodable_key_and_serves_the_others(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    client = redis.Redis(port=redis_server.port)
    base = {b"side": b"LONG", b"entry_price": b"100", b"current_price": b"101"}
    market = {b"sigma": b"0.01", b"ts": b"0.5", b"p_trend": b"0.5", b"p_mr": b"0.3"}
    for symbol in (b"BTCUSDT", b"\xff\xfeBAD"):
        client.hset(b"quantum:state:positions:" + symbol, mapping=base)
        client.hset(b"quantum:marketstate:" + symbol, mapping={**market, b"p_chop": b"0.2"})
    config = tmp_path / "c.toml"
    config.write_text(f"[redis]\nurl = '{redis_server.url}'\n")
    argv = [sys.executable, "-m", "qtctl", "--config", str(config), "run", "risk-kernel", "--once"]
    res = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "position key quantum:state:positions:\\xff\\xfeBAD skipped" in res.stderr
    assert "1 positions: 1 proposals, 0 exit-now, 0 held back" in res.stderr
    assert float(client.hget(b"quantum:risk:proposal:BTCUSDT", b"stop_loss") or 0) > 0


def test_a_value_that_is_not_utf8_holds_only_its_position(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    client = redis.Redis(port=redis_server.port)
    base = {b"side": b"LONG", b"entry_price": b"100", b"current_price": b"101"}
    market = {b"sigma": b"0.01", b"ts": b"0.5", b"p_trend": b"0.5", b"p_mr": b"0.3"}
    bad = {**base, b"side": b"LO\xffNG", b"position_id": b"\xfe\xff"}
    for symbol, fields in ((b"BTCUSDT", base), (b"ETHUSDT", bad)):
        client.hset(b"quantum:state:positions:" + symbol, mapping=fields)
        client.hset(b"quantum:marketstate:" + symbol, mapping={**market, b"p_chop": b"0.2"})
    config = tmp_path / "c.toml"
    config.write_text(f"[redis]\nurl = '{redis_server.url}'\n")
    argv = [sys.executable, "-m", "qtctl", "--config", str(config), "run", "risk-kernel", "--once"]
    res = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 0, res.stderr  # was a UnicodeDecodeError: a crash loop for all
    assert "2 positions: 1 proposals, 0 exit-now, 1 held back" in res.stderr
    assert float(client.hget(b"quantum:risk:proposal:BTCUSDT", b"stop_loss") or 0) > 0


SPOOF_CONSUMER = b"idle\n\x1b[31mSPOOF"
SPOOF_FILE = "evil\nQT302 converted\n    $ convert root.py;$(id>&2)`id`;touch pwned.env"


def plan_lines(res: subprocess.CompletedProcess[str]) -> list[str]:
    out = clean(res)
    assert "\x1b" not in out
    return out.splitlines()


def test_a_fix_plan_action_is_one_line_whatever_the_consumer_is_named(
    redis_server: RedisServer, isolated_env: Path
) -> None:
    client = redis.Redis(port=redis_server.port)
    client.xadd(b"quantum:stream:ok", {b"i": b"1"})
    client.xgroup_create(b"quantum:stream:ok", b"g", id="$")
    client.xgroup_createconsumer(b"quantum:stream:ok", b"g", SPOOF_CONSUMER)
    isolated_env.write_text(
        f"[redis]\nurl = '{redis_server.url}'\n[streams]\nexpected = []\ndead_consumer_sec = 1\n"
    )
    time.sleep(1.1)
    lines = plan_lines(run_cli("fix", "--select", "QT404"))
    [action] = [line for line in lines if "XGROUP DELCONSUMER" in line]
    assert action.startswith(
        "    $ XGROUP DELCONSUMER quantum:stream:ok g 'idle\\x0a\\x1b[31mSPOOF'"
    )
    assert not [line for line in lines if line.startswith("SPOOF") or "[31mSPOOF" in line[:8]]


def test_a_fix_plan_quotes_a_file_name_as_a_shell_reads_it(
    tmp_path: Path, isolated_env: Path
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / SPOOF_FILE).write_bytes(b"import os\r\nprint(os.getcwd())\r\n")
    isolated_env.write_text(
        f"[fleet]\ncode_roots = ['{code}']\n[fix]\nstate_dir = '{tmp_path / 'state'}'\n"
        "convert_source_files = true\n"
    )
    lines = plan_lines(run_cli("fix", "--select", "QT302", env={"COLUMNS": "400"}))
    assert "QT302 converted" not in lines and not any(
        line.startswith("    $ convert root.py") for line in lines
    ), lines
    [action] = [line for line in lines if line.startswith("    $ convert ")]
    words = shlex.split(
        action.removeprefix("    $ convert ").removesuffix(
            " to LF (mode and owner kept, original backed up)"
        )
    )
    assert words == [str(code / SPOOF_FILE).replace("\n", "\\x0a")]  # one word, nothing runs
