"""Checked by mypy (tests/api/test_api_types.py), never run: the ergonomic API's overloads
give each form its own type."""

from typing import assert_type

import ari_proxy
from ari_proxy import BridgeHandle, ChannelHandle, EventHandler, JsonValue
from ari_proxy.api import Result
from ari_proxy.ari.models import ChannelEnteredBridge, StasisStart


async def forms(
    client: ari_proxy.Client, start: StasisStart, entered: ChannelEnteredBridge
) -> None:
    assert_type(await client.request("GET", "/asterisk/info"), JsonValue)
    assert_type(await client.request("ChannelAnswer", None), Result)
    assert_type(client.handle_of(start.channel, start), ChannelHandle)
    assert_type(client.handle_of(entered.bridge), BridgeHandle)
    assert_type(client.on("StasisStart", print), EventHandler)
    assert_type(client.handle_of(start.channel).on("ChannelDtmfReceived", print), EventHandler)

    @client.on(["StasisStart", "StasisEnd"])
    async def decorated(event: StasisStart) -> None: ...

    assert_type(decorated, EventHandler)
