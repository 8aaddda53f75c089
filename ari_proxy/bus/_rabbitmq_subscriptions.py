"""The registry of live RabbitMQ subscriptions: declared, bound and consumed on every connection.

Every `serve`, `on_ping` and `subscribe` creates a `RabbitSubscription` kept here until it is
unsubscribed. On each new connection `restore_all()` declares its queue, binds it and consumes
it again ("reconnect by composition"), so a broker failover never leaves dead subscriptions
behind (Go issue #60), and `remove()` really cancels the consumer: Go re-subscribes after an
unsubscribe (Go defect 32).

Delivery is at most once, like Go: a redelivered `ChannelOriginate` would place a second call,
worse than a lost request whose client sees it time out. Private queues (the serve queue, pings,
announcements, events) are consumed without acks (`no_ack`): nobody else could take over what
we do not ack, and the broker would hand it back only to this process after a reconnect, when
its requester may have given up; without acks the broker sends no ack frame per request either,
which in serial use was a socket write per request. Queues shared with other members (creates,
`listen()` groups) are acked once the handler is scheduled, so that what this process never
started goes to another member, and the prefetch bounds what it holds back from them; the acks
of one loop turn go out as one `basic.ack` with `multiple` (`Settler`).
Handlers run through the `HandlerRunner` every backend shares: a plain function inline, a
coroutine as a task, at most `max_inflight` per subscription (beyond, the message is dropped
and counted); exceptions are logged and never reach the consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiormq.abc
from pamqp.commands import Basic

from .._exceptions import TransportError
from ..protocol import new_id
from ._handlers import HandlerRunner, drain_all
from ._rabbitmq_acks import Settler
from ._rabbitmq_errors import amqp_errors
from ._rabbitmq_link import Deliver, Link, as_consumer, deliver_inline
from ._rabbitmq_topology import QueueSpec, Route, serve_private_queue, topic_matches
from ._transport import BusMessage, Handler

__all__ = ["Kind", "RabbitSubscription", "Registry"]

log = logging.getLogger(__name__)

Delivered = aiormq.abc.DeliveredMessage


class Kind(enum.Enum):
    """What a subscription receives, which decides its queue."""

    SERVE = "serve"  # a plain request subject, on the process's one private queue
    SERVE_GROUP = "serve group"  # a request subject on a queue a group of servers shares
    PING = "ping"
    ANNOUNCE = "announce"
    EVENT = "event"
    EVENT_GROUP = "event group"  # listen(): each event to one member of the group


@dataclass(eq=False)
class RabbitSubscription:
    """A live subscription (implements `BusSubscription`): what to declare, bind and consume,
    restored after every reconnect."""

    registry: Registry = field(repr=False)
    kind: Kind
    subject: str
    runner: HandlerRunner = field(repr=False)
    queue: QueueSpec
    binding: Route
    queue_name: str = ""
    """The queue's name on the broker (broker-named queues get a new one per connection)."""
    consumer_tag: str = ""
    generation: int = -1
    """The link generation it is active on; any other value: not active."""
    closed: bool = False

    async def unsubscribe(self) -> None:
        """Stop receiving: cancel the consumer and delete the queue unless it is shared.
        Idempotent; broker errors are logged, not raised (delivery has stopped anyway)."""
        await self.registry.remove(self)


@dataclass(eq=False)
class _ServeQueue:
    """The process's one queue for its plain request subjects (Go's `<ulid>-q`)."""

    spec: QueueSpec
    consumer_tag: str = ""
    generation: int = -1


