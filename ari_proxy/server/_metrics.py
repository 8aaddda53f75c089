"""Prometheus metrics of the proxy server, in a registry of its own (docs/operations.md lists them).

Nearly everything is read when Prometheus scrapes, from what the server keeps anyway: the
`Counters`, `Server.stats()`, the ARI and bus states. Between scrapes those metrics cost
nothing, and the event path has no metrics code at all.

Requests are the exception, since they are counted by kind, result code and latency. Each one
costs a lookup of its (application, kind) record, a bisection into the histogram's buckets and
a few integer additions (plus reading the kind: a decode of the `kind` member alone); the record
is made once per kind and kept, so nothing is allocated per request. Kinds not in the kind
table are counted as `unknown` and codes that are not an `ErrorCode` as `error`, so a client
cannot grow the number of series. The registry is built from those records at scrape time.

Each `Server` has its own `CollectorRegistry` (`ServerMetrics.registry`), never the global
default one: several servers in one process (tests) do not collide, and an application that
embeds a server can expose the registry as it likes.
"""

from __future__ import annotations

import bisect
import platform
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import msgspec
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .._version import __version__
from ..ari import ConnectionState
from ..bus import BusState
from ..protocol import KINDS, ErrorCode, Response
from ._offers import MAX_LISTENERS_PER_APP

if TYPE_CHECKING:
    from ._server import Server

__all__ = ["DURATION_BUCKETS", "ServerMetrics"]

DURATION_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
"""Upper bounds (seconds) of the request latency histogram; 10 s is the default
`proxy.request_timeout`, 30 s leaves room for a longer one."""

_BOUND_LABELS = (*(repr(b) for b in DURATION_BUCKETS), "+Inf")  # as Prometheus writes `le`
_CODES = frozenset(code.value for code in ErrorCode)
_UNKNOWN = "unknown"
_OK = "ok"
_IGNORED = "ignored"


class _Kind(msgspec.Struct):
    """The one member of a request the metrics read."""

    kind: str = ""


_kind_decoder = msgspec.json.Decoder(_Kind)


def kind_of(data: bytes) -> str:
    """The request's kind as a label: a kind of the table, else `unknown`."""
    try:
        kind = _kind_decoder.decode(data).kind
    except msgspec.DecodeError:
        return _UNKNOWN
    return kind if kind in KINDS else _UNKNOWN


class _Record:
    """What one (application, kind) has seen: replies by code, and the latency histogram."""

    __slots__ = ("buckets", "codes", "sum")

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        # One count per bucket (not cumulative), the last one above the highest bound.
        self.buckets = [0] * (len(DURATION_BUCKETS) + 1)
        self.sum = 0.0


class _Outage:
    """Times a link went away after it had been up, and for how long in all."""

    __slots__ = ("lost_at", "reconnects", "seconds")

    def __init__(self) -> None:
        self.reconnects = 0
        self.seconds = 0.0
        self.lost_at: float | None = None

    def lost(self) -> None:
        if self.lost_at is None:
            self.lost_at = time.monotonic()

    def back(self) -> None:
        if self.lost_at is not None:
            self.seconds += time.monotonic() - self.lost_at
            self.lost_at = None
            self.reconnects += 1

    def closed(self) -> None:
        self.lost_at = None

    def total_seconds(self) -> float:
        """Seconds down in all, the current outage included (the counter grows during it)."""
        ongoing = time.monotonic() - self.lost_at if self.lost_at is not None else 0.0
        return self.seconds + ongoing


