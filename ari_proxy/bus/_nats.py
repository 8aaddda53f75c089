"""The NATS transport, over nats-py, wire-compatible with the Go ari-proxy v5 (docs/protocol.md,
"Subjects").

Requests use nats-py's muxed `_INBOX` requests, as nats.go does; gathers publish with a
`<rid>-rp` reply subject, as the Go client does; `serve(..., group="ariproxy")` is the queue
group Go servers use for `create`. Unlike Go, `subscribe(..., group=...)` is a real queue
subscription (Go defect 23), and the link is never given up (Go defect 22):

- the first connection is retried forever with jittered exponential backoff (`Backoff`);
- once connected, nats-py reconnects forever (`max_reconnect_attempts=-1`), to the server with
  the fewest failed attempts, after a jittered backoff delay (its `reconnect_to_server_handler`),
  and replays the subscriptions itself;
- should nats-py close the connection by itself anyway (a fatal server error), a new connection
  is made and every live subscription is restored on it.

Credentials (user/password, token, creds file, nkey seed, URL user info) never reach a log line
or an exception message: URLs are shown through `redact_url`, and error texts are scrubbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import nats.errors as nats_errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from .._backoff import RETRY_INITIAL, RETRY_MAXIMUM, Backoff, worth_logging
from .._exceptions import (
    AriProxyError,
    AuthenticationError,
    CertificateError,
    ClientClosedError,
    ConnectError,
    TransportError,
    certificate_refusal,
)
from .._redact import redact_url, scrub, url_secrets
from ..protocol import check_token, new_id
from ._handlers import HandlerRunner, drain_all
from ._nats_errors import (
    AUTH_FAILURE,
    NATS_LINK_ERRORS,
    NATS_RETRYABLE_ERRORS,
    is_auth_failure,
    translate_nats_error,
)
from ._nats_fast import deliver_inline, write_now
from ._state import StateKeeper
from ._transport import MAX_GATHER_REPLIES, BusMessage, BusState, Handler, Transport, check_subject

__all__ = ["NatsTransport"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

# nats-py's `reconnect_to_server_handler` is recent (nats.py PR #829; 2.16 has it). Without it,
# reconnects wait a fixed `reconnect_time_wait` between attempts to one server, with no jitter.
_HAS_SERVER_HANDLER = (
    "reconnect_to_server_handler" in inspect.signature(NatsClient.connect).parameters
)
_FALLBACK_RECONNECT_WAIT = 2.0

# While reconnecting (or dropping for a slow consumer), one warning per this many seconds.
_WARNING_INTERVAL = 30.0


class _Link:
    """The supervised nats-py connection of one `NatsTransport`.

    Connects (retrying forever with backoff), then lets nats-py reconnect forever, follows its
    callbacks into `state` and `gaps`, and makes a new client if nats-py closes one by itself.
    `attach(nc)` runs on every new client before it becomes `nc` (usable).
    """

    def __init__(
        self,
        servers: list[str],
        options: dict[str, Any],
        *,
        reconnect_wait: tuple[float, float],
        secrets: list[str],
        attach: Callable[[NatsClient], Awaitable[None]],
        on_slow_consumer: Callable[[], None],
    ) -> None:
        self.state = StateKeeper()
        self.gaps = 0
        self.nc: NatsClient | None = None  # usable: connected, subscriptions attached
        self.live: NatsClient | None = None  # the client whose callbacks count
        self.closing = False
        self.servers = [redact_url(url) for url in servers]
        self._urls = servers
        self._options = options
        self._reconnect_wait = reconnect_wait
        self._secrets = secrets
        self._attach = attach
        self._on_slow_consumer = on_slow_consumer
        self._task: asyncio.Task[None] | None = None
        self._backoff = Backoff(initial=reconnect_wait[0], maximum=reconnect_wait[1])
        self._rng = random.Random()
        # The server we were on: tried last on reconnect, and named (redacted) in the logs.
        self._last_netloc = ""
        self.last_url = ""
        self._error: BaseException | None = None  # latest error nats-py reported
        self.last_failure = ""  # why the last connection attempt failed, scrubbed
        self._down_since = 0.0
        self._last_warning = float("-inf")
        self._last_slow_warning = float("-inf")
        self._auth_told = False  # an authentication failure was logged in this outage

    def describe(self, exc: BaseException) -> str:
        """The text of `exc`, safe to log."""
        return scrub(str(exc) or type(exc).__name__, self._secrets)

    async def connect(self) -> None:
        """Connect once (shared by concurrent callers); see `NatsTransport.connect`."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._connect_loop(restart=False), name="nats connect"
            )
        task = self._task
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if self.closing and task.cancelled() and not _cancelling():
                last = f" (last error: {self.last_failure})" if self.last_failure else ""
                raise ClientClosedError(
                    f"the NATS transport was closed before it connected{last}"
                ) from None
            raise

    async def stop(self) -> NatsClient | None:
        """Stop connecting and reacting to nats-py; return the client to drain and close."""
        self.closing = True
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        return self.nc or self.live

    async def _connect_loop(self, *, restart: bool) -> None:
        backoff = Backoff(initial=self._reconnect_wait[0], maximum=self._reconnect_wait[1])
        attempt = 0
        while True:
            attempt += 1
            nc = NatsClient()
            self._error = None
            connected = False
            try:
                await nc.connect(**self._client_options(nc))
                self._enter_reconnect_forever(nc)
                self.live = nc
                await self._attach(nc)
                connected = True
            except NATS_RETRYABLE_ERRORS as exc:
                self.last_failure = self.describe(self._error or exc)
                untrusted = certificate_refusal(self._error or exc)
                if untrusted and not restart:  # at startup: the CA setting is wrong, end
                    raise CertificateError(
                        f"the message bus's TLS certificate was not trusted (NATS at "
                        f"{', '.join(self.servers)}): {untrusted}; give the CA that signed it "
                        f"(tls_ca_file)"
                    ) from None
                if is_auth_failure(self._error or exc):
                    if not restart:  # at startup: the credentials are wrong, say so and end
                        raise AuthenticationError(
                            f"the message bus refused the credentials (NATS at "
                            f"{', '.join(self.servers)}): {self.last_failure}"
                        ) from None
                    self.last_failure = f"{AUTH_FAILURE}: {self.last_failure}"
            except Exception as exc:
                raise ConnectError(
                    f"cannot connect to NATS at {', '.join(self.servers)}: {self.describe(exc)}"
                ) from None
            finally:
                if not connected:
                    self.live = None
                    # Bounded: after a failed TLS handshake nats-py's close() never returns.
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(1.0):
                            await nc.close()
            if connected:
                break
            if self.closing:
                # stop() cancelled this task, but Python 3.11's asyncio.wait_for (inside
                # nats-py's connect) returns the result of an attempt that ended at the same
                # moment instead of the cancellation, which is then lost: end here.
                raise asyncio.CancelledError
            delay = backoff.next()
            if worth_logging(attempt):
                logger.warning(
                    "could not connect to NATS at %s (attempt %d): %s; retrying in %.2fs",
                    ", ".join(self.servers),
                    attempt,
                    self.last_failure,
                    delay,
                )
            await asyncio.sleep(delay)
        self.nc = nc
        self._remember_server(nc)
        if restart:
            self.gaps += 1
        logger.info("connected to NATS at %s", self.last_url)
        self.state.set(BusState.CONNECTED)

    def _client_options(self, nc: NatsClient) -> dict[str, Any]:
        # Callbacks are bound to their client: a discarded attempt's must not move our state.
        # (nats-py insists on coroutine functions.)
        def bound(handler: Callable[..., None]) -> Callable[..., Awaitable[None]]:
            async def callback(*args: Any) -> None:
                handler(nc, *args)

            return callback

        options: dict[str, Any] = {
            "servers": self._urls,
            # The first connection is ours to retry (with backoff and a log line per attempt):
            # nats-py tries each server twice, then raises. `_enter_reconnect_forever` switches.
            "allow_reconnect": False,
            "max_reconnect_attempts": 1,
            "reconnect_time_wait": 0,
            "error_cb": bound(self._on_error),
            "disconnected_cb": bound(self._on_disconnected),
            "reconnected_cb": bound(self._on_reconnected),
            "closed_cb": bound(self._on_closed),
            **self._options,
        }
        if _HAS_SERVER_HANDLER:
            options["reconnect_to_server_handler"] = self._pick_server
        return options

    def _enter_reconnect_forever(self, nc: NatsClient) -> None:
        # nats-py reads these options at every disconnect, so changing them after the first
        # connection turns on its reconnect loop, forever (Go defect 22).
        nc.options["allow_reconnect"] = True
        nc.options["max_reconnect_attempts"] = -1
        nc.options["reconnect_time_wait"] = (
            self._reconnect_wait[0] if _HAS_SERVER_HANDLER else _FALLBACK_RECONNECT_WAIT
        )

    def _pick_server(self, servers: list[Any], info: dict[str, Any]) -> tuple[Any, float]:
        # The server with the fewest failed attempts, preferring one other than the server we
        # just lost, after a jittered exponential delay.
        fewest = min(server.reconnects for server in servers)
        candidates = [server for server in servers if server.reconnects == fewest]
        others = [server for server in candidates if server.uri.netloc != self._last_netloc]
        return self._rng.choice(others or candidates), self._backoff.next()

    def _remember_server(self, nc: NatsClient) -> None:
        url = nc.connected_url
        self._last_netloc = url.netloc if url is not None else ""
        self.last_url = redact_url(url.geturl()) if url is not None else ""

    def _on_error(self, nc: NatsClient, exc: Exception) -> None:
        now = time.monotonic()
        if isinstance(exc, nats_errors.SlowConsumerError):
            self._on_slow_consumer()
            if now - self._last_slow_warning >= _WARNING_INTERVAL:
                self._last_slow_warning = now
                logger.warning("NATS dropped messages for a slow subscription on %s", exc.subject)
        elif self.state.state is BusState.RECONNECTING and nc is self.live:
            auth = f"{AUTH_FAILURE}: " if is_auth_failure(exc) else ""
            # The first refusal of the credentials in an outage is told at once.
            if now - self._last_warning >= _WARNING_INTERVAL or (auth and not self._auth_told):
                self._last_warning = now
                self._auth_told = self._auth_told or bool(auth)
                logger.warning(
                    "still reconnecting to NATS after %.0fs: %s%s",
                    now - self._down_since,
                    auth,
                    self.describe(exc),
                )
        elif nc is not self.live or isinstance(exc, NATS_LINK_ERRORS):
            # Told by the warning that follows: "could not connect", "lost the connection".
            self._error = exc
            logger.debug("NATS: %s", self.describe(exc))
        else:
            logger.warning("NATS error: %s", self.describe(exc))

    def _on_disconnected(self, nc: NatsClient) -> None:
        if nc is not self.live or self.closing:
            return
        self._down_since = self._last_warning = time.monotonic()
        self._auth_told = False
        cause, self._error = self._error, None
        logger.warning(
            "lost the connection to NATS at %s (%s); reconnecting",
            self.last_url,
            self.describe(cause) if cause is not None else "closed",
        )
        self.state.set(BusState.RECONNECTING)

    def _on_reconnected(self, nc: NatsClient) -> None:
        if nc is not self.live or self.closing:
            return
        self.gaps += 1
        self._backoff.reset()
        self._remember_server(nc)
        logger.info(
            "reconnected to NATS at %s after %.2fs",
            self.last_url,
            time.monotonic() - self._down_since,
        )
        self.state.set(BusState.CONNECTED)

    def _on_closed(self, nc: NatsClient) -> None:
        if nc is not self.live or self.closing:
            return
        # nats-py gave up on this connection by itself (a fatal server error): start another
        # one and restore the subscriptions on it, rather than stay up but deaf.
        logger.warning("the NATS connection was closed by nats-py; connecting again")
        self.nc = self.live = None
        self.state.set(BusState.RECONNECTING)
        self._task = asyncio.get_running_loop().create_task(
            self._connect_loop(restart=True), name="nats reconnect"
        )
        self._task.add_done_callback(_log_failure)


