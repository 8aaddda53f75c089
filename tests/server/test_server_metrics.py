"""The server's Prometheus metrics: settings, what each metric counts, the registry per server,
the cost on the request path, the `stats` log line, and a real Prometheus scraping a real server.

The unit tests run a server on the in-memory bus against `FakeAri`; the last test runs a real
server (real Asterisk, NATS) scraped by Debian's `/usr/bin/prometheus`, and reads the numbers
back through Prometheus' query API.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import time
import timeit
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import prometheus_client
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

import ari_proxy
from ari_proxy._version import __version__
from ari_proxy.bus import MemoryBroker, MemoryTransport
from ari_proxy.protocol import Response
from ari_proxy.server import ConfigError, Server, ServerConfig, load_config
from ari_proxy.server._cli import build_parser
from ari_proxy.server._config import split_address
from ari_proxy.server._logging import JsonFormatter
from ari_proxy.server._metrics import DURATION_BUCKETS
from ari_proxy.testing import Instance, free_port, running_proxy, wait_until
from ari_proxy.testing._fake_ari import FakeAri

REQUIRED = {"ARI_USERNAME": "user", "ARI_PASSWORD": "secret-pw", "ARI_APPLICATION": "app"}
INFO = b'{"kind":"AsteriskInfo","key":null}'

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def http_get(url: str, **headers: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def scrape(server: Server) -> Samples:
    assert server.monitor.url is not None
    status, _, text = await http_get(server.monitor.url + "/metrics")
    assert status == 200
    return parse(text)


@contextlib.asynccontextmanager
async def fake_server(
    app: str = "app", **overrides: Any
) -> AsyncIterator[tuple[Server, FakeAri, MemoryBroker, MemoryTransport]]:
    """A started server for `app` on FakeAri and the memory bus, with its HTTP listener on a
    free loopback port; and a client transport on the same broker."""
    async with FakeAri() as fake:
        broker = MemoryBroker()
        bus, client = broker.transport(), broker.transport()
        await bus.connect()
        await client.connect()
        options: dict[str, Any] = {"metrics_address": "127.0.0.1:0", "shutdown_grace": 2.0}
        options.update(overrides)
        config = ServerConfig(
            applications=(app,),
            ari_username=fake.username,
            ari_password=fake.password,
            ari_http_url=fake.http_url,
            **options,
        )
        server = Server(config, bus=bus)
        try:
            await server.start(ari_timeout=10)
            yield server, fake, broker, client
        finally:
            await server.stop()
            await client.close()
            await bus.close()


# --- settings -------------------------------------------------------------------------------------


def test_metrics_and_stats_settings_from_flag_environment_and_file(tmp_path: Path) -> None:
    config = load_config({}, REQUIRED)
    assert (config.metrics_address, config.stats_interval) == ("", 0.0)  # both off by default
    config = load_config({"proxy.metrics_address": ":9480"}, REQUIRED)
    assert config.metrics_address == ":9480"
    env = {**REQUIRED, "PROXY_METRICS_ADDRESS": "127.0.0.1:9481", "PROXY_STATS_INTERVAL": "2m"}
    config = load_config({}, env)
    assert (config.metrics_address, config.stats_interval) == ("127.0.0.1:9481", 120.0)
    path = tmp_path / "proxy.yaml"
    path.write_text(
        yaml.safe_dump({"proxy": {"metrics_address": "[::1]:9482", "stats_interval": 30}})
    )
    config = load_config({}, REQUIRED, str(path))
    assert (config.metrics_address, config.stats_interval) == ("[::1]:9482", 30.0)
    # Flag > environment > file, and "off" turns a lower layer's value off.
    config = load_config({"proxy.metrics_address": "off"}, env, str(path))
    assert (config.metrics_address, config.stats_interval) == ("", 120.0)
    config = load_config({"proxy.stats_interval": "off"}, env)
    assert config.stats_interval == 0.0
    args = build_parser().parse_args(
        ["--proxy.metrics_address", ":9480", "--proxy.stats_interval=10s"]
    )
    assert vars(args)["proxy.metrics_address"] == ":9480"
    assert vars(args)["proxy.stats_interval"] == "10s"


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (":9480", (None, 9480)),
        ("*:9480", (None, 9480)),
        ("0.0.0.0:9480", ("0.0.0.0", 9480)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("[::1]:9480", ("::1", 9480)),
        ("localhost:9480", ("localhost", 9480)),
    ],
)
def test_split_address(address: str, expected: tuple[str | None, int]) -> None:
    assert split_address(address) == expected


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("9480", "expected host:port"),
        ("host:port", "expected host:port"),
        (":99999", "0 to 65535"),
        ("::1:9480", "brackets"),
    ],
)
def test_bad_metrics_address_is_a_configuration_error(value: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error) as caught:
        load_config({"proxy.metrics_address": value}, REQUIRED)
    assert "proxy.metrics_address" in str(caught.value)


def test_bad_stats_interval_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match=r"proxy\.stats_interval"):
        load_config({"proxy.stats_interval": "soon"}, REQUIRED)


# --- what the metrics count -----------------------------------------------------------------------


async def test_metrics_count_requests_events_and_state() -> None:
    async with fake_server() as (server, fake, _, client):
        node = server.node
        subject = f"ari.data.app.{node}"
        for _ in range(3):
            reply = json.loads(await client.request(subject, INFO, timeout=5))
            assert reply["data"]["asterisk"]["system"]["entity_id"] == node
        bad = b'{"kind":"ChannelHangup","key":null}'
        assert json.loads(await client.request(subject, bad, timeout=5))["code"] == "bad_request"
        nope = b'{"kind":"NoSuchKind","key":null}'
        assert json.loads(await client.request(subject, nope, timeout=5))["code"] == (
            "not_implemented"
        )
        # Another node's request on the application's subject: left to that server, unanswered.
        other = b'{"kind":"AsteriskInfo","key":{"node":"02:00:00:00:00:99"}}'
        await client.publish("ari.data.app", other)
        await wait_until(lambda: server.counters.ignored == 1)
        for n in range(2):
            await fake.push({"type": "ChannelVarset", "application": "app", "variable": f"v{n}"})
        await wait_until(lambda: server.counters.events_published == 2)

        status, content_type, text = await http_get(f"{server.monitor.url}/metrics")
        assert status == 200 and content_type.startswith("text/plain")
        samples = parse(text)
        requests = "ari_proxy_requests_total"
        assert value(samples, requests, application="app", kind="AsteriskInfo", code="ok") == 3
        assert value(samples, requests, application="app", kind="AsteriskInfo", code="ignored") == 1
        assert (
            value(samples, requests, application="app", kind="ChannelHangup", code="bad_request")
            == 1
        )
        assert (
            value(samples, requests, application="app", kind="unknown", code="not_implemented") == 1
        )
        assert server.metrics.requests() == {
            ("app", "AsteriskInfo", "ok"): 3,
            ("app", "AsteriskInfo", "ignored"): 1,
            ("app", "ChannelHangup", "bad_request"): 1,
            ("app", "unknown", "not_implemented"): 1,
        }
        # The histogram: answered requests only (not the ignored one), cumulative buckets.
        duration = "ari_proxy_request_duration_seconds"
        labels = {"application": "app", "kind": "AsteriskInfo"}
        assert value(samples, f"{duration}_count", **labels) == 3
        total = value(samples, f"{duration}_sum", **labels)
        assert total is not None and 0 < total < 10
        buckets = [
            value(samples, f"{duration}_bucket", le=repr(b), **labels) for b in DURATION_BUCKETS
        ]
        assert None not in buckets and buckets == sorted(buckets, key=lambda b: b or 0.0)
        assert value(samples, f"{duration}_bucket", le="+Inf", **labels) == 3

        assert value(samples, "ari_proxy_replies_total") == 5
        assert value(samples, "ari_proxy_error_replies_total", code="bad_request") == 1
        assert value(samples, "ari_proxy_events_received_total") == 2
        assert value(samples, "ari_proxy_events_published_total") == 2
        for name in ("events_dropped", "events_failed", "bad_frames", "dialog_events_published"):
            assert value(samples, f"ari_proxy_{name}_total") == 0, name
        assert value(samples, "ari_proxy_requests_inflight") == 0
        assert value(samples, "ari_proxy_requests_inflight_limit") == 256
        assert value(samples, "ari_proxy_event_queue_depth") == 0
        assert value(samples, "ari_proxy_event_queue_capacity") == 10_000
        assert value(samples, "ari_proxy_dialog_bindings") == 0
        assert value(samples, "ari_proxy_dialog_bindings_limit") == 100_000
        assert value(samples, "ari_proxy_ari_connected") == 1
        assert value(samples, "ari_proxy_bus_connected") == 1
        assert value(samples, "ari_proxy_ready") == 1
        assert value(samples, "ari_proxy_announcements_total") == server.counters.announcements >= 1
        python = platform.python_version()
        assert value(samples, "ari_proxy_build_info", version=__version__, python=python) == 1
        assert value(samples, "ari_proxy_node_info", node=fake.entity_id, application="app") == 1
        assert value(samples, "process_cpu_seconds_total") is not None  # the process collector
        # OpenMetrics when the scraper asks for it.
        accept = "application/openmetrics-text; version=1.0.0"
        status, content_type, text = await http_get(f"{server.monitor.url}/metrics", Accept=accept)
        assert content_type.startswith("application/openmetrics-text")
        assert text.endswith("# EOF\n") and "ari_proxy_requests_total{" in text


async def test_refusals_are_counted_by_code() -> None:
    async with fake_server(max_request_size=100) as (server, fake, _, client):
        subject = f"ari.data.app.{server.node}"
        big = b'{"kind":"AsteriskInfo","key":null,"pad":"' + b"x" * 200 + b'"}'
        assert json.loads(await client.request(subject, big, timeout=5))["code"] == "too_large"
        fake.answer("GET", "/events", 503, {"message": "down for the test"})
        await fake.drop_websockets()
        await wait_until(lambda: not server.ari_connected)
        down = json.loads(await client.request(subject, INFO, timeout=5))
        assert down["code"] == "ari_down"
        assert server.metrics.requests() == {
            ("app", "unknown", "too_large"): 1,  # too large to read its kind
            ("app", "AsteriskInfo", "ari_down"): 1,
        }
        samples = await scrape(server)
        # Refusals have no latency: the histogram has no series for them.
        assert not any(name.startswith("ari_proxy_request_duration") for name, _ in samples)


async def test_outages_and_reconnects_are_counted() -> None:
    async with fake_server() as (server, fake, broker, _):
        # ARI: refuse the events WebSocket and drop the one open.
        fake.answer("GET", "/events", 503, {"message": "down for the test"})
        await fake.drop_websockets()
        await wait_until(lambda: not server.ari_connected)
        first = value(await scrape(server), "ari_proxy_ari_gap_seconds_total")
        await wait_until(lambda: server.metrics.ari.total_seconds() > (first or 0) + 0.05)
        samples = await scrape(server)
        assert value(samples, "ari_proxy_ari_connected") == 0
        assert value(samples, "ari_proxy_ready") == 0
        gap = value(samples, "ari_proxy_ari_gap_seconds_total")
        assert gap is not None and first is not None and gap > first  # grows during the outage
        fake.reset()
        await wait_until(lambda: server.ari_connected, timeout=15)
        samples = await scrape(server)
        assert value(samples, "ari_proxy_ari_reconnects_total") == 1
        # Bus: cut the server's link, then restore it.
        bus = server.bus
        assert isinstance(bus, MemoryTransport)
        broker.cut(bus)
        await wait_until(lambda: value_now(server, "ari_proxy_bus_connected") == 0)
        broker.restore(bus)
        samples = await scrape(server)
        assert value(samples, "ari_proxy_bus_connected") == 1
        assert value(samples, "ari_proxy_bus_reconnects_total") == 1
        down = value(samples, "ari_proxy_bus_down_seconds_total")
        assert down is not None and down > 0


def value_now(server: Server, name: str) -> float | None:
    """A metric read straight from the server's registry (no HTTP)."""
    return server.metrics.registry.get_sample_value(name)


