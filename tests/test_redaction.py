"""Secrets never reach output: URL masking, as examples and as a property."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qtctl.redaction import mask_url, validate_redis_url


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:pw@h:1/0", "redis://:****@h:1/0"),
        ("redis://user:pw@h:1/0", "redis://user:****@h:1/0"),
        ("rediss://default:p%40ss@h/0", "rediss://default:****@h/0"),
        ("unix:///run/redis.sock?password=pw&db=1", "unix:///run/redis.sock?password=****&db=1"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


# Passwords in URLs are percent-encoded, so the raw text holds only unreserved characters and %.
URL_SAFE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%"
secret = st.text(alphabet=URL_SAFE, min_size=6)


@given(secret)
def test_password_never_survives_masking(password: str) -> None:
    for template in ("redis://:{p}@host:6379/0", "rediss://u:{p}@host/1", "unix:///s?password={p}"):
        assert mask_url(template.format(p=password)) == template.format(p="****")


@pytest.mark.parametrize(
    "url", ["redis://localhost", "rediss://h:6380/3", "unix:///var/run/redis/redis.sock"]
)
def test_valid_urls(url: str) -> None:
    assert validate_redis_url(url) is None


@pytest.mark.parametrize(
    "url", ["http://h", "redis://", "redis://h:0", "redis://h/x", "unix://", "redis://h:abc"]
)
def test_invalid_urls(url: str) -> None:
    assert validate_redis_url(url)
