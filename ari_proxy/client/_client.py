"""The proxy client: the ARI interface over NATS or RabbitMQ, for any number of Asterisk nodes.

```python
async with ari_proxy.client.connect(application="myapp", url="nats://127.0.0.1:4222") as ari:
    async with ari.listen() as calls:
        async for call in calls:
            await call.channel.answer()
```
Everything else reads as with `ari_proxy.ari.connect()`: only the way of connecting differs.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

from ..api import Client, Connecting
from ..bus import BusSettings, BusState
from ._backend import ProxyBackend
from ._cluster import Node
from ._metrics import ClientStats

__all__ = ["ProxyClient", "connect"]

_SETTINGS = frozenset(f.name for f in dataclasses.fields(BusSettings)) - {"prefix", "name"}
"""The `BusSettings` a caller may give `connect()` by name (`prefix` and `name` are its own)."""


class ProxyClient(Client):
    """A client that reaches Asterisk through ari-proxy servers on a message bus."""

    _backend: ProxyBackend

    def nodes(self) -> list[Node]:
        """The live proxies of this client's application (from their announcements)."""
        return self._backend.cluster.nodes(self.application)

    def all_nodes(self) -> list[Node]:
        """Every live proxy on the bus, of every application."""
        return self._backend.cluster.nodes()

    def on_node_change(self, callback: Callable[[str, Node], None]) -> None:
        """Call `callback("joined" | "left", node)` when a proxy appears or is forgotten."""
        self._backend.cluster.on_change(callback)

    async def refresh(self) -> None:
        """Ping now: every proxy re-announces itself."""
        await self._backend.ping()

    @property
    def instance(self) -> str:
        """This connection's instance ID in `listen()`: the owner named in `CallHandover`."""
        return self._backend.instance

    def metrics(self) -> ClientStats:
        """This connection's counters now: requests by kind and outcome, timeouts, events
        received and dropped, gaps, bus reconnects (`ari_proxy.client.ClientStats`)."""
        return ClientStats.of(self._backend)

    @property
    def bus_state(self) -> BusState:
        """The bus connection's state."""
        return self._backend.transport.state


def connect(
    application: str | None = None,
    url: str | Sequence[str] | None = None,
    *,
    prefix: str = "ari.",
    timeout: float = 2.0,
    retries: int = 0,
    ping_interval: float = 10.0,
    node_max_age: float = 30.0,
    discovery_wait: float = 1.0,
    connect_timeout: float | None = 5.0,
    name: str = "",
    **bus_options: Any,
) -> Connecting[ProxyClient]:
    """Connect to the ari-proxy servers of `application` on a message bus.

    Args:
        application: the ARI application (default `$ARI_APPLICATION`).
        url: bus URL(s), `nats://...` or `amqp://...` (default `$MESSAGEBUS_URL`, else
            `nats://127.0.0.1:4222`); several URLs (a list or comma-separated) for a cluster.
        prefix: subject prefix, as the servers use it.
        timeout: default seconds per request, and the window of a broadcast.
        retries: extra attempts of a unicast request that timed out (creates included: they
            carry client-generated IDs, so a duplicate is refused by Asterisk, not executed).
        ping_interval: seconds between discovery pings.
        node_max_age: seconds of silence after which a proxy is forgotten.
        discovery_wait: how long a broadcast waits for the first proxy to announce itself.
        connect_timeout: seconds to wait for the first connection to the bus (5 by default;
            None waits for as long as it takes). Once connected, the client reconnects by
            itself, forever, whatever this says.
        name: connection name shown by the broker.
        bus_options: the bus's settings, by the names of the server's `messagebus.*`
            settings and whatever the bus: `user`, `password`, `token`, `creds_file`,
            `nkey_seed_file` (NATS), `tls_ca_file`, `tls_cert_file`, `tls_key_file`
            (docs/configuration.md); anything else goes to the bus transport as it is.

    Returns:
        A `Connecting`: `await` it for a `ProxyClient`, or `async with connect(...) as c`.

    Raises (when awaited):
        ConnectError: the bus was not reached within `connect_timeout` (the message says why
            the last attempt failed), or its configuration cannot work.
        AuthenticationError: the bus refused the credentials (at once, not retried).
        CertificateError: the bus's TLS certificate was not trusted (at once, not retried).
    """
    from ..bus import connect as bus_connect
    from ..bus import connect_within

    app = application or os.environ.get("ARI_APPLICATION", "")
    if not app:
        raise ValueError("connect() needs an application (or $ARI_APPLICATION)")
    urls = url if url is not None else os.environ.get("MESSAGEBUS_URL", "nats://127.0.0.1:4222")
    url_list = [
        u.strip() for u in (urls.split(",") if isinstance(urls, str) else urls) if u.strip()
    ]

    async def start() -> ProxyClient:
        # Scoped: the connection's private subjects and queues carry the application, which
        # bus permissions can then keep to it (docs/security.md).
        given = {k: v for k, v in bus_options.items() if k in _SETTINGS}
        options = {k: v for k, v in bus_options.items() if k not in _SETTINGS}
        settings = BusSettings(prefix=prefix, name=name, **given) if given else None
        transport = bus_connect(
            url_list, settings=settings, prefix=prefix, name=name, scope=app, **options
        )
        await connect_within(transport, url_list, connect_timeout)
        backend = ProxyBackend(
            transport,
            app,
            prefix=prefix,
            timeout=timeout,
            retries=retries,
            ping_interval=ping_interval,
            node_max_age=node_max_age,
            discovery_wait=discovery_wait,
        )
        try:
            await backend.start()
        except BaseException:
            await backend.close()
            raise
        return ProxyClient(backend, timeout=timeout)

    return Connecting(start)