class _NatsSubscription:
    """A live subscription; it survives reconnects (nats-py replays it, or we re-attach it)."""

    def __init__(
        self,
        transport: NatsTransport,
        subject: str,
        group: str,
        runner: HandlerRunner,
        raw: Callable[[Msg], None] | None = None,
    ) -> None:
        self.group = group
        self.runner = runner
        self.raw = raw
        """Takes each message as nats-py's `Msg` instead of `runner` (the reply inbox)."""
        self.active = True
        self.nats_sub: Any = None
        self._transport = transport
        self._subject = subject

    @property
    def subject(self) -> str:
        """The subject (possibly with wildcards) this subscription receives."""
        return self._subject

    async def attach(self, nc: NatsClient) -> None:
        self.nats_sub = await nc.subscribe(self._subject, queue=self.group, cb=self._on_message)
        if self.raw is not None:
            # Replies to our requests: in nats-py's reader task, a turn of the loop sooner.
            # Not for the other subscriptions: measured with 32 requests in flight, a server
            # receiving them so spent more CPU per request (docs/benchmarks.md).
            deliver_inline(self.nats_sub, self._deliver)

    def _deliver(self, msg: Msg) -> None:
        # Runs in nats-py's per-subscription task (the reply inbox: in its reader task): the
        # runner calls plain handlers inline and starts coroutine handlers as tasks, so one
        # slow handler cannot stall the others.
        if not self.active:
            return
        if self.raw is not None:
            self.raw(msg)
        else:
            self.runner(BusMessage(subject=msg.subject, data=msg.data, reply=msg.reply or ""))

    async def _on_message(self, msg: Msg) -> None:
        self._deliver(msg)

    async def unsubscribe(self) -> None:
        """Stop receiving; idempotent."""
        if not self.active:
            return
        self.active = False
        self._transport._forget(self)
        sub, self.nats_sub = self.nats_sub, None
        if sub is not None:
            # Already gone with a closed connection, or already unsubscribed: nothing to undo.
            with contextlib.suppress(nats_errors.Error):
                await sub.unsubscribe()


