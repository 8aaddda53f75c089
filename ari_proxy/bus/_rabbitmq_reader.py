"""Reading the frames of the connections `Link` opens faster than aiormq does.

aiormq reads each frame in three `readexactly` calls through a `BytesIO` under a lock, then
has pamqp decode it field by field; for a delivery (three frames) that was a large part of a
request's CPU on RabbitMQ, on the server (the request) and the client (the reply) alike
(docs/benchmarks.md, "RabbitMQ: what changed"). `FrameReceiver` reads a frame in two calls and
decodes a delivery's frames by hand (`decode_frame`), leaving every other frame to pamqp.

aiormq's `Connection.connect` makes its receiver from the name `FrameReceiver` of its module, so
importing this module puts the subclass there. It reads faster only from a stream that `mark`
marked (the streams of `Link`'s connections) and exactly as aiormq does from any other: an
application's own aiormq connections read as they always did. aiormq is pinned, and
tests/bus/test_bus_rabbitmq_aiormq.py checks what this relies on.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import aiormq.connection
import pamqp.frame
from aiormq.exceptions import AMQPConnectionError, InvalidFrameError
from pamqp.exceptions import PAMQPException

from ._rabbitmq_frames import decode_frame

__all__ = ["FrameReceiver", "MarkingTransportFactory"]

_FRAME_HEAD = struct.Struct(">BHI")  # type, channel, size (AMQP 0-9-1 section 4.2.3)
_FRAME_END = 0xCE
_MARK = "_ari_proxy_reads_fast"

_Aiormq = aiormq.connection.FrameReceiver


class FrameReceiver(_Aiormq):
    """aiormq's frame receiver; faster from a marked stream once the handshake's first frame is
    read (aiormq checks that one for a protocol header)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        super().__init__(reader)
        self._fast = bool(getattr(reader, _MARK, False))

    async def get_frame(self) -> Any:
        if not (self._fast and self.started):
            return await super().get_frame()
        reader = self.reader
        if reader.at_eof():
            del self.reader
            raise StopAsyncIteration
        try:
            head = await reader.readexactly(_FRAME_HEAD.size)
            kind, channel, size = _FRAME_HEAD.unpack(head)
            rest = await reader.readexactly(size + 1)
        except asyncio.IncompleteReadError as exc:
            raise AMQPConnectionError(
                "Server connection unexpectedly closed. "
                f"Read {len(exc.partial)} bytes but {exc.expected} bytes expected"
            ) from exc
        except OSError as exc:
            raise AMQPConnectionError(_worded(exc)) from exc
        if rest[-1] == _FRAME_END:
            frame = decode_frame(kind, rest[:-1])
            if frame is not None:
                return size + _FRAME_HEAD.size + 1, channel, frame
        try:
            return pamqp.frame.unmarshal(head + rest)
        except PAMQPException as exc:
            raise InvalidFrameError(str(exc)) from exc


def _worded(exc: OSError) -> str:
    """aiormq's words for a failed read."""
    if isinstance(exc, ConnectionRefusedError):
        return f"Server connection refused: {exc!r}"
    if isinstance(exc, ConnectionResetError):
        return f"Server connection reset: {exc!r}"
    if isinstance(exc, ConnectionError):
        return f"Server connection error: {exc!r}"
    return f"Server communication error: {exc!r}"


class MarkingTransportFactory(aiormq.connection.TransportFactory):
    """aiormq's transport factory `inner`, its streams marked for `FrameReceiver`."""

    def __init__(self, inner: aiormq.connection.TransportFactory) -> None:
        self.inner = inner

    async def create(
        self, url: Any, **kwargs: Any
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await self.inner.create(url, **kwargs)
        setattr(reader, _MARK, True)
        return reader, writer


if aiormq.connection.FrameReceiver is _Aiormq:
    aiormq.connection.FrameReceiver = FrameReceiver  # type: ignore[misc]
