"""Two Asterisk nodes, one server each, one application: routing across the cluster."""

from __future__ import annotations

from nats.aio.client import Client as NatsClient
from server_helpers import gather, originate, request, unicast

from ari_proxy.testing import Instance, running_proxy

pytest_plugins = ["server_fixtures"]  # the fixtures `nc` and `server`


async def test_unicast_create_queue_and_broadcast_list(
    asterisk: Instance, asterisk2: Instance, nats_url: str, app_name: str, nc: NatsClient
) -> None:
    async with (
        running_proxy(asterisk, nats_url, app_name) as one,
        running_proxy(asterisk2, nats_url, app_name) as two,
    ):
        nodes = {one.node, two.node}
        assert len(nodes) == 2
        # Unicast reaches the node named in the subject.
        for node in nodes:
            info = await request(
                nc, unicast("data", app_name, node), {"kind": "AsteriskInfo", "key": None}
            )
            assert info["data"]["asterisk"]["system"]["entity_id"] == node
        # A create without a node runs on exactly one server of the queue group.
        created: dict[str, str] = {}
        for n in range(20):
            channel = f"{app_name}-{n}"
            reply = await request(
                nc,
                f"ari.create.{app_name}",
                {
                    "kind": "ChannelOriginate",
                    "key": {"app": app_name},
                    "channel_originate": originate(app_name, channel),
                },
            )
            assert reply["error"] == "", reply
            assert reply["key"]["id"] == channel
            created[channel] = reply["key"]["node"]
        assert set(created.values()) == nodes  # both nodes were used
        for channel, node in created.items():
            for other in nodes:
                data = await request(
                    nc,
                    unicast("data", app_name, other),
                    {"kind": "ChannelData", "key": {"kind": "channel", "id": channel}},
                )
                if other == node:
                    assert data["data"]["channel"]["id"] == channel
                else:
                    assert data["code"] == "not_found", data
        # A broadcast list gathers both nodes' channels.
        replies = await gather(
            nc, f"ari.get.{app_name}", {"kind": "ChannelList", "key": {"app": app_name}}, expected=2
        )
        assert len(replies) == 2
        listed = {(k["node"], k["id"]) for r in replies for k in r["keys"]}
        assert {(node, channel) for channel, node in created.items()} <= listed
        # A broadcast command with a node in its key runs only there (Go: everywhere).
        channel, node = next(iter(created.items()))
        replies = await gather(
            nc,
            f"ari.command.{app_name}",
            {
                "kind": "ChannelHangup",
                "key": {"kind": "channel", "id": channel, "node": node, "app": app_name},
                "channel_hangup": {"reason": "normal"},
            },
            expected=2,
            timeout=1.0,
        )
        assert replies == [{"error": "", "node": node}]
        for channel, node in list(created.items())[1:]:
            reply = await request(
                nc,
                unicast("command", app_name, node),
                {"kind": "ChannelHangup", "key": {"kind": "channel", "id": channel}},
            )
            assert reply == {"error": "", "node": node}
        assert one.stats()["ignored"] + two.stats()["ignored"] == 1
