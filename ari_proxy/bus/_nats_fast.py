"""Two shortcuts through nats-py's internals on the request path (docs/benchmarks.md, "Where the
time goes"), each a turn of the event loop fewer per message:

- `deliver_inline`: nats-py's reader task puts each message of a subscription on the
  subscription's queue, and a task per subscription takes it off and calls our callback. Here
  the queue itself hands the message to the callback, in the reader task. The transport does
  so for its requests' reply inbox, whose callback only resolves a future.
- `write_now`: nats-py appends a publish to its pending list and wakes its flusher task, which
  writes on the next turn. When nothing is pending and the socket has nothing buffered, the
  publish is written at once instead, in the same order the flusher would have kept. The
  transport does so for a request when it is the only one in flight: under load the
  flusher's batches cost less CPU, and the server's replies measured no faster this way.

Both use private names of nats-py, so pyproject.toml pins nats-py to the versions tested and
tests/bus/test_bus_nats_internals.py names what changed when a new one no longer fits. When a
name is missing both fall back to nats-py's own path: slower, never wrong.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.aio.transport import TcpTransport
from nats.protocol.command import pub_cmd

__all__ = ["deliver_inline", "write_now"]

logger = logging.getLogger(__name__)


class _InlineQueue(asyncio.Queue[Msg]):
    """Stands in for a subscription's message queue: each message goes to `deliver` at once.

    Always empty, so nats-py's drain (`join()`) and pending counts see nothing waiting; the
    bytes nats-py counted as pending are uncounted here, as its delivery task would."""

    def __init__(self, sub: Subscription, deliver: Callable[[Msg], None]) -> None:
        super().__init__()
        self._sub = sub
        self._deliver = deliver

    def put_nowait(self, item: Msg) -> None:
        self._sub._pending_size -= len(item.data)
        try:
            self._deliver(item)
        except Exception:  # never into nats-py's reader: it would drop the connection
            logger.exception("NATS message callback failed on %s", item.subject)


def deliver_inline(sub: Subscription, deliver: Callable[[Msg], None]) -> bool:
    """Make nats-py's reader hand `sub`'s messages to `deliver` itself; False (nothing
    changed: nats-py's task keeps delivering to the subscription's callback) where this
    nats-py lacks what it needs. `deliver` must not block and must not raise."""
    task = getattr(sub, "_wait_for_msgs_task", None)
    queue = getattr(sub, "_pending_queue", None)
    if task is None or not isinstance(queue, asyncio.Queue) or not queue.empty():
        return False
    if not isinstance(getattr(sub, "_pending_size", None), int):
        return False
    sub._pending_queue = _InlineQueue(sub, deliver)
    task.cancel()  # it waits on the old, empty queue
    return True


def write_now(nc: NatsClient, subject: str, reply: str, data: bytes) -> bool:
    """Write a PUB straight to the socket when nats-py has nothing pending and the socket
    nothing buffered; False (nothing written: publish as usual) otherwise.

    The caller has checked `subject` and the payload size, as `nc.publish` would."""
    transport: Any = getattr(nc, "_transport", None)
    if (
        not nc.is_connected
        or nc.is_draining_pubs
        or getattr(nc, "_pending", True)
        or not isinstance(transport, TcpTransport)
    ):
        return False
    writer = transport._io_writer
    if writer is None or writer.transport.get_write_buffer_size():
        return False
    writer.write(pub_cmd(subject, reply, data))
    stats: dict[str, int] = nc.stats
    stats["out_msgs"] += 1
    stats["out_bytes"] += len(data)
    return True
