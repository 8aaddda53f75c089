"""An in-process fake of Asterisk's ARI, for what a real Asterisk 22 sandbox cannot do.

Debian's Asterisk 22 has no `res_ari_mailboxes`, and a real Asterisk never sends an event type
from a later release, a malformed frame, a status chosen by the test, or a request that never
answers. `FakeAri` serves just enough ARI for `ari_proxy.ari.connect()` and those cases:

- `GET /ari/asterisk/info` and `GET /ari/asterisk/ping` (what `connect()` reads);
- `/ari/mailboxes` (list, get, update with `oldMessages`/`newMessages`, delete) over an
  in-memory dict;
- the `/ari/events` WebSocket, to which `push()` sends any frame (known or unknown event types,
  invalid JSON, anything);
- `answer()` makes a route return a given status and body, `stall()` makes it never answer.

Everything else answers 404 `Resource not found`, as Asterisk does for a route it lacks.
Use the real sandbox (`ari_proxy.testing.start`) for everything Asterisk can do.

```python
async with FakeAri() as fake:
    async with ari_proxy.ari.connect(fake.http_url, fake.username, fake.password, "app") as c:
        await c.mailboxes.handle("1000@default").update(1, 2)
        await fake.push({"type": "FutureEvent", "application": "app"})
```
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

__all__ = ["FakeAri", "FakeRequest"]


@dataclass(frozen=True, slots=True)
class FakeRequest:
    """One request the fake received.

    Attributes:
        method: HTTP method.
        path: decoded path below `/ari` (e.g. `/mailboxes/a/b` for the ID `a/b`).
        raw_path: the path exactly as sent, still percent-encoded (e.g. `/ari/mailboxes/a%2Fb`).
        query: decoded query parameters.
        match: the decoded route parameters (e.g. `{"name": "a/b"}`), empty when none.
    """

    method: str
    path: str
    raw_path: str
    query: Mapping[str, str]
    match: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Rule:
    status: int = 200
    body: bytes = b""
    stall: bool = False


def _json(status: int, payload: object) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(payload).encode(), content_type="application/json"
    )


def _error(status: int, message: str) -> web.Response:
    return _json(status, {"message": message})


def _count(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    return number if number >= 0 else None


class FakeAri:
    """A fake ARI server on a loopback port (aiohttp.web), for tests.

    Args:
        entity_id: what `/asterisk/info` and `/asterisk/ping` report as the entity ID.
        username: the only user accepted (HTTP Basic, as Asterisk).
        password: the only password accepted.

    Attributes:
        mailboxes: name -> (old messages, new messages); tests may read and fill it.
        requests: every request received, in order (the events WebSocket included).
        connects: events WebSocket connections accepted so far.
    """

    def __init__(
        self,
        *,
        entity_id: str = "fa:ke:00:00:00:01",
        username: str = "fake",
        password: str = "fake-secret",
    ) -> None:
        self.entity_id = entity_id
        self.username = username
        self.password = password
        self.mailboxes: dict[str, tuple[int, int]] = {}
        self.requests: list[FakeRequest] = []
        self.connects = 0
        self._rules: dict[tuple[str, str], _Rule] = {}
        self._sockets: set[web.WebSocketResponse] = set()
        self._connected = asyncio.Event()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port = 0
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._auth = f"Basic {token}"

    # --- addresses ---------------------------------------------------------------------------

    @property
    def http_url(self) -> str:
        """The ARI base URL, e.g. `http://127.0.0.1:41234/ari`."""
        return f"http://127.0.0.1:{self._port}/ari"

    @property
    def ws_url(self) -> str:
        """The events WebSocket URL."""
        return f"ws://127.0.0.1:{self._port}/ari/events"

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on a free loopback port."""
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/ari/asterisk/info", self._info)
        app.router.add_get("/ari/asterisk/ping", self._ping)
        app.router.add_get("/ari/mailboxes", self._mailbox_list)
        app.router.add_get("/ari/mailboxes/{name}", self._mailbox_get)
        app.router.add_put("/ari/mailboxes/{name}", self._mailbox_update)
        app.router.add_delete("/ari/mailboxes/{name}", self._mailbox_delete)
        app.router.add_get("/ari/events", self._events)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        """Release stalled requests, close the WebSockets and stop listening."""
        self._release.set()
        await self.drop_websockets()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeAri:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- scripting ---------------------------------------------------------------------------

    def answer(self, method: str, path: str, status: int, body: object = None) -> None:
        """Make `method path` (decoded, below `/ari`, e.g. `/mailboxes`) answer `status` with
        `body` (bytes and str are sent as they are, anything else as JSON; None: empty)."""
        if body is None:
            data = b""
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = json.dumps(body).encode()
        self._rules[(method.upper(), path)] = _Rule(status=status, body=data)

    def stall(self, method: str, path: str) -> None:
        """Make `method path` never answer (until `close()`)."""
        self._rules[(method.upper(), path)] = _Rule(stall=True)

    def reset(self, method: str | None = None, path: str | None = None) -> None:
        """Forget the rule for `method path`, or every rule when called without arguments."""
        if method is None or path is None:
            self._rules.clear()
        else:
            self._rules.pop((method.upper(), path), None)

    def seen(self, method: str, path: str) -> list[FakeRequest]:
        """The requests received for `method path` (decoded, below `/ari`)."""
        return [r for r in self.requests if r.method == method.upper() and r.path == path]

    @property
    def websockets(self) -> int:
        """Events WebSockets open now."""
        return len(self._sockets)

    async def wait_websocket(self, timeout: float = 5.0) -> None:
        """Wait until at least one events WebSocket is open.

        Raises:
            TimeoutError: none within `timeout`.
        """
        async with asyncio.timeout(timeout):
            while not self._sockets:
                self._connected.clear()
                await self._connected.wait()

    async def push(self, frame: str | bytes | Mapping[str, Any]) -> int:
        """Send one frame to every open events WebSocket; return how many got it.

        A mapping is sent as JSON text, a str as a text frame exactly as given (so invalid
        JSON can be sent), bytes as a binary frame.
        """
        sent = 0
        for ws in list(self._sockets):
            if ws.closed:
                continue
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            elif isinstance(frame, str):
                await ws.send_str(frame)
            else:
                await ws.send_str(json.dumps(frame))
            sent += 1
        return sent

    async def drop_websockets(self) -> None:
        """Close every events WebSocket (the client sees a lost connection)."""
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close()
        self._sockets.clear()

    # --- HTTP --------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        inner = path[len("/ari") :] if path.startswith("/ari") else path
        match = dict(request.match_info)
        self.requests.append(
            FakeRequest(request.method, inner, request.raw_path, dict(request.query), match)
        )
        if request.headers.get("Authorization") != self._auth:
            return _error(401, "Authentication required")
        rule = self._rules.get((request.method, inner))
        if rule is not None:
            if rule.stall:
                await self._release.wait()
                return _error(503, "fake ARI is closing")
            return web.Response(
                status=rule.status,
                body=rule.body,
                content_type="application/json" if rule.body else None,
            )
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPNotFound:
            return _error(404, "Resource not found")
        except web.HTTPMethodNotAllowed:
            return _error(405, "Invalid method")
        return response

    async def _info(self, request: web.Request) -> web.Response:
        return _json(
            200,
            {
                "build": {"os": "Linux", "kernel": "fake", "machine": "fake", "options": ""},
                "system": {"version": "22.0.0-fake", "entity_id": self.entity_id},
                "config": {"name": "", "default_language": "en"},
                "status": {},
            },
        )

    async def _ping(self, request: web.Request) -> web.Response:
        return _json(
            200,
            {"asterisk_id": self.entity_id, "ping": "pong", "timestamp": "2026-01-01T00:00:00"},
        )

    def _mailbox(self, name: str) -> dict[str, object]:
        old, new = self.mailboxes[name]
        return {"name": name, "old_messages": old, "new_messages": new}

    async def _mailbox_list(self, request: web.Request) -> web.Response:
        return _json(200, [self._mailbox(name) for name in self.mailboxes])

    async def _mailbox_get(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.mailboxes:
            return _error(404, "Mailbox not found")
        return _json(200, self._mailbox(name))

    async def _mailbox_update(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        old = _count(request.query.get("oldMessages"))
        new = _count(request.query.get("newMessages"))
        if old is None or new is None:
            return _error(400, "oldMessages and newMessages must be counts")
        self.mailboxes[name] = (old, new)
        return web.Response(status=204)

    async def _mailbox_delete(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if self.mailboxes.pop(name, None) is None:
            return _error(404, "Mailbox not found")
        return web.Response(status=204)

    # --- events ------------------------------------------------------------------------------

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if not request.query.get("app"):
            return _error(400, "Missing parameter app")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.add(ws)
        self.connects += 1
        self._connected.set()
        try:
            async for message in ws:  # the client sends nothing but pings; just drain
                if message.type is WSMsgType.ERROR:
                    break
        finally:
            self._sockets.discard(ws)
        return ws
