"""What the RabbitMQ transport relies on in aiormq beyond its documented API, checked by name.

The events path (`_rabbitmq_link.write_frames`) puts whole batches of publish frames on the
connection's writer queue, as aiormq's own `basic_publish` does, and the link gives that queue
a way to wait for room (`_WriteQueue`). aiormq declares these names in `aiormq.abc` but their
behaviour is defined by its writer task alone, so pyproject.toml pins aiormq to the versions
tested, and these checks fail with a message naming what changed when a new aiormq no longer
fits. Fix `_rabbitmq_link.py` (or fall back to `basic_publish` per event), run tests/bus
against a broker, then widen the pin. No broker is needed here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.metadata
import inspect

import aiormq
import aiormq.abc

from ari_proxy.bus._rabbitmq_link import _Connection, _WriteQueue

VERSION = importlib.metadata.version("aiormq")
WHO = f"aiormq {VERSION}: ari_proxy/bus/_rabbitmq_link.py relies on"


def test_channel_frame_is_what_write_frames_builds() -> None:
    names = [f.name for f in dataclasses.fields(aiormq.abc.ChannelFrame)]
    assert names[:3] == ["payload", "should_close", "drain_future"], (
        f"{WHO} ChannelFrame(payload, should_close, drain_future); it has {names}"
    )
    loop = asyncio.new_event_loop()
    try:
        drained = loop.create_future()
        frame = aiormq.abc.ChannelFrame(payload=b"x", should_close=False, drain_future=drained)
        assert frame.should_drain, f"{WHO} ChannelFrame.should_drain with a pending future"
        frame.drain()
        assert drained.done(), f"{WHO} ChannelFrame.drain() setting the drain future"
    finally:
        loop.close()


def test_the_writer_writes_queued_frames_and_then_drains_them() -> None:
    writer = getattr(aiormq.Connection, "_Connection__writer", None)
    assert writer is not None, f"{WHO} the connection's writer task Connection.__writer"
    source = inspect.getsource(writer)
    for needed in (
        "FrameGenerator(self.write_queue)",  # reads the queue the link installs
        "writer.write(channel_frame.payload)",
        "channel_frame.should_close",
        "channel_frame.should_drain",
        "channel_frame.drain()",
    ):
        assert needed in source, f"{WHO} the writer task doing `{needed}`"


async def test_the_connection_takes_the_link_s_write_queue() -> None:
    assert isinstance(aiormq.abc.AbstractConnection.__dict__.get("FRAME_BUFFER_SIZE"), int), (
        f"{WHO} AbstractConnection.FRAME_BUFFER_SIZE"
    )
    assert "write_queue" in aiormq.abc.AbstractConnection.__annotations__, (
        f"{WHO} AbstractConnection.write_queue"
    )
    assert "connection" in aiormq.abc.AbstractChannel.__annotations__, (
        f"{WHO} AbstractChannel.connection"
    )
    conn = _Connection("amqp://guest:guest@127.0.0.1:1/")  # no I/O until connect()
    assert isinstance(conn.write_queue, _WriteQueue) and conn.write_queue.maxsize == 256, (
        f"{WHO} Connection.__init__ making write_queue, which _Connection then replaces"
    )
    observer = conn.closing
    observer.cancel()
    assert not conn.is_closed and conn.closing is not observer, (
        f"{WHO} `closing` giving an independent observer (cancelling it must not close)"
    )


def test_the_methods_and_parameters_used() -> None:
    def parameters(function: object) -> set[str]:
        return set(inspect.signature(function).parameters)  # type: ignore[arg-type]

    assert {"wait", "mandatory", "timeout", "properties"} <= parameters(
        aiormq.Channel.basic_publish
    ), f"{WHO} Channel.basic_publish(..., wait=...)"
    assert {"publisher_confirms", "frame_buffer_size"} <= parameters(aiormq.Connection.channel), (
        f"{WHO} Connection.channel(publisher_confirms=..., frame_buffer_size=...)"
    )
    assert {"context", "client_properties"} <= parameters(aiormq.Connection.__init__), (
        f"{WHO} Connection(url, context=..., client_properties=...)"
    )


async def test_the_write_queue_wakes_whoever_waits_for_room() -> None:
    queue = _WriteQueue(2)
    assert queue.room().done()  # room at once
    frame = aiormq.abc.ChannelFrame(payload=b"", should_close=False)
    queue.put_nowait(frame)
    queue.put_nowait(frame)
    first, second = queue.room(), queue.room()
    assert not first.done()
    await queue.get()  # what aiormq's writer does (through FrameGenerator)
    assert first.done() and second.done()
    queue.put_nowait(frame)
    third = queue.room()
    queue.get_nowait()
    assert third.done()


def test_the_channel_reader_hands_returns_to_an_instance_attribute() -> None:
    """`_rabbitmq_rpc.ReplyChannel` publishes requests unconfirmed and takes their returns
    itself: it replaces the channel's `_on_return_frame`, which the reader calls through
    `self` for each basic.return, and reads the content with `_get_frame` and `_read_content`."""
    reader = inspect.getsource(aiormq.Channel._reader)
    assert "await self._on_return_frame(frame)" in reader, (
        f"{WHO} Channel._reader calling self._on_return_frame(frame) for a basic.return"
    )
    assert list(inspect.signature(aiormq.Channel._read_content).parameters) == [
        "self",
        "frame",
        "header",
    ], f"{WHO} Channel._read_content(frame, header)"
    assert inspect.iscoroutinefunction(aiormq.Channel._get_frame), f"{WHO} Channel._get_frame()"


def test_the_channel_reader_hands_deliveries_to_an_instance_attribute() -> None:
    """`_rabbitmq_link.deliver_inline` replaces a channel's `_on_deliver_frame`, which the
    reader calls through `self` for each basic.deliver."""
    reader = inspect.getsource(aiormq.Channel._reader)
    assert "await self._on_deliver_frame(frame)" in reader, (
        f"{WHO} Channel._reader calling self._on_deliver_frame(frame) for a basic.deliver"
    )


def test_connect_makes_its_receiver_from_the_module_name_the_reader_replaces() -> None:
    from ari_proxy.bus._rabbitmq_reader import FrameReceiver

    assert aiormq.connection.FrameReceiver is FrameReceiver, (
        f"{WHO} aiormq.connection.FrameReceiver being replaceable (_rabbitmq_reader)"
    )
    connect = inspect.getsource(aiormq.Connection.connect)
    assert "FrameReceiver(reader)" in connect, f"{WHO} connect() making FrameReceiver(reader)"
    assert "self._transport_factory.create(" in connect, (
        f"{WHO} connect() opening its streams with self._transport_factory.create(...)"
    )
    receiver = inspect.getsource(aiormq.connection.FrameReceiver.__mro__[1])
    for needed in ("self.started", "async def get_frame", "async def __anext__"):
        assert needed in receiver, f"{WHO} FrameReceiver having `{needed}`"


async def test_the_link_s_connections_read_fast_and_others_as_aiormq_does() -> None:
    from ari_proxy.bus._rabbitmq_reader import MarkingTransportFactory

    ours = _Connection("amqp://guest:guest@127.0.0.1:1/")
    theirs = aiormq.Connection("amqp://guest:guest@127.0.0.1:1/")
    assert isinstance(ours._transport_factory, MarkingTransportFactory)
    assert not isinstance(theirs._transport_factory, MarkingTransportFactory)
