"""The in-memory transport and the pieces every backend shares (subject checks, state keeper,
handler runner).

The transport contract runs on it (`TestMemoryTransport`); below it is what only the memory
transport has (deterministic round-robin, simulated outages, a payload limit of one's choice)
and unit tests of the shared helpers.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import pytest
from bus_contract import NewTransport, TransportContract

from ari_proxy._exceptions import ClientClosedError, NoProxyError, RequestTimeout, TransportError
from ari_proxy.bus import BusMessage, BusState, MemoryBroker, MemoryTransport
from ari_proxy.bus._handlers import HandlerRunner
from ari_proxy.bus._state import StateKeeper
from ari_proxy.bus._transport import check_subject, subject_matches
from ari_proxy.protocol import ProtocolError

if TYPE_CHECKING:
    from conftest import Until


class TestMemoryTransport(TransportContract):
    """The transport contract, on one in-memory broker per test (with a 64 KiB payload limit,
    so that the limit's part of the contract runs too)."""

    @pytest.fixture
    def new_transport(self) -> NewTransport:
        broker = MemoryBroker()
        return lambda **options: broker.transport(**{"max_payload": 64 * 1024, **options})


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("ari.event.>", "ari.event.app.node", True),
        ("ari.event.>", "ari.event.app", True),
        ("ari.event.>", "ari.event", False),
        ("ari.event.*.n1", "ari.event.app.n1", True),
        ("ari.event.*.n1", "ari.event.app.n2", False),
        ("ari.event.*.n1", "ari.event.app.n1.x", False),
        ("ari.*", "ari.ping", True),
        ("ari.*", "ari", False),
        ("ari.ping", "ari.ping", True),
        ("ari.ping", "ari.pings", False),
        (">", "anything.at.all", True),
    ],
)
def test_subject_matches(pattern: str, subject: str, expected: bool) -> None:
    assert subject_matches(pattern, subject) is expected


@pytest.mark.parametrize(
    ("subject", "wildcards", "valid"),
    [
        ("ari.command.app.02:fc:00:00:00:01", False, True),
        ("01hwx3k9y6q6n1v8d2f0c3b7ae-rp", False, True),
        ("_INBOX.abc.def", False, True),
        ("ari.event.>", True, True),
        ("ari.*.app.*", True, True),
        ("ari.event.>", False, False),
        ("ari.*", False, False),
        ("ari.>.app", True, False),
        ("ari.ev*", True, False),
        ("ari..x", True, False),
        (".ari", False, False),
        ("ari.", False, False),
        ("ari x", False, False),
        ("ari\tx", False, False),
        ("ari\x00x", False, False),
        ("", True, False),
    ],
)
def test_check_subject(subject: str, wildcards: bool, valid: bool) -> None:
    if valid:
        assert check_subject(subject, wildcards=wildcards) == subject
    else:
        with pytest.raises(ProtocolError):
            check_subject(subject, wildcards=wildcards)


def test_payload_limit_is_off_by_default_and_checked() -> None:
    assert MemoryTransport().max_payload is None
    assert MemoryTransport(max_payload=10).max_payload == 10
    with pytest.raises(ValueError, match="max_payload"):
        MemoryTransport(max_payload=0)


async def test_queue_group_is_round_robin(until: Until) -> None:
    async with asyncio.timeout(5):
        broker = MemoryBroker()
        publisher = broker.transport()
        members = [broker.transport() for _ in range(3)]
        got: list[list[bytes]] = [[], [], []]
        await publisher.connect()
        for member, seen in zip(members, got, strict=True):
            await member.connect()
            await member.serve("ari.create", lambda m, seen=seen: seen.append(m.data), group="g")
        for i in range(300):
            await publisher.publish("ari.create", str(i).encode())
        await until(lambda: sum(map(len, got)) == 300)
        assert [len(seen) for seen in got] == [100, 100, 100]
        assert got[0][:2] == [b"0", b"3"] and got[2][-1] == b"299"