async def test_each_server_has_its_own_registry() -> None:
    async with fake_server("one") as (one, _, _, client_one), fake_server("two") as (two, _, _, _):
        await client_one.request(f"ari.data.one.{one.node}", INFO, timeout=5)
        assert one.metrics.registry is not two.metrics.registry
        assert one.monitor.port != two.monitor.port
        samples_one, samples_two = await scrape(one), await scrape(two)
        assert (
            value(
                samples_one,
                "ari_proxy_requests_total",
                application="one",
                kind="AsteriskInfo",
                code="ok",
            )
            == 1
        )
        assert not any(name == "ari_proxy_requests_total" for name, _ in samples_two)
        assert value(samples_two, "ari_proxy_node_info", node=two.node, application="two") == 1
    # Nothing in the process-wide default registry.
    default = prometheus_client.generate_latest(prometheus_client.REGISTRY).decode()
    assert "ari_proxy_" not in default


async def test_metrics_listener_is_off_by_default() -> None:
    config = ServerConfig(applications=("app",), ari_username="u", ari_password="p")
    server = Server(config, bus=MemoryBroker().transport())
    await server.monitor.start()
    try:
        assert server.monitor.port is None and server.monitor.url is None
        # The registry is there all the same, for an application that embeds the server.
        assert b"ari_proxy_requests_inflight_limit 256.0" in prometheus_client.generate_latest(
            server.metrics.registry
        )
    finally:
        await server.monitor.stop()


