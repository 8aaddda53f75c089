"""The proxy server: one Asterisk's ARI on one side, the message bus on the other.

```python
config = ServerConfig(applications=("myapp",), ari_username="u", ari_password="p",
                      ari_http_url="http://127.0.0.1:8088/ari", bus_urls=("nats://127.0.0.1:4222",))
async with Server(config) as server:   # connected, subscribed, announced
    await server.wait_stopped()        # until server.request_stop() (the CLI: SIGTERM)
```

Startup: connect ARI (retrying forever, as Go does) to learn the node, connect the bus, subscribe
to the 12 request subjects of each application and to pings, announce. Then: requests are
dispatched (bounded in number, each with a timeout), events are published from a bounded queue,
announcements repeat, and the entity ID is re-checked, periodically and after every reconnect;
when it changes, the node-level subscriptions move to the new node (Go exits: docs/protocol.md, Go
defect 16).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Coroutine
from time import perf_counter
from typing import Any

import msgspec

from .._backoff import Backoff
from .._exceptions import AriProxyError, RequestTimeout
from .._redact import redact_url
from .._version import __version__
from ..ari import (
    ConnectionState,
    EventSocket,
    EventStream,
    Executor,
    HttpTransport,
    OutboundEventStream,
    RestTransport,
    WebSocketRest,
    rest_over_websocket,
)
from ..bus import BusMessage, BusState, BusSubscription, Transport, connect
from ..events import gap_since
from ..protocol import (
    ARI_DOWN_TEXT,
    ChannelContinue,
    ChannelHangup,
    DialogRouter,
    ErrorCode,
    Key,
    PresenceRole,
    RequestClass,
    Response,
    Subjects,
    decode_presence,
    encode_response,
    error_response,
    new_id,
    with_dialog,
)
from ..spec import OPERATIONS
from ._admission import Admission, client_of
from ._announcer import FEATURES, HELD_EVENTS, Announcer
from ._config import ServerConfig, split_address
from ._counters import Counters
from ._dispatch import Dispatcher
from ._handover import Snapshots
from ._http import Monitor
from ._logging import RateLimiter
from ._metrics import ServerMetrics
from ._offers import CallOffers, Fallback, stasis_start
from ._publisher import EventPublisher

__all__ = ["Server"]

logger = logging.getLogger(__name__)

_SWEEP_INTERVAL = 5.0
"""Seconds between checks of dialog bindings against Asterisk."""
_BINDING_MAX_AGE = 600.0
"""Seconds a binding of an entity other than a channel or bridge lasts at most (a playback or
recording ends its bindings itself; this ends those staged and never started)."""

_CONNECT_CHECK = 1.0
"""Seconds the entity check on a new ARI connection may take, each of `_CONNECT_CHECKS` times."""
_CONNECT_CHECKS = 3

QUEUE_GROUP = "ariproxy"
"""The queue group of the create subjects, shared with Go servers (docs/protocol.md, "Subjects")."""

# A reply this large that the bus refused was most likely over its max payload.
_LARGE_REPLY = 64 * 1024
# Room left in a bus message for the JSON around a base64 file.
_REPLY_OVERHEAD = 1024


class _Info(msgspec.Struct):
    """The members of `/asterisk/info` the server reads."""

    class _System(msgspec.Struct):
        entity_id: str = ""
        version: str = ""

    class _Status(msgspec.Struct):
        startup_time: str = ""

    system: _System | None = None
    status: _Status | None = None


_info_decoder = msgspec.json.Decoder(_Info)


class Server:
    """An ari-proxy server for one Asterisk and one or more ARI applications.

    Args:
        config: the configuration.
        bus: a transport to use instead of connecting to `config.bus_urls` (tests use a
            `MemoryTransport`); the server does not close a transport it was given.

    Attributes:
        counters: running totals (see `Counters`); `stats()` adds the live gauges.
        node: the Asterisk entity ID ("" until ARI first answered).
    """

    def __init__(self, config: ServerConfig, *, bus: Transport | None = None) -> None:
        self.config = config
        self.counters = Counters()
        self.node = ""
        self.subjects = Subjects(config.prefix)
        self.applications = config.applications
        self._own_bus = bus is None
        if bus is None:
            bus = connect(config.bus_urls, settings=config.bus_settings())
        self.bus = bus
        self.http = HttpTransport(
            config.ari_http_url,
            config.ari_username,
            config.ari_password,
            pool_size=config.ari_max_connections,
            timeout=config.request_timeout,
            ssl_context=config.ari_ssl_context(),
        )
        self.router = DialogRouter(
            config.max_dialog_bindings, max_per_dialog=config.max_bindings_per_dialog
        )
        # ari.transport: requests on their own HTTP connections, or on the events WebSocket
        # (auto: when Asterisk's version has it, read at each connection).
        self.websocket_rest = WebSocketRest(self.http) if config.ari_transport != "http" else None
        self.rest: RestTransport = self.websocket_rest or self.http
        node: Callable[[], str] = lambda: self.node  # noqa: E731 - read at each call
        self.epoch = new_id("ep")
        self.executors = {app: Executor(self.rest, app, node) for app in self.applications}
        self.offers = CallOffers(
            self._publish,
            self._settle,
            self.subjects,
            node=node,
            deadline=config.listen_deadline,
            fallback=Fallback.parse(config.listen_fallback),
            resume_grace=config.listen_resume_grace,
            snapshot=Snapshots(self.executors),
            move=self.router.move,
            liveness_timeout=config.listen_liveness_timeout,
            bus_up=lambda: self.bus.state is BusState.CONNECTED,
            max_state=config.max_call_state,
        )
        self.dispatcher = Dispatcher(
            self.executors,
            self.router,
            node=node,
            request_timeout=config.request_timeout,
            file_limit=self._file_limit,
            offers=self.offers,
            isolate=config.isolate_applications,
        )
        self.publisher = EventPublisher(
            self.bus,
            self.subjects,
            self.router,
            applications=self.applications,
            node=node,
            counters=self.counters,
            queue_size=config.event_queue_size,
            offers=self.offers,
        )
        self.stream = self._event_socket()
        self.stream.on_state(self._on_ari_state)
        if self.websocket_rest is not None and config.ari_transport == "auto":
            # Dialled by Asterisk: recent enough (22.5, 21.10, 20.15) for requests on the socket.
            self.websocket_rest.enabled = bool(config.ari_listen)
        self.announcer = Announcer(
            self.bus,
            self.subjects,
            self.applications,
            node=node,
            is_up=lambda: self.ari_connected and not self._stopping,
            counters=self.counters,
            interval=config.announce_interval,
            epoch=self.epoch,
            features=(*FEATURES, HELD_EVENTS) if self.stream.keeps_events else FEATURES,
        )
        self._startup_time = ""
        # (app, class, subscription, subject) of every request subscription.
        self._subscriptions: list[tuple[str, RequestClass, BusSubscription, str]] = []
        self._ping: BusSubscription | None = None
        self._presence: list[BusSubscription] = []
        self._subscribed_node = ""
        self._move_lock = asyncio.Lock()
        self._executing: set[asyncio.Task[None]] = set()
        # proxy.max_inflight, shared fairly between clients (_admission.py).
        self.admission = Admission(config.max_inflight, config.max_inflight_per_client)
        self._replying: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._checker: asyncio.Task[None] | None = None
        self._limiter = RateLimiter(10.0)
        self._started = False
        self._stopping = False
        self._stop_requested = asyncio.Event()
        self._stopped = asyncio.Event()
        self.metrics = ServerMetrics(self)  # Prometheus registry (docs/operations.md)
        self.monitor = Monitor(self)  # /metrics, /livez, /readyz; the stats log line

    def _event_socket(self) -> EventSocket:
        """The events WebSocket: dialled (`ari.websocket_url`), or dialled by Asterisk to us
        (`ari.listen`, the outbound mode)."""
        config = self.config
        if not config.ari_listen:
            return EventStream(
                self.http,
                config.websocket_url,
                self.applications,
                on_frame=self.publisher.offer,
                on_connected=self._on_ari_connected,
                rest=self.websocket_rest,
            )
        host, port = split_address(config.ari_listen)
        context = None
        if config.ari_listen_tls_cert_file:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(config.ari_listen_tls_cert_file, config.ari_listen_tls_key_file)
        return OutboundEventStream(
            host,
            port,
            username=config.ari_listen_username,
            password=config.ari_listen_password,
            on_frame=self.publisher.offer,
            on_connected=self._on_ari_connected,
            rest=self.websocket_rest,
            ssl_context=context,
        )

    # --- state -----------------------------------------------------------------------------------

    @property
    def ari_connected(self) -> bool:
        """Whether the ARI WebSocket is connected (requests are refused while it is not)."""
        return self.stream.state is ConnectionState.CONNECTED

    @property
    def ready(self) -> bool:
        """Whether the server is subscribed and serving."""
        return self._started and not self._stopping

    def stats(self) -> dict[str, object]:
        """Counters plus live gauges: dialog bindings, requests in flight, events queued."""
        stats = self.counters.snapshot()
        stats.update(
            dialog_bindings=len(self.router),
            dialog_bindings_evicted=self.router.evicted,
            calls_offered_pending=self.offers.pending,
            calls_owned=self.offers.owned,
            listeners={app: self.offers.listeners.live(app) for app in self.applications},
            **{f"calls_{name}": count for name, count in self.offers.counters.items()},
            inflight=len(self._executing),
            events_queued=self.publisher.queued,
            node=self.node,
            ari_connected=self.ari_connected,
            bus_state=self.bus.state.value,
        )
        return stats

    # --- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self, ari_timeout: float | None = None) -> None:
        """Connect ARI and the bus, subscribe and announce.

        ARI is retried until it answers (forever by default, as Go does; each failure is logged),
        the bus likewise.

        Raises:
            ConnectError: ARI did not answer within `ari_timeout`.
            ClientClosedError: the server was stopped meanwhile.
        """
        logger.info(
            "starting",
            extra={
                "version": __version__,
                "apps": list(self.applications),
                "ari": self.config.ari_http_url,
                "bus": [redact_url(url) for url in self.config.bus_urls],
                "config": self.config.describe(),  # secrets as ***, URLs redacted
            },
        )
        await self.monitor.start()  # first: probes answer while ARI is awaited
        if self.stream.keeps_events:
            # Asterisk flushes the events it held as soon as it has dialled us: keep them until
            # the clients of the calls still up have bound their dialogs again (_resume_calls).
            self.publisher.hold()
        self.publisher.start()
        await self.stream.start(ari_timeout if ari_timeout is not None else 10.0**9)
        await self.bus.connect()
        async with self._move_lock:
            await self._subscribe_all()
        self._started = True
        self.offers.start()
        self._spawn(self._resume_calls(), "resume calls")
        self._spawn(self._sweep_bindings_forever(), "binding sweep")
        self.announcer.start()
        self._checker = asyncio.get_running_loop().create_task(
            self._check_entity_forever(), name="entity checker"
        )
        await self.announcer.announce()
        logger.info("serving", extra={"apps": list(self.applications), "node": self.node})

    def request_stop(self) -> None:
        """Ask `run()` / `wait_stopped()` to shut the server down (safe from a signal handler)."""
        self._stop_requested.set()

    async def wait_stopped(self) -> None:
        """Wait until `request_stop()` is called."""
        await self._stop_requested.wait()

    async def run(self) -> None:
        """Start, serve until `request_stop()`, then stop gracefully."""
        start = asyncio.get_running_loop().create_task(self.start(), name="server start")
        stop = asyncio.get_running_loop().create_task(self.wait_stopped())
        try:
            await asyncio.wait({start, stop}, return_when=asyncio.FIRST_COMPLETED)
            if start.done():
                start.result()  # raise what startup raised
                await stop
            else:
                start.cancel()
                await asyncio.gather(start, return_exceptions=True)
        finally:
            stop.cancel()
            await self.stop()

    async def stop(self) -> None:
        """Stop taking requests, let those in flight finish and queued events go out (within
        `shutdown_grace`), then close ARI and the bus. Idempotent."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        self._stop_requested.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.shutdown_grace
        try:
            if self._checker is not None:
                self._checker.cancel()
            await self.announcer.stop()
            await self.announcer.leave()
            await self.offers.stop()
            await self._unsubscribe_all()
            pending = self._executing | self._replying
            if pending:
                logger.info("waiting for requests in flight", extra={"inflight": len(pending)})
                _, late = await asyncio.wait(pending, timeout=max(0.1, deadline - loop.time()))
                for task in late:
                    task.cancel()
                if late:
                    logger.warning("cancelled requests still running", extra={"count": len(late)})
                    await asyncio.wait(late, timeout=1.0)
            await self.stream.close()
            left = await self.publisher.flush(max(0.5, deadline - loop.time()))
            if left:
                logger.warning("events left unpublished at shutdown", extra={"count": left})
            for task in list(self._background):
                task.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)
            if self._checker is not None:
                await asyncio.gather(self._checker, return_exceptions=True)
            if self._own_bus:
                await self.bus.close()
            if self.websocket_rest is not None:
                await self.websocket_rest.close()
            await self.http.close()
        finally:
            await self.monitor.stop()  # last: /readyz said 503 during the stop
            logger.info("stopped", extra={"stats": self.stats()})
            self._stopped.set()

    # --- subscriptions ---------------------------------------------------------------------------

    async def _subscribe_all(self) -> None:
        node = self.node
        for app in self.applications:
            for cls, subject in self.subjects.server_subscriptions(app, node):
                await self._serve(app, cls, subject)
        self._ping = await self.bus.on_ping(self.subjects.ping, self.announcer.on_ping)
        if not self._presence:
            for app in self.applications:
                subject = self.subjects.presence(PresenceRole.LISTENER, app)
                self._presence.append(await self.bus.subscribe(subject, self._on_presence))
        self._subscribed_node = node

    async def _serve(self, app: str, cls: RequestClass, subject: str) -> None:
        group = QUEUE_GROUP if cls is RequestClass.CREATE else ""
        sub = await self.bus.serve(subject, self._handler(app, cls), group=group)
        self._subscriptions.append((app, cls, sub, subject))

    async def _unsubscribe_all(self) -> None:
        subs = [entry[2] for entry in self._subscriptions] + self._presence
        if self._ping is not None:
            subs.append(self._ping)
        self._subscriptions.clear()
        self._presence = []
        self._ping = None
        results = await asyncio.gather(
            *(asyncio.wait_for(sub.unsubscribe(), 2.0) for sub in subs), return_exceptions=True
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            logger.warning("some subscriptions did not end cleanly", extra={"count": len(failed)})

    async def _move_node(self) -> None:
        """Move the node-level subscriptions to the current node; retried until it works."""
        backoff = Backoff(initial=0.5, maximum=10.0)
        while not self._stopping:
            try:
                async with self._move_lock:
                    await self._move_node_once()
                break
            except AriProxyError as exc:
                logger.warning("could not move the subscriptions to the new node: %s", exc)
                await asyncio.sleep(backoff.next())
        await self.announcer.announce()

    async def _move_node_once(self) -> None:
        old, new = self._subscribed_node, self.node
        if not self._started or old == new or self._stopping:
            return
        for app in self.applications:
            for cls in RequestClass:
                stale = self.subjects.request(cls, app, old)
                for entry in [e for e in self._subscriptions if e[3] == stale]:
                    await entry[2].unsubscribe()
                    self._subscriptions.remove(entry)
                await self._serve(app, cls, self.subjects.request(cls, app, new))
        self._subscribed_node = new
        logger.warning(
            "moved the node-level subscriptions to the new node",
            extra={"old_node": old, "node": new},
        )

    # --- requests --------------------------------------------------------------------------------

    def _handler(self, app: str, cls: RequestClass) -> Callable[[BusMessage], None]:
        """The bus handler for one subscription: decides at once, runs the request as a task."""

        admission = self.admission
        # Refusals are answered from tasks too: at most this many at once (a bus too slow to
        # take them), beyond which a flood's refusals go unanswered (their senders time out)
        # rather than pile up.
        most_replying = max(4096, 16 * self.config.max_inflight)

        def refuse(message: BusMessage, response: Response) -> None:
            if len(self._replying) < most_replying:
                self._reply_soon(message, response)

        def on_request(message: BusMessage) -> None:
            self.counters.requests += 1
            if len(message.data) > self.config.max_request_size:
                text = (
                    f"request of {len(message.data)} bytes exceeds the "
                    f"{self.config.max_request_size} bytes this server accepts"
                )
                refuse(message, error_response(text, ErrorCode.TOO_LARGE))
                self.metrics.refused(app, b"", ErrorCode.TOO_LARGE)  # too large to read the kind
                self._warn("too-large", text, message.subject, app)
                return
            if not self.ari_connected:
                # Go's rule 1: refused at once while the ARI WebSocket is down.
                refuse(message, error_response(ARI_DOWN_TEXT, ErrorCode.ARI_DOWN))
                self.metrics.refused(app, message.data, ErrorCode.ARI_DOWN)
                return
            # proxy.max_inflight in all, and each client (its reply inbox) its share of it.
            client = client_of(message.reply)
            busy = admission.admit(client)
            if busy is not None:
                refuse(message, error_response(busy, ErrorCode.BUSY))
                self.metrics.refused(app, message.data, ErrorCode.BUSY)
                self._warn("busy", busy, message.subject, app)
                return
            task = asyncio.get_running_loop().create_task(self._handle(app, cls, message))
            self._executing.add(task)

            def done(finished: asyncio.Task[None]) -> None:
                self._executing.discard(finished)
                admission.release(client)

            task.add_done_callback(done)

        return on_request

    async def _handle(self, app: str, cls: RequestClass, message: BusMessage) -> None:
        started = perf_counter()
        try:
            response = await self.dispatcher.dispatch(app, cls, message.data, message.subject)
        except Exception as exc:  # a bug: answer, log, and keep serving
            held = self._limiter.allow("internal")
            if held is not None:
                logger.exception(
                    "request failed unexpectedly",
                    extra={"subject": message.subject, "app": app, "suppressed": held},
                )
            response = error_response(f"internal error: {type(exc).__name__}", ErrorCode.INTERNAL)
        if response is None:
            self.counters.ignored += 1
            self.metrics.executed(app, message.data, None, started)
            return
        await self._reply(message, response)
        self.metrics.executed(app, message.data, response, started)

    def _reply_soon(self, message: BusMessage, response: Response) -> None:
        task = asyncio.get_running_loop().create_task(self._reply(message, response))
        self._replying.add(task)
        task.add_done_callback(self._replying.discard)

    async def _reply(self, message: BusMessage, response: Response) -> None:
        if response.error:
            self.counters.errors[str(response.code or "error")] += 1
        if not message.reply:
            return
        body = encode_response(msgspec.structs.replace(response, node=self.node))
        try:
            await self.bus.reply(message, body)
        except AriProxyError as exc:
            if len(body) > _LARGE_REPLY:
                # Most likely over the bus's max payload: say so in a reply that fits.
                text = f"the reply ({len(body)} bytes) is larger than the bus carries: {exc}"
                self.counters.errors[str(ErrorCode.TOO_LARGE)] += 1
                with contextlib.suppress(AriProxyError):
                    await self.bus.reply(
                        message, encode_response(error_response(text, ErrorCode.TOO_LARGE))
                    )
                    self.counters.replies += 1
                return
            self._warn("reply", f"could not reply: {exc}", message.subject, "")
            return
        self.counters.replies += 1

    def _warn(self, topic: str, text: str, subject: str, app: str) -> None:
        held = self._limiter.allow(topic)
        if held is not None:
            logger.warning(text, extra={"subject": subject, "app": app, "suppressed": held})

    def _file_limit(self) -> int:
        limit = self.config.max_file_size
        max_payload = self.bus.max_payload
        if max_payload is not None and max_payload > _REPLY_OVERHEAD:
            limit = min(limit, (max_payload - _REPLY_OVERHEAD) * 3 // 4)
        return limit

    # --- ARI -------------------------------------------------------------------------------------

    async def _on_ari_connected(self, lost_at: float | None) -> None:
        """Before events are read on a new WebSocket: learn (or re-check) the node, and tell
        the clients (the application's subject and every dialog) what they may have missed."""
        previous, dialogs = self.node, self.router.dialog_ids()
        # Short deadlines, tried again: an Asterisk that dials us (outbound mode) as it finishes
        # booting can leave the first request unanswered.
        # ari.transport auto, dialling: asked over HTTP, for the Asterisk behind the URL may
        # have been replaced by one without REST over WebSocket.
        auto = self.config.ari_transport == "auto" and not self.config.ari_listen
        for attempt in range(_CONNECT_CHECKS):
            try:
                restarted = await self._refresh_node(
                    _CONNECT_CHECK, via=self.http if auto else None
                )
                break
            except RequestTimeout:
                if attempt == _CONNECT_CHECKS - 1:
                    raise
        if lost_at is None:
            return
        if self.stream.keeps_events and not restarted:
            logger.info("ARI reconnected; Asterisk held the events of the disconnection")
            return
        gaps = []
        for app in self.applications:
            gap = gap_since(lost_at, application=app, node=self.node, source="ari")
            gap.previous_node = previous
            gaps.append(msgspec.json.encode(gap))
        logger.warning(
            "ARI reconnected; events in the gap are lost",
            extra={"node": self.node, "gap_s": round(gap.duration, 3), "dialogs": len(dialogs)},
        )
        for data in gaps:
            self.publisher.offer(data)
        task = asyncio.get_running_loop().create_task(self._gap_to_dialogs(gaps[0], dialogs))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        # A call that entered Stasis in the gap had its StasisStart thrown away by Asterisk:
        # offer what is in Stasis now and has neither an owner nor an offer, as at startup.
        self._spawn(self._resume_calls(), "resume calls")

    async def _gap_to_dialogs(self, data: bytes, dialogs: set[str]) -> None:
        for dialog in dialogs:
            subject = self.subjects.dialog_event(dialog)
            try:
                await self.bus.publish(subject, with_dialog(data, dialog))
            except AriProxyError as exc:
                logger.warning("could not tell a dialog about the ARI gap: %s", exc)

    def _on_ari_state(self, state: ConnectionState) -> None:
        if state is ConnectionState.CONNECTED and self._started and not self._stopping:
            self.announcer.soon()
        elif state is ConnectionState.RECONNECTING:
            logger.warning("ARI connection lost; requests are refused until it is back")

    async def _refresh_node(
        self, timeout: float | None = None, via: RestTransport | None = None
    ) -> bool:
        """Read `/asterisk/info`; adopt a new entity ID and forget stale dialog bindings.

        Returns:
            Whether Asterisk restarted (or another one answers) since the last time.

        Raises:
            AriProxyError: Asterisk did not answer.
            ProtocolError: the answer has no entity ID.
        """
        response = await (via or self.rest).request(
            OPERATIONS["asterisk.getInfo"], timeout=timeout or self.config.request_timeout
        )
        info = _info_decoder.decode(response.body)
        if via is not None and self.websocket_rest is not None and info.system is not None:
            over = rest_over_websocket(info.system.version)
            if over != self.websocket_rest.enabled or not self.node:
                logger.info(
                    "ARI requests over %s",
                    "the WebSocket" if over else "HTTP",
                    extra={"version": info.system.version},
                )
            self.websocket_rest.enabled = over
        node = info.system.entity_id if info.system is not None else ""
        startup = info.status.startup_time if info.status is not None else ""
        if not node:
            raise AriProxyError("Asterisk reported an empty entity ID (asterisk.conf entityid)")
        restarted = bool(self._startup_time) and startup != self._startup_time
        if restarted and len(self.router):
            # Asterisk restarted: every bound entity is gone, and no event will say so.
            logger.warning(
                "Asterisk restarted; dropping dialog bindings",
                extra={
                    "node": node,
                    "bindings": len(self.router),
                    "dialogs": len(self.router.dialog_ids()),
                    "calls": self.offers.owned + self.offers.pending,
                },
            )
            self.router.clear()
        self._startup_time = startup
        if node == self.node:
            return restarted
        old, self.node = self.node, node
        if not old:
            logger.info("connected to Asterisk", extra={"node": node})
            return restarted
        self.counters.node_changes += 1
        logger.warning(
            "Asterisk entity ID changed; dropping dialog bindings",
            extra={"old_node": old, "node": node, "bindings": len(self.router)},
        )
        self.router.clear()
        self._spawn(self._move_node(), "move node")
        return True

    # --- calls offered to listen groups -------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _on_presence(self, message: BusMessage) -> None:
        try:
            presence = decode_presence(message.data)
        except AriProxyError:
            return  # not ours to judge: a malformed presence message changes nothing
        if presence.application in self.applications:
            self.offers.on_presence(presence)

    async def _publish(self, subject: str, data: bytes) -> bool:
        return await self.publisher.send(subject, data)

    async def _settle(self, app: str, channel: str, fallback: Fallback) -> None:
        """The fallback on a call nobody took: hang it up, or send it on in the dialplan."""
        key = Key("channel", channel)
        executor = self.executors[app]
        if fallback.action == "hangup":
            await executor.execute("ChannelHangup", key, ChannelHangup(reason=fallback.reason))
            return
        payload = ChannelContinue(
            context=fallback.context, extension=fallback.extension, priority=fallback.priority
        )
        await executor.execute("ChannelContinue", key, payload)

    async def _resume_calls(self) -> None:
        """At startup, and after an ARI gap: offer, after a grace for their owners, the calls
        in Stasis that nobody owns (a restarted server knows no owner, and an owner takes its
        call again when it sees our new epoch; after a gap, the calls that arrived in it were
        never offered)."""
        up: list[str] = []
        try:
            for app in self.applications:
                try:
                    application = await self.executors[app].execute(
                        "ApplicationData", Key("application", app)
                    )
                    channels = _channel_ids(application.data or b"{}")
                    events = []
                    for channel in channels:
                        found = await self.executors[app].execute(
                            "ChannelData", Key("channel", channel)
                        )
                        # An application also lists channels it is only subscribed to (the
                        # other half of a Local call): offer only those in Stasis.
                        if _in_stasis(found.data or b"{}", app):
                            events.append(stasis_start(app, self.node, found.data or b"{}"))
                except AriProxyError as exc:
                    logger.warning(
                        "could not list the calls in Stasis: %s", exc, extra={"app": app}
                    )
                    continue
                up += [_channel_of(data) for data in events]
                if events:
                    self._spawn(self.offers.resume(app, events), "resume offers")
            if self.publisher.holding and up:
                await self._until_bound(up, self.config.listen_resume_grace)
        finally:
            if self.publisher.holding:
                logger.info("publishing the events Asterisk held", extra={"calls": len(up)})
            self.publisher.release()

    async def _until_bound(self, channels: list[str], grace: float) -> None:
        """Until every channel in `channels` is bound to a dialog again (its owner took it
        back), or `grace` seconds: polled, the router has no event for it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while loop.time() < deadline:
            if all(self.router.dialogs([("channel", c)]) for c in channels):
                return
            await asyncio.sleep(0.05)

    async def _sweep_bindings_forever(self) -> None:
        """Bindings end with their entity; this ends those whose end went by unseen (the entity
        was gone before its binding was made, or its last event was lost): every few seconds,
        channel and bridge bindings older than that are checked against Asterisk's lists, and
        other bindings end after `_BINDING_MAX_AGE` seconds."""
        while True:
            await asyncio.sleep(_SWEEP_INTERVAL)
            if not len(self.router) or not self.ari_connected:
                continue
            try:
                await self._sweep_bindings()
            except (AriProxyError, msgspec.DecodeError) as exc:
                logger.debug("binding sweep failed: %s", exc)

    async def _sweep_bindings(self) -> None:
        executor = next(iter(self.executors.values()))
        channels = await executor.execute("ChannelList", Key("channel", ""))
        bridges = await executor.execute("BridgeList", Key("bridge", ""))
        live = {"channel": {k.id for k in channels.keys}, "bridge": {k.id for k in bridges.keys}}
        ended = self.router.sweep(live, older_than=_SWEEP_INTERVAL, max_age=_BINDING_MAX_AGE)
        if ended:
            logger.info("ended dialog bindings of entities that are gone", extra={"count": ended})

    async def _check_entity_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.entity_check_interval)
            if not self.ari_connected:
                continue
            try:
                await self._refresh_node()
            except (AriProxyError, msgspec.DecodeError) as exc:
                held = self._limiter.allow("entity-check")
                if held is not None:
                    logger.warning("entity ID check failed: %s", exc, extra={"suppressed": held})


class _Dialplan(msgspec.Struct):
    app_name: str = ""
    app_data: str = ""


class _ChannelHead(msgspec.Struct):
    id: str = ""
    dialplan: _Dialplan | None = None


_channel_head = msgspec.json.Decoder(_ChannelHead)


def _in_stasis(channel: bytes, app: str) -> bool:
    """Whether an ARI Channel object is in the Stasis application `app`."""
    try:
        plan = _channel_head.decode(channel).dialplan
    except msgspec.DecodeError:
        return False
    return plan is not None and plan.app_name == "Stasis" and plan.app_data.split(",")[0] == app


def _channel_of(stasis_start: bytes) -> str:
    """The channel ID of a StasisStart built by `stasis_start`."""
    return str(msgspec.json.decode(stasis_start)["channel"]["id"])


def _channel_ids(application: bytes) -> list[str]:
    """The `channel_ids` of an ARI Application object."""
    body = msgspec.json.decode(application)
    ids = body.get("channel_ids") if isinstance(body, dict) else None
    return [i for i in ids if isinstance(i, str)] if isinstance(ids, list) else []
