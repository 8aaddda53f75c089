"""A proxy killed under load: its node leaves the map and the rest of the cluster keeps working."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import ari_proxy
from ari_proxy.client import ProxyClient
from ari_proxy.server import Server, ServerConfig
from ari_proxy.testing import Instance

ARI_PROXY = str(Path(sys.executable).parent / "ari-proxy")


async def test_killed_proxy_leaves_the_map_and_others_keep_serving(
    asterisk: Instance, asterisk2: Instance, nats_url: str, app_name: str
) -> None:
    survivor = Server(
        ServerConfig(
            applications=(app_name,),
            ari_username=asterisk.username,
            ari_password=asterisk.password,
            ari_http_url=asterisk.http_url,
            bus_urls=(nats_url,),
            shutdown_grace=2.0,
        )
    )
    await survivor.start(ari_timeout=30)
    env = dict(
        os.environ,
        ARI_APPLICATION=app_name,
        ARI_USERNAME=asterisk2.username,
        ARI_PASSWORD=asterisk2.password,
        ARI_HTTP_URL=asterisk2.http_url,
        ARI_WEBSOCKET_URL=asterisk2.ws_url,
        MESSAGEBUS_URL=nats_url,
    )
    victim = await asyncio.create_subprocess_exec(
        ARI_PROXY, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    client = await ari_proxy.connect(
        nats_url, application=app_name, timeout=1.0, ping_interval=0.25, node_max_age=1.0
    )
    assert isinstance(client, ProxyClient)
    changes: list[tuple[str, str, float]] = []
    client.on_node_change(
        lambda change, node: changes.append((change, node.node, time.monotonic()))
    )
    try:
        async with asyncio.timeout(60):
            while {n.node for n in client.nodes()} != {asterisk.entity_id, asterisk2.entity_id}:
                await asyncio.sleep(0.05)  # bounded (the timeout above): both nodes announced
            results: dict[str, list[tuple[float, str]]] = {
                asterisk.entity_id: [],
                asterisk2.entity_id: [],
            }
            stop = asyncio.Event()

            async def load(node: str) -> None:
                while not stop.is_set():
                    started = time.monotonic()
                    try:
                        info = await client.asterisk.info(node=node)
                        assert info.system is not None and info.system.entity_id == node
                        outcome = "ok"
                    except (ari_proxy.NoProxyError, ari_proxy.RequestTimeout) as exc:
                        outcome = type(exc).__name__
                    results[node].append((started, outcome))
                    await asyncio.sleep(0.005)  # pacing: a steady load

            workers = [asyncio.create_task(load(node)) for node in results for _ in range(4)]

            def answered(node: str, since: float) -> int:
                return sum(1 for t, _ in results[node] if t > since)

            # The load runs on both nodes: each has answered a few requests.
            while min(answered(node, 0.0) for node in results) < 20:
                await asyncio.sleep(0.05)
            killed_at = time.monotonic()
            victim.send_signal(signal.SIGKILL)
            await victim.wait()
            while asterisk2.entity_id in {n.node for n in client.nodes()}:
                await asyncio.sleep(0.05)  # bounded (the timeout above): what is measured
            left_at = time.monotonic()
            left_after = left_at - killed_at

            def reported_left() -> bool:
                return ("left", asterisk2.entity_id) in [(c, n) for c, n, _ in changes]

            # The load goes on after the node left (requests to both nodes came back since),
            # and the client reports it gone when it next prunes its map.
            while not reported_left() or min(answered(n, left_at) for n in results) < 20:
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.gather(*workers)

            # The dead node left the map within a few ping intervals (Go: 5 minutes).
            assert left_after < 3.0
            assert ("left", asterisk2.entity_id) in [(c, n) for c, n, _ in changes]
            # Every request to the surviving node succeeded, before and after the kill.
            survivor_results = results[asterisk.entity_id]
            assert len(survivor_results) > 50
            assert {outcome for _, outcome in survivor_results} == {"ok"}
            # Requests to the dead node fail (promptly: no responders), they do not hang.
            after = [o for t, o in results[asterisk2.entity_id] if t > killed_at + 0.1]
            assert after and "ok" not in after
            # A broadcast now gathers from the live node only, and returns without waiting
            # for the dead one.
            started = time.monotonic()
            apps = await client.applications.list()
            assert {h.node for h in apps} == {asterisk.entity_id}
            assert time.monotonic() - started < 0.5
    finally:
        if victim.returncode is None:
            victim.kill()
            await victim.wait()
        await client.close()
        await survivor.stop()
