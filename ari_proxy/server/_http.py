"""The server's HTTP listener (metrics and health probes) and its periodic `stats` line.

With `proxy.metrics_address` set (`host:port`, `:port` for every interface) the server answers

- `/metrics`: the Prometheus metrics of the server's own registry (the text format, or
  OpenMetrics when the scraper asks for it);
- `/livez` (also `/healthz`): 200 while the process serves HTTP at all, whatever ARI and the
  bus do;
- `/readyz`: 200 when ARI and the bus are connected, an announcement went out and the server is
  not stopping, 503 otherwise; the JSON body says which.

The listener starts first, before ARI is reached (so a probe sees the process alive while it
waits for Asterisk) and ends last, after the graceful stop (so readiness says 503 during it).
Liveness deliberately ignores ARI and the bus: the server reconnects them by itself, and a
restart would not help.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client.exposition import choose_encoder

from .._exceptions import AriProxyError
from ._config import split_address
from ._logging import StatsLog
from ._metrics import is_ready

if TYPE_CHECKING:
    from ._server import Server

__all__ = ["LIVENESS_PATHS", "METRICS_PATH", "READINESS_PATH", "Monitor"]

logger = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
LIVENESS_PATHS = ("/livez", "/healthz")
READINESS_PATH = "/readyz"


class Monitor:
    """What the server shows to the outside besides the bus: the HTTP listener (when
    `proxy.metrics_address` is set) and the `stats` log line (when `proxy.stats_interval` is).

    Attributes:
        port: the port the listener is bound to (the chosen one for port 0); None when off.
    """

    def __init__(self, server: Server) -> None:
        self._server = server
        self._address = server.config.metrics_address
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        interval = server.config.stats_interval
        self._stats = StatsLog(server.stats, interval) if interval > 0 else None

    @property
    def url(self) -> str | None:
        """`http://host:port` of the listener, for a local client (127.0.0.1 for every
        interface); None when off."""
        if self.port is None:
            return None
        host, _ = split_address(self._address)
        if host is None or host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Start listening and logging.

        Raises:
            AriProxyError: the address cannot be listened on (in use, not local).
        """
        if self._address and self._runner is None:
            await self._listen()
        if self._stats is not None:
            self._stats.start()

    async def _listen(self) -> None:
        host, port = split_address(self._address)
        app = web.Application()
        app.router.add_get(METRICS_PATH, self._metrics)
        for path in LIVENESS_PATHS:
            app.router.add_get(path, self._live)
        app.router.add_get(READINESS_PATH, self._ready)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            raise AriProxyError(
                f"cannot listen on {self._address!r} (proxy.metrics_address): {exc.strerror or exc}"
            ) from None
        self._runner = runner
        bound = runner.addresses
        self.port = int(bound[0][1]) if bound else port
        logger.info(
            "metrics and health served",
            extra={"address": self._address, "port": self.port, "url": self.url},
        )

    async def stop(self) -> None:
        """Stop logging and listening."""
        if self._stats is not None:
            await self._stats.stop()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # --- handlers ---------------------------------------------------------------------------------

    async def _metrics(self, request: web.Request) -> web.Response:
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        body = encode(self._server.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _live(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _ready(self, request: web.Request) -> web.Response:
        server = self._server
        ready = is_ready(server)
        body = {
            "ready": ready,
            "serving": server.ready,
            "ari": server.stream.state.value,
            "bus": server.bus.state.value,
            "announced": server.counters.announcements > 0,
            "node": server.node,
        }
        return web.json_response(body, status=200 if ready else 503)
