"""The floor: the least a Python server can do per request, beside ours and the Go server.

`python -m bench floor [-n N]` answers one question: of our server's cost per request, how much
is Python's (the interpreter, nats-py, aiohttp, the event loop) and how much is ours? It starts,
in alternating rounds beside one Asterisk and on a NATS server of its own, the Go server, ours,
and a relay that does nothing but what any server must: take the Go client's `AsteriskInfo`
request from NATS, send `GET /asterisk/info` on the events WebSocket (REST over WebSocket, as
ours does), and publish Asterisk's answer as the reply, on uvloop. It has no validation, no
deadlines, no admission, no metrics, no dialogs and no error path: it is not a server anyone
could run, only the bound below which no Python server on these libraries can go. Two variants:

- `relay`: each request as a task of its own, so requests run side by side, as a server's must;
- `relay, one at a time`: each request awaited in nats-py's subscription task, one after the
  other (no task per request; no concurrency at all): what a task per request costs.

Each is driven by the Go client's own benchmark (`ari-goclient -op bench`), serially then 32 in
flight, like `python -m bench go`, with the same columns. It needs the Go binaries (the Go
client is the generator); without them it prints one line saying so.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec
import nats

from ari_proxy.testing import GoReference, Instance, NatsCluster

from ._servers import OurServer, Served, _die_with_parent, find_goref
from ._stats import table
from .goref import APP, HEADER, Figures, _cells, _go_generator

RELAYS = {"relay": "task", "relay, one at a time": "inline"}
"""The relay's variants: their row names -> how each runs its requests."""


@dataclass
class Relay:
    """The relay (`python -m bench.floor`) as a process, started like our server and Go's."""

    asterisk: Instance
    bus_url: str
    mode: str
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Relay:
        a = self.asterisk
        args = [self.bus_url, a.http_url, a.username, a.password, APP, a.entity_id, self.mode]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.floor", *args],
            stdout=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        return self

    async def ready(self, timeout: float = 30.0) -> None:
        assert self.process is not None and self.process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.process.stdout.readline), timeout)
        if b"ready" not in line:
            raise RuntimeError(f"the relay did not start: {line!r}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)


async def run(inst: Instance, *, n: int = 1000, rounds: int = 3) -> str:
    """The table, or one line saying why there is none."""
    ref = find_goref()
    if ref is None:
        return (
            "Floor: not measured, the Go binaries were not found (the Go client is the load "
            "generator; set ARI_PROXY_GOREF to the folder holding ari-proxy-go and ari-goclient)"
        )
    with NatsCluster(1) as nats:
        url = nats.urls[0]
        servers: dict[str, Callable[[], Served]] = {
            "Go": lambda: ref.server(inst, url, APP).start(),
            "ours": lambda: OurServer(inst, url, APP).start(),
            **{name: _relay(inst, url, mode) for name, mode in RELAYS.items()},
        }
        figures = await _measure(ref, url, servers, n, rounds)
    go = figures["Go"]
    rows = [[name, *_cells(f, go)] for name, f in figures.items()]
    title = (
        f"The floor, NATS: the Go client's Info against each server ({rounds} alternating "
        f"rounds, n={n} per phase, medians)"
    )
    return table(title, rows, ["server", *HEADER])


def _relay(inst: Instance, url: str, mode: str) -> Callable[[], Served]:
    return lambda: Relay(inst, url, mode).start()


async def _measure(
    ref: GoReference, url: str, servers: dict[str, Callable[[], Served]], n: int, rounds: int
) -> dict[str, Figures]:
    per_round: dict[str, list[Figures]] = {name: [] for name in servers}
    for r in range(rounds):
        order = list(servers) if r % 2 == 0 else list(reversed(servers))
        for name in order:
            server = servers[name]()
            try:
                await server.ready(timeout=30)
                assert server.process is not None
                retried: list[str] = []
                got = await _go_generator(ref, url, n, server.process.pid, retried)
            finally:
                server.stop()
            per_round[name].append(got["info"])
    return {
        name: {what: statistics.median(f[what] for f in rows) for what in rows[0]}
        for name, rows in per_round.items()
    }


# --- the relay itself (run as `python -m bench.floor BUS HTTP USER PASSWORD APP NODE MODE`) ---


class Answer(msgspec.Struct):
    """The members of a `RESTResponse` frame the relay reads."""

    type: str = ""
    request_id: str = ""
    message_body: msgspec.Raw = msgspec.Raw(b"")


async def _serve(
    bus: str, http: str, user: str, password: str, app: str, node: str, mode: str
) -> None:
    decode_answer = msgspec.json.Decoder(Answer).decode
    encode = msgspec.json.encode
    nc = await nats.connect(bus)
    session = aiohttp.ClientSession()
    events = f"{http.replace('http', 'ws', 1)}/events?app={app}&subscribeAll=false"
    socket = await session.ws_connect(events, auth=aiohttp.BasicAuth(user, password))
    pending: dict[str, asyncio.Future[Answer]] = {}
    ids = itertools.count(1)
    loop = asyncio.get_running_loop()

    async def read() -> None:
        async for frame in socket:
            if '"RESTResponse"' in frame.data:
                answer = decode_answer(frame.data)
                future = pending.pop(answer.request_id, None)
                if future is not None and not future.done():
                    future.set_result(answer)

    async def on_request(msg: Any) -> None:
        ident = str(next(ids))
        future: asyncio.Future[Answer] = loop.create_future()
        pending[ident] = future
        frame = {"type": "RESTRequest", "request_id": ident, "method": "GET"}
        frame["uri"] = "asterisk/info"
        await socket.send_str(encode(frame).decode())
        answer = await future
        body = msgspec.json.decode(bytes(answer.message_body), type=str)
        await nc.publish(msg.reply, b'{"data":{"asterisk":' + body.encode() + b"}}")

    tasks: set[asyncio.Task[None]] = set()

    async def on_request_task(msg: Any) -> None:
        task = loop.create_task(on_request(msg))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def on_ping(msg: Any) -> None:
        await nc.publish("ari.announce", encode({"node": node, "application": app}))

    reader = loop.create_task(read())
    await nc.subscribe("ari.ping", cb=on_ping)
    handler = on_request_task if mode == "task" else on_request
    for subject in ("ari.data", f"ari.data.{app}", f"ari.data.{app}.{node}"):
        await nc.subscribe(subject, cb=handler)
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        reader.cancel()


if __name__ == "__main__":
    import uvloop

    uvloop.run(_serve(*sys.argv[1:8]))