async def test_listener_on_a_busy_port_fails_the_start() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ari_proxy.AriProxyError, match=r"proxy\.metrics_address"):
            async with fake_server(metrics_address=f"127.0.0.1:{port}"):
                pass


# --- bounded labels and the cost per request ------------------------------------------------------


def _bare_server() -> Server:
    config = ServerConfig(applications=("app",), ari_username="u", ari_password="p")
    return Server(config, bus=MemoryBroker().transport())


async def test_labels_stay_bounded_whatever_clients_send() -> None:
    metrics = _bare_server().metrics
    started = time.perf_counter()
    for n in range(200):
        metrics.executed("app", b'{"kind":"Made-Up-%d","key":null}' % n, Response(), started)
        metrics.executed("app", b"not json %d" % n, Response(), started)
        metrics.executed("app", INFO, Response(error="x", code=f"weird-{n}"), started)
    assert metrics.requests() == {
        ("app", "unknown", "ok"): 400,
        ("app", "AsteriskInfo", "error"): 200,
    }


async def test_request_path_cost() -> None:
    """What the metrics add to one request: measured, printed (`-s`), and bounded loosely (the
    machine is shared; the measured cost is about 1 µs, the bound 25 µs)."""
    metrics = _bare_server().metrics
    data = (
        b'{"kind":"ChannelAnswer","key":{"kind":"channel","id":"1732012345.123",'
        b'"node":"02:8b:3d:49:26:9b","app":"app"}}'
    )
    ok, error = Response(), Response(error="Channel not found", code="not_found")
    metrics.executed("app", data, ok, time.perf_counter())  # the record exists from now on
    number = 20_000
    costs = {}
    for label, call in (
        ("ok", lambda: metrics.executed("app", data, ok, time.perf_counter())),
        ("error", lambda: metrics.executed("app", data, error, time.perf_counter())),
        ("ignored", lambda: metrics.executed("app", data, None, time.perf_counter())),
        ("refused", lambda: metrics.refused("app", data, "busy")),
    ):
        costs[label] = min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6
    print("metrics cost per request (µs):", {k: round(v, 3) for k, v in costs.items()})
    assert all(cost < 25 for cost in costs.values()), costs
    assert len(metrics.requests()) == 4  # one series per code, nothing per request


