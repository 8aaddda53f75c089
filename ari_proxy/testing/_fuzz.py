"""Generated hostile bus traffic: requests of every kind with fields of the wrong shape, hostile
IDs and subjects, broken JSON, and junk on every subject a server listens to.

`BusFuzzer(seed).messages(n, app, node)` yields `FuzzMessage`s (subject, body, whether a reply
is asked for); the same seed gives the same messages. Every ID it puts in a request starts with
`PREFIX` (with hostile text after it: path tricks, control characters, wildcards, 4 KiB of
letters), so that anything such a request made in Asterisk can be told apart afterwards by
its name, and cleaned away.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import random
import types
import typing
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Final

import msgspec

from .._exceptions import AriProxyError
from ..api import Client, Handle
from ..protocol import KINDS, PAYLOAD_TYPES, RequestClass, Subjects

__all__ = [
    "PREFIX",
    "BusFuzzer",
    "FuzzMessage",
    "FuzzReport",
    "asterisk_resources",
    "remove_resources",
    "send_fuzz",
]

PREFIX: Final = "fuzz"
"""Every ID in a generated request starts with this."""

_SUFFIXES: Final = (
    "",
    "-1",
    "/../..",
    "/..",
    "%2e%2e",
    "%2F",
    "?x=1",
    "#frag",
    "\x00",
    "\n",
    "\r\nX-Injected: 1",
    " ",
    "*",
    ">",
    ".",
    "ü\u202e",
    "\ud7ff",
    "{}",
    '"',
    "\\",
    "a" * 4096,
)

_STRINGS: Final = (
    "",
    "Local/wait@default",
    "Local/fuzz@default",
    "PJSIP/../../x",
    "sound:beep",
    "sound:../../../../etc/passwd",
    "recording:fuzz",
    "tone:ring",
    "digits:1234",
    "default",
    "wav",
    "ulaw",
    "both",
    "in",
    "out",
    "\x00",
    "\n",
    "x" * 70000,
    "${SHELL(id)}",
    "'; DROP TABLE x; --",
)

_INTS: Final = (0, 1, -1, 2**31 - 1, 2**31, -(2**31) - 1, 2**63, 10**30)

_CLASSES: Final = tuple(c.value for c in RequestClass)


@dataclass(frozen=True, slots=True)
class FuzzMessage:
    """One generated message: where it goes, what it carries, and whether it asks for a reply."""

    subject: str
    body: bytes
    wants_reply: bool
    what: str
    """Its family, for the report: `request`, `broken`, `subject`, `junk`."""


class BusFuzzer:
    """A seeded source of hostile messages for the servers of `app` on `node`."""

    def __init__(self, seed: int = 0, *, prefix: str = "ari.") -> None:
        self.rng = random.Random(seed)
        self.subjects = Subjects(prefix)
        self.kinds = sorted(KINDS)

    def messages(self, n: int, app: str, node: str) -> Iterator[FuzzMessage]:
        """`n` messages: about 70% requests with generated fields, the rest broken bodies,
        hostile subjects and junk on the servers' other subjects."""
        makers = (
            (0.70, self._request),
            (0.10, self._broken),
            (0.10, self._hostile_subject),
            (0.10, self._junk),
        )
        for _ in range(n):
            draw, total = self.rng.random(), 0.0
            for weight, make in makers:
                total += weight
                if draw < total:
                    yield make(app, node)
                    break
            else:
                yield makers[-1][1](app, node)

    # --- families ---------------------------------------------------------------------------

    def _request(self, app: str, node: str) -> FuzzMessage:
        rng = self.rng
        kind = rng.choice(self.kinds) if rng.random() < 0.95 else self._string()
        spec = KINDS.get(kind)
        body: dict[str, Any] = {"kind": kind, "key": self._key(app, node, spec)}
        if spec is not None and spec.payload is not None and rng.random() < 0.9:
            body[spec.payload] = self._value(PAYLOAD_TYPES[spec.payload], depth=0)
        if rng.random() < 0.1:
            body[self._string()] = self._junk_value(0)  # an unknown member
        if rng.random() < 0.05:
            body["deadline"] = rng.choice(["", "garbage", "1970-01-01T00:00:00Z", 12])
        cls = spec.cls if spec is not None else rng.choice(_CLASSES)
        subject = self.subjects.request(cls, app, node if rng.random() < 0.8 else "")
        return FuzzMessage(subject, _encode(body), rng.random() < 0.7, "request")

    def _broken(self, app: str, node: str) -> FuzzMessage:
        rng = self.rng
        whole = _encode({"kind": rng.choice(self.kinds), "key": self._key(app, node, None)})
        body = rng.choice(
            [
                whole[: rng.randrange(len(whole))],
                bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))),
                b"[" * 5000 + b"]" * 5000,
                b'{"kind":' * 2000,
                b"null",
                b"[]",
                b"42",
                b'"AsteriskInfo"',
                b"",
                whole.replace(b'"', b"'"),
                b"\xff\xfe" + whole,
            ]
        )
        subject = self.subjects.request(rng.choice(_CLASSES), app, node)
        return FuzzMessage(subject, body, rng.random() < 0.7, "broken")

    def _hostile_subject(self, app: str, node: str) -> FuzzMessage:
        rng = self.rng
        token = rng.choice(["fuzz-other", "x" * 300, "*", ">", app + "x", "ü"])
        cls = rng.choice(_CLASSES)
        prefix = self.subjects.prefix
        subject = rng.choice(
            [
                f"{prefix}{cls}.{token}",
                f"{prefix}{cls}.{app}.{token}",
                f"{prefix}{cls}.{app}.{node}.{token}",
                f"{prefix}{token}",
            ]
        )
        body = _encode({"kind": rng.choice(self.kinds), "key": self._key(app, node, None)})
        return FuzzMessage(subject, body, rng.random() < 0.5, "subject")

    def _junk(self, app: str, node: str) -> FuzzMessage:
        rng = self.rng
        s = self.subjects
        subject = rng.choice(
            [
                s.ping,
                s.announce,
                s.presence("listener", app),
                s.listen(app, node),
                s.event(app, node),
                s.dialog_event(f"{app}.fuzz"),
            ]
        )
        body = rng.choice([_encode(self._junk_value(0)), b"", b"{", b"\x00" * 100])
        return FuzzMessage(subject, body, rng.random() < 0.3, "junk")

    # --- values -----------------------------------------------------------------------------

    def _id(self) -> str:
        return f"{PREFIX}-{self.rng.randrange(1000)}{self.rng.choice(_SUFFIXES)}"

    def _string(self) -> str:
        return self.rng.choice(_STRINGS) if self.rng.random() < 0.7 else self._id()

    def _key(self, app: str, node: str, spec: Any) -> Any:
        rng = self.rng
        if rng.random() < 0.05:
            return self._junk_value(0)
        key: dict[str, Any] = {
            "kind": spec.entity if spec is not None and rng.random() < 0.9 else self._string(),
            "id": self._id(),
            "node": node if rng.random() < 0.8 else self._string(),
            "app": app if rng.random() < 0.8 else self._string(),
        }
        if rng.random() < 0.2:
            key["dialog"] = self._string()
        if rng.random() < 0.1:  # a member missing (never the ID: a create without one gets
            del key[rng.choice([k for k in key if k != "id"])]  # a name of the server's)
        return key

    def _value(self, tp: Any, depth: int) -> Any:
        """A value for `tp`, usually of its shape, sometimes of another (or of none)."""
        rng = self.rng
        if depth > 6 or rng.random() < 0.08:
            return self._junk_value(depth)
        origin = typing.get_origin(tp)
        if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            out: dict[str, Any] = {}
            for field in msgspec.structs.fields(tp):
                if rng.random() < 0.75:
                    name = field.encode_name
                    out[name] = (
                        self._id()
                        if name.endswith(("id", "Id", "_id")) and rng.random() < 0.9
                        else self._value(field.type, depth + 1)
                    )
            return out
        if origin in (typing.Union, types.UnionType):
            return self._value(rng.choice(typing.get_args(tp)), depth)
        if origin in (list, tuple):
            args = typing.get_args(tp) or (Any,)
            return [self._value(args[0], depth + 1) for _ in range(rng.randrange(4))]
        if origin is dict:
            args = typing.get_args(tp) or (str, Any)
            return {
                self._string(): self._value(args[1], depth + 1) for _ in range(rng.randrange(4))
            }
        if tp is str:
            return self._string()
        if tp is bool:
            return rng.choice([True, False])
        if tp is int:
            return rng.choice(_INTS)
        if tp is float:
            return rng.choice([0.0, -1.5, 1e308])
        return self._junk_value(depth)

    def _junk_value(self, depth: int) -> Any:
        rng = self.rng
        choices: list[Any] = [None, True, 0, -1, 2**64, 1.5, self._string(), self._id()]
        if depth < 4:
            choices += [
                [self._junk_value(depth + 1)],
                {self._string(): self._junk_value(depth + 1)},
            ]
        return rng.choice(choices)


