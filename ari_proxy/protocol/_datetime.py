"""Go ari v5's `DateTime` text form: layout `2006-01-02T15:04:05.000-0700` (docs/protocol.md,
"Envelopes")."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from ._errors import ProtocolError

__all__ = ["GO_EPOCH_DATETIME", "GO_ZERO_DATETIME", "format_go_datetime", "parse_go_datetime"]

GO_ZERO_DATETIME = "0001-01-01T00:00:00.000+0000"
"""What Go sends for a zero `DateTime` (an event built without a timestamp)."""

GO_EPOCH_DATETIME = "1970-01-01T00:00:00.000+0000"
"""What Go sends for the `creationtime` of an empty `ChannelData`."""

_GO_LAYOUT = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})([+-])(\d\d)(\d\d)", re.ASCII
)


def format_go_datetime(value: datetime) -> str:
    """`value` in Go's layout: exactly 3 fractional digits and a `+hhmm` offset.

    Like Go, the milliseconds are truncated, not rounded, and seconds of the UTC offset are
    dropped. `value` must be timezone-aware; a naive datetime raises `ValueError`.
    """
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("a Go DateTime needs a timezone-aware datetime")
    seconds = int(offset.total_seconds())
    # Go truncates the offset to whole minutes toward zero and takes the sign from that, so
    # an offset of -30 s prints as +0000.
    minutes = abs(seconds) // 60 * (-1 if seconds < 0 else 1)
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:"
        f"{value.minute:02d}:{value.second:02d}.{value.microsecond // 1000:03d}"
        f"{sign}{hours:02d}{mins:02d}"
    )


def parse_go_datetime(text: str, *, strict: bool = True) -> datetime:
    """Parse a `DateTime` into a timezone-aware datetime; raise `ProtocolError` if it is not one.

    Strict parsing accepts only Go's layout, which is also what Asterisk sends: exactly three
    fractional digits and a `+hhmm` offset (`Z`, `+hh:mm` and other precisions are refused,
    as Go refuses them). With `strict=False` any ISO 8601 form `datetime.fromisoformat`
    reads is accepted as long as it carries an offset.
    """
    match = _GO_LAYOUT.fullmatch(text)
    if match is not None:
        year, month, day, hour, minute, second, millis, sign, off_h, off_m = match.groups()
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        try:
            return datetime(
                int(year),
                int(month),
                int(day),
                int(hour),
                int(minute),
                int(second),
                int(millis) * 1000,
                tzinfo=timezone(-offset if sign == "-" else offset),
            )
        except ValueError as exc:
            raise ProtocolError(f"invalid Go DateTime {text!r}: {exc}") from exc
    if not strict:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    raise ProtocolError(
        f"invalid Go DateTime {text!r}: expected the layout 2006-01-02T15:04:05.000-0700"
    )
