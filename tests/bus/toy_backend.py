"""A toy bus backend, for tests only: what adding a bus takes.

`ToyTransport` implements `Transport` by handing everything to a `MemoryTransport` on the
in-memory broker that its URL names (`toy://<name>`: one broker per name, in this process).
It is one module; `test_bus_toy.py` registers it with one `register(Backend(...))` call, and
from then on it passes the transport contract and is chosen by `bus.connect`, by
`ari_proxy.connect` and by the server's configuration, with no change anywhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ari_proxy.bus import (
    BusMessage,
    BusState,
    BusSubscription,
    Handler,
    MemoryBroker,
    MemoryTransport,
)

if TYPE_CHECKING:
    from ari_proxy.bus import Transport

BROKERS: dict[str, MemoryBroker] = {}
"""The toy buses of this process, by the name in their URL."""


class ToyTransport:
    """A connection to the toy bus `toy://<name>`; options as for `MemoryTransport`."""

    def __init__(
        self, urls: Sequence[str], *, prefix: str = "ari.", name: str = "", **options: Any
    ) -> None:
        bus = urlsplit(urls[0]).netloc
        broker = BROKERS.setdefault(bus, MemoryBroker())
        self._inner = MemoryTransport(broker, prefix=prefix, name=name, **options)

    @property
    def state(self) -> BusState:
        return self._inner.state

    @property
    def gaps(self) -> int:
        return self._inner.gaps

    @property
    def dropped(self) -> int:
        return self._inner.dropped

    @property
    def max_payload(self) -> int | None:
        return self._inner.max_payload

    def on_state(self, callback: Callable[[BusState], None]) -> None:
        self._inner.on_state(callback)

    async def connect(self) -> None:
        await self._inner.connect()

    async def close(self) -> None:
        await self._inner.close()

    async def serve(self, subject: str, handler: Handler, *, group: str = "") -> BusSubscription:
        return await self._inner.serve(subject, handler, group=group)

    async def reply(self, message: BusMessage, data: bytes) -> None:
        await self._inner.reply(message, data)

    async def publish(self, subject: str, data: bytes) -> None:
        await self._inner.publish(subject, data)

    async def on_ping(self, subject: str, handler: Handler) -> BusSubscription:
        return await self._inner.on_ping(subject, handler)

    async def request(self, subject: str, data: bytes, *, timeout: float) -> bytes:
        return await self._inner.request(subject, data, timeout=timeout)

    async def gather(
        self,
        subject: str,
        data: bytes,
        *,
        timeout: float,
        enough: Callable[[list[bytes]], bool],
    ) -> list[bytes]:
        return await self._inner.gather(subject, data, timeout=timeout, enough=enough)

    async def subscribe(
        self, subject: str, handler: Handler, *, group: str = ""
    ) -> BusSubscription:
        return await self._inner.subscribe(subject, handler, group=group)

    async def ping(self, subject: str, data: bytes) -> None:
        await self._inner.ping(subject, data)


if TYPE_CHECKING:  # mypy checks that the class implements the interface

    def _is_a_transport(transport: ToyTransport) -> Transport:
        return transport