class ServerMetrics:
    """The metrics of one server: the request records, the link outages, and the registry.

    ```python
    metrics = ServerMetrics(server)          # the Server does this (server.metrics)
    prometheus_client.generate_latest(metrics.registry)
    ```

    Attributes:
        registry: the server's own Prometheus registry: its metrics, the process's
            (`process_*`, `python_info`, `python_gc_*`).
    """

    def __init__(self, server: Server) -> None:
        self._server = server
        self._records: dict[str, dict[str, _Record]] = {app: {} for app in server.applications}
        self.ari = _Outage()
        self.bus = _Outage()
        server.stream.on_state(self._on_ari_state)
        server.bus.on_state(self._on_bus_state)
        self.registry = CollectorRegistry()
        self.registry.register(_Collector(self))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)  # registers only where gc has the statistics

    # --- the request path (keep it cheap: it runs for every request) ---------------------------

    def _record(self, app: str, kind: str) -> _Record:
        table = self._records[app]
        record = table.get(kind)
        if record is None:
            if kind not in KINDS:
                kind = _UNKNOWN
            record = table.get(kind)
            if record is None:
                record = table[kind] = _Record()
        return record

    def executed(self, app: str, data: bytes, response: Response | None, started: float) -> None:
        """Count a request that was dispatched: `response` None when it was another server's
        (`ignored`, not timed), else its code and its latency since `started`
        (`time.perf_counter()`)."""
        elapsed = time.perf_counter() - started
        record = self._record(app, kind_of(data))
        if response is None:
            code = _IGNORED
        else:
            if response.error:
                code = response.code if response.code in _CODES else "error"
            else:
                code = _OK
            record.buckets[bisect.bisect_left(DURATION_BUCKETS, elapsed)] += 1
            record.sum += elapsed
        codes = record.codes
        codes[code] = codes.get(code, 0) + 1

    def refused(self, app: str, data: bytes, code: str) -> None:
        """Count a request refused before it was dispatched (`ari_down`, `busy`, `too_large`),
        by its kind when `data` is given (b"" for one too large to read)."""
        record = self._record(app, kind_of(data) if data else _UNKNOWN)
        codes = record.codes
        codes[code] = codes.get(code, 0) + 1

    # --- link state ------------------------------------------------------------------------------

    def _on_ari_state(self, state: ConnectionState) -> None:
        if state is ConnectionState.CONNECTED:
            self.ari.back()
        elif state is ConnectionState.RECONNECTING:
            self.ari.lost()
        elif state is ConnectionState.CLOSED:
            self.ari.closed()

    def _on_bus_state(self, state: BusState) -> None:
        if state is BusState.CONNECTED:
            self.bus.back()
        elif state is BusState.RECONNECTING:
            self.bus.lost()
        elif state is BusState.CLOSED:
            self.bus.closed()

    # --- reading -------------------------------------------------------------------------------

    def requests(self) -> dict[tuple[str, str, str], int]:
        """Requests by (application, kind, code), as `ari_proxy_requests_total` shows them."""
        return {
            (app, kind, code): count
            for app, table in self._records.items()
            for kind, record in table.items()
            for code, count in record.codes.items()
        }

    def collect(self) -> Iterator[Metric]:
        """The server's metrics now (what the registry's collector yields)."""
        server = self._server
        stats = server.stats()
        counters = server.counters
        config = server.config

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(f"ari_proxy_{name}", doc, value=value)

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"ari_proxy_{name}", doc, value=value)

        yield InfoMetricFamily(
            "ari_proxy_build",
            "The server's version and Python.",
            value={"version": __version__, "python": platform.python_version()},
        )
        node = GaugeMetricFamily(
            "ari_proxy_node_info",
            "The Asterisk node (entity ID, empty until ARI answered) and the applications served.",
            labels=["node", "application"],
        )
        for app in server.applications:
            node.add_metric([server.node, app], 1)
        yield node

        requests = CounterMetricFamily(
            "ari_proxy_requests",
            "Request messages received, by application, kind and result code "
            "(ok, an error code, or ignored: another server's).",
            labels=["application", "kind", "code"],
        )
        durations = HistogramMetricFamily(
            "ari_proxy_request_duration_seconds",
            "Time from the start of a request's execution to its reply, by application and kind.",
            labels=["application", "kind"],
        )
        for app, table in self._records.items():
            for kind, record in table.items():
                for code, count in record.codes.items():
                    requests.add_metric([app, kind, code], count)
                total = 0
                cumulative = []
                for label, count in zip(_BOUND_LABELS, record.buckets, strict=True):
                    total += count
                    cumulative.append((label, float(total)))
                if total:
                    durations.add_metric([app, kind], cumulative, record.sum)
        yield requests
        yield durations
        yield counter("replies", "Replies sent.", counters.replies)
        errors = CounterMetricFamily(
            "ari_proxy_error_replies", "Error replies sent, by code.", labels=["code"]
        )
        for code, count in sorted(counters.errors.items()):
            errors.add_metric([code], count)
        yield errors
        yield gauge("requests_inflight", "Requests executing now.", _number(stats["inflight"]))
        yield gauge(
            "requests_inflight_limit",
            "Requests executed at once at most (proxy.max_inflight); beyond it: busy.",
            config.max_inflight,
        )
        admission = server.admission
        yield gauge(
            "clients_active",
            "Clients (reply inboxes) that sent a request within the last second or have one "
            "executing.",
            admission.clients,
        )
        yield gauge(
            "requests_inflight_per_client_limit",
            "Requests one client may have executing now (proxy.max_inflight_per_client, or "
            "an equal share of proxy.max_inflight among the active clients).",
            admission.share(),
        )
        yield counter(
            "clients_forgotten",
            "Clients forgotten because 4096 were remembered (the least recently seen first).",
            admission.forgotten,
        )
        busy = CounterMetricFamily(
            "ari_proxy_requests_busy",
            "Requests refused as busy, by the limit reached: server (proxy.max_inflight) or "
            "client (its share).",
            labels=["limit"],
        )
        busy.add_metric(["server"], admission.refused_busy)
        busy.add_metric(["client"], admission.refused_share)
        yield busy

        yield counter("events_received", "ARI WebSocket frames received.", counters.events_received)
        yield counter(
            "events_published", "Events published on the event subject.", counters.events_published
        )
        yield counter(
            "dialog_events_published",
            "Dialog copies of events published.",
            counters.dialog_events_published,
        )
        yield counter(
            "events_dropped",
            "Events dropped because the publish queue was full (the oldest first).",
            counters.events_dropped,
        )
        yield counter(
            "events_failed", "Events (or copies) the bus refused.", counters.events_failed
        )
        yield counter(
            "bad_frames", "ARI WebSocket frames that were not events.", counters.bad_frames
        )
        yield gauge(
            "event_queue_depth", "Events waiting to be published.", _number(stats["events_queued"])
        )
        yield gauge(
            "event_queue_capacity",
            "Events the publish queue holds at most (proxy.event_queue_size).",
            config.event_queue_size,
        )

        yield gauge(
            "dialog_bindings",
            "Entities bound to dialogs now.",
            _number(stats["dialog_bindings"]),
        )
        yield gauge(
            "dialog_bindings_limit",
            "Entities bound to dialogs at most (proxy.max_dialog_bindings).",
            config.max_dialog_bindings,
        )
        yield counter(
            "dialog_bindings_evicted",
            "Dialog bindings dropped because the table was full.",
            _number(stats["dialog_bindings_evicted"]),
        )
        router = server.router
        yield gauge(
            "dialog_bindings_pinned",
            "Entities pinned to their owner's dialog (calls taken with listen()): never "
            "evicted to make room.",
            router.pinned,
        )
        yield gauge(
            "dialog_bindings_per_dialog_limit",
            "Entities one dialog is bound to at most (proxy.max_bindings_per_dialog; 0: none).",
            config.max_bindings_per_dialog,
        )
        overflow = CounterMetricFamily(
            "ari_proxy_dialog_bindings_overflow",
            "Bindings dropped or refused by a bound other than the table's oldest-first "
            "eviction: pinned (evicted or refused, the table full of pinned calls), dialog "
            "(the per-dialog bound), entity (the dialogs of one entity).",
            labels=["bound"],
        )
        overflow.add_metric(["pinned_evicted"], router.pinned_evicted)
        overflow.add_metric(["refused"], router.refused)
        overflow.add_metric(["dialog"], router.dialog_evicted)
        yield overflow
        offers = server.offers
        yield gauge("calls_pending", "Calls offered and not taken yet.", offers.pending)
        yield gauge("calls_owned", "Calls an instance owns (taken with listen()).", offers.owned)
        yield gauge(
            "calls_limit",
            "Calls offered plus owned at most; beyond, the oldest owner is forgotten.",
            offers.max_calls,
        )
        calls_evicted = CounterMetricFamily(
            "ari_proxy_calls_evicted",
            "Calls forgotten because the table was full: owner (the oldest owner), offer (the "
            "oldest offer, no longer repeated).",
            labels=["what"],
        )
        calls_evicted.add_metric(["owner"], offers.counters["owners_evicted"])
        calls_evicted.add_metric(["offer"], offers.counters["offers_evicted"])
        yield calls_evicted
        yield counter(
            "calls_handed_over",
            "Calls offered again because their owner was gone, leaving or draining.",
            offers.counters["handovers"],
        )
        yield gauge("call_state_bytes", "Bytes of state saved beside calls.", offers.state_bytes)
        yield gauge(
            "listeners",
            "Instances in listen() remembered, all applications.",
            offers.listeners.total(),
        )
        yield gauge(
            "listeners_limit",
            "Instances in listen() remembered per application at most.",
            MAX_LISTENERS_PER_APP,
        )
        yield counter(
            "listeners_evicted",
            "Listeners forgotten because their application had the most remembered.",
            offers.listeners.evicted,
        )

        yield gauge("ari_connected", "1 while the ARI WebSocket is up.", server.ari_connected)
        yield counter(
            "ari_reconnects",
            "ARI WebSocket reconnections; each is a gap: the events meanwhile are lost.",
            self.ari.reconnects,
        )
        yield counter(
            "ari_gap_seconds",
            "Seconds the ARI WebSocket was down after it had connected (the current outage "
            "included).",
            self.ari.total_seconds(),
        )
        yield gauge(
            "bus_connected",
            "1 while the bus connection is up.",
            server.bus.state is BusState.CONNECTED,
        )
        yield counter("bus_reconnects", "Bus reconnections.", self.bus.reconnects)
        yield counter(
            "bus_down_seconds",
            "Seconds the bus was down after it had connected (the current outage included).",
            self.bus.total_seconds(),
        )
        yield counter("announcements", "Announcements published.", counters.announcements)
        yield counter("node_changes", "Asterisk entity ID changes.", counters.node_changes)
        yield gauge(
            "ready",
            "1 while the server is ready (as /readyz): ARI and bus up, announced, not stopping.",
            is_ready(server),
        )


def is_ready(server: Server) -> bool:
    """Whether the server serves: started and not stopping, ARI and the bus connected, and
    at least one announcement out (clients know of it)."""
    return (
        server.ready
        and server.ari_connected
        and server.bus.state is BusState.CONNECTED
        and server.counters.announcements > 0
    )


def _number(value: object) -> float:
    if isinstance(value, bool | int | float):
        return float(value)
    raise TypeError(f"expected a number, got {type(value).__name__}")


class _Collector(Collector):
    """Hands the registry the server's metrics at each scrape."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return list(self._metrics.collect())
