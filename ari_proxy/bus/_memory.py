"""An in-memory message bus with NATS semantics, and the pieces every backend shares.

`MemoryBroker` is the bus and `MemoryTransport` one connection to it: subjects with `*` and `>`,
queue groups (round-robin), request/reply with "no responders", gathers on a `<rid>-rp` reply
subject, and simulated outages (`MemoryBroker.cut`/`restore`). It is deterministic and needs no
broker process, for the unit tests of the server and the client and for users' own tests.

Because the in-memory transport is the reference for how a transport behaves, the pieces the
real backends reuse live here too, so their behaviour cannot drift: subject checks
(`check_subject`, `subject_matches`), `HandlerRunner` (inline plain handlers, bounded tasks for
coroutine handlers, drop counting) and `StateKeeper` (`state` and `on_state`).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .._exceptions import ClientClosedError, NoProxyError, RequestTimeout, TransportError
from ..protocol import ProtocolError, check_token, new_id
from ._transport import BusMessage, BusState, Handler, Transport

__all__ = [
    "MAX_GATHER_REPLIES",
    "HandlerRunner",
    "MemoryBroker",
    "MemoryTransport",
    "StateKeeper",
    "check_subject",
    "drain_all",
    "subject_matches",
]

logger = logging.getLogger(__name__)

MAX_GATHER_REPLIES = 10_000
"""A gather never keeps more replies than this, whatever `enough` says."""

# NATS refuses whitespace and control characters anywhere in a subject; CR/LF would even let a
# caller inject protocol commands.
_BAD_SUBJECT_CHAR = re.compile(r"[\s\x00-\x1f\x7f]")

# One warning per subscription per this many seconds while it drops messages: a flood must not
# turn into a flood of log lines.
_DROP_WARNING_INTERVAL = 10.0


def check_subject(subject: str, *, wildcards: bool) -> str:
    """Return `subject` if it is a valid NATS subject, else raise `ProtocolError`.

    A subject is dot-separated non-empty tokens without whitespace or control characters. With
    `wildcards` (subscriptions), a token may be `*`, and the last token may be `>`; without
    (publications), no token may contain `*` or `>`.
    """
    if not subject or _BAD_SUBJECT_CHAR.search(subject):
        raise ProtocolError(f"subject {subject!r} is empty or contains whitespace")
    tokens = subject.split(".")
    for index, token in enumerate(tokens):
        if not token:
            raise ProtocolError(f"subject {subject!r} has an empty token")
        if "*" not in token and ">" not in token:
            continue
        if not wildcards:
            raise ProtocolError(f"cannot publish to the wildcard subject {subject!r}")
        if token == "*" or (token == ">" and index == len(tokens) - 1):
            continue
        raise ProtocolError(f"subject {subject!r} has a misplaced wildcard in {token!r}")
    return subject


def subject_matches(pattern: str, subject: str) -> bool:
    """Whether `subject` matches the subscription `pattern` (`*` one token, `>` the rest)."""
    wanted = pattern.split(".")
    tokens = subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or (token != "*" and token != tokens[index]):
            return False
    return len(wanted) == len(tokens)


class StateKeeper:
    """A transport's `state` and the `on_state` callbacks to call on every change."""

    def __init__(self) -> None:
        self.state = BusState.CONNECTING
        self._callbacks: list[Callable[[BusState], None]] = []

    def add(self, callback: Callable[[BusState], None]) -> None:
        """Call `callback` on every later change."""
        self._callbacks.append(callback)

    def set(self, state: BusState) -> None:
        """Move to `state` and tell the callbacks, unless already there."""
        if state is self.state:
            return
        self.state = state
        for callback in list(self._callbacks):
            try:
                callback(state)
            except Exception:
                # A broken observer must not break the transport's own bookkeeping.
                logger.exception("on_state callback %r failed", callback)


