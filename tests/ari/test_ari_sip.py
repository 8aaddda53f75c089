"""Real SIP calls (sipp) into the application: ring, progress, answer and hang up through the
native client, with what the caller received checked from sipp's own statistics."""

from __future__ import annotations

import asyncio
import re

import pytest

from ari_proxy.ari import AriClient
from ari_proxy.spec._models import StasisStart
from ari_proxy.testing import Instance, sipp_calls

pytestmark = pytest.mark.integration


def received(output: str, response: str) -> int:
    """How many `response` messages sipp's final screen says it received."""
    counts = re.findall(rf"^\s*{response} <-+\s+(?:E-RTD\d\s+)?(\d+)", output, re.M)
    return int(counts[-1]) if counts else 0


async def test_sip_calls_are_answered_and_hung_up(
    client: AriClient, asterisk: Instance, expect
) -> None:
    calls = 3
    async with asyncio.timeout(40), client.subscribe("StasisStart") as starts:
        sipp = asyncio.create_task(
            sipp_calls(asterisk, f"stasis-{client.application}", calls=calls, timeout=30)
        )
        handled = set()
        for _ in range(calls):
            start = await expect(starts, timeout=15)
            assert isinstance(start, StasisStart)
            assert start.channel.name.startswith("PJSIP/sipp-")
            assert (start.channel.state, start.channel.caller.number) == ("Ring", "sipp")
            channel = client.channels.handle(start.channel.id)
            handled.add(channel.id)

            async with channel.subscribe("ChannelStateChange", "StasisEnd") as mine:
                await channel.ring()  # 180 Ringing
                await channel.progress()  # 183 Session Progress
                await channel.answer()  # 200 OK
                up = await expect(mine, "ChannelStateChange")
                assert up.channel.state == "Up"
                endpoint = await client.endpoints.handle("PJSIP", "sipp").data()
                assert channel.id in endpoint.channel_ids
                stats = await channel.rtp_statistics()  # a real RTP session this time
                assert stats.local_ssrc > 0 and stats.txcount >= 0

                await channel.hangup()
                # A channel that came in from the dialplan is the application's only until
                # StasisEnd: its ChannelDestroyed is not sent (an originated one's is).
                await expect(mine, "StasisEnd")
        result = await sipp
        assert len(handled) == calls
        assert (result.returncode, result.successful, result.failed) == (0, calls, 0), (
            result.output[-2000:]
        )
        assert received(result.output, "180") == calls
        assert received(result.output, "183") == calls
        assert received(result.output, "200") == calls
        assert received(result.output, "BYE") == calls