# --- the stats log line ---------------------------------------------------------------------------


async def test_stats_log_line() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    stats_logger = logging.getLogger("ari_proxy.server.stats")
    stats_logger.addHandler(handler)
    old_level = stats_logger.level
    stats_logger.setLevel(logging.INFO)
    try:
        async with fake_server(stats_interval=0.05) as (server, _, _, client):
            await client.request(f"ari.data.app.{server.node}", INFO, timeout=5)

            def lines() -> list[dict[str, Any]]:
                return [json.loads(line) for line in stream.getvalue().splitlines()]

            await wait_until(lambda: any(line["stats"]["requests"] == 1 for line in lines()))
    finally:
        stats_logger.removeHandler(handler)
        stats_logger.setLevel(old_level)
    line = next(line for line in lines() if line["stats"]["requests"] == 1)
    assert line["msg"] == "stats" and line["level"] == "info"
    assert line["logger"] == "ari_proxy.server.stats"
    assert line["interval_s"] == 0.05
    assert set(line["stats"]) >= {"requests", "replies", "errors", "events_received", "inflight"}
    assert line["stats"]["ari_connected"] is True
    assert set(line["rates"]) >= {"requests", "events_received"}


# --- a real Prometheus ----------------------------------------------------------------------------

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


@contextlib.contextmanager
def prometheus(target: str) -> Iterator[str]:
    """Debian's Prometheus scraping `target` (host:port) every second, on a free loopback
    port with its storage in a temporary directory; yields its base URL."""
    if not os.access(PROMETHEUS, os.X_OK):
        message = "no /usr/bin/prometheus: scripts/bootstrap installs Debian's prometheus"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="ari-proxy-prometheus-") as tmp:
        config = Path(tmp) / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
                    "scrape_configs": [
                        {"job_name": "ari-proxy", "static_configs": [{"targets": [target]}]}
                    ],
                }
            )
        )
        log = open(Path(tmp) / "prometheus.log", "wb")  # noqa: SIM115 - closed below
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp}/data",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield f"http://127.0.0.1:{port}"
        except BaseException:
            print((Path(tmp) / "prometheus.log").read_text()[-3000:])
            raise
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


async def query(session: aiohttp.ClientSession, base: str, promql: str) -> list[dict[str, Any]]:
    """The result vector of an instant query (empty while Prometheus is not up yet)."""
    try:
        async with session.get(f"{base}/api/v1/query", params={"query": promql}) as response:
            if response.status != 200:
                return []
            body = await response.json()
    except aiohttp.ClientConnectionError:
        return []
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


