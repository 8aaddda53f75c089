"""Generated hostile traffic against a running server (`ari_proxy.testing.BusFuzzer`): requests of
every kind with fields of the wrong shape and hostile IDs, broken JSON, hostile subjects and junk
on the server's other subjects, sent raw on NATS.

The server ends still serving, with no error-level log line, and nothing exists in Asterisk
afterwards that the generated requests did not name. `python -m bench fuzz` runs the long version
(100,000 messages) against a server process.
"""

from __future__ import annotations

import logging

import nats
import pytest

import ari_proxy
from ari_proxy.testing import (
    BusFuzzer,
    Instance,
    asterisk_resources,
    remove_resources,
    running_proxy,
    send_fuzz,
)
from ari_proxy.testing._fuzz import PREFIX

pytestmark = pytest.mark.integration

MESSAGES = 3000


@pytest.mark.parametrize("seed", [1, 2])
async def test_a_server_survives_generated_hostile_traffic(
    asterisk: Instance,
    nats_url: str,
    app_name: str,
    caplog: pytest.LogCaptureFixture,
    seed: int,
) -> None:
    caplog.set_level(logging.WARNING, logger="ari_proxy")
    native = await ari_proxy.ari.connect(
        asterisk.http_url, asterisk.username, asterisk.password, app_name
    )
    try:
        before = await asterisk_resources(native)
        async with running_proxy(asterisk, nats_url, app_name):
            nc = await nats.connect(nats_url)
            try:
                messages = BusFuzzer(seed).messages(MESSAGES, app_name, asterisk.entity_id)
                report = await send_fuzz(nc, messages)
            finally:
                await nc.close()
            async with ari_proxy.connect(nats_url, application=app_name) as client:
                info = await client.asterisk.info()  # still serving
                assert info.system is not None and info.system.entity_id == asterisk.entity_id
        made = await asterisk_resources(native) - before
        await remove_resources(native, made)
        assert await asterisk_resources(native) - before == set()
    finally:
        await native.close()
    assert report.total == MESSAGES
    # The generated requests did reach Asterisk (some ran), and most were refused.
    assert report.replies["ok"] > 0 and report.replies["bad_request"] > 0, report.replies
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    assert all(ident.startswith(PREFIX) for _, ident in made), made
