"""The in-memory message bus, with NATS semantics.

`MemoryBroker` is the bus and `MemoryTransport` one connection to it: subjects with `*` and `>`,
queue groups (round-robin), request/reply with "no responders", gathers on a `<rid>-rp` reply
subject, an optional payload limit, and simulated outages (`MemoryBroker.cut`/`restore`). It is
deterministic and needs no broker process, for the unit tests of the server and the client and
for users' own tests.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._exceptions import ClientClosedError, NoProxyError, RequestTimeout, TransportError
from ..protocol import check_token, new_id
from ._handlers import HandlerRunner, drain_all
from ._state import StateKeeper
from ._transport import (
    MAX_GATHER_REPLIES,
    BusMessage,
    BusState,
    Handler,
    Transport,
    check_subject,
    subject_matches,
)

__all__ = ["MemoryBroker", "MemoryTransport"]


class _MemorySubscription:
    """One subscription of a `MemoryTransport` on its broker."""

    def __init__(
        self, transport: MemoryTransport, subject: str, group: str, runner: HandlerRunner
    ) -> None:
        self.transport = transport
        self.group = group
        self.runner = runner
        self.active = True
        self._subject = subject

    @property
    def subject(self) -> str:
        """The subject (possibly with wildcards) this subscription receives."""
        return self._subject

    def deliver(self, message: BusMessage) -> None:
        # Scheduled with call_soon: the subscription may have ended, or its link been cut, since.
        if not self.active:
            return
        if self.transport.is_cut:
            self.transport.broker.lost += 1
        else:
            self.runner(message)

    def end(self) -> None:
        if self.active:
            self.active = False
            self.transport.broker.remove(self)
            self.transport.forget(self)

    async def unsubscribe(self) -> None:
        """Stop receiving; idempotent."""
        self.end()


class MemoryBroker:
    """An in-process message bus with NATS semantics, shared by any number of transports.

    Each published message goes to every matching plain subscription and to one member of each
    matching queue group (round-robin, in subscription order). Delivery is asynchronous (the
    next turn of the event loop) and in publication order, as on NATS.

    `cut()` simulates an outage of some or all transports: they go RECONNECTING, and messages
    they publish or would receive are lost (counted in `lost`) until `restore()`, which brings
    them back to CONNECTED with their subscriptions, and counts a gap.
    """

    def __init__(self) -> None:
        self.lost = 0
        """Messages published by, or meant for, a transport whose link was cut."""
        self._subscriptions: list[_MemorySubscription] = []
        self._transports: list[MemoryTransport] = []
        self._turns: dict[str, itertools.count[int]] = {}

    def transport(self, **options: Any) -> MemoryTransport:
        """A new (not yet connected) transport on this broker; `options` as for MemoryTransport."""
        return MemoryTransport(self, **options)

    def cut(self, *transports: MemoryTransport) -> None:
        """Cut the link of `transports` (all attached ones when none are given)."""
        for transport in transports or tuple(self._transports):
            transport.set_cut(True)

    def restore(self, *transports: MemoryTransport) -> None:
        """Restore the link of `transports` (all attached ones when none are given)."""
        for transport in transports or tuple(self._transports):
            transport.set_cut(False)

    def attach(self, transport: MemoryTransport) -> None:
        if transport not in self._transports:
            self._transports.append(transport)

    def detach(self, transport: MemoryTransport) -> None:
        if transport in self._transports:
            self._transports.remove(transport)

    def add(self, subscription: _MemorySubscription) -> None:
        self._subscriptions.append(subscription)

    def remove(self, subscription: _MemorySubscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)

    def publish(self, subject: str, data: bytes, reply: str = "") -> int:
        """Route one message; return how many subscriptions it was given to."""
        message = BusMessage(subject=subject, data=data, reply=reply)
        chosen: list[_MemorySubscription] = []
        groups: dict[str, list[_MemorySubscription]] = {}
        for sub in self._subscriptions:
            if sub.transport.is_cut or not subject_matches(sub.subject, subject):
                continue
            if sub.group:
                groups.setdefault(sub.group, []).append(sub)
            else:
                chosen.append(sub)
        for group, members in groups.items():
            turn = next(self._turns.setdefault(group, itertools.count()))
            chosen.append(members[turn % len(members)])
        loop = asyncio.get_running_loop()
        for sub in chosen:
            loop.call_soon(sub.deliver, message)
        return len(chosen)


class MemoryTransport:
    """A connection to a `MemoryBroker`, implementing `Transport` with NATS semantics.

    ```python
    broker = MemoryBroker()
    server_bus, client_bus = broker.transport(), broker.transport()
    await server_bus.connect()
    await client_bus.connect()
    ```

    `max_payload` (bytes) makes it refuse larger messages as a NATS server does; by default it
    takes any size.
    """

    def __init__(
        self,
        broker: MemoryBroker | None = None,
        *,
        prefix: str = "ari.",
        name: str = "",
        max_inflight: int = 1024,
        drain_timeout: float = 5.0,
        max_payload: int | None = None,
        scope: str = "",
    ) -> None:
        del scope  # one process, no permissions: a client's scope changes nothing here
        if max_payload is not None and max_payload < 1:
            raise ValueError("max_payload must be positive (or None for no limit)")
        self.broker = broker if broker is not None else MemoryBroker()
        self.prefix = prefix
        self.name = name
        self.max_payload = max_payload
        """The largest message body it takes, or None for any size."""
        self.gaps = 0
        """Interruptions of the link so far (each `restore()` after a `cut()`)."""
        self.dropped = 0
        """Messages dropped because a subscription had `max_inflight` handler tasks running."""
        self.is_cut = False
        self._max_inflight = max_inflight
        self._drain_timeout = drain_timeout
        self._state = StateKeeper()
        self._closing = False
        self._closed = asyncio.Event()
        self._subscriptions: list[_MemorySubscription] = []
        self._waiters: set[asyncio.Future[Any]] = set()
        # Runners of ended subscriptions whose handler tasks still run: close() waits for them.
        self._retired: set[HandlerRunner] = set()

    @property
    def state(self) -> BusState:
        """Where the link is: CONNECTING until `connect()`, RECONNECTING while cut."""
        return self._state.state

    def on_state(self, callback: Callable[[BusState], None]) -> None:
        """Call `callback` on every state change."""
        self._state.add(callback)

    async def connect(self) -> None:
        """Attach to the broker.

        Raises:
            ClientClosedError: the transport was closed.
        """
        self._check_open()
        self.broker.attach(self)
        if self._state.state is BusState.CONNECTING:
            self._state.set(BusState.RECONNECTING if self.is_cut else BusState.CONNECTED)

    async def close(self) -> None:
        """Stop deliveries, wait (bounded) for handler tasks, and detach; idempotent.

        Pending requests and gathers fail with `ClientClosedError`.
        """
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        for sub in list(self._subscriptions):
            sub.end()
        for waiter in list(self._waiters):
            if not waiter.done():
                waiter.set_exception(ClientClosedError("the bus transport was closed"))
        deadline = asyncio.get_running_loop().time() + self._drain_timeout
        await drain_all(self._retired, deadline)
        self._retired.clear()
        self.broker.detach(self)
        self._state.set(BusState.CLOSED)
        self._closed.set()

    def set_cut(self, cut: bool) -> None:
        """Cut or restore this transport's link (see `MemoryBroker.cut`)."""
        if self._closing or cut is self.is_cut:
            return
        self.is_cut = cut
        if self._state.state is BusState.CONNECTING:
            return
        if not cut:
            self.gaps += 1
        self._state.set(BusState.RECONNECTING if cut else BusState.CONNECTED)

    def forget(self, subscription: _MemorySubscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
        self._retired = {runner for runner in self._retired if runner.inflight}
        if subscription.runner.inflight:
            self._retired.add(subscription.runner)

    # --- Transport -----------------------------------------------------------------------------

    async def serve(
        self, subject: str, handler: Handler, *, group: str = ""
    ) -> _MemorySubscription:
        """Receive requests on `subject` (one member of `group` per message, when given).

        Raises:
            ProtocolError: `subject` is not a valid subscription subject.
            ClientClosedError: the transport was closed.
        """
        return self._subscribe(subject, handler, group)

    async def subscribe(
        self, subject: str, handler: Handler, *, group: str = ""
    ) -> _MemorySubscription:
        """Receive messages matching `subject` (one member of `group` per message, when given).

        Raises:
            ProtocolError: `subject` is not a valid subscription subject.
            ClientClosedError: the transport was closed.
        """
        return self._subscribe(subject, handler, group)

    async def on_ping(self, subject: str, handler: Handler) -> _MemorySubscription:
        """Receive pings on `subject` (every subscriber gets each).

        Raises:
            ProtocolError: `subject` is not a valid subscription subject.
            ClientClosedError: the transport was closed.
        """
        return self._subscribe(subject, handler, "")

    async def reply(self, message: BusMessage, data: bytes) -> None:
        """Answer `message` on its reply subject (nothing when it has none).

        Raises:
            ProtocolError: the reply subject is invalid.
            TransportError: not connected yet, or `data` is larger than `max_payload`.
            ClientClosedError: the transport was closed.
        """
        if message.reply:
            await self.publish(message.reply, data)

    async def publish(self, subject: str, data: bytes) -> None:
        """Publish `data` on `subject` (lost while the link is cut).

        Allowed during `close()` until it ends, so handlers can still reply.

        Raises:
            ProtocolError: `subject` is empty, has wildcards or whitespace.
            TransportError: not connected yet, or `data` is larger than `max_payload`.
            ClientClosedError: the transport was closed.
        """
        check_subject(subject, wildcards=False)
        self._check_connected(draining_ok=True)
        self._check_payload(subject, data)
        self._send(subject, data)

    async def ping(self, subject: str, data: bytes) -> None:
        """Publish a ping; as `publish`."""
        await self.publish(subject, data)

    async def request(self, subject: str, data: bytes, *, timeout: float) -> bytes:
        """Send a request and return the first reply.

        Raises:
            RequestTimeout: no reply within `timeout` (also while the link is cut).
            NoProxyError: nobody subscribes to `subject`.
            ProtocolError: `subject` is invalid.
            TransportError: not connected yet, or `data` is larger than `max_payload`.
            ClientClosedError: the transport was closed before a reply came.
        """
        check_subject(subject, wildcards=False)
        self._check_connected()
        self._check_payload(subject, data)
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bytes] = loop.create_future()

        def on_reply(message: BusMessage) -> None:
            if not answer.done():
                answer.set_result(message.data)

        inbox = self._subscribe(f"_INBOX.{new_id()}", on_reply, "")
        self._waiters.add(answer)
        try:
            if self._send(subject, data, reply=inbox.subject) == 0:
                raise NoProxyError(f"nobody serves {subject!r} (no responders)")
            try:
                return await asyncio.wait_for(answer, timeout)
            except TimeoutError:
                raise RequestTimeout(f"no reply on {subject!r} within {timeout}s") from None
        finally:
            self._waiters.discard(answer)
            inbox.end()

    async def gather(
        self,
        subject: str,
        data: bytes,
        *,
        timeout: float,
        enough: Callable[[list[bytes]], bool],
    ) -> list[bytes]:
        """Send a request several servers answer and collect their replies.

        Collects until `enough(replies)` is true, `MAX_GATHER_REPLIES` arrived or `timeout`
        passed; returns at once with no replies when nobody subscribes to `subject`.

        Raises:
            ProtocolError: `subject` is invalid.
            TransportError: not connected yet, or `data` is larger than `max_payload`.
            ClientClosedError: the transport was closed during the gather.
            Exception: whatever `enough` raised.
        """
        check_subject(subject, wildcards=False)
        self._check_connected()
        self._check_payload(subject, data)
        replies: list[bytes] = []
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_reply(message: BusMessage) -> None:
            if done.done():
                return
            replies.append(message.data)
            try:
                if len(replies) >= MAX_GATHER_REPLIES or enough(replies):
                    done.set_result(None)
            except Exception as exc:
                done.set_exception(exc)

        collector = self._subscribe(check_token(new_id("rp"), "reply subject"), on_reply, "")
        self._waiters.add(done)
        try:
            if self._send(subject, data, reply=collector.subject) == 0:
                return []
            await asyncio.wait([done], timeout=timeout)
            if done.done():
                done.result()  # raises what `enough` raised, or ClientClosedError
            return list(replies)
        finally:
            self._waiters.discard(done)
            collector.end()

    # --- helpers -------------------------------------------------------------------------------

    def _subscribe(self, subject: str, handler: Handler, group: str) -> _MemorySubscription:
        check_subject(subject, wildcards=True)
        if group:
            check_subject(group, wildcards=False)
        self._check_open()
        runner = HandlerRunner(
            subject, handler, max_inflight=self._max_inflight, on_drop=self._count_drop
        )
        sub = _MemorySubscription(self, subject, group, runner)
        self._subscriptions.append(sub)
        self.broker.add(sub)
        return sub

    def _send(self, subject: str, data: bytes, reply: str = "") -> int:
        if self.is_cut:
            self.broker.lost += 1
            return -1
        return self.broker.publish(subject, data, reply)

    def _count_drop(self) -> None:
        self.dropped += 1

    def _check_payload(self, subject: str, data: bytes) -> None:
        if self.max_payload is not None and len(data) > self.max_payload:
            raise TransportError(
                f"a message of {len(data)} bytes on {subject!r} exceeds the bus's "
                f"max_payload of {self.max_payload} bytes"
            )

    def _check_open(self) -> None:
        if self._closing:
            raise ClientClosedError("the bus transport was closed")

    def _check_connected(self, *, draining_ok: bool = False) -> None:
        # While close() waits for handlers they may still publish (their replies).
        if self._closing and not (draining_ok and self._state.state is not BusState.CLOSED):
            raise ClientClosedError("the bus transport was closed")
        if self._state.state is BusState.CONNECTING:
            raise TransportError("the bus transport is not connected: call connect() first")


if TYPE_CHECKING:  # mypy checks that the class implements the interface

    def _is_a_transport(transport: MemoryTransport) -> Transport:
        return transport
