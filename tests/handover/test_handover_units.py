"""The handover logic alone (docs/handover.md): owners watched through their presence, calls
offered again as `CallHandover` with the state saved beside them, one owner at a time, the
fallback when nobody takes them; and the dialog bindings that move to the new owner.

A recording `publish`, `settle` and `snapshot` stand in for the bus and Asterisk; times are
short.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import pytest
import pytest_asyncio

from ari_proxy import CallHandover, ConflictError, NoProxyError, RequestTimeout, TooLargeError
from ari_proxy.ari import Executor, HttpTransport
from ari_proxy.bus import BusMessage, MemoryBroker, Transport
from ari_proxy.client import ProxyBackend, ProxyClient
from ari_proxy.events import decode_event
from ari_proxy.protocol import (
    DialogRouter,
    ErrorCode,
    Key,
    Presence,
    PresenceRole,
    RequestClass,
    Response,
    Subjects,
    decode_request,
    encode_response,
    error_response,
)
from ari_proxy.server._dispatch import Dispatcher
from ari_proxy.server._handover import Snapshot
from ari_proxy.server._offers import CallOffers, Fallback, TakeVerdict
from ari_proxy.testing import wait_until

APP = "app"
NODE = "02:aa"
LISTEN = f"ari.listen.{APP}.{NODE}"


class Stack:
    """Records what the offers publish and settle; answers snapshots; a bus switch."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []
        self.settled: list[str] = []
        self.moved: list[tuple[str, str]] = []
        self.bus = True
        self.gone: set[str] = set()
        self.asterisk_down = False

    async def publish(self, subject: str, data: bytes) -> bool:
        self.published.append((subject, data))
        return True

    async def settle(self, app: str, channel: str, fallback: Fallback) -> None:
        self.settled.append(channel)

    async def snapshot(self, app: str, channels: Sequence[str]) -> dict[str, Snapshot]:
        if self.asterisk_down:
            raise RequestTimeout("Asterisk did not answer")
        bridge = json.dumps({"id": "br-1", "channels": list(channels)}).encode()
        return {
            c: Snapshot(json.dumps({"id": c, "state": "Up"}).encode(), (bridge,))
            for c in channels
            if c not in self.gone
        }

    def handovers(self) -> list[CallHandover]:
        found = []
        for subject, data in self.published:
            if subject != LISTEN:
                continue
            event = decode_event(data)
            if isinstance(event, CallHandover):
                found.append(event)
        return found


@pytest_asyncio.fixture
async def offers() -> AsyncIterator[tuple[CallOffers, Stack]]:
    stack = Stack()
    calls = CallOffers(
        stack.publish,
        stack.settle,
        Subjects(),
        node=lambda: NODE,
        deadline=0.6,
        retry=(0.05, 0.1),
        snapshot=stack.snapshot,
        move=lambda old, new: stack.moved.append((old, new)),
        liveness_timeout=0.2,
        bus_up=lambda: stack.bus,
        recovery_grace=0.3,
        max_state=16,
        max_state_total=40,
    )
    calls.start()
    yield calls, stack
    await calls.stop()


def here(calls: CallOffers, instance: str, *, leaving: bool = False) -> None:
    calls.on_presence(
        Presence(
            role=PresenceRole.LISTENER,
            application=APP,
            instance=instance,
            interval=0.05,
            leaving=leaving,
        )
    )


async def keep_alive(calls: CallOffers, instance: str) -> None:
    while True:
        here(calls, instance)
        await asyncio.sleep(0.05)  # a heartbeat: the instance's own pace


