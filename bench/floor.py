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
import base64
import itertools
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import aiohttp
import msgspec
import nats
from yarl import URL

from ari_proxy.testing import GoReference, Instance, NatsCluster

from ._servers import OurServer, Served, _die_with_parent, find_goref
from ._stats import table
from .goref import APP, HEADER, Figures, _cells, _go_generator

RELAYS = {"relay": "task", "relay, one at a time": "inline", "relay, raw protocols": "raw"}
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


_decode_answer = msgspec.json.Decoder(Answer).decode


class _Asked:
    """`GET /asterisk/info` requests on the WebSocket, waiting for their answers."""

    def __init__(self) -> None:
        self.pending: dict[str, asyncio.Future[Answer]] = {}
        self.ids = itertools.count(1)

    def ask(self) -> tuple[bytes, asyncio.Future[Answer]]:
        """A request's frame, and the future its answer resolves."""
        ident = str(next(self.ids))
        future = self.pending[ident] = asyncio.get_running_loop().create_future()
        frame = {"type": "RESTRequest", "request_id": ident, "method": "GET"}
        frame["uri"] = "asterisk/info"
        return msgspec.json.encode(frame), future

    def answer(self, frame: bytes | str) -> None:
        """Resolve the request `frame` answers, if it is an answer."""
        data = frame.encode() if isinstance(frame, str) else frame
        if b'"RESTResponse"' in data:
            answer = _decode_answer(data)
            future = self.pending.pop(answer.request_id, None)
            if future is not None and not future.done():
                future.set_result(answer)


def _reply(answer: Answer) -> bytes:
    """The reply Go's client reads for an `AsteriskInfo`: Asterisk's JSON under `data`."""
    body = msgspec.json.decode(bytes(answer.message_body), type=str)
    return b'{"data":{"asterisk":' + body.encode() + b"}}"


async def _serve(
    bus: str, http: str, user: str, password: str, app: str, node: str, mode: str
) -> None:
    encode = msgspec.json.encode
    nc = await nats.connect(bus)
    session = aiohttp.ClientSession()
    events = f"{http.replace('http', 'ws', 1)}/events?app={app}&subscribeAll=false"
    socket = await session.ws_connect(events, auth=aiohttp.BasicAuth(user, password))
    asked = _Asked()
    loop = asyncio.get_running_loop()

    async def read() -> None:
        async for frame in socket:
            asked.answer(frame.data)

    async def on_request(msg: Any) -> None:
        frame, future = asked.ask()
        await socket.send_str(frame.decode())
        await nc.publish(msg.reply, _reply(await future))

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


# --- the same relay on hand-written protocols (mode `raw`): no nats-py, no aiohttp ------------


class _Nats(asyncio.Protocol):
    """Just enough of the NATS client protocol: SUB, PUB, PING/PONG, and MSG handed to
    `on_msg(subject, reply, payload)` as each arrives (no task, no queue)."""

    def __init__(self, on_msg: Callable[[bytes, bytes, bytes], None]) -> None:
        self.on_msg = on_msg
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(b'CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n')

    def publish(self, subject: bytes, payload: bytes) -> None:
        assert self.transport is not None
        self.transport.write(b"PUB %s %d\r\n%s\r\n" % (subject, len(payload), payload))

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while True:
            end = buffer.find(b"\r\n")
            if end < 0:
                return
            line = bytes(buffer[:end])
            if line.startswith(b"MSG "):
                parts = line.split()
                size = int(parts[-1])
                if len(buffer) < end + 2 + size + 2:
                    return  # the payload is not all here yet
                payload = bytes(buffer[end + 2 : end + 2 + size])
                del buffer[: end + 2 + size + 2]
                self.on_msg(parts[1], parts[3] if len(parts) == 5 else b"", payload)
                continue
            del buffer[: end + 2]
            if line == b"PING":
                assert self.transport is not None
                self.transport.write(b"PONG\r\n")
            elif line == b"PONG" and not self.ready.done():
                self.ready.set_result(None)


class _WebSocket(asyncio.Protocol):
    """Just enough of a WebSocket client: the upgrade, masked text frames out (a zero mask,
    which Asterisk does not check), unmasked text frames in, handed to `on_text`."""

    def __init__(self, request: bytes, on_text: Callable[[bytes], None]) -> None:
        self.request = request
        self.on_text = on_text
        self.buffer = bytearray()
        self.upgraded = False
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self.request)

    def send_text(self, payload: bytes) -> None:
        assert self.transport is not None
        size = len(payload)
        if size < 126:
            head = bytes((0x81, 0x80 | size))
        else:
            head = bytes((0x81, 0x80 | 126)) + size.to_bytes(2, "big")
        self.transport.write(head + b"\0\0\0\0" + payload)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                raise RuntimeError(f"no WebSocket upgrade: {bytes(buffer[:80])!r}")
            del buffer[: end + 4]
            self.upgraded = True
            self.ready.set_result(None)
        while len(buffer) >= 2:
            size, start = buffer[1] & 0x7F, 2
            if size == 126:
                size, start = int.from_bytes(buffer[2:4], "big"), 4
            elif size == 127:
                size, start = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < start + size:
                return
            opcode = buffer[0] & 0x0F
            payload = bytes(buffer[start : start + size])
            del buffer[: start + size]
            if opcode == 1:
                self.on_text(payload)


async def _serve_raw(bus: str, http: str, user: str, password: str, app: str, node: str) -> None:
    loop = asyncio.get_running_loop()
    asked = _Asked()

    async def relay(reply: bytes) -> None:
        frame, future = asked.ask()
        socket.send_text(frame)
        bus_link.publish(reply, _reply(await future))

    tasks: set[asyncio.Task[None]] = set()

    def on_msg(subject: bytes, reply: bytes, payload: bytes) -> None:
        if subject == b"ari.ping":
            bus_link.publish(
                b"ari.announce", msgspec.json.encode({"node": node, "application": app})
            )
            return
        task = loop.create_task(relay(reply))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    url = URL(http)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    upgrade = (
        f"GET {url.path}/events?app={app}&subscribeAll=false HTTP/1.1\r\n"
        f"Host: {url.host}:{url.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Basic {token}\r\n\r\n"
    ).encode()
    _, socket = await loop.create_connection(
        lambda: _WebSocket(upgrade, asked.answer), url.host or "", url.port or 80
    )
    await socket.ready
    nats_url = URL(bus)
    _, bus_link = await loop.create_connection(
        lambda: _Nats(on_msg), nats_url.host or "", nats_url.port or 4222
    )
    await bus_link.ready
    assert bus_link.transport is not None
    subjects = ("ari.ping", "ari.data", f"ari.data.{app}", f"ari.data.{app}.{node}")
    for sid, subject in enumerate(subjects, 1):
        bus_link.transport.write(f"SUB {subject} {sid}\r\n".encode())
    bus_link.transport.write(b"PING\r\n")
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    import uvloop

    args = sys.argv[1:8]
    uvloop.run(_serve_raw(*args[:6]) if args[6] == "raw" else _serve(*args))
