"""rid: Go-style lower-case ULIDs with a kind suffix."""

from __future__ import annotations

import re
import time

import pytest

from ari_proxy.protocol import is_rid, new_id

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def ulid_millis(rid: str) -> int:
    value = 0
    for char in rid[:10]:
        value = value * 32 + ALPHABET.index(char)
    return value


def test_format_and_suffix() -> None:
    assert re.fullmatch(r"[0-9a-hjkmnp-tv-z]{26}-ch", new_id("channel"))
    assert re.fullmatch(r"[0-9a-hjkmnp-tv-z]{26}", new_id())
    assert new_id("q").endswith("-q")
    assert new_id("rp")[-3:] == "-rp"


def test_is_rid() -> None:
    assert is_rid(new_id("ch"))
    assert is_rid(new_id())
    assert is_rid("01hwx3k9y6q6n1v8d2f0c3b7ae-ch")
    assert not is_rid("01hwx3k9y6q6n1v8d2f0c3b7a-ch")  # 25 characters
    assert not is_rid("01hwx3k9y6q6n1v8d2f0c3b7ai-ch")  # i is not Crockford
    assert not is_rid("81hwx3k9y6q6n1v8d2f0c3b7ae")  # more than 128 bits
    assert not is_rid("1714550000.17")


def test_timestamp_is_the_current_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    # ulid-js documents decodeTime("01ARYZ6S41TSV4RRFFQ69G5FAV") == 1469918176385.
    monkeypatch.setattr(time, "time_ns", lambda: 1469918176385 * 1_000_000 + 999)
    rid = new_id("ch")
    assert rid.startswith("01aryz6s41")
    assert ulid_millis(rid) == 1469918176385


def test_unique_over_100k() -> None:
    ids = [new_id("ch") for _ in range(100_000)]
    assert len(set(ids)) == len(ids)


def test_ordered_across_milliseconds() -> None:
    earlier = new_id("ch")
    time.sleep(0.003)
    later = new_id("ch")
    assert ulid_millis(earlier) < ulid_millis(later)
    assert earlier < later


def test_fast_enough_for_the_request_path() -> None:
    # A sanity bound only (about 1.5 us each here): catches an accidental slow path.
    start = time.perf_counter()
    for _ in range(10_000):
        new_id("pb")
    assert time.perf_counter() - start < 1.0