class HandlerRunner:
    """Runs one subscription's handler for each message it receives.

    A plain function runs inline. A coroutine function runs as a task, with at most
    `max_inflight` tasks in flight; a message that finds the limit reached is dropped, counted
    (`dropped`, and `on_drop` for the transport's total) and reported by a rate-limited
    warning. A handler's exception is logged with the subject and never ends the subscription.
    """

    def __init__(
        self,
        subject: str,
        handler: Handler,
        *,
        max_inflight: int,
        on_drop: Callable[[], None] | None = None,
    ) -> None:
        if max_inflight < 1:
            raise ValueError("max_inflight must be at least 1")
        self.subject = subject
        self.dropped = 0
        self._handler = handler
        self._max_inflight = max_inflight
        self._on_drop = on_drop
        self._tasks: set[asyncio.Future[Any]] = set()
        self._is_async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
            getattr(handler, "__call__", None)  # noqa: B004 - an object with an async __call__
        )
        self._unreported = 0
        self._last_warning = float("-inf")

    @property
    def inflight(self) -> int:
        """Handler tasks still running."""
        return len(self._tasks)

    def __call__(self, message: BusMessage) -> None:
        """Hand `message` to the handler (inline, or as a task)."""
        if self._is_async and len(self._tasks) >= self._max_inflight:
            self._drop()
            return
        try:
            result = self._handler(message)
        except Exception:
            logger.exception("bus handler for subject %s failed", message.subject)
            return
        if result is None:
            return
        # A plain callable (a functools.partial of a coroutine function, say) may still hand
        # back an awaitable: it counts against the same limit.
        if len(self._tasks) >= self._max_inflight:
            _discard(result)
            self._drop()
            return
        self._start(result)

    def _start(self, awaitable: Awaitable[None]) -> None:
        if inspect.iscoroutine(awaitable):
            task: asyncio.Future[Any] = asyncio.get_running_loop().create_task(
                awaitable, name=f"bus handler {self.subject}"
            )
        else:
            task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            logger.error("bus handler for subject %s failed", self.subject, exc_info=exc)

    def _drop(self) -> None:
        self.dropped += 1
        self._unreported += 1
        if self._on_drop is not None:
            self._on_drop()
        now = time.monotonic()
        if now - self._last_warning >= _DROP_WARNING_INTERVAL:
            logger.warning(
                "dropped %d message(s) on %s: %d handler tasks already in flight",
                self._unreported,
                self.subject,
                self._max_inflight,
            )
            self._unreported = 0
            self._last_warning = now

    async def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the handler tasks in flight, then cancel the rest.

        The calling task is never waited for (a handler may close its own transport). Returns
        whether every task finished by itself.
        """
        current = asyncio.current_task()
        tasks = {task for task in self._tasks if task is not current}
        if not tasks:
            return True
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            logger.warning(
                "cancelled %d handler task(s) on %s still running after %.1fs",
                len(pending),
                self.subject,
                timeout,
            )
            await asyncio.wait(pending, timeout=1.0)
        return not pending


async def drain_all(runners: set[HandlerRunner], deadline: float) -> None:
    """Drain `runners` one after the other, all by `deadline` (event loop time).

    In the caller's task, not under `gather`: a runner must recognise the caller when it is
    one of its own handlers (a handler closing its transport) and not wait for it.
    """
    loop = asyncio.get_running_loop()
    for runner in list(runners):
        await runner.drain(max(0.0, deadline - loop.time()))


def _discard(awaitable: object) -> None:
    """Close a coroutine that will never run, so Python does not warn it was never awaited."""
    close = getattr(awaitable, "close", None)
    if inspect.iscoroutine(awaitable) and close is not None:
        close()


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
    """

    flavour = "nats"
    """Subjects and wildcards are NATS-style (`>` is the tail wildcard)."""

    def __init__(
        self,
        broker: MemoryBroker | None = None,
        *,
        prefix: str = "ari.",
        name: str = "",
        max_inflight: int = 1024,
        drain_timeout: float = 5.0,
    ) -> None:
        self.broker = broker if broker is not None else MemoryBroker()
        self.prefix = prefix
        self.name = name
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
            TransportError: not connected yet.
            ClientClosedError: the transport was closed.
        """
        if message.reply:
            await self.publish(message.reply, data)

    async def publish(self, subject: str, data: bytes) -> None:
        """Publish `data` on `subject` (lost while the link is cut).

        Allowed during `close()` until it ends, so handlers can still reply.

        Raises:
            ProtocolError: `subject` is empty, has wildcards or whitespace.
            TransportError: not connected yet.
            ClientClosedError: the transport was closed.
        """
        check_subject(subject, wildcards=False)
        self._check_connected(draining_ok=True)
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
            TransportError: not connected yet.
            ClientClosedError: the transport was closed before a reply came.
        """
        check_subject(subject, wildcards=False)
        self._check_connected()
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
            TransportError: not connected yet.
            ClientClosedError: the transport was closed during the gather.
            Exception: whatever `enough` raised.
        """
        check_subject(subject, wildcards=False)
        self._check_connected()
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
