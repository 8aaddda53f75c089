"""The direct client loads nothing of the bus: importing `ari_proxy` and using the native
client leaves nats-py, aiormq and our bus and proxy-client packages unimported (they cost
cold start: docs/client.md, "Cold start")."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from ari_proxy.testing import Instance

SCRIPT = """
import asyncio, json, os, sys
import ari_proxy

async def main():
    env = os.environ
    async with ari_proxy.connect(env["COLD_URL"], application="cold-import",
                                 username=env["COLD_USER"], password=env["COLD_PASS"]) as c:
        info = await c.request("GET", "/asterisk/info")
        await c.asterisk.info()
        return info["system"]["entity_id"]

node = asyncio.run(main())
print(json.dumps({"node": node, "modules": sorted(sys.modules)}))
"""

BUS = (
    "nats",
    "aiormq",
    "pamqp",
    "aio_pika",
    "ari_proxy.bus",
    "ari_proxy.client",
    "ari_proxy.server",
)


def test_the_direct_client_imports_nothing_of_the_bus(asterisk: Instance) -> None:
    env = {
        **os.environ,
        "COLD_URL": asterisk.http_url,
        "COLD_USER": asterisk.username,
        "COLD_PASS": asterisk.password,
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["node"] == asterisk.spec.entity_id  # it really talked to Asterisk
    modules: list[str] = report["modules"]
    assert "aiohttp" in modules  # the check sees what the client loads
    loaded = [m for m in modules if m.split(".")[0] in BUS or m.startswith(BUS)]
    assert loaded == []
