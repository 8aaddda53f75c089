"""The same server over RabbitMQ: requests, the create queue, events (through the bus interface)."""

from __future__ import annotations

import asyncio
import json

from server_helpers import originate

from ari_proxy.bus import BusMessage, connect
from ari_proxy.testing import Instance, running_proxy


async def test_server_over_rabbitmq(asterisk: Instance, rabbitmq_url: str, app_name: str) -> None:
    async with running_proxy(asterisk, rabbitmq_url, app_name) as server:
        node = server.node
        client = connect(rabbitmq_url)
        await client.connect()
        try:
            events: list[dict[str, object]] = []
            got_start = asyncio.Event()

            def on_event(message: BusMessage) -> None:
                events.append(json.loads(message.data))
                if events[-1]["type"] == "StasisStart":
                    got_start.set()

            await client.subscribe(f"ari.event.{app_name}.>", on_event)
            info = json.loads(
                await client.request(
                    f"ari.data.{app_name}.{node}", b'{"kind":"AsteriskInfo","key":null}', timeout=5
                )
            )
            assert info["data"]["asterisk"]["system"]["entity_id"] == node
            channel = f"{app_name}-rmq"
            body = {
                "kind": "ChannelOriginate",
                "key": {},
                "channel_originate": originate(app_name, channel),
            }
            reply = json.loads(
                await client.request(f"ari.create.{app_name}", json.dumps(body).encode(), timeout=5)
            )
            assert reply["key"] == {"kind": "channel", "id": channel, "node": node, "app": app_name}
            await asyncio.wait_for(got_start.wait(), 10)
            assert all(e["application"] == app_name and e["asterisk_id"] == node for e in events)
            replies = await client.gather(
                f"ari.get.{app_name}",
                b'{"kind":"ChannelList","key":{}}',
                timeout=2,
                enough=lambda got: len(got) >= 1,
            )
            assert any(k["id"] == channel for k in json.loads(replies[0])["keys"])
            hangup = {"kind": "ChannelHangup", "key": {"kind": "channel", "id": channel}}
            reply = json.loads(
                await client.request(
                    f"ari.command.{app_name}.{node}", json.dumps(hangup).encode(), timeout=5
                )
            )
            assert reply == {"error": "", "node": node}
        finally:
            await client.close()
