"""Go DateTime: layout 2006-01-02T15:04:05.000-0700."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ari_proxy.protocol import (
    GO_EPOCH_DATETIME,
    GO_ZERO_DATETIME,
    ProtocolError,
    format_go_datetime,
    parse_go_datetime,
)


def test_format() -> None:
    value = datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert format_go_datetime(value) == "2024-05-01T10:00:00.123+0000"
    minus = timezone(-timedelta(hours=7))
    assert format_go_datetime(datetime(2006, 1, 2, 15, 4, 5, tzinfo=minus)) == (
        "2006-01-02T15:04:05.000-0700"
    )
    india = timezone(timedelta(hours=5, minutes=30))
    assert format_go_datetime(datetime(1, 1, 1, tzinfo=india)) == "0001-01-01T00:00:00.000+0530"


def test_offset_truncates_like_go() -> None:
    # Go truncates the offset to minutes toward zero before taking the sign.
    tiny = timezone(-timedelta(seconds=30))
    assert format_go_datetime(datetime(2024, 1, 1, tzinfo=tiny)).endswith("+0000")
    lmt = timezone(-timedelta(minutes=75, seconds=59))
    assert format_go_datetime(datetime(2024, 1, 1, tzinfo=lmt)).endswith("-0115")


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_go_datetime(datetime(2024, 1, 1))


def test_zero_values() -> None:
    assert parse_go_datetime(GO_ZERO_DATETIME) == datetime(1, 1, 1, tzinfo=UTC)
    assert parse_go_datetime(GO_EPOCH_DATETIME) == datetime(1970, 1, 1, tzinfo=UTC)
    assert format_go_datetime(datetime(1970, 1, 1, tzinfo=UTC)) == GO_EPOCH_DATETIME


def test_parse_go_and_asterisk_form() -> None:
    parsed = parse_go_datetime("2026-11-26T06:10:48.436-0130")
    assert parsed.utcoffset() == -timedelta(hours=1, minutes=30)
    assert parsed.microsecond == 436_000


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-01T10:00:00.123Z",
        "2024-05-01T10:00:00.123+00:00",
        "2024-05-01T10:00:00+0000",
        "2024-05-01T10:00:00.1234+0000",
        "2024-05-01 10:00:00.123+0000",
        "2024-13-01T10:00:00.123+0000",
        "2024-05-01T10:00:00.123+9900",
        "",
        "null",
    ],
)
def test_strict_parser_refuses_other_forms(text: str) -> None:
    with pytest.raises(ProtocolError, match="Go DateTime"):
        parse_go_datetime(text)


def test_lenient_parser() -> None:
    assert parse_go_datetime("2024-05-01T10:00:00.123Z", strict=False) == datetime(
        2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC
    )
    assert parse_go_datetime("2024-05-01T10:00:00.123+0000", strict=False).year == 2024
    with pytest.raises(ProtocolError):
        parse_go_datetime("2024-05-01T10:00:00", strict=False)  # no offset
    with pytest.raises(ProtocolError):
        parse_go_datetime("yesterday", strict=False)


offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(st.datetimes(timezones=offsets))
def test_round_trip(value: datetime) -> None:
    text = format_go_datetime(value)
    assert len(text) == 28
    parsed = parse_go_datetime(text)
    assert parsed == value.replace(microsecond=value.microsecond // 1000 * 1000)
    assert parsed.utcoffset() == value.utcoffset()
    assert format_go_datetime(parsed) == text