async def test_a_silent_owner_s_calls_are_handed_over_with_their_state(
    offers: tuple[CallOffers, Stack],
) -> None:
    calls, stack = offers
    alive = asyncio.create_task(keep_alive(calls, "in-b"))
    try:
        here(calls, "in-a")
        await calls.offer(APP, "c1", b'{"type":"StasisStart"}')
        assert calls.take(APP, "c1", "in-a", "dl-a") is TakeVerdict.OFFERED
        assert calls.save_state("c1", "in-a", b"step-1")
        assert calls.save_state("c1", "in-a", b"step-2")  # replaces the first
        assert not calls.save_state("c1", "in-b", b"not-the-owner")
        await wait_until(lambda: len(stack.handovers()) == 1, timeout=3)
        (handover,) = stack.handovers()
        assert (handover.channel.id, handover.previous_owner) == ("c1", "in-a")
        assert (handover.reason, handover.state) == ("lost", b"step-2")
        assert [b.id for b in handover.bridges] == ["br-1"]
        assert calls.owner("c1") is None  # nobody owns it while it is offered
        # The old owner hears that the call is no longer its own, on the call's dialog, and
        # what it sent before it heard is refused (a stalled event loop sends it late).
        assert any(s == "ari.dialogevent.dl-a" for s, _ in stack.published)
        assert calls.handed_away("dl-a")

        assert calls.take(APP, "c1", "in-a", "dl-a") is TakeVerdict.TAKEN  # never back
        assert calls.take(APP, "c1", "in-b", "dl-b") is TakeVerdict.OFFERED
        assert calls.take(APP, "c1", "in-c", "dl-c") is TakeVerdict.TAKEN  # one owner
        assert calls.owner("c1") == ("in-b", "dl-b")
        assert not calls.handed_away("dl-b")
        assert stack.moved == [("dl-a", "dl-b")]
        assert calls.counters["handovers"] == 1
        assert stack.settled == []
    finally:
        alive.cancel()


async def test_the_state_travels_on_through_a_second_handover(
    offers: tuple[CallOffers, Stack],
) -> None:
    calls, stack = offers
    here(calls, "in-a")
    await calls.offer(APP, "c1", b'{"type":"StasisStart"}')
    calls.take(APP, "c1", "in-a", "dl-a")
    calls.save_state("c1", "in-a", b"kept")
    here(calls, "in-a", leaving=True)  # at once, with no wait for silence
    await wait_until(lambda: len(stack.handovers()) == 1, timeout=1)
    assert stack.handovers()[0].reason == "left"
    assert calls.take(APP, "c1", "in-b", "dl-b") is TakeVerdict.OFFERED
    assert calls.hand_over("c1", "in-b")  # draining
    assert not calls.hand_over("c1", "in-b")  # no longer its own
    await wait_until(lambda: len(stack.handovers()) == 2, timeout=1)
    second = stack.handovers()[1]
    assert (second.reason, second.state, second.previous_owner) == ("drain", b"kept", "in-b")
    assert second.handover_id != stack.handovers()[0].handover_id


async def test_state_is_bounded_per_call_and_in_all(offers: tuple[CallOffers, Stack]) -> None:
    calls, _ = offers
    for i in range(3):
        here(calls, "in-a")
        calls.take(APP, f"c{i}", "in-a", f"dl-{i}")
    with pytest.raises(TooLargeError, match="exceeds the 16 bytes"):
        calls.save_state("c0", "in-a", b"x" * 17)
    assert calls.save_state("c0", "in-a", b"x" * 16)
    assert calls.save_state("c1", "in-a", b"x" * 16)
    with pytest.raises(TooLargeError, match="its bound"):
        calls.save_state("c2", "in-a", b"x" * 16)  # 48 > 40 in all
    assert calls.save_state("c1", "in-a", b"y" * 8)  # a smaller state replaces a larger one
    assert calls.state_bytes == 24
    calls.ended("c0")  # the call left Stasis: its state goes with it
    assert calls.state_bytes == 8
    assert calls.counters["states_refused"] == 2


async def test_nobody_takes_a_handover_then_the_fallback_runs(
    offers: tuple[CallOffers, Stack],
) -> None:
    calls, stack = offers
    here(calls, "in-a")
    calls.take(APP, "c1", "in-a", "dl-a")
    here(calls, "in-a", leaving=True)
    await wait_until(lambda: stack.settled == ["c1"], timeout=3)
    assert calls.pending == 0 and calls.owned == 0


async def test_a_call_whose_snapshot_cannot_be_read_falls_back_at_the_deadline(
    offers: tuple[CallOffers, Stack],
) -> None:
    calls, stack = offers
    here(calls, "in-a")
    calls.take(APP, "c1", "in-a", "dl-a")
    stack.asterisk_down = True
    here(calls, "in-a", leaving=True)
    await wait_until(lambda: stack.settled == ["c1"], timeout=3)
    assert calls.handing_over == 0 and stack.handovers() == []


async def test_a_call_gone_before_its_handover_is_not_offered(
    offers: tuple[CallOffers, Stack],
) -> None:
    calls, stack = offers
    here(calls, "in-a")
    calls.take(APP, "c1", "in-a", "dl-a")
    stack.gone.add("c1")
    here(calls, "in-a", leaving=True)
    await wait_until(lambda: calls.handing_over == 0, timeout=1)
    assert stack.handovers() == [] and calls.pending == 0