class Registry:
    """The live subscriptions of one transport, and their consumers on the current link."""

    def __init__(self, link: Link, *, max_inflight: int) -> None:
        self._link = link
        self._max_inflight = max_inflight
        # One lock for every topology change, so that a restore after a reconnect and a
        # subscribe racing with it never declare or consume the same thing twice.
        self._lock = asyncio.Lock()
        self._subs: dict[RabbitSubscription, None] = {}
        self._serve_queue = _ServeQueue(serve_private_queue())
        self._background: set[asyncio.Task[None]] = set()
        # Runners of ended subscriptions whose handler tasks still run: close() waits for them.
        self._retired: set[HandlerRunner] = set()
        # The plain request subscriptions each routing key of the serve queue reaches, worked
        # out once per key (cleared whenever the subscriptions change).
        self._serve_routes: dict[str, list[RabbitSubscription]] = {}
        self._settler: Settler | None = None
        # Consumers of the current consume channel by tag, which its reader calls itself
        # (`deliver_inline`), and the channel it was installed on.
        self._consumers: dict[str, Deliver] = {}
        self._inline_on: aiormq.abc.AbstractChannel | None = None
        self.dropped = 0
        """Messages dropped because their subscription had `max_inflight` handlers running."""

    def __len__(self) -> int:
        return len(self._subs)

    @property
    def serve_queue(self) -> QueueSpec:
        """This process's one private queue for its plain request subjects."""
        return self._serve_queue.spec

    def runner(self, subject: str, handler: Handler) -> HandlerRunner:
        """A handler runner for a new subscription, counting its drops here."""
        return HandlerRunner(
            subject, handler, max_inflight=self._max_inflight, on_drop=self._count_drop
        )

    def _count_drop(self) -> None:
        self.dropped += 1

    async def drain(self, deadline: float) -> None:
        """Wait, until `deadline` (event loop time), for the handler tasks of every
        subscription, current or ended; cancel those still running then."""
        runners = {sub.runner for sub in self._subs} | self._retired
        await drain_all(runners, deadline)
        self._retired.clear()

    def _retire(self, sub: RabbitSubscription) -> None:
        self._retired = {runner for runner in self._retired if runner.inflight}
        if sub.runner.inflight:
            self._retired.add(sub.runner)

    # --- adding, removing, restoring --------------------------------------------------------

    async def add(self, sub: RabbitSubscription) -> RabbitSubscription:
        """Register `sub` and, when connected, declare, bind and consume it now.

        Raises:
            TransportError: the broker refused the queue or binding (`sub` is dropped). A link
                lost meanwhile is not an error: the reconnect restores `sub`.
        """
        async with self._lock:
            self._subs[sub] = None
            self._serve_routes.clear()
            if not self._link.up:
                return sub
            try:
                with amqp_errors():
                    await self._activate(sub)
            except TransportError:
                if self._link.up:
                    self._drop_sub(sub)
                    raise
                # The link went down meanwhile: the reconnect restores `sub`.
            except BaseException:
                self._drop_sub(sub)
                raise
        return sub

    def _drop_sub(self, sub: RabbitSubscription) -> None:
        self._subs.pop(sub, None)
        self._serve_routes.clear()
        sub.closed = True

    async def restore_all(self) -> None:
        """Declare, bind and consume every subscription on a new connection (the link's
        setup hook). A refusal is logged and retried at the next reconnect.

        Raises:
            TransportError: the new connection was lost meanwhile.
        """
        async with self._lock:
            for sub in list(self._subs):
                if sub.generation != self._link.generation:
                    await self._restore(sub)

    async def _restore(self, sub: RabbitSubscription) -> None:
        try:
            with amqp_errors():
                await self._activate(sub)
        except TransportError as exc:
            if not self._link.up:
                raise
            log.error("could not restore the subscription to %s: %s", sub.subject, exc)

    async def remove(self, sub: RabbitSubscription) -> None:
        """Unregister `sub` and undo it on the broker."""
        if sub.closed:
            return
        sub.closed = True
        async with self._lock:
            self._subs.pop(sub, None)
            self._serve_routes.clear()
            self._retire(sub)
            if not self._link.up or sub.generation != self._link.generation:
                return
            try:
                with amqp_errors():
                    await self._deactivate(sub)
            except TransportError as exc:
                log.warning("while unsubscribing from %s: %s", sub.subject, exc)

    async def stop(self) -> None:
        """Cancel every consumer and delete this process's private queues (closing)."""
        async with self._lock:
            subs = list(self._subs)
            for sub in subs:
                sub.closed = True
            if not self._link.up:
                return
            generation = self._link.generation
            for sub in subs:
                if sub.kind is Kind.SERVE or sub.generation != generation:
                    continue
                await self._quietly(self._cancel(sub.consumer_tag))
                if not sub.queue.shared and not sub.queue.auto_delete:
                    await self._quietly(self._delete(sub.queue_name))
            queue = self._serve_queue
            if queue.generation == generation:
                queue.generation = -1
                await self._quietly(self._cancel(queue.consumer_tag))
                await self._quietly(self._delete(queue.spec.name))

    async def close(self) -> None:
        """Send the last acks, forget every subscription and stop background recoveries."""
        # Unacked deliveries would go back to their queue when the connection closes, and a
        # shared queue would hand a request we already ran to another server. (Bounded: with
        # the connection already dead the acks can never leave.)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_ACK_FLUSH_TIMEOUT):
                await self.flush_acks()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._subs.clear()
        self._serve_routes.clear()

    # --- the broker side --------------------------------------------------------------------

    async def _activate(self, sub: RabbitSubscription) -> None:
        """Declare, bind and consume `sub` on the current connection (lock held)."""
        topology = await self._link.channel("topology")
        if sub.kind is Kind.SERVE:
            name = await self._ensure_serve_queue(topology)
            await topology.queue_bind(
                name, sub.binding.exchange, routing_key=sub.binding.routing_key
            )
            sub.queue_name = name
            sub.generation = self._link.generation
            return
        spec = sub.queue
        declared = await topology.queue_declare(
            spec.name,
            durable=spec.durable,
            exclusive=spec.exclusive,
            auto_delete=spec.auto_delete,
            arguments=dict(spec.arguments) or None,
        )
        name = declared.queue or spec.name
        await topology.queue_bind(name, sub.binding.exchange, routing_key=sub.binding.routing_key)
        consume = await self._consume_channel()
        sub.consumer_tag = new_id("co")  # set first: deliveries may precede ConsumeOk
        deliver = self._consumers[sub.consumer_tag] = functools.partial(self._on_delivery, sub)
        await consume.basic_consume(
            name, as_consumer(deliver), no_ack=not spec.shared, consumer_tag=sub.consumer_tag
        )
        sub.queue_name = name
        sub.generation = self._link.generation

    async def _ensure_serve_queue(self, topology: aiormq.abc.AbstractChannel) -> str:
        queue = self._serve_queue
        if queue.generation != self._link.generation:
            spec = queue.spec
            await topology.queue_declare(
                spec.name, durable=spec.durable, arguments=dict(spec.arguments) or None
            )
            consume = await self._consume_channel()
            queue.consumer_tag = new_id("co")
            self._consumers[queue.consumer_tag] = self._on_serve_delivery
            await consume.basic_consume(
                spec.name,
                as_consumer(self._on_serve_delivery),
                no_ack=True,
                consumer_tag=queue.consumer_tag,
            )
            queue.generation = self._link.generation
        return queue.spec.name

    async def _deactivate(self, sub: RabbitSubscription) -> None:
        """Undo `_activate` (lock held; `sub` already unregistered)."""
        if sub.kind is Kind.SERVE:
            queue = self._serve_queue
            serving = [s for s in self._subs if s.kind is Kind.SERVE]
            if not serving and queue.generation == self._link.generation:
                # The last one: the whole queue goes, its bindings with it.
                queue.generation = -1
                await self._cancel(queue.consumer_tag)
                await self._delete(queue.spec.name)
            elif not any(s.binding == sub.binding for s in serving):
                topology = await self._link.channel("topology")
                await topology.queue_unbind(
                    queue.spec.name, sub.binding.exchange, routing_key=sub.binding.routing_key
                )
            return
        await self._cancel(sub.consumer_tag)
        # Shared queues stay, with their bindings: other members use them (Go never deletes
        # them either). Auto-deleted queues went with their consumer.
        if not sub.queue.shared and not sub.queue.auto_delete:
            await self._delete(sub.queue_name)

    async def _consume_channel(self) -> aiormq.abc.AbstractChannel:
        """The consume channel, its reader handing deliveries to `_consumers` itself."""
        consume = await self._link.channel("consume")
        if consume is not self._inline_on:
            self._consumers.clear()  # the tags of a lost channel
            deliver_inline(consume, self._consumers)
            self._inline_on = consume
        return consume

    async def _cancel(self, tag: str) -> None:
        self._consumers.pop(tag, None)
        await (await self._link.channel("consume")).basic_cancel(tag)

    async def _delete(self, name: str) -> None:
        await (await self._link.channel("topology")).queue_delete(name)

    @staticmethod
    async def _quietly(operation: Coroutine[Any, Any, None]) -> None:
        try:
            with amqp_errors():
                await operation
        except TransportError as exc:
            log.debug("while closing: %s", exc)

    def on_consumer_cancel(self, frame: Basic.Cancel) -> None:
        """The broker cancelled a consumer, typically because someone deleted its queue:
        declare and consume it again (in the background)."""
        self._consumers.pop(frame.consumer_tag or "", None)
        task = asyncio.get_running_loop().create_task(self._recover(frame.consumer_tag or ""))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _recover(self, tag: str) -> None:
        async with self._lock:
            if not self._link.up:
                return
            if tag == self._serve_queue.consumer_tag:
                self._serve_queue.generation = -1
                targets = [s for s in self._subs if s.kind is Kind.SERVE]
            else:
                targets = [s for s in self._subs if s.consumer_tag == tag]
            for sub in targets:
                log.warning("the broker cancelled the consumer of %s; restoring it", sub.subject)
                sub.generation = -1
                with contextlib.suppress(TransportError):
                    await self._restore(sub)

    # --- deliveries -------------------------------------------------------------------------
    # The consume channel's reader calls these itself, in delivery order (`deliver_inline`),
    # so the settler sees the tags in order (see `Settler`).

    def _settler_for(self, channel: aiormq.abc.AbstractChannel) -> Settler:
        settler = self._settler
        if settler is None or settler.channel is not channel:
            settler = self._settler = Settler(channel)
        return settler

    async def flush_acks(self) -> None:
        """Wait until the acks of the deliveries handled so far are on their way."""
        if self._settler is not None:
            await self._settler.flush()

    def _on_delivery(self, sub: RabbitSubscription, message: Delivered) -> None:
        # Only deliveries of shared queues are acked (private ones are consumed with no_ack).
        tag = message.delivery_tag if sub.queue.shared else None
        if sub.closed or getattr(message.delivery, "consumer_tag", None) != sub.consumer_tag:
            # After unsubscribe: a shared queue's message goes back to the other members.
            if tag is not None:
                self._settler_for(message.channel).reject(tag, requeue=True)
            return
        sub.runner(_bus_message(message))
        if tag is not None:
            self._settler_for(message.channel).ack(tag)

    def _on_serve_delivery(self, message: Delivered) -> None:
        bus_message = _bus_message(message)
        targets = self._serve_routes.get(bus_message.subject)
        if targets is None:
            targets = self._serve_targets(bus_message.subject)
        for sub in targets:
            if not sub.closed:
                sub.runner(bus_message)

    def _serve_targets(self, subject: str) -> list[RabbitSubscription]:
        targets = [
            sub
            for sub in self._subs
            if sub.kind is Kind.SERVE and topic_matches(sub.binding.routing_key, subject)
        ]
        if len(self._serve_routes) >= _MAX_ROUTES:
            self._serve_routes.clear()  # keys are subjects: a few per application and node
        self._serve_routes[subject] = targets
        return targets


_MAX_ROUTES = 4096
_ACK_FLUSH_TIMEOUT = 2.0


def _bus_message(message: Delivered) -> BusMessage:
    properties = message.header.properties
    return BusMessage(
        subject=message.routing_key or "",
        data=message.body,
        reply=properties.reply_to or "",
        correlation_id=properties.correlation_id or "",
    )
