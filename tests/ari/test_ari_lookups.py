"""Lookups by name, endpoint messaging, staged external media and dialog-scoped handles."""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING

import pytest

from ari_proxy import event_type
from ari_proxy._exceptions import BadRequestError, NotFoundError
from ari_proxy.ari import AriClient

if TYPE_CHECKING:  # fixture types only: at run time `conftest` may be another folder's
    from conftest import Janitor, StasisChannel


async def test_get_finds_or_raises_not_found(client: AriClient) -> None:
    async with asyncio.timeout(20):
        app = await client.applications.get()
        assert app.key == client.key("application", client.application)
        module = await client.asterisk.modules.get("res_stasis.so")
        assert module.id == "res_stasis.so" and module.node == client.node
        log = await client.asterisk.logging.get(
            next(
                h.id for h in await client.asterisk.logging.list() if h.id.endswith("messages.log")
            )
        )
        assert (await log.data()).status
        endpoint = await client.endpoints.get("PJSIP", "sipp")
        assert endpoint.id == "PJSIP/sipp"
        device = await client.device_states.get(f"Stasis:{client.application}")
        assert (await device.data()).state == "UNKNOWN"
        for missing in (
            client.applications.get("never-registered"),
            client.asterisk.modules.get("res_nothing.so"),
            client.asterisk.logging.get("no-such-log"),
            client.endpoints.get("PJSIP", "nobody"),
            client.mailboxes.get("1000@default"),  # Debian's build has no mailboxes resource
        ):
            with pytest.raises(NotFoundError):
                await missing


async def test_endpoint_messages_reach_asterisk(client: AriClient) -> None:
    async with asyncio.timeout(10):
        sipp = client.endpoints.handle("PJSIP", "sipp")
        # The endpoint has no contact to send to: Asterisk says so (rather than any routing
        # or encoding error of ours).
        with pytest.raises(NotFoundError) as info:
            await sipp.send_message("pjsip:test@127.0.0.1", "hello")
        assert info.value.status == 404
        with pytest.raises(NotFoundError) as info:
            await sipp.refer("pjsip:a@127.0.0.1", "sip:b@127.0.0.1")
        assert info.value.status == 404


async def test_staged_external_media(client: AriClient, janitor: Janitor) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtp:
        rtp.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{rtp.getsockname()[1]}"
        async with asyncio.timeout(10):
            staged = await client.channels.stage_external_media(format="ulaw", external_host=host)
            async with staged.subscribe("StasisStart") as started:
                channel = await staged.execute()
                janitor.add(channel.hangup)
                assert channel.id == staged.id
                await started.next(timeout=5)
            assert (await channel.data()).name.startswith("UnicastRTP/")
        with pytest.raises(BadRequestError, match="Format is mandatory"):
            await client.channels.stage_external_media(format="", external_host=host)


async def test_dialog_scoped_handle_binds_before_subscribing(
    client: AriClient, stasis_channel: StasisChannel
) -> None:
    async with asyncio.timeout(15):
        channel = await stasis_channel()
        scoped = client.scoped("dialog-lookups")
        handle = scoped.channels.handle(channel.id)
        # The handle's subscribe sends ChannelSubscribe first, so the dialog gets its events.
        async with handle.subscribe("ChannelVarset") as events:
            await channel.set_variable("SCOPED", "1")
            event = await events.next(timeout=5)
        assert event_type(event) == "ChannelVarset"
        assert event.variable == "SCOPED"  # type: ignore[attr-defined]
        await scoped.close()


async def test_connect_errors_never_show_the_password(caplog: pytest.LogCaptureFixture) -> None:
    import ari_proxy
    from ari_proxy.testing import free_port

    url = f"http://ari:hunter2-secret@127.0.0.1:{free_port()}/ari"
    with pytest.raises(ari_proxy.ConnectError) as info:
        await ari_proxy.connect(
            url, application="x", username="ari", password="hunter2-secret", connect_timeout=1
        )
    assert "hunter2-secret" not in str(info.value)
    assert "127.0.0.1" in str(info.value)
    assert "hunter2-secret" not in caplog.text
