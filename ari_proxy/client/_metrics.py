"""What a proxy client connection counts, as plain numbers, and an optional Prometheus adapter.

```python
stats = client.metrics()                  # a ClientStats: numbers, no dependency
stats.requests["ChannelAnswer"]["ok"]     # requests by kind and outcome
stats.timeouts, stats.events_dropped, stats.gaps, stats.bus_reconnects

from prometheus_client import REGISTRY    # only if the application uses Prometheus
REGISTRY.register(ari_proxy.client.prometheus_collector(client))
```

The backend keeps the running totals (`ClientMetrics`, integer additions on the request path,
nothing on the event path but the counters it always had); `ClientStats` is a snapshot of them
with the event hubs' counters. `prometheus_collector` imports `prometheus_client` only when it
is called, so the package does not need it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .._exceptions import (
    AriError,
    AriProxyError,
    BadRequestError,
    ClosedError,
    ConflictError,
    ConnectionDownError,
    NoProxyError,
    NotFoundError,
    ProtocolError,
    RequestTimeout,
    TooLargeError,
    TransportError,
    UnknownKindError,
)
from ..bus import BusState
from ..protocol import KINDS

if TYPE_CHECKING:
    from ._backend import ProxyBackend
    from ._client import ProxyClient

__all__ = ["OUTCOMES", "ClientMetrics", "ClientStats", "prometheus_collector"]

# Most specific first: the first class in an exception's MRO that is here names the outcome.
_OUTCOME_OF: dict[type[BaseException], str] = {
    RequestTimeout: "timeout",
    TimeoutError: "timeout",
    NoProxyError: "no_proxy",
    ConnectionDownError: "ari_down",
    NotFoundError: "not_found",
    BadRequestError: "bad_request",
    ConflictError: "conflict",
    AriError: "ari_error",
    TooLargeError: "too_large",
    UnknownKindError: "not_implemented",
    ProtocolError: "protocol_error",
    ClosedError: "closed",
    TransportError: "transport_error",
    AriProxyError: "error",
}

OUTCOMES: tuple[str, ...] = ("ok", *dict.fromkeys(_OUTCOME_OF.values()), "cancelled")
"""Every outcome a request is counted under: `ok`, or what the exception it raised says
(`timeout`, `no_proxy`, `ari_down` (the proxy's ARI was down), `not_found`, `bad_request`,
`conflict`, `ari_error` (another refusal of Asterisk's), `too_large`, `not_implemented`,
`protocol_error`, `closed`, `transport_error`, `error`), or `cancelled`."""


def outcome_of(exc: BaseException) -> str:
    """The outcome a request that raised `exc` is counted under (one of `OUTCOMES`)."""
    for cls in type(exc).__mro__:
        outcome = _OUTCOME_OF.get(cls)
        if outcome is not None:
            return outcome
    return "error" if isinstance(exc, Exception) else "cancelled"


class ClientMetrics:
    """Running totals of one connection, kept by its `ProxyBackend` (`backend.metrics`).

    Attributes:
        requests: kind -> outcome -> requests (a kind outside the kind table as `unknown`).
        retries: unicast attempts sent again after a timeout (each retried request counts
            once under its final outcome).
        gaps: `ConnectionGap` events received from servers (their ARI was down; one per subject
            the gap was published on: the application's and each dialog's).
        bus_reconnects: times the bus link came back; each is also a gap of the events of
            that time, reported to every subscription.
    """

    __slots__ = (
        "_bus_lost_at",
        "bus_down_seconds",
        "bus_reconnects",
        "gaps",
        "requests",
        "retries",
    )

    def __init__(self) -> None:
        self.requests: dict[str, dict[str, int]] = {}
        self.retries = 0
        self.gaps = 0
        self.bus_reconnects = 0
        self.bus_down_seconds = 0.0
        self._bus_lost_at: float | None = None

    def _outcomes(self, kind: str) -> dict[str, int]:
        outcomes = self.requests.get(kind)
        if outcomes is None:
            if kind not in KINDS:
                kind = "unknown"
            outcomes = self.requests.setdefault(kind, {})
        return outcomes

    def succeeded(self, kind: str) -> None:
        """Count a request that returned."""
        outcomes = self._outcomes(kind)
        outcomes["ok"] = outcomes.get("ok", 0) + 1

    def failed(self, kind: str, exc: BaseException) -> None:
        """Count a request that raised `exc`."""
        outcome = outcome_of(exc)
        outcomes = self._outcomes(kind)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    def on_bus_state(self, state: BusState) -> None:
        """The transport's state callback: counts reconnections and time without the bus."""
        if state is BusState.CONNECTED:
            if self._bus_lost_at is not None:
                self.bus_down_seconds += time.monotonic() - self._bus_lost_at
                self._bus_lost_at = None
                self.bus_reconnects += 1
        elif state is BusState.RECONNECTING:
            if self._bus_lost_at is None:
                self._bus_lost_at = time.monotonic()
        elif state is BusState.CLOSED:
            self._bus_lost_at = None

    def down_seconds(self) -> float:
        """Seconds without the bus after it had connected, the current outage included."""
        lost = self._bus_lost_at
        return self.bus_down_seconds + (time.monotonic() - lost if lost is not None else 0.0)


@dataclass(frozen=True, slots=True)
class ClientStats:
    """A snapshot of a proxy client connection's counters (`ProxyClient.metrics()`).

    Child clients (`scoped()`, calls) share their parent's connection, hence its counters.

    Attributes:
        application: the client's application.
        requests: kind -> outcome -> requests (outcomes: `OUTCOMES`).
        requests_total: requests of every kind and outcome.
        timeouts: requests that ended in a timeout (outcome `timeout`).
        retries: unicast attempts sent again after a timeout.
        events_received: event messages received from the bus (application, dialogs, listen).
        dialog_events_received: of those, the ones on a dialog subject.
        bad_events: event messages that could not be decoded (dropped).
        events_delivered: events handed to the local subscriptions' hubs (bus gaps included).
        events_dropped: events lost to full subscription queues (their `Overflow` policy).
        gaps: `ConnectionGap` events received from servers (their ARI was down).
        bus_reconnects: times the bus link came back (each a gap too).
        bus_down_seconds: seconds without the bus after it had connected.
        bus_connected: whether the bus link is up now.
        bus_subscriptions: event subjects subscribed on the bus now.
        subscriptions: local event subscriptions open now.
        nodes: live proxies of the application (from their announcements).
    """

    application: str
    requests: Mapping[str, Mapping[str, int]]
    requests_total: int
    timeouts: int
    retries: int
    events_received: int
    dialog_events_received: int
    bad_events: int
    events_delivered: int
    events_dropped: int
    gaps: int
    bus_reconnects: int
    bus_down_seconds: float
    bus_connected: bool
    bus_subscriptions: int
    subscriptions: int
    nodes: int

    @classmethod
    def of(cls, backend: ProxyBackend) -> ClientStats:
        """The counters of `backend` now."""
        metrics = backend.metrics
        requests = {kind: dict(outcomes) for kind, outcomes in metrics.requests.items()}
        hubs = (backend.hub, backend._listening.hub)
        return cls(
            application=backend.application,
            requests=requests,
            requests_total=sum(sum(o.values()) for o in requests.values()),
            timeouts=sum(o.get("timeout", 0) for o in requests.values()),
            retries=metrics.retries,
            events_received=backend.events_received,
            dialog_events_received=backend.dialog_events_received,
            bad_events=backend.bad_events,
            events_delivered=sum(hub.published for hub in hubs),
            events_dropped=sum(hub.dropped for hub in hubs),
            gaps=metrics.gaps,
            bus_reconnects=metrics.bus_reconnects,
            bus_down_seconds=metrics.down_seconds(),
            bus_connected=backend.transport.state is BusState.CONNECTED,
            bus_subscriptions=backend.bus_subscriptions,
            subscriptions=sum(hub.subscriptions for hub in hubs),
            nodes=len(backend.cluster.nodes(backend.application)),
        )

    def as_dict(self) -> dict[str, Any]:
        """The snapshot as plain data (for a log line or JSON)."""
        return asdict(self)


# (name, help, ClientStats attribute, type) of the metrics prometheus_collector exposes besides
# the requests.
_SERIES: tuple[tuple[str, str, str, str], ...] = (
    ("request_retries", "Unicast attempts sent again after a timeout.", "retries", "counter"),
    ("events_received", "Event messages received from the bus.", "events_received", "counter"),
    (
        "dialog_events_received",
        "Event messages received on dialog subjects.",
        "dialog_events_received",
        "counter",
    ),
    ("bad_events", "Event messages that could not be decoded.", "bad_events", "counter"),
    (
        "events_delivered",
        "Events handed to local subscriptions.",
        "events_delivered",
        "counter",
    ),
    (
        "events_dropped",
        "Events lost to full subscription queues.",
        "events_dropped",
        "counter",
    ),
    ("gaps", "ConnectionGap events received from servers (their ARI was down).", "gaps", "counter"),
    ("bus_reconnects", "Times the bus link came back.", "bus_reconnects", "counter"),
    (
        "bus_down_seconds",
        "Seconds without the bus after it had connected.",
        "bus_down_seconds",
        "counter",
    ),
    ("bus_connected", "1 while the bus link is up.", "bus_connected", "gauge"),
    (
        "bus_subscriptions",
        "Event subjects subscribed on the bus.",
        "bus_subscriptions",
        "gauge",
    ),
    ("subscriptions", "Local event subscriptions open.", "subscriptions", "gauge"),
    ("nodes", "Live proxies of the application.", "nodes", "gauge"),
)


def prometheus_collector(*clients: ProxyClient, prefix: str = "ari_proxy_client") -> Any:
    """A Prometheus collector of the counters of `clients` (at least one), for a registry:

    ```python
    prometheus_client.REGISTRY.register(ari_proxy.client.prometheus_collector(client))
    ```

    Each series has an `application` label; clients of one application add up. Register one
    collector per registry (a second one would repeat the names): give it every client.
    `prometheus_client` is imported here, so only applications that call this need it.

    Raises:
        ImportError: prometheus_client is not installed.
        ValueError: no client given.
    """
    if not clients:
        raise ValueError("prometheus_collector() needs at least one client")
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    class _ClientCollector:
        def collect(self) -> Iterable[Any]:
            snapshots = [client.metrics() for client in clients]
            requests = CounterMetricFamily(
                f"{prefix}_requests",
                "Requests by application, kind and outcome (ok or what failed).",
                labels=["application", "kind", "outcome"],
            )
            by_request: dict[tuple[str, str, str], int] = {}
            for stats in snapshots:
                for kind, outcomes in stats.requests.items():
                    for outcome, count in outcomes.items():
                        label = (stats.application, kind, outcome)
                        by_request[label] = by_request.get(label, 0) + count
            for labels, count in sorted(by_request.items()):
                requests.add_metric(list(labels), count)
            yield requests
            for name, doc, attr, kind in _SERIES:
                family: CounterMetricFamily | GaugeMetricFamily
                if kind == "counter":
                    family = CounterMetricFamily(f"{prefix}_{name}", doc, labels=["application"])
                else:
                    family = GaugeMetricFamily(f"{prefix}_{name}", doc, labels=["application"])
                by_app: dict[str, float] = {}
                for stats in snapshots:
                    value = float(getattr(stats, attr))
                    by_app[stats.application] = by_app.get(stats.application, 0.0) + value
                for app, value in sorted(by_app.items()):
                    family.add_metric([app], value)
                yield family

    return _ClientCollector()