async def test_cut_and_restore(until: Until) -> None:
    async with asyncio.timeout(5):
        broker = MemoryBroker()
        server, client = broker.transport(), broker.transport()
        await server.connect()
        await client.connect()
        states: list[BusState] = []
        server.on_state(states.append)
        seen: list[bytes] = []

        async def answer(message: BusMessage) -> None:
            seen.append(message.data)
            await server.reply(message, b"ok")

        await server.serve("ari.get", answer)
        broker.cut(server)
        assert server.state is BusState.RECONNECTING and client.state is BusState.CONNECTED
        # As on NATS: the broker forgets the subscriptions of a link that is down.
        with pytest.raises(NoProxyError):
            await client.request("ari.get", b"", timeout=1)
        await server.publish("ari.event.a.n", b"lost")
        assert broker.lost == 1
        broker.restore()
        assert states == [BusState.RECONNECTING, BusState.CONNECTED] and server.gaps == 1
        assert client.gaps == 0  # it was never cut
        assert await client.request("ari.get", b"back", timeout=1) == b"ok"
        assert seen == [b"back"]

        broker.cut()  # everyone
        assert client.state is BusState.RECONNECTING
        with pytest.raises(RequestTimeout):
            await client.request("ari.get", b"", timeout=0.05)
        broker.restore()
        assert client.gaps == 1 and server.gaps == 2


async def test_usable_without_a_shared_broker() -> None:
    async with asyncio.timeout(5):
        bus = MemoryTransport()
        await bus.connect()
        try:

            async def echo(message: BusMessage) -> None:
                await bus.reply(message, message.data)

            await bus.serve("ari.get", echo)
            assert await bus.request("ari.get", b"self", timeout=1) == b"self"
        finally:
            await bus.close()
        with pytest.raises(ClientClosedError):
            await bus.connect()


async def test_publish_before_connect() -> None:
    async with asyncio.timeout(5):
        bus = MemoryTransport()
        with pytest.raises(TransportError, match="connect"):
            await bus.publish("ari.x", b"")
        with pytest.raises(TransportError, match="connect"):
            await bus.request("ari.x", b"", timeout=0.1)
        broker = bus.broker
        broker.cut(bus)  # before connect: the link comes up cut
        await bus.connect()
        assert bus.state is BusState.RECONNECTING
        broker.restore(bus)
        assert bus.state is BusState.CONNECTED and bus.gaps == 1
        await bus.close()


def test_state_keeper_survives_a_broken_callback(caplog: pytest.LogCaptureFixture) -> None:
    keeper = StateKeeper()
    seen: list[BusState] = []

    def broken(state: BusState) -> None:
        raise RuntimeError("observer failed")

    keeper.add(broken)
    keeper.add(seen.append)
    keeper.set(BusState.CONNECTED)
    keeper.set(BusState.CONNECTED)  # no change, no call
    keeper.set(BusState.CLOSED)
    assert seen == [BusState.CONNECTED, BusState.CLOSED]
    assert len([r for r in caplog.records if "on_state callback" in r.getMessage()]) == 2


async def test_handler_runner_drain_cancels_stragglers(
    until: Until, caplog: pytest.LogCaptureFixture
) -> None:
    async with asyncio.timeout(5):
        cancelled = asyncio.Event()
        running: list[BusMessage] = []

        async def forever(message: BusMessage) -> None:
            running.append(message)
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise

        runner = HandlerRunner("ari.x", forever, max_inflight=4)
        runner(BusMessage("ari.x", b""))
        runner(BusMessage("ari.x", b""))
        await until(lambda: len(running) == 2)
        assert runner.inflight == 2
        assert await runner.drain(0.05) is False
        assert cancelled.is_set() and runner.inflight == 0
        assert any(r.levelno == logging.WARNING for r in caplog.records)
        assert await runner.drain(0.05) is True  # nothing left

    with pytest.raises(ValueError, match="max_inflight"):
        HandlerRunner("ari.x", print, max_inflight=0)
