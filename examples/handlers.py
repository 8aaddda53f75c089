"""Answer calls with an event handler: `client.on` calls a function for each StasisStart,
`client.handle_of` turns the event's channel into a handle to act on, errors carry Asterisk's
own message, and `client.request` reaches ARI by method and path (direct connection only)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import ari_proxy
from ari_proxy.ari.models import StasisStart

log = logging.getLogger("handlers")


@dataclass(frozen=True)
class Answered:
    """One call the handler took: its channel, and its GREETING variable or why there is none."""

    channel: str
    greeting: str
    error: str = ""


async def asterisk_version(client: ari_proxy.Client) -> str:
    """Asterisk's version: raw JSON through the escape hatch, which only a direct connection
    has; through the proxy, the generated operation says the same."""
    try:
        info = await client.request("GET", "/asterisk/info", query={"only": "system"})
    except ari_proxy.UnknownKindError:  # the proxy client: no raw requests over the bus
        system = (await client.asterisk.info("system")).system
        return system.version if system is not None else "?"
    assert isinstance(info, dict) and isinstance(info["system"], dict)
    return str(info["system"]["version"])


async def run(client: ari_proxy.Client, calls: int | None = None) -> list[Answered]:
    """Answer `calls` calls (forever when None) with a handler; return what each one had."""
    log.info("Asterisk %s", await asterisk_version(client))
    answered: asyncio.Queue[Answered] = asyncio.Queue()

    @client.on("StasisStart")
    async def on_start(event: StasisStart) -> None:
        # The event's node goes with the handle: through the proxy, one server is asked.
        channel = client.handle_of(event.channel, event)
        await channel.answer()
        try:
            greeting, error = await channel.get_variable("GREETING"), ""
        except ari_proxy.NotFoundError as exc:
            # "Non-2XX response: 404 Variable Not Found: Provided variable was not found"
            greeting, error = "", str(exc)
            log.info("channel %s has no greeting: %s", channel.id, error)
        await channel.hangup()
        await answered.put(Answered(channel.id, greeting, error))

    await on_start  # live: every StasisStart from now on reaches it, one at a time, in order
    results: list[Answered] = []
    try:
        while calls is None or len(results) < calls:
            results.append(await answered.get())
            log.info("answered %s", results[-1])
    finally:
        on_start.close()
    log.info("handled %d, failed %d", on_start.handled, on_start.failed)
    return results


if __name__ == "__main__":
    from _common import main

    main(run, __doc__)
