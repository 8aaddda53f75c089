"""Entity and correlation IDs in Go's `ari/rid` format (docs/protocol.md, "Envelopes")."""

from __future__ import annotations

import os
import re
import time

__all__ = ["is_rid", "new_id"]

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
# Each random byte becomes one character from its low 5 bits: 256 is a multiple of 32, so
# the characters are uniform, and 16 of them carry the ULID's 80 random bits.
_RANDOM_CHARS = bytes.maketrans(bytes(range(256)), (_ALPHABET * 8).encode("ascii"))
_RID = re.compile(r"[0-7][0-9a-hjkmnp-tv-z]{25}(?:-[0-9A-Za-z_]{1,2})?")

# (millisecond, its 10 encoded characters): IDs come in bursts within one millisecond, so
# the timestamp is encoded once per millisecond. One tuple, so threads never see a torn pair.
_last_time: tuple[int, str] = (-1, "")


def _encode_time(millis: int) -> str:
    """The 10 base32 characters of a 48-bit millisecond timestamp (most significant first)."""
    return "".join(_ALPHABET[(millis >> shift) & 31] for shift in range(45, -1, -5))


def new_id(kind: str = "") -> str:
    """A new lower-case ULID, followed by `-` and the first two characters of `kind`.

    The ULID is 26 Crockford base32 characters: a 48-bit millisecond timestamp, then 80 random
    bits from `os.urandom`, so IDs sort by creation time across milliseconds. With an empty
    `kind` there is no suffix. Example: `new_id("channel")` gives `01hwx3k9y6q6n1v8d2f0c3b7ae-ch`.
    """
    global _last_time
    millis = time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF
    cached = _last_time
    if cached[0] != millis:
        cached = _last_time = (millis, _encode_time(millis))
    ulid = cached[1] + os.urandom(16).translate(_RANDOM_CHARS).decode("ascii")
    return f"{ulid}-{kind[:2]}" if kind else ulid


def is_rid(value: str) -> bool:
    """Whether `value` looks like an ID from `new_id` (a ULID with an optional short suffix)."""
    return _RID.fullmatch(value) is not None