async def test_no_owner_is_judged_while_the_server_is_cut_off(
    offers: tuple[CallOffers, Stack],
) -> None:
    calls, stack = offers
    here(calls, "in-a")
    calls.take(APP, "c1", "in-a", "dl-a")
    stack.bus = False
    await asyncio.sleep(0.5)  # negative check: over twice the liveness timeout, blind
    assert stack.handovers() == []
    stack.bus = True
    here(calls, "in-a")  # heard again within the recovery grace
    await asyncio.sleep(0.2)  # negative check: still within the grace
    assert stack.handovers() == [] and calls.owner("c1") == ("in-a", "dl-a")


def test_a_dialog_s_bindings_move_to_the_new_owner_with_its_pin() -> None:
    router = DialogRouter(100)
    router.bind("dl-a", "channel", "c1", pin=True)
    router.bind("dl-a", "bridge", "br-1")
    router.move("dl-a", "dl-b")
    assert router.dialog_ids() == {"dl-b"}
    assert router.is_pinned("channel", "c1") and not router.is_pinned("bridge", "br-1")
    assert router.dialogs([("channel", "c1"), ("bridge", "br-1")]) == ["dl-b"]


# --- the client's side, on the in-memory bus -------------------------------------------------


def _handover(node: str, channel: str, handover_id: str) -> bytes:
    return json.dumps(
        {
            "type": "CallHandover",
            "application": APP,
            "asterisk_id": node,
            "channel": {"id": channel, "state": "Up"},
            "previous_owner": "in-gone",
            "reason": "lost",
            "state": "c3RlcC0y",  # step-2
            "handover_id": handover_id,
        }
    ).encode()


@dataclass
class MemoryStack:
    """A proxy client on an in-memory bus, and another connection to that bus (a server or a
    spy)."""

    broker: MemoryBroker
    transport: Transport
    backend: ProxyBackend
    client: ProxyClient
    peer: Transport


@pytest_asyncio.fixture
async def memory() -> AsyncIterator[MemoryStack]:
    broker = MemoryBroker()
    transport = broker.transport()
    await transport.connect()
    backend = ProxyBackend(transport, APP, timeout=0.5, discovery_wait=0.1)
    await backend.start()
    client = ProxyClient(backend, timeout=0.5)
    peer = broker.transport()
    await peer.connect()
    try:
        yield MemoryStack(broker, transport, backend, client, peer)
    finally:
        await client.close()


async def test_a_client_takes_handovers_only_from_servers_that_announce_them(
    memory: MemoryStack,
) -> None:
    backend, client = memory.backend, memory.client
    taken: list[Key] = []

    async def take(key: Key) -> bool:
        taken.append(key)
        return True

    backend.take = take  # type: ignore[method-assign]
    cluster = backend.cluster
    cluster.seen("old", APP, ["listen"])
    cluster.seen("new", APP, ["listen", "handover"])
    spy = memory.peer
    async with client.listen() as calls:
        await spy.publish(f"ari.listen.{APP}.old", _handover("old", "c1", "ho-1"))
        await spy.publish(f"ari.listen.{APP}.new", _handover("new", "c1", "ho-2"))
        await spy.publish(f"ari.listen.{APP}.new", _handover("new", "c1", "ho-2"))  # again
        call = await calls.next(timeout=2)
        assert call.handed_over and call.state == b"step-2"
        assert call.handover is not None and call.handover.previous_owner == "in-gone"
        assert (call.event.channel.id, call.channel.key.node) == ("c1", "new")
        # The same channel handed over once more (a second loss) is a new offer.
        await spy.publish(f"ari.listen.{APP}.new", _handover("new", "c1", "ho-3"))
        again = await calls.next(timeout=2)
        assert again.handover is not None and again.handover.handover_id == "ho-3"
    assert [k.node for k in taken] == ["new", "new"]
    assert backend._listening.ignored >= 2  # the old server's, and the repeat
    with pytest.raises(NoProxyError, match="does not keep call state"):
        await backend.save_state(Key("channel", "c9", "old", "dl", APP), b"x")


