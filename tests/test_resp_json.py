"""The risk kernel's JSON by template (`resp.json_rows`) is byte for byte `json.dumps`, whatever
the text: quotes, backslashes, control characters, unicode, `%`, "NaN"; and so is every payload
a real cycle publishes from hostile fleet text."""

from __future__ import annotations

import json
import math

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from qtctl.adapters.resp import json_number_rows, json_rows
from tests.support.redis_server import RedisServer
from tests.test_risk_kernel import STREAM, kernel, market, position

HOSTILE = [
    "",
    '"',
    "\\",
    '\\"',
    "\x00",
    "\x1f\x7f",
    "\r\n$5\r\n",
    "\u2028\u2029",
    "é€😀",
    "\ud800",  # a lone surrogate: json.dumps escapes it too
    "%s %d %% %(x)s",
    "NaN",
    "-Infinity",
    "1e999",
    "{}",
    '","x":"',
]
text = st.one_of(st.sampled_from(HOSTILE), st.text())


def dumps(fields: dict[str, str | list[str]], count: int) -> list[str]:
    rows = [{k: v if isinstance(v, str) else v[i] for k, v in fields.items()} for i in range(count)]
    return [json.dumps(row, separators=(",", ":")) for row in rows]


@st.composite
def tables(draw: st.DrawFn) -> tuple[dict[str, str | list[str]], int]:
    count = draw(st.integers(1, 6))
    value = st.one_of(text, st.lists(text, min_size=count, max_size=count))
    return draw(st.dictionaries(text, value, max_size=8)), count


@given(tables())
def test_rows_are_what_json_dumps_writes(table: tuple[dict[str, str | list[str]], int]) -> None:
    fields, count = table
    assert json_rows(fields, count) == dumps(fields, count)


def test_hostile_text_in_every_position() -> None:
    fields: dict[str, str | list[str]] = {h: h for h in HOSTILE}
    fields |= {f"col{h}": [h, *HOSTILE] for h in HOSTILE}
    rows = json_rows(fields, len(HOSTILE) + 1)
    assert rows == dumps(fields, len(HOSTILE) + 1)
    assert json.loads(rows[3])['col"'] == HOSTILE[2]


def test_a_column_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="b: 1 values for 2 rows"):
        json_rows({"a": ["1", "2"], "b": ["1"]}, 2)
    assert json_rows({"a": "1"}, 2) == ['{"a":"1"}'] * 2


@given(
    st.lists(text, min_size=1, max_size=4, unique=True).flatmap(
        lambda names: st.tuples(
            st.just(names),
            st.lists(st.lists(st.floats(), min_size=len(names), max_size=len(names)), max_size=5),
        )
    )
)
def test_number_rows_are_what_json_dumps_writes(table: tuple[list[str], list[list[float]]]) -> None:
    names, rows = table
    expected = [json.dumps(dict(zip(names, r, strict=True))) for r in rows]
    assert json_number_rows(names, rows) == expected


def test_number_rows_with_nan_and_infinities_are_json_dumps_too() -> None:
    rows = [[0.25, -0.0, 5e-324], [math.nan, math.inf, -math.inf], [1e308, 0.1, 1 / 3]]
    assert json_number_rows(["a", '"%s'], [r[:2] for r in rows]) == [
        json.dumps({"a": r[0], '"%s': r[1]}) for r in rows
    ]
    assert json_number_rows(["x"], [[0.1]]) == ['{"x": 0.1}']


def test_hostile_fleet_text_is_published_as_json_dumps_would(redis_server: RedisServer) -> None:
    """float() takes Arabic-Indic digits and whitespace around them, so a price the kernel
    accepts can still carry text that JSON must escape."""
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    prices = ["\u2028\u0661\u0660\u0661\x85", " 101\t\x0b", "101"]
    symbols = ['B"T\\C', "\u00c6TH\x01", "S%sOL"]
    for symbol, price in zip(symbols, prices, strict=True):
        position(client, symbol, side="LONG", entry_price=100, current_price=price, peak_price=101)
        market(client, symbol)
    assert kernel(redis_server).cycle()["published"] == 3
    entries = client.xrange(STREAM)
    assert sorted(e["symbol"] for _, e in entries) == sorted(symbols)
    for _, entry in entries:
        payload = json.loads(entry["payload"])
        assert entry["payload"] == json.dumps(payload, separators=(",", ":"))
        assert payload["position_current_price"] == prices[symbols.index(entry["symbol"])]
        stored = client.hgetall(f"quantum:risk:proposal:{entry['symbol']}")
        assert {k: stored[k] for k in payload} == payload
