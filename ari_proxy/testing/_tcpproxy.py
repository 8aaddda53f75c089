"""A TCP forwarder that tests put between a client and a broker, to cut the link at will.

aio-pika proves its reconnects this way: the client connects to the proxy, the proxy to the
broker; `cut()` drops every connection and refuses new ones, `restore()` accepts again on the
same port, so the client must find its way back by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

__all__ = ["TcpProxy"]

logger = logging.getLogger(__name__)

_CHUNK = 64 * 1024


class TcpProxy:
    """A TCP forwarder on a loopback port that can be cut and restored.

    ```python
    async with TcpProxy("127.0.0.1", 4222) as proxy:
        bus = NatsTransport([proxy.url("nats")])
        ...
        await proxy.cut()      # every connection dropped, new ones refused
        await proxy.restore()  # accepting again, on the same port
    ```

    `port=0` picks a free port at `start()`; it is kept across `cut()` and `restore()`.
    """

    def __init__(
        self, target_host: str, target_port: int, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.host = host
        self.port = port
        self.accepted = 0
        """Connections accepted so far (each reconnect of a client adds one)."""
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter | None]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._upstream_open = asyncio.Event()
        self._upstream_open.set()

    @property
    def connections(self) -> int:
        """Client connections open right now."""
        return len(self._links)

    @property
    def is_cut(self) -> bool:
        """Whether the proxy refuses connections (before `start()`, after `cut()`)."""
        return self._server is None

    def url(self, scheme: str = "nats") -> str:
        """`scheme://host:port` of the proxy's listening side."""
        return f"{scheme}://{self.host}:{self.port}"

    async def start(self) -> None:
        """Listen (on `port`, or a free port when it is 0)."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, reuse_address=True
        )
        if self.port == 0:
            self.port = int(self._server.sockets[0].getsockname()[1])

    async def cut(self) -> None:
        """Drop every connection at once (no FIN handshake) and refuse new ones."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for client, upstream in list(self._links):
            client.transport.abort()
            if upstream is not None:
                upstream.transport.abort()
        self._links.clear()
        if server is not None:
            await server.wait_closed()

    def hold(self) -> None:
        """Stop forwarding what clients send (it waits in the proxy): a link that went silent
        one way, so a request is sent and never answered."""
        self._upstream_open.clear()

    def release(self) -> None:
        """Forward what clients send again, what was held first."""
        self._upstream_open.set()

    async def restore(self) -> None:
        """Accept connections again, on the same port."""
        await self.start()

    async def close(self) -> None:
        """Cut, and end the forwarding tasks."""
        await self.cut()
        if self._tasks:  # the cut ends them; cancel what is left after a moment
            _, pending = await asyncio.wait(set(self._tasks), timeout=1.0)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

    async def __aenter__(self) -> TcpProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.accepted += 1
        link: tuple[asyncio.StreamWriter, asyncio.StreamWriter | None] = (writer, None)
        self._links.add(link)
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection(
                    self.target_host, self.target_port
                )
            except OSError as exc:
                logger.debug(
                    "proxy target %s:%s refused: %s", self.target_host, self.target_port, exc
                )
                return
            if link not in self._links:  # cut while we were connecting upstream
                up_writer.transport.abort()
                return
            self._links.discard(link)
            link = (writer, up_writer)
            self._links.add(link)
            await asyncio.gather(
                _pump(reader, up_writer, self._upstream_open), _pump(up_reader, writer)
            )
        except asyncio.CancelledError:
            # Only close() cancels these tasks. Ending normally matters: asyncio's stream
            # server calls task.exception() on its handler tasks, which raises for a
            # cancelled one and logs "Exception in callback" (CPython 3.11).
            pass
        finally:
            self._links.discard(link)
            writer.transport.abort()
            if link[1] is not None:
                link[1].transport.abort()
            if task is not None:
                self._tasks.discard(task)


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, gate: asyncio.Event | None = None
) -> None:
    """Copy bytes from `reader` to `writer` until either side ends; then end the other.
    While `gate` is clear, what is read waits."""
    try:
        while data := await reader.read(_CHUNK):
            if gate is not None:
                await gate.wait()
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.transport.abort()
