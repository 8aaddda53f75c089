"""One application instance, run as an OS process of its own (`python -m
ari_proxy.testing.instance`), for the handover tests and the chaos runs (`ari_proxy.testing.Fleet`).

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

`--hold SECONDS` (the chaos runs) instead keeps each call up that long (a handed-over call as
long again) while raising a user event on it every `--events` seconds (`chaos`, with a
sequence number and the instance's name), then hangs it up, trying again while requests fail.
It says `ended` with what became of the call: `completed` (it hung up) or not (the call ended
under it), the events acknowledged, failed and received back (a hole in the sequence is a
lost event), and the gaps (`ConnectionGap`) it was told of; `released` when the call was
handed to another instance under it (its requests refused, or a `CallHandover` received).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import ari_proxy
from ari_proxy import Call, CallHandover, ConflictError, ConnectionGap, NotFoundError, event_type
from ari_proxy.client import ProxyClient
from ari_proxy.client import connect as proxy_connect
from ari_proxy.spec.models import ChannelUserevent, ChannelVarset

USER_EVENT = "chaos"


def say(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


async def wait_any(events: set[asyncio.Event], timeout: float) -> None:
    """Until one of `events` is set, or `timeout` seconds."""
    waits = {asyncio.ensure_future(e.wait()) for e in events}
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


def ident(call: Call) -> str:
    """`<node>/<channel>`: two Asterisk nodes started in the same second name channels alike."""
    return f"{call.channel.key.node}/{call.channel.id}"


class Instance:
    def __init__(
        self,
        name: str,
        client: ProxyClient,
        tick: float,
        finish_handovers: bool,
        hold: float = 0.0,
        events: float = 0.2,
    ) -> None:
        self.name = name
        self.client = client
        self.tick = tick
        self.finish_handovers = finish_handovers
        self.hold = hold
        self.events = events
        self.received: dict[str, set[int]] = {}
        self.gaps: dict[str, int] = {}
        self.released: dict[str, asyncio.Event] = {}
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
        self.released[channel] = asyncio.Event()
        self.received[channel] = set()
        self.gaps[channel] = 0
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
            if self.hold:
                await self.retrying(call, call.channel.answer)
            else:
                await call.channel.answer()
        watcher = asyncio.create_task(self.watch(call))
        try:
            if self.hold:
                await self.chaos(call)
                return
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

    async def retrying(self, call: Call, request: Callable[[], Awaitable[object]]) -> bool:
        """Run `request` until it succeeds (True), the call ends or is handed away (False), or
        30 s pass; a request that fails while the bus or ARI is down is tried again."""
        channel = ident(call)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.ended[channel].is_set() or self.released[channel].is_set():
                return False
            try:
                await request()
                return True
            except NotFoundError:
                return False
            except ConflictError:
                self.released[channel].set()
                return False
            except ari_proxy.AriProxyError:
                await asyncio.sleep(0.2)  # pacing between attempts
        return False

    async def chaos(self, call: Call) -> None:
        """Hold the call `hold` seconds raising numbered user events, hang up, and say what
        became of it."""
        channel = ident(call)
        acked: list[int] = []
        failed: list[int] = []
        seq = 0
        until = time.monotonic() + self.hold
        stop = {self.ended[channel], self.released[channel]}
        while time.monotonic() < until and not any(e.is_set() for e in stop):
            seq += 1
            variables = {"seq": str(seq), "by": self.name}
            try:
                await call.channel.user_event(USER_EVENT, variables)
                acked.append(seq)
            except ConflictError:
                self.released[channel].set()
            except (ari_proxy.AriProxyError, TimeoutError):
                failed.append(seq)
            await wait_any(stop, self.events)
        completed = await self.retrying(call, call.channel.hangup)
        missed_end = 0
        if completed:
            await wait_any({self.ended[channel]}, 5)
            if not self.ended[channel].is_set() and await self.gone(call):
                # Hung up, but its end never came on the call's events (it can go with a
                # proxy's restart): asked, as an application told of a gap would. The missed
                # event counts as lost, told or untold as the call's gaps say.
                missed_end = 1
        if self.released[channel].is_set():
            say(event="released", name=self.name, channel=channel, t=time.time())
            return
        received = self.received[channel]
        say(
            event="ended",
            name=self.name,
            channel=channel,
            completed=completed and (self.ended[channel].is_set() or bool(missed_end)),
            acked=len(acked),
            failed=len(failed),
            received=len(received),
            lost=len(set(acked) - received) + missed_end,
            late=len(set(failed) & received),
            gaps=self.gaps[channel],
            handover=call.handover is not None,
            t=time.time(),
        )

    @staticmethod
    async def gone(call: Call) -> bool:
        """Whether Asterisk no longer has the call's channel (False when it cannot tell)."""
        try:
            await call.channel.data()
        except NotFoundError:
            return True
        except ari_proxy.AriProxyError:
            return False
        return False

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
            if isinstance(event, ChannelVarset) and event.variable == "TICK":
                say(
                    event="tick",
                    name=self.name,
                    channel=channel,
                    value=event.value,
                    ts=event.timestamp,
                )
            elif kind == "PlaybackFinished":
                self.played[channel].set()
            elif kind in ("StasisEnd", "ChannelDestroyed"):
                self.ended[channel].set()
            elif isinstance(event, CallHandover):
                self.released[channel].set()
                say(event="lost", name=self.name, channel=channel, reason=event.reason)
            elif isinstance(event, ConnectionGap):
                self.gaps[channel] += 1
            elif (
                isinstance(event, ChannelUserevent)
                and event.eventname == USER_EVENT
                and event.userevent.get("by") == self.name
            ):
                self.received[channel].add(int(event.userevent.get("seq", 0)))

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
    parser.add_argument("--hold", type=float, default=0.0)
    parser.add_argument("--events", type=float, default=0.2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    buses = args.bus.split(",")  # a cluster: every node's URL
    async with proxy_connect(
        args.app, buses if len(buses) > 1 else buses[0], timeout=5.0, retries=1, prefix=args.prefix
    ) as client:
        instance = Instance(
            args.name, client, args.tick, args.finish_handovers, args.hold, args.events
        )
        commands = asyncio.create_task(instance.commands())
        say(event="started", name=args.name, instance=client.instance)
        handed = await ari_proxy.serve(client, instance.handle)
        say(event="drained", name=args.name, handed=handed, t=time.time())
        commands.cancel()
        with contextlib.suppress(BaseException):
            await commands


if __name__ == "__main__":
    asyncio.run(main())
