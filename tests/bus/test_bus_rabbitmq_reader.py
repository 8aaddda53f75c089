"""Frames read by hand (`_rabbitmq_frames.decode_frame`, `_rabbitmq_reader.FrameReceiver`)
are the frames pamqp and aiormq read, for every shape a delivery takes; anything else is left
to them, errors included. No broker is needed."""

from __future__ import annotations

import asyncio
import datetime
import struct
from typing import Any

import pamqp.frame
import pytest
from aiormq.connection import FrameReceiver as AnyReceiver
from aiormq.exceptions import AMQPConnectionError, InvalidFrameError
from pamqp.body import ContentBody
from pamqp.commands import Basic, Channel, Connection
from pamqp.header import ContentHeader
from pamqp.heartbeat import Heartbeat

from ari_proxy.bus._rabbitmq_frames import decode_frame
from ari_proxy.bus._rabbitmq_reader import FrameReceiver, _Aiormq

DELIVERIES = [
    Basic.Deliver("ctag", 1, False, "", "q"),
    Basic.Deliver("ctag-01m9515b1vcnp0wvnqy0", 2**63 - 1, True, "ari.request", "ari.data.a.n"),
    Basic.Deliver("é-ünïcode", 7, True, "ari.event", "ari.event.app.02:42:ac:11:00:02"),
    Basic.Deliver("", 0, False, "", ""),
]
PROPERTIES = [
    Basic.Properties(),
    Basic.Properties(content_type="application/json", delivery_mode=1),
    Basic.Properties(
        content_type="application/json",
        correlation_id="c" * 255,
        reply_to="amq.rabbitmq.reply-to.g1h2AA5yZXBseUAxNjg2",
        expiration="5000",
        delivery_mode=2,
    ),
    Basic.Properties(
        content_type="a",
        content_encoding="gzip",
        priority=9,
        message_id="m",
        message_type="t",
        user_id="guest",
        app_id="ari-proxy",
    ),
]
LEFT_TO_PAMQP = [
    Basic.Properties(headers={"x": 1}),
    Basic.Properties(timestamp=datetime.datetime(2026, 12, 6, tzinfo=datetime.UTC)),
]


def _fields(frame: Any) -> dict[str, Any]:
    if isinstance(frame, ContentHeader):
        props = {k: getattr(frame.properties, k) for k in Basic.Properties.__slots__}
        head = {"class_id": frame.class_id, "weight": frame.weight, "size": frame.body_size}
        return {**head, **props}
    if isinstance(frame, ContentBody):
        return {"value": frame.value}
    return {k: getattr(frame, k) for k in getattr(frame, "__slots__", ())}


def _split(raw: bytes) -> tuple[int, bytes]:
    kind, _, size = struct.unpack(">BHI", raw[:7])
    return kind, raw[7 : 7 + size]


@pytest.mark.parametrize(
    "frame",
    [
        *DELIVERIES,
        *(ContentHeader(0, size, p) for p in PROPERTIES for size in (0, 7, 2**40)),
        ContentBody(b'{"kind":"AsteriskInfo"}'),
        ContentBody(bytes(range(256)) * 500),
    ],
)
def test_a_delivery_s_frames_decode_as_pamqp_decodes_them(frame: Any) -> None:
    raw = pamqp.frame.marshal(frame, 3)
    _, _, expected = pamqp.frame.unmarshal(raw)
    decoded = decode_frame(*_split(raw))
    assert type(decoded) is type(expected)
    assert _fields(decoded) == _fields(expected)


@pytest.mark.parametrize(
    "frame",
    [
        *(ContentHeader(0, 1, p) for p in LEFT_TO_PAMQP),
        Basic.Ack(5),
        Basic.ConsumeOk("ctag"),
        Channel.CloseOk(),
        Connection.Close(320, "shutdown", 0, 0),
    ],
)
def test_other_frames_are_left_to_pamqp(frame: Any) -> None:
    assert decode_frame(*_split(pamqp.frame.marshal(frame, 1))) is None


def test_bytes_that_do_not_decode_are_left_to_pamqp_to_refuse() -> None:
    assert decode_frame(3, b"") is None  # an empty body frame: pamqp says "No frame size"
    deliver = _split(pamqp.frame.marshal(DELIVERIES[1], 1))[1]
    header = _split(pamqp.frame.marshal(ContentHeader(0, 1, PROPERTIES[2]), 1))[1]
    for broken in (
        deliver[:-3],  # a short string past the end
        deliver + b"x",  # trailing bytes
        deliver[:4],  # nothing after the method
        header[:-1],
        header + b"\0",
        header[:12],
    ):
        kind = 2 if broken.startswith(header[:4]) else 1
        assert decode_frame(kind, broken) is None
    assert decode_frame(1, deliver[:5] + b"\xff" + deliver[6:]) is None  # not UTF-8


async def _read_all(receiver: AnyReceiver) -> list[tuple[int, int, Any]]:
    frames = []
    while True:
        try:
            frames.append(await receiver.get_frame())
        except StopAsyncIteration:
            return frames


def _stream(data: bytes, marked: bool) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    if marked:
        reader._ari_proxy_reads_fast = True  # type: ignore[attr-defined]  # what the factory sets
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_a_marked_stream_reads_the_frames_aiormq_reads() -> None:
    frames = [Connection.Start(), *DELIVERIES, Heartbeat(), Basic.Ack(3)]
    frames += [ContentHeader(0, 9, p) for p in [*PROPERTIES, *LEFT_TO_PAMQP]]
    frames += [ContentBody(b"x" * 9)]
    data = b"".join(pamqp.frame.marshal(f, n % 3) for n, f in enumerate(frames))
    ours = await _read_all(FrameReceiver(_stream(data, marked=True)))
    theirs = await _read_all(_Aiormq(_stream(data, marked=False)))
    assert len(ours) == len(theirs) == len(frames)
    for (weight, channel, frame), (their_weight, their_channel, their_frame) in zip(
        ours, theirs, strict=True
    ):
        assert (weight, channel, type(frame)) == (their_weight, their_channel, type(their_frame))
        assert _fields(frame) == _fields(their_frame)


async def test_a_cut_frame_and_a_bad_frame_end_fail_as_aiormq_says() -> None:
    start = pamqp.frame.marshal(Connection.Start(), 0)
    deliver = pamqp.frame.marshal(DELIVERIES[1], 1)
    for marked, cls in ((True, FrameReceiver), (False, _Aiormq)):
        receiver = cls(_stream(start + deliver[:-4], marked))
        await receiver.get_frame()
        with pytest.raises(AMQPConnectionError, match=r"unexpectedly closed\. Read \d+ bytes"):
            await receiver.get_frame()
        receiver = cls(_stream(start + deliver[:-1] + b"\0", marked))
        await receiver.get_frame()
        with pytest.raises(InvalidFrameError, match="Last byte error"):
            await receiver.get_frame()
