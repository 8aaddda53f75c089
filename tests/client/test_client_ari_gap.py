"""A gap in the server's ARI connection reaches the proxy client as ConnectionGap: on the
application's subscriptions and on every dialog with bindings."""

from __future__ import annotations

import asyncio

import ari_proxy
from ari_proxy.api import ConnectionGap
from ari_proxy.server import Server, ServerConfig
from ari_proxy.testing import Instance, TcpProxy


async def test_ari_gap_reaches_application_and_dialog_subscribers(
    asterisk: Instance, nats_url: str, app_name: str
) -> None:
    # The server reaches Asterisk through a TCP proxy that the test can cut.
    async with TcpProxy("127.0.0.1", asterisk.spec.http_port) as link:
        base = f"http://127.0.0.1:{link.port}/ari"
        server = Server(
            ServerConfig(
                applications=(app_name,),
                ari_username=asterisk.username,
                ari_password=asterisk.password,
                ari_http_url=base,
                bus_urls=(nats_url,),
                shutdown_grace=2.0,
            )
        )
        await server.start(ari_timeout=30)
        try:
            async with (
                asyncio.timeout(60),
                ari_proxy.connect(nats_url, application=app_name, timeout=5.0) as client,
            ):
                app_events = await client.subscribe("ConnectionGap")
                scoped = client.scoped(f"gap-{app_name}")  # a dialog with a binding
                dialog_events = await scoped.subscribe("ConnectionGap")
                async with scoped.subscribe("StasisStart") as started:
                    channel = await scoped.channels.originate("Local/wait@default")
                    # Cut only once the channel is in Stasis: one still on its way there
                    # meets an application with no WebSocket, and Asterisk hangs it up.
                    event = await started.next(timeout=10)
                    assert event.channel.id == channel.id  # type: ignore[attr-defined]
                await link.cut()
                while server.ari_connected:
                    await asyncio.sleep(0.05)  # bounded (the timeout above)
                await asyncio.sleep(0.3)  # pacing: the gap lasts a while (its duration is checked)
                await link.restore()
                for sub in (app_events, dialog_events):
                    gap = await sub.next(timeout=30)
                    assert isinstance(gap, ConnectionGap)
                    assert gap.source == "ari"
                    assert gap.asterisk_id == asterisk.entity_id == gap.previous_node
                    assert 0.3 < gap.duration < 30
                await channel.hangup()  # requests work again
        finally:
            await server.stop()
