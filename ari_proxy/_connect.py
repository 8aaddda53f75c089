"""`ari_proxy.connect()`: one entry point for both ways of reaching Asterisk."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .api import Client, Connecting

__all__ = ["connect", "serve_outbound"]


def connect(
    url: str | Sequence[str] | None = None,
    *,
    application: str | Sequence[str] | None = None,
    username: str | None = None,
    password: str | None = None,
    **options: Any,
) -> Connecting[Client]:
    """Connect to ARI directly or through ari-proxy, chosen by the URL's scheme.

    `http://` and `https://` connect to one Asterisk (`ari_proxy.ari.connect`, which needs
    `username` and `password`); `nats://`, `tls://`, `amqp://` and `amqps://` connect to the
    proxies on a message bus (`ari_proxy.client.connect`). The client behaves the same either
    way, so switching is a change of URL. Without `url`, `$ARI_URL` is used, then
    `$MESSAGEBUS_URL`, then `nats://127.0.0.1:4222`. TLS files go by the same names either
    way (`tls_ca_file`, `tls_cert_file`, `tls_key_file`): for `https://` they verify Asterisk,
    for `tls://` and `amqps://` the broker.

    ```python
    async with ari_proxy.connect("nats://127.0.0.1:4222", application="demo") as client: ...
    async with ari_proxy.connect("http://127.0.0.1:8088/ari", application="demo",
                                 username="ari", password="secret") as client: ...
    ```
    """
    if url is None:
        url = (
            os.environ.get("ARI_URL") or os.environ.get("MESSAGEBUS_URL") or "nats://127.0.0.1:4222"
        )
    first = url if isinstance(url, str) else next(iter(url), "")
    if first.startswith(("http://", "https://")):
        from .ari import connect as native

        if not isinstance(url, str):
            raise ValueError("connect to one Asterisk at a time over HTTP")
        return native(url, username, password, application, **options)
    from .client import connect as proxied

    if application is not None and not isinstance(application, str):
        application = ",".join(application)
    return proxied(application, url, **options)


def serve_outbound(
    application: str | Sequence[str],
    *,
    port: int,
    username: str,
    password: str,
    **options: Any,
) -> Connecting[Client]:
    """The native client, with Asterisk dialling us (its outbound persistent WebSocket,
    Asterisk 22.5+) instead of us dialling it: `connect()`'s counterpart for `ari.conf`
    `type=outbound_websocket` (`ari_proxy.ari.serve_outbound` says the options).

    ```python
    async with ari_proxy.serve_outbound("demo", port=8765, username="asterisk",
                                        password="secret") as client: ...
    ```
    """
    from .ari import serve_outbound as native

    return native(application, port=port, username=username, password=password, **options)