def _encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )


@dataclass
class FuzzReport:
    """What a fuzz run sent and what came back."""

    sent: collections.Counter[str] = field(default_factory=collections.Counter)
    """Messages sent, by family."""
    replies: collections.Counter[str] = field(default_factory=collections.Counter)
    """Replies by their error code (`ok` for none), and `no reply` for requests unanswered."""

    @property
    def total(self) -> int:
        return sum(self.sent.values())


async def send_fuzz(
    nc: Any, messages: Iterable[FuzzMessage], *, in_flight: int = 64, reply_timeout: float = 1.0
) -> FuzzReport:
    """Send `messages` with the nats-py client `nc` (raw, as a hostile peer would: no check of
    ours stands between the generator and the bus), `in_flight` requests at a time, each
    waiting `reply_timeout` seconds for its reply."""
    report = FuzzReport()
    slots = asyncio.Semaphore(in_flight)

    async def ask(message: FuzzMessage) -> None:
        try:
            reply = await nc.request(message.subject, message.body, timeout=reply_timeout)
        except Exception:  # nobody answers junk, or a reply too slow: both are counted
            report.replies["no reply"] += 1
        else:
            try:
                code = json.loads(reply.data).get("code") or "ok"
            except (ValueError, AttributeError):
                code = "undecodable"
            report.replies[str(code)] += 1
        finally:
            slots.release()

    async with asyncio.TaskGroup() as group:
        for message in messages:
            report.sent[message.what] += 1
            if message.wants_reply:
                await slots.acquire()
                group.create_task(ask(message))
            else:
                await nc.publish(message.subject, message.body)
    await nc.flush()
    return report


