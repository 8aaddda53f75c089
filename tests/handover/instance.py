"""One application instance of the handover tests, run as an OS process of its own.

It takes calls with `ari_proxy.serve` (so SIGTERM drains it), keeps each call up, saves a
state beside it, and says on stdout, one JSON object a line, what happens:

- `started` (with its instance ID) as it starts taking calls;
- `taken` / `handover` when a call becomes its own (a handover with the state, reason and
  previous owner it came with, and the time it arrived);
- `saving` / `saved` around each state saved (`<channel>:<step>`);
- `tick` for each `ChannelVarset` of its own ticks that reaches it on the call's events (with
  Asterisk's timestamp), when `--tick` is given: the deploy test checks ownership from them;
- `finished` once a call it was told to finish played a beep and ended.

`--finish-handovers` finishes every call handed to it at once (play, then hang up); the line
`finish` on stdin finishes every call it holds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
from typing import Any

import ari_proxy
from ari_proxy import Call, CallHandover, event_type
from ari_proxy.client import ProxyClient
from ari_proxy.client import connect as proxy_connect


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def ident(call: Call) -> str:
    """`<node>/<channel>`: two Asterisk nodes started in the same second name channels alike."""
    return f"{call.channel.key.node}/{call.channel.id}"


class Instance:
    def __init__(self, name: str, client: ProxyClient, tick: float, finish_handovers: bool):
        self.name = name
        self.client = client
        self.tick = tick
        self.finish_handovers = finish_handovers
        self.calls: dict[str, Call] = {}
        self.finishing: dict[str, asyncio.Event] = {}
        self.played: dict[str, asyncio.Event] = {}
        self.ended: dict[str, asyncio.Event] = {}

    async def handle(self, call: Call) -> None:
        channel = ident(call)
        self.calls[channel] = call
        self.finishing[channel] = asyncio.Event()
        self.played[channel] = asyncio.Event()
        self.ended[channel] = asyncio.Event()
        step = 0
        if call.handover is not None:
            state = call.state.decode()
            say(
                event="handover",
                name=self.name,
                channel=channel,
                state=state,
                reason=call.handover.reason,
                previous=call.handover.previous_owner,
                bridges=len(call.handover.bridges),
                t=time.time(),
            )
            step = int(state.rsplit(":", 1)[1]) if ":" in state else 0
        else:
            say(event="taken", name=self.name, channel=channel, t=time.time())
            await call.channel.answer()
        watcher = asyncio.create_task(self.watch(call))
        try:
            if call.handover is not None and self.finish_handovers:
                await self.finish(call)
                return
            if not self.tick:
                for _ in range(2):  # the second save replaces the first
                    step += 1
                    await self.save(call, step)
            finishing = asyncio.create_task(self.finishing[channel].wait())
            while not finishing.done():
                if self.tick:
                    step += 1
                    await call.channel.set_variable(
                        "TICK", f"{self.name}:{step}", report_events=True
                    )
                    await self.save(call, step)
                await asyncio.wait({finishing}, timeout=self.tick or None)
            await self.finish(call)
        finally:
            watcher.cancel()

    async def save(self, call: Call, step: int) -> None:
        state = f"{ident(call)}:{step}"
        say(event="saving", name=self.name, channel=ident(call), state=state)
        await call.save_state(state.encode())
        say(event="saved", name=self.name, channel=ident(call), state=state)

    async def finish(self, call: Call) -> None:
        channel = ident(call)
        await call.channel.play("sound:beep")
        await self.played[channel].wait()
        await call.channel.hangup()
        await self.ended[channel].wait()
        say(event="finished", name=self.name, channel=channel, t=time.time())

    async def watch(self, call: Call) -> None:
        channel = ident(call)
        async for event in call.events:
            kind = event_type(event)
            if kind == "ChannelVarset" and getattr(event, "variable", "") == "TICK":
                value = getattr(event, "value", "")
                say(event="tick", name=self.name, channel=channel, value=value, ts=event.timestamp)
            elif kind == "PlaybackFinished":
                self.played[channel].set()
            elif kind in ("StasisEnd", "ChannelDestroyed"):
                self.ended[channel].set()
            elif isinstance(event, CallHandover):
                say(event="lost", name=self.name, channel=channel, reason=event.reason)

    async def commands(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            if line.strip() == b"finish":
                for event in self.finishing.values():
                    event.set()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bus", required=True)
    parser.add_argument("--app", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--prefix", default="ari.")
    parser.add_argument("--tick", type=float, default=0.0)
    parser.add_argument("--finish-handovers", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    async with proxy_connect(
        args.app, args.bus, timeout=5.0, retries=1, prefix=args.prefix
    ) as client:
        instance = Instance(args.name, client, args.tick, args.finish_handovers)
        commands = asyncio.create_task(instance.commands())
        say(event="started", name=args.name, instance=client.instance)
        handed = await ari_proxy.serve(client, instance.handle)
        say(event="drained", name=args.name, handed=handed, t=time.time())
        commands.cancel()
        with contextlib.suppress(BaseException):
            await commands


if __name__ == "__main__":
    asyncio.run(main())
