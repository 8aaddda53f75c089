"""Events of real calls on the bus: stamped, routed to dialogs once, bindings released."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from nats.aio.client import Client as NatsClient
from server_helpers import collect, gather, originate, request, unicast

from ari_proxy.server import Server
from ari_proxy.testing import Instance, running_proxy, sipp_calls, wait_until

pytest_plugins = ["server_fixtures"]  # the fixtures `nc` and `server`


def _types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


async def test_local_call_events_and_dialog_copies(
    server: Server, nc: NatsClient, app_name: str
) -> None:
    node = server.node
    dialog = f"dlg-{app_name}"
    channel, bridge = f"{app_name}-ch", f"{app_name}-br"
    events_subject = f"ari.event.{app_name}.{node}"
    async with collect(nc, events_subject, f"ari.dialogevent.{dialog}") as got:
        key = {"node": node, "dialog": dialog, "app": app_name}
        reply = await request(
            nc,
            unicast("create", app_name, node),
            {
                "kind": "ChannelOriginate",
                "key": key,
                "channel_originate": originate(app_name, channel),
            },
        )
        assert reply["key"] == {"kind": "channel", "id": channel, "node": node, "app": app_name}
        await got.wait_for(lambda: "StasisStart" in _types(got.json(events_subject)))
        bridge_key = {
            "kind": "bridge",
            "id": bridge,
            "node": node,
            "dialog": dialog,
            "app": app_name,
        }
        for body in (
            {"kind": "BridgeCreate", "key": bridge_key, "bridge_create": {"type": "mixing"}},
            {
                "kind": "ApplicationSubscribe",
                "key": {"kind": "application", "id": app_name, "node": node, "app": app_name},
                "application_subscribe": {"event_source": f"bridge:{bridge}"},
            },
            # Binds the bridge and the channel again: the dialog is bound to both of
            # ChannelEnteredBridge's entities, yet gets it once (Go: twice, Go defect 11).
            {
                "kind": "BridgeAddChannel",
                "key": bridge_key,
                "bridge_add_channel": {"channel": channel},
            },
        ):
            cls = "create" if body["kind"] == "BridgeCreate" else "command"
            reply = await request(nc, unicast(cls, app_name, node), body)
            assert reply["error"] == "", reply
        await got.wait_for(lambda: "ChannelEnteredBridge" in _types(got.json("ari.dialogevent")))
        assert server.stats()["dialog_bindings"] == 2
        for body in (
            {
                "kind": "ChannelHangup",
                "key": {"kind": "channel", "id": channel},
                "channel_hangup": {},
            },
            {"kind": "BridgeDelete", "key": {"kind": "bridge", "id": bridge}},
        ):
            reply = await request(nc, unicast("command", app_name, node), body)
            assert reply == {"error": "", "node": node}
        await got.wait_for(
            lambda: (
                {"ChannelDestroyed", "BridgeDestroyed"} <= set(_types(got.json("ari.dialogevent")))
            )
        )
    events = got.json(events_subject)
    assert {"StasisStart", "ChannelEnteredBridge", "StasisEnd", "ChannelDestroyed"} <= set(
        _types(events)
    )
    assert all(e["application"] == app_name and e["asterisk_id"] == node for e in events)
    copies = got.json("ari.dialogevent")
    assert all(c["dialog"] == dialog for c in copies)
    assert _types(copies).count("ChannelEnteredBridge") == 1
    distinct = {json.dumps(c, sort_keys=True) for c in copies}
    assert len(distinct) == len(copies)  # no duplicates at all
    # Every binding ended with its entity: the table is empty again.
    await wait_until(lambda: server.stats()["dialog_bindings"] == 0)


async def test_sip_call_through_the_proxy(
    asterisk: Instance, server: Server, nc: NatsClient, app_name: str
) -> None:
    node = server.node
    subject = f"ari.event.{app_name}.{node}"
    answered: list[str] = []

    async def drive() -> None:
        # The application's side, over the bus only: answer each call, then hang it up.
        await got.wait_for(lambda: "StasisStart" in _types(got.json(subject)), timeout=20)
        start = next(e for e in got.json(subject) if e["type"] == "StasisStart")
        key = {"kind": "channel", "id": start["channel"]["id"], "node": node, "app": app_name}
        assert (
            await request(
                nc, unicast("command", app_name, node), {"kind": "ChannelAnswer", "key": key}
            )
        )["error"] == ""
        answered.append(key["id"])
        # Hang up once the answer took effect (Asterisk reports the channel Up).
        await got.wait_for(
            lambda: any(
                e["type"] == "ChannelStateChange" and e["channel"]["state"] == "Up"
                for e in got.json(subject)
            )
        )
        reply = await request(
            nc,
            unicast("command", app_name, node),
            {"kind": "ChannelHangup", "key": key, "channel_hangup": {"reason": "normal"}},
        )
        assert reply == {"error": "", "node": node}

    async with collect(nc, subject) as got:
        driver = asyncio.get_running_loop().create_task(drive())
        result = await sipp_calls(asterisk, f"stasis-{app_name}", calls=1, timeout=20)
        await driver
        # The channel leaves the application at hang-up: StasisEnd is its last event here.
        await got.wait_for(lambda: "StasisEnd" in _types(got.json(subject)))
    assert result.successful == 1, result.output[-2000:]
    events = got.json(subject)
    assert answered and events[0]["channel"]["name"].startswith("PJSIP/sipp")
    assert {"StasisStart", "ChannelStateChange", "ChannelHangupRequest", "StasisEnd"} <= set(
        _types(events)
    )
    assert all(e["application"] == app_name and e["asterisk_id"] == node for e in events)


async def test_several_applications_share_one_websocket(
    asterisk: Instance, nats_url: str, app_name: str, nc: NatsClient
) -> None:
    apps = (f"{app_name}-a", f"{app_name}-b")
    # Our own prefix: the broadcast below must reach only this server, not the other suites'
    # servers on the shared NATS.
    p = f"{app_name}."
    async with collect(
        nc, f"{p}announce", f"{p}event.{app_name}-a.>", f"{p}event.{app_name}-b.>"
    ) as got:
        async with running_proxy(asterisk, nats_url, *apps, prefix=p) as srv:
            node = srv.node
            assert srv.stream.url.query["app"] == ",".join(apps)  # one WebSocket for both
            await got.wait_for(lambda: len(got.json(f"{p}announce")) >= 2)
            assert {a["application"] for a in got.json(f"{p}announce")} >= set(apps)
            for app in apps:
                reply = await request(
                    nc,
                    unicast("create", app, node, p),
                    {
                        "kind": "ChannelOriginate",
                        "key": {},
                        "channel_originate": originate(app, f"{app}-ch"),
                    },
                )
                assert reply["key"]["app"] == app  # stamped with the app whose subject it came on
            for app in apps:
                subject = f"{p}event.{app}.{node}"
                await got.wait_for(lambda s=subject: "StasisStart" in _types(got.json(s)))
                assert all(e["application"] == app for e in got.json(subject))
                await request(
                    nc,
                    unicast("command", app, node, p),
                    {"kind": "ChannelHangup", "key": {"kind": "channel", "id": f"{app}-ch"}},
                )
            # A broadcast list reaches each application's subscription once.
            replies = await gather(
                nc, f"{p}get", {"kind": "ApplicationList", "key": {}}, expected=2
            )
            assert sorted(k["app"] for r in replies for k in r["keys"][:1]) == sorted(apps)