class NatsTransport:
    """A connection to a NATS server or cluster, implementing `Transport`.

    ```python
    bus = NatsTransport(["nats://n1:4222", "nats://n2:4222"], name="ari-proxy")
    await bus.connect()
    reply = await bus.request("ari.get.app", body, timeout=0.5)
    await bus.close()
    ```

    `prefix` is accepted for the same constructor as the RabbitMQ transport; NATS subjects
    arrive complete. `creds_file` is a `.creds` file (JWT and seed), `nkeys_seed` a file holding
    an nkey seed (both need nats-py's `nkeys` extra). `reconnect_wait` is the (first, largest)
    delay between attempts; `ping_interval` how often an idle link is checked (a half-open link
    is noticed after about three times that). Each subscription runs at most `max_inflight`
    coroutine handlers at once and drops (and counts in `dropped`) what comes beyond.
    `drain_timeout` bounds how long `close()` waits for handlers.
    """

    def __init__(
        self,
        servers: Sequence[str],
        *,
        prefix: str = "ari.",
        name: str = "",
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        creds_file: str | os.PathLike[str] | None = None,
        nkeys_seed: str | os.PathLike[str] | None = None,
        tls: ssl.SSLContext | None = None,
        connect_timeout: float = 5.0,
        reconnect_wait: tuple[float, float] = (RETRY_INITIAL, RETRY_MAXIMUM),
        ping_interval: float = 20.0,
        max_inflight: int = 1024,
        drain_timeout: float = 5.0,
        scope: str = "",
    ) -> None:
        urls = [servers] if isinstance(servers, str) else list(servers)
        if not urls:
            raise ValueError("NatsTransport needs at least one server URL")
        if scope:
            check_token(scope, "scope")
        for option, path in (("creds_file", creds_file), ("nkeys_seed", nkeys_seed)):
            if path is not None and not os.path.isfile(path):
                raise ValueError(f"{option} must name a readable file")
        if max_inflight < 1:
            raise ValueError("max_inflight must be at least 1")
        self.prefix = prefix
        self.name = name
        # A client's replies come to `_INBOX.<scope>.…`, a subject NATS permissions can keep
        # to its application (docs/security.md); a server's to nats-py's `_INBOX.…`.
        self._inbox = f"_INBOX.{scope}" if scope else ""
        self.dropped = 0
        """Messages dropped: over `max_inflight`, or by nats-py for a slow subscription."""
        options = {
            "name": name or None,
            "user": user,
            "password": password,
            "token": token,
            "tls": tls,
            "user_credentials": os.fspath(creds_file) if creds_file is not None else None,
            "nkeys_seed": os.fspath(nkeys_seed) if nkeys_seed is not None else None,
            "connect_timeout": connect_timeout,
            "ping_interval": ping_interval,
            "max_outstanding_pings": 3,
            "inbox_prefix": self._inbox or None,
        }
        self._link = _Link(
            urls,
            {key: value for key, value in options.items() if value is not None},
            reconnect_wait=reconnect_wait,
            secrets=url_secrets(urls, password, token),
            attach=self._attach_all,
            on_slow_consumer=self._count_drop,
        )
        self._flush_timeout = max(1, round(connect_timeout))
        self._max_inflight = max_inflight
        self._drain_timeout = drain_timeout
        self._subs: dict[_NatsSubscription, None] = {}  # insertion-ordered set
        self._retired: set[HandlerRunner] = set()  # runners of ended subs with tasks running
        self._waiters: set[asyncio.Future[Any]] = set()
        self._closed = asyncio.Event()
        # Requests' replies: one inbox subscription, a future per request in flight (as many
        # as the callers have in flight; each removed when its request ends).
        self._reply_prefix = ""
        self._reply_lock = asyncio.Lock()
        self._reply_count = 0
        self._replies: dict[str, asyncio.Future[Msg]] = {}

    @property
    def state(self) -> BusState:
        """Where the link is (CONNECTING until the first connection succeeds)."""
        return self._link.state.state

    @property
    def gaps(self) -> int:
        """Interruptions of the link so far (reconnects, and new connections after a close)."""
        return self._link.gaps

    @property
    def max_payload(self) -> int | None:
        """The largest message the NATS server takes (its `max_payload`), once connected."""
        nc = self._link.nc
        return nc.max_payload if nc is not None else None

    @property
    def servers(self) -> list[str]:
        """The configured server URLs, redacted for display."""
        return list(self._link.servers)

    @property
    def connected_url(self) -> str:
        """The (redacted) URL of the server we are connected to, or "" when not connected."""
        nc = self._link.nc
        return self._link.last_url if nc is not None and nc.is_connected else ""

    @property
    def last_failure(self) -> str:
        """Why the latest connection attempt failed (secrets scrubbed), or "" (see
        `connect_within`)."""
        return self._link.last_failure

    def on_state(self, callback: Callable[[BusState], None]) -> None:
        """Call `callback` on every state change (after a reconnect: CONNECTED again)."""
        self._link.state.add(callback)

    async def connect(self) -> None:
        """Connect, retrying with backoff until it succeeds or `close()` is called.

        Each failed attempt is logged at WARNING with the URLs redacted. Concurrent callers
        share one attempt; cancelling one caller does not stop it.

        Raises:
            ConnectError: the configuration cannot work (not retried), e.g. nkeys auth without
                the `nkeys` package.
            ClientClosedError: `close()` was called first or meanwhile.
        """
        self._check_open()
        if self._link.nc is None:
            await self._link.connect()

    async def close(self) -> None:
        """Drain and close; idempotent.

        Stops new deliveries (subscriptions are drained while the link is up), waits up to
        `drain_timeout` for handler tasks (they may still publish replies), then closes the
        connection. Pending requests, gathers and `connect()` fail with `ClientClosedError`.
        """
        if self._link.closing:
            await self._closed.wait()
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._drain_timeout
        nc = await self._link.stop()
        for waiter in list(self._waiters):
            waiter.cancel()
        subs = list(self._subs)
        if nc is not None and nc.is_connected:
            drains = [sub.nats_sub.drain() for sub in subs if sub.nats_sub is not None]
            try:
                async with asyncio.timeout_at(deadline):
                    await asyncio.gather(*drains, return_exceptions=True)
            except TimeoutError:
                logger.warning("NATS subscriptions did not drain within %.1fs", self._drain_timeout)
        for sub in subs:
            sub.active = False
            sub.nats_sub = None
            self._forget(sub)
        await drain_all(self._retired, deadline)
        self._retired.clear()
        if nc is not None:
            if nc.is_connected:
                # Replies the handlers published must leave before the socket closes.
                with contextlib.suppress(nats_errors.Error, asyncio.TimeoutError):
                    await nc.flush(timeout=1)
            with contextlib.suppress(Exception):
                await nc.close()
        self._link.nc = self._link.live = None
        self._link.state.set(BusState.CLOSED)
        self._closed.set()

    async def serve(self, subject: str, handler: Handler, *, group: str = "") -> _NatsSubscription:
        """Receive requests on `subject`; with `group`, a NATS queue subscription. Returns once
        the server knows the subscription.

        Raises:
            ProtocolError: `subject` or `group` is not valid.
            TransportError: NATS refused the subscription.
            ClientClosedError: the transport was closed.
        """
        return await self._subscribe(subject, handler, group)

    async def reply(self, message: BusMessage, data: bytes) -> None:
        """Publish `data` on `message.reply` (nothing when it has none); raises as `publish`."""
        if message.reply:
            await self.publish(message.reply, data)

    async def publish(self, subject: str, data: bytes) -> None:
        """Publish `data` on `subject` (buffered by nats-py while reconnecting).

        Allowed during `close()` until the connection is closed, so handlers can still reply.

        Raises:
            ProtocolError: `subject` is empty, has wildcards, empty tokens or whitespace.
            TransportError: not connected, the link's buffer is full, or `data` exceeds the
                server's max_payload.
            ClientClosedError: the transport was closed.
        """
        check_subject(subject, wildcards=False)
        await self._publish(self._client(draining_ok=True), subject, data)

    async def on_ping(self, subject: str, handler: Handler) -> _NatsSubscription:
        """Receive pings on `subject` (every subscriber gets each); raises as `serve`."""
        return await self._subscribe(subject, handler, "")

    async def request(self, subject: str, data: bytes, *, timeout: float) -> bytes:
        """Send a request and return the first reply.

        Raises:
            RequestTimeout: no reply within `timeout`.
            NoProxyError: nobody subscribes to `subject` (NATS "no responders"), at once.
            ProtocolError: `subject` is not valid.
            TransportError: not connected, or `data` exceeds the server's max_payload.
            ClientClosedError: the transport was closed before a reply came.
        """
        check_subject(subject, wildcards=False)
        nc = self._client()
        _check_payload(nc, subject, data)
        prefix = self._reply_prefix or await self._open_reply_inbox()
        # Our own muxed inbox rather than nats-py's `request()`: its replies reach us in
        # nats-py's reader task (`deliver_inline`), and no task is made per request.
        self._reply_count += 1
        token = str(self._reply_count)
        future: asyncio.Future[Msg] = asyncio.get_running_loop().create_future()
        self._replies[token] = future
        self._waiters.add(future)
        try:
            nc = self._client()
            # Alone, the request leaves at once rather than at the flusher's next turn; with
            # others in flight the flusher writes them together (fewer syscalls: measured, a
            # server or client writing each at once spent more CPU per request under load).
            alone = len(self._replies) == 1
            if not (alone and write_now(nc, subject, prefix + token, data)):
                await self._publish(nc, subject, data, reply=prefix + token)
            async with asyncio.timeout(timeout):
                msg = await future
        except TimeoutError:
            raise self._translate(nats_errors.TimeoutError(), subject) from None
        except asyncio.CancelledError:
            if self._link.closing and future.cancelled() and not _cancelling():
                raise ClientClosedError("the NATS transport was closed") from None
            raise
        finally:
            del self._replies[token]
            self._waiters.discard(future)
        if _is_no_responders(msg):
            raise self._translate(nats_errors.NoRespondersError(), subject)
        return bytes(msg.data)

    async def _open_reply_inbox(self) -> str:
        # Once, at the first request: a wildcard subscription on `<inbox>.<id>.*`, restored
        # with the others after a reconnect.
        async with self._reply_lock:
            if not self._reply_prefix:
                prefix = f"{self._inbox or '_INBOX'}.{new_id('r')}."
                await self._subscribe(prefix + "*", _ignore, "", raw=self._on_reply)
                self._reply_prefix = prefix
        return self._reply_prefix

    def _on_reply(self, msg: Msg) -> None:
        future = self._replies.get(msg.subject[len(self._reply_prefix) :])
        if future is not None and not future.done():
            future.set_result(msg)

    async def gather(
        self,
        subject: str,
        data: bytes,
        *,
        timeout: float,
        enough: Callable[[list[bytes]], bool],
    ) -> list[bytes]:
        """Send a request several servers answer and collect their replies.

        Publishes with the reply subject `<rid>-rp` (as Go does; `_INBOX.<scope>.<rid>-rp` for a
        scoped connection) and collects until
        `enough(replies)` is true, `MAX_GATHER_REPLIES` arrived or `timeout` passed; returns
        at once with no replies when nobody subscribes to `subject`.

        Raises:
            ProtocolError: `subject` is not valid.
            TransportError: not connected, or `data` exceeds the server's max_payload.
            ClientClosedError: the transport was closed during the gather.
            Exception: whatever `enough` raised.
        """
        check_subject(subject, wildcards=False)
        nc = self._client()
        _check_payload(nc, subject, data)
        return await self._until_closed(self._gather(nc, subject, data, timeout, enough))

    async def _gather(
        self,
        nc: NatsClient,
        subject: str,
        data: bytes,
        timeout: float,
        enough: Callable[[list[bytes]], bool],
    ) -> list[bytes]:
        token = check_token(new_id("rp"), "reply subject")
        reply = f"{self._inbox}.{token}" if self._inbox else token  # bare: Go's `<rid>-rp`
        replies: list[bytes] = []
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def collect(msg: Msg) -> None:
            if done.done():
                return
            if _is_no_responders(msg):
                done.set_result(None)
                return
            replies.append(bytes(msg.data))
            try:
                if len(replies) >= MAX_GATHER_REPLIES or enough(replies):
                    done.set_result(None)
            except Exception as exc:
                done.set_exception(exc)

        try:
            sub = await nc.subscribe(reply, cb=collect)
        except nats_errors.Error as exc:
            raise self._translate(exc, subject) from exc
        try:
            await self._publish(nc, subject, data, reply=reply)
            await asyncio.wait([done], timeout=timeout)
            if done.done():
                done.result()  # re-raises what `enough` raised
            return list(replies)
        finally:
            if not done.done():
                done.cancel()
            with contextlib.suppress(nats_errors.Error):
                await sub.unsubscribe()

    async def subscribe(
        self, subject: str, handler: Handler, *, group: str = ""
    ) -> _NatsSubscription:
        """Receive messages matching `subject` (`*`, `>` allowed); with `group`, each message
        goes to one member of the group (a NATS queue subscription). Raises as `serve`."""
        return await self._subscribe(subject, handler, group)

    async def ping(self, subject: str, data: bytes) -> None:
        """Publish a ping; raises as `publish`."""
        await self.publish(subject, data)

    # --- helpers -------------------------------------------------------------------------------

    async def _subscribe(
        self, subject: str, handler: Handler, group: str, raw: Callable[[Msg], None] | None = None
    ) -> _NatsSubscription:
        check_subject(subject, wildcards=True)
        if group:
            check_subject(group, wildcards=False)
        self._check_open()
        runner = HandlerRunner(
            subject, handler, max_inflight=self._max_inflight, on_drop=self._count_drop
        )
        sub = _NatsSubscription(self, subject, group, runner, raw)
        self._subs[sub] = None
        nc = self._link.nc
        if nc is not None:  # otherwise the connect loop attaches it
            try:
                await sub.attach(nc)
            except nats_errors.Error as exc:
                self._subs.pop(sub, None)
                raise self._translate(exc, subject) from exc
            await self._confirm(nc)
        return sub

    async def _attach_all(self, nc: NatsClient) -> None:
        # On a new client (first connection, or after nats-py closed one). Subscriptions made
        # meanwhile only register (no usable client yet): loop until none is left unattached.
        attached: set[_NatsSubscription] = set()
        while pending := [sub for sub in self._subs if sub not in attached]:
            for sub in pending:
                if sub.active:
                    await sub.attach(nc)
                attached.add(sub)
        if attached:
            await self._confirm(nc)

    async def _confirm(self, nc: NatsClient) -> None:
        # Returns once the server has processed our SUBs, so that a request sent right after
        # `serve()` (from any connection) cannot find "no responders". nats-py queues SUB for
        # its flusher task but writes PING straight to the socket, so a bare flush() can
        # overtake the SUB (measured: 1 in 50-150 times on loopback). So first wait for the
        # flusher (a private method, hence the guard), then PING. A link in trouble is not an
        # error here: nats-py replays the subscription after the reconnect.
        if not nc.is_connected:
            return
        try:
            flush_pending = getattr(nc, "_flush_pending", None)
            if flush_pending is not None:
                await asyncio.wait_for(flush_pending(force_flush=True), self._flush_timeout)
            await nc.flush(timeout=self._flush_timeout)
        except (TimeoutError, nats_errors.Error) as exc:
            logger.debug("NATS flush after subscribing failed: %s", self._link.describe(exc))

    def _forget(self, sub: _NatsSubscription) -> None:
        self._subs.pop(sub, None)
        self._retired = {runner for runner in self._retired if runner.inflight}
        if sub.runner.inflight:
            self._retired.add(sub.runner)

    async def _publish(self, nc: NatsClient, subject: str, data: bytes, reply: str = "") -> None:
        _check_payload(nc, subject, data)
        try:
            await nc.publish(subject, data, reply=reply)
        except nats_errors.Error as exc:
            raise self._translate(exc, subject) from exc

    async def _until_closed(self, coro: Coroutine[Any, Any, _T]) -> _T:
        # Runs `coro` as a task that close() can cancel, turning that into ClientClosedError
        # for the caller (nats-py itself would leave a pending request to time out).
        task = asyncio.ensure_future(coro)
        self._waiters.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            if self._link.closing and task.cancelled() and not _cancelling():
                raise ClientClosedError("the NATS transport was closed") from None
            raise
        finally:
            self._waiters.discard(task)

    def _client(self, *, draining_ok: bool = False) -> NatsClient:
        nc = self._link.nc
        if self._link.closing and not (draining_ok and nc is not None):
            raise ClientClosedError("the NATS transport was closed")
        if nc is None:
            if self.state is BusState.CONNECTING:
                raise TransportError("not connected to NATS yet: call connect() first")
            raise TransportError("the NATS connection is being re-established")
        return nc

    def _check_open(self) -> None:
        if self._link.closing:
            raise ClientClosedError("the NATS transport was closed")

    def _count_drop(self) -> None:
        self.dropped += 1

    def _translate(self, exc: BaseException, subject: str) -> AriProxyError:
        error = translate_nats_error(
            exc, closed=self._link.closing, context=f"NATS subject {subject!r}"
        )
        error.args = (self._link.describe(error),)
        return error


def _ignore(message: BusMessage) -> None:
    """The handler of a subscription whose messages go elsewhere (`_NatsSubscription.raw`)."""


def _check_payload(nc: NatsClient, subject: str, data: bytes) -> None:
    if len(data) > nc.max_payload:
        raise TransportError(
            f"a message of {len(data)} bytes on {subject!r} exceeds the NATS server's "
            f"max_payload of {nc.max_payload} bytes"
        )


def _is_no_responders(msg: Msg) -> bool:
    # nats-server answers a request nobody subscribes to with an empty `NATS/1.0 503` status
    # message on its reply subject (our CONNECT enables it through nats-py's headers support).
    headers = msg.headers
    return not msg.data and headers is not None and headers.get("Status") == "503"


def _cancelling() -> bool:
    """Whether someone asked to cancel the current task (as opposed to a task it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("reconnecting to NATS failed for good", exc_info=task.exception())


if TYPE_CHECKING:  # mypy checks that the class implements the interface

    def _is_a_transport(transport: NatsTransport) -> Transport:
        return transport