async def scalar(session: aiohttp.ClientSession, base: str, promql: str) -> float | None:
    result = await query(session, base, promql)
    return float(result[0]["value"][1]) if result else None


async def wait_for_value(
    session: aiohttp.ClientSession,
    base: str,
    promql: str,
    expected: float | Callable[[], float],
    timeout: float = 30,
) -> float:
    """Poll Prometheus (bounded) until `promql` gives `expected` (a value, or a function that
    gives the value to expect now); return it."""
    want = expected if callable(expected) else (lambda: expected)
    seen: float | None = None
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while (seen := await scalar(session, base, promql)) != want():
                await asyncio.sleep(0.25)  # polling an external process's scrapes
    assert seen == want(), f"{promql}: {seen} (expected {want()})"
    return seen


async def test_real_prometheus_scrapes_the_server(
    asterisk: Instance, nats_url: str, app_name: str
) -> None:
    async with (
        running_proxy(asterisk, nats_url, app_name, metrics_address="127.0.0.1:0") as server,
        ari_proxy.connect(nats_url, application=app_name, timeout=10) as ari,
    ):
        assert server.monitor.port is not None
        with prometheus(f"127.0.0.1:{server.monitor.port}") as base:
            async with aiohttp.ClientSession() as session:
                app = f'application="{app_name}"'
                # Prometheus is up and scraping the server.
                await wait_for_value(session, base, 'up{job="ari-proxy"}', 1)
                # Requests: n AsteriskInfo, one refused by Asterisk (no such channel).
                count = 7
                for _ in range(count):
                    await ari.asterisk.info(node=server.node)
                with pytest.raises(ari_proxy.NotFoundError):
                    await ari.channels.handle(f"{app_name}-none", node=server.node).hangup()
                # Events: a Local channel into the application, hung up.
                events = await ari.subscribe("StasisStart", "StasisEnd")
                channel = await ari.channels.originate("Local/wait@default", node=server.node)
                assert type(await events.next(timeout=10)).__name__ == "StasisStart"
                await channel.hangup()
                assert type(await events.next(timeout=10)).__name__ == "StasisEnd"
                await wait_until(lambda: server.counters.events_published >= 2)
                info = f'ari_proxy_requests_total{{{app},kind="AsteriskInfo",code="ok"}}'
                await wait_for_value(session, base, info, count)
                hangup = f'ari_proxy_requests_total{{{app},kind="ChannelHangup",code="not_found"}}'
                await wait_for_value(session, base, hangup, 1)
                histogram = f'ari_proxy_request_duration_seconds_count{{{app},kind="AsteriskInfo"}}'
                await wait_for_value(session, base, histogram, count)
                # Equal to what the server counts when Prometheus has scraped since the last event.
                published = await wait_for_value(
                    session,
                    base,
                    "ari_proxy_events_published_total",
                    lambda: server.counters.events_published,
                )
                assert published >= 2
                originate = f'ari_proxy_requests_total{{{app},kind="ChannelOriginate"}}'
                originated = await scalar(session, base, f"sum({originate})")
                assert originated == 1
                await wait_for_value(session, base, "ari_proxy_ready", 1)
                await wait_for_value(session, base, "ari_proxy_ari_connected", 1)
                version = f'ari_proxy_build_info{{version="{__version__}"}}'
                await wait_for_value(session, base, version, 1)
                node = f'ari_proxy_node_info{{node="{server.node}",{app}}}'
                await wait_for_value(session, base, node, 1)
                # What Prometheus holds, for the report (`-s`).
                for promql in (
                    f"ari_proxy_requests_total{{{app}}}",
                    "ari_proxy_events_received_total",
                    "ari_proxy_events_published_total",
                    "histogram_quantile(0.9, ari_proxy_request_duration_seconds_bucket"
                    f'{{{app},kind="AsteriskInfo"}})',
                ):
                    for row in await query(session, base, promql):
                        print("prometheus:", promql, row["metric"], row["value"][1])
                received = await scalar(session, base, "ari_proxy_events_received_total")
                assert received is not None and received >= published


def test_operations_doc_lists_every_metric() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs/operations.md").read_text()
    families = list(_bare_server().metrics.registry.collect())
    names = set()
    for family in families:
        if not family.name.startswith("ari_proxy_"):
            continue
        suffix = {"counter": "_total", "info": "_info"}.get(family.type, "")
        names.add(family.name + suffix)
    assert len(names) >= 28
    for name in sorted(names):
        assert f"`{name}`" in text, name