async def test_an_owner_that_hears_its_call_was_handed_over_stops_controlling_it(
    memory: MemoryStack,
) -> None:
    backend, client = memory.backend, memory.client

    async def take(key: Key) -> bool:
        return True

    backend.take = take  # type: ignore[method-assign]
    backend.cluster.seen("new", APP, ["listen", "handover"])
    spy = memory.peer
    async with client.listen() as calls:
        await spy.publish(f"ari.listen.{APP}.new", _handover("new", "c1", "ho-1"))
        call = await calls.next(timeout=2)
        # A later loss (this instance was cut off): the server says so on the call's dialog.
        notice = json.loads(_handover("new", "c1", "ho-2"))
        notice["previous_owner"] = client.instance
        await spy.publish(f"ari.dialogevent.{call.dialog}", json.dumps(notice).encode())
        event = await call.events.next(timeout=2)
        assert isinstance(event, CallHandover) and event.handover_id == "ho-2"
        requests: list[bytes] = []

        async def record(message: BusMessage) -> None:
            requests.append(message.data)

        await spy.serve(Subjects().request("command", APP, "new"), record)
        with pytest.raises(ConflictError, match="handed over to another instance"):
            await call.channel.answer()
        assert requests == []  # refused before anything was sent


async def test_after_a_bus_gap_an_owner_learns_which_calls_went_to_another_instance(
    memory: MemoryStack,
) -> None:
    broker, transport = memory.broker, memory.transport
    backend, client = memory.backend, memory.client
    backend.cluster.seen("new", APP, ["listen", "handover"])
    server = memory.peer
    taken_elsewhere: set[str] = set()
    takes: list[str] = []

    async def answer(message: BusMessage) -> None:
        request = decode_request(message.data)
        channel = request.key.id if request.key else ""
        takes.append(channel)
        if channel in taken_elsewhere:
            reply = error_response("call is another instance's", ErrorCode.TAKEN, status=409)
        else:
            reply = Response()
        await server.reply(message, encode_response(reply))

    await server.serve(Subjects().request("command", APP, "new"), answer)
    async with client.listen() as calls:
        for channel in ("c1", "c2"):
            await server.publish(f"ari.listen.{APP}.new", _handover("new", channel, channel))
        one, two = await calls.next(timeout=2), await calls.next(timeout=2)
        taken_elsewhere.add("c1")  # handed over while this instance was cut off
        broker.cut(transport)
        broker.restore(transport)
        await wait_until(lambda: takes.count("c1") == 2 and takes.count("c2") == 2)
        await wait_until(lambda: backend._listening.handed_away(one.dialog))
        with pytest.raises(ConflictError, match="handed over to another instance"):
            await one.channel.answer()
        assert not backend._listening.handed_away(two.dialog)  # still this instance's


async def test_a_request_in_a_handed_over_call_s_dialog_is_refused_by_the_server(
    offers: tuple[CallOffers, Stack],
) -> None:
    """An owner whose event loop stalled past the liveness timeout may send a request queued
    before the stall (a hang-up on a timer) before it reads the `CallHandover`: the server must
    not run it on a call that is another instance's now."""
    calls, stack = offers
    # Port 9 (discard): a request that passes the check fails as `ari_down`, never runs.
    http = HttpTransport("http://127.0.0.1:9/ari", "u", "p", timeout=2.0)
    dispatcher = Dispatcher(
        {APP: Executor(http, APP, lambda: NODE)},
        DialogRouter(),
        node=lambda: NODE,
        request_timeout=2.0,
        file_limit=lambda: 10,
        offers=calls,
    )

    async def hangup(dialog: str) -> str:
        data = json.dumps({"kind": "ChannelHangup", "key": {"id": "c1", "dialog": dialog}})
        response = await dispatcher.dispatch(APP, RequestClass.COMMAND, data.encode(), "s")
        assert response is not None
        return response.code

    alive = asyncio.create_task(keep_alive(calls, "in-b"))
    try:
        here(calls, "in-a")
        await calls.offer(APP, "c1", b'{"type":"StasisStart"}')
        assert calls.take(APP, "c1", "in-a", "dl-a") is TakeVerdict.OFFERED
        assert await hangup("dl-a") == "ari_down"  # the owner's request runs
        await wait_until(lambda: len(stack.handovers()) == 1, timeout=3)
        assert await hangup("dl-a") == "taken"  # the old owner's, late: refused
        assert calls.take(APP, "c1", "in-b", "dl-b") is TakeVerdict.OFFERED
        assert await hangup("dl-b") == "ari_down"  # the new owner's runs
    finally:
        alive.cancel()
        await http.close()
