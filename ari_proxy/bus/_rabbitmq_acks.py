"""Acknowledgements of consumed deliveries, sent together: one `basic.ack` per loop turn.

Deliveries are acked as soon as their handler is scheduled (at most once, like Go). Sending one
`basic.ack` frame per delivery costs a frame, a socket write and a broker wake-up each, which
was a good part of the price of a message. A `Settler` instead remembers the highest tag
handled and sends one `basic.ack` with `multiple` set once the deliveries read so far have been
handed out (the next turn of the event loop), acking them all at once.

Order matters: a `multiple` ack covers every outstanding tag up to its own, so a delivery that
must be rejected (requeued to the other members of a shared queue) is never covered by it: a
reject first closes the pending ack (tags below it), then goes out itself, and both are sent in
that order by the one sender task of the channel. This relies on deliveries being settled in
the order they arrive, which holds because the consume channel's reader hands each delivery to
its consumer itself, in order (`_rabbitmq_link.deliver_inline`), and consumers never await.
"""

from __future__ import annotations

import asyncio
import logging

import aiormq.abc

from ._rabbitmq_errors import BACKEND_ERRORS

__all__ = ["Settler"]

log = logging.getLogger(__name__)


class Settler:
    """Acks and rejects of the deliveries of one channel, sent in order, acks batched."""

    def __init__(self, channel: aiormq.abc.AbstractChannel) -> None:
        self.channel = channel
        self._ack = 0  # highest tag to ack that is not in `_pending` yet
        self._pending: list[tuple[int, bool | None]] = []  # (tag, requeue); None: ack up to tag
        self._sender: asyncio.Task[None] | None = None

    def ack(self, tag: int) -> None:
        """Ack `tag` (and every earlier tag not settled yet) soon."""
        self._ack = max(self._ack, tag)
        self._wake()

    def reject(self, tag: int, *, requeue: bool) -> None:
        """Reject `tag` (after acking the tags handled before it)."""
        self._close_ack()
        self._pending.append((tag, requeue))
        self._wake()

    def _close_ack(self) -> None:
        if self._ack:
            self._pending.append((self._ack, None))
            self._ack = 0

    def _wake(self) -> None:
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(
                self._send(), name="rabbitmq-acks"
            )

    async def _send(self) -> None:
        channel = self.channel
        try:
            while True:
                self._close_ack()
                if not self._pending:
                    return
                batch, self._pending = self._pending, []
                for tag, requeue in batch:
                    if requeue is None:
                        await channel.basic_ack(tag, multiple=True, wait=False)
                    else:
                        await channel.basic_reject(tag, requeue=requeue, wait=False)
        except BACKEND_ERRORS as exc:
            # The channel is gone: the broker requeues whatever was not acked by itself.
            log.debug("could not settle deliveries: %r", exc)
            self._pending.clear()
            self._ack = 0
        finally:
            self._sender = None

    async def flush(self) -> None:
        """Wait until everything settled so far has been handed to the connection."""
        while self._sender is not None:
            await asyncio.shield(self._sender)