async def asterisk_resources(client: Client) -> set[tuple[str, str]]:
    """What an Asterisk holds that a request can make, as (family, ID): channels, bridges,
    stored recordings, log channels (by file name) and device states."""
    families: dict[str, Callable[[], Awaitable[Sequence[Handle]]]] = {
        "channel": client.channels.list,
        "bridge": client.bridges.list,
        "recording": client.recordings.list_stored,
        "log channel": client.asterisk.logging.list,
        "device state": client.device_states.list,
    }
    found = {(family, handle.id) for family, list_ in families.items() for handle in await list_()}
    # Asterisk lists a file log channel by its path, under its own log folder.
    return {(f, PurePosixPath(i).name if f == "log channel" else i) for f, i in found}


async def remove_resources(client: Client, resources: Iterable[tuple[str, str]]) -> None:
    """Hang up, destroy or delete each of `resources` (those already gone are skipped)."""
    for family, ident in resources:
        with contextlib.suppress(AriProxyError):
            if family == "channel":
                await client.channels.handle(ident).hangup()
            elif family == "bridge":
                await client.bridges.handle(ident).destroy()
            elif family == "recording":
                await client.recordings.stored(ident).delete()
            elif family == "log channel":
                await client.asterisk.logging.handle(ident).delete()
            elif family == "device state":
                await client.device_states.handle(ident).delete()
