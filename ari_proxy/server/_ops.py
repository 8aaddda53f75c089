"""Operator commands beside the server: `ari-proxy nodes`, `tail`, `call` and `ping`.

They look at the bus as any client does, so they work against Go servers as well as ours:

- `nodes`: ping, collect the announcements for a moment, print the servers by node;
- `ping`: ping, print who answered and how fast;
- `tail`: print the events published on the bus, live;
- `call`: originate a call into an application and print its events until it ends.

Each takes the bus the way the server does (`--messagebus.url`/`MESSAGEBUS_URL`, the other
`messagebus.*` settings and `--config`, read by the server's own configuration code), gives up
on an unreachable bus after `--connect-timeout`, and on failure writes one line to stderr
(secrets scrubbed) and exits non-zero:

| Exit | Meaning |
|---|---|
| 0 | done (`tail`: stopped by Ctrl-C or after `--count` events) |
| 1 | failed: the bus is unreachable, nobody answered, the call could not be placed |
| 2 | a usage or configuration error |
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from .._exceptions import AriProxyError, NotFoundError
from .._redact import redact_url, scrub, url_secrets
from ..bus import (
    BusMessage,
    BusSettings,
    BusState,
    Transport,
    backend_for,
    connect_within,
)
from ..bus import connect as bus_connect
from ..client import ProxyClient
from ..client import connect as proxy_connect
from ..events import decode_event, event_type
from ..protocol import ProtocolError, Subjects
from ._config import SETTINGS, ConfigError, load_config
from ._logging import configure_logging
from ._ops_output import (
    Answer,
    event_json,
    event_line,
    node_rows,
    nodes_json,
    ping_json,
    ping_rows,
    table,
)

__all__ = ["COMMANDS", "SafeParser", "run_command"]

PROG = "ari-proxy"

COMMANDS = {
    "nodes": "the servers on the bus, by node (ping, then collect their announcements)",
    "tail": "the events on the bus, live, one line each",
    "call": "originate a test call into an application and print its events until it ends",
    "ping": "ping the servers: who answered, and the round trip",
}
"""The operator commands and what each does (for `ari-proxy --help`)."""

_PING_BODY = b'{"kind":"","key":null}'

# The server's configuration code checks the ARI settings too; the commands do not use them,
# so flags (which win over the environment and the file) give it harmless values.
_ARI_PLACEHOLDERS = {
    "ari.application": "ari-proxy-ops",
    "ari.username": "ari-proxy-ops",
    "ari.password": "ari-proxy-ops-placeholder",
    "ari.http_url": "http://localhost:8088/ari",
    "ari.websocket_url": "ws://localhost:8088/ari/events",
}

_BUS_EPILOG = """\
The bus is given as to the server: --messagebus.url (or $MESSAGEBUS_URL, default
nats://127.0.0.1:4222; amqp:// for RabbitMQ), the other --messagebus.* flags and their
environment variables, and --config (only its messagebus section is read)."""

_EXAMPLES = {
    "nodes": """\
examples:
  ari-proxy nodes
  ari-proxy nodes --messagebus.url amqp://guest:guest@rabbitmq:5672/
  ari-proxy nodes --app myapp --wait 3 --json

output:
  NODE               APPLICATIONS  SERVER  VERSION  FEATURES  LAST SEEN
  02:00:00:00:00:01  myapp         python  -        listen    0.0s ago
  02:00:00:00:00:02  myapp         go      -        -         0.0s ago

SERVER is python for ours (they announce features) and go for the Go ari-proxy (it announces
none). VERSION is shown when a server announces one.""",
    "ping": """\
examples:
  ari-proxy ping
  MESSAGEBUS_URL=nats://nats:4222 ari-proxy ping --wait 2
  ari-proxy ping --json

Exits 1 when no server answered within --wait.""",
    "tail": """\
examples:
  ari-proxy tail                                  # every event of every application
  ari-proxy tail --app myapp --type StasisStart --type StasisEnd
  ari-proxy tail --app myapp --json | jq .type
  ari-proxy tail --count 10

output (time, application, node, type, the ids of the entities it concerns):
  14:02:11.387  myapp  02:00:00:00:00:01  StasisStart             channel=1733580131.12

Runs until Ctrl-C (or --count events).""",
    "call": """\
examples:
  ari-proxy call PJSIP/100 --app myapp
  ari-proxy call Local/playback@default --app myapp --timeout 10
  ari-proxy call Local/echo@default --app myapp --node 02:00:00:00:00:01 --json

The call enters the application, whose own code (if it runs) handles it; this command only
watches. It prints the channel's events until ChannelDestroyed; a call still up after
--timeout seconds (or at Ctrl-C) is hung up first.""",
}


class OpsError(Exception):
    """A command failed; the message is the one line it prints."""


class SafeParser(argparse.ArgumentParser):
    """argparse, with errors that never repeat a value (it could be a password)."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            names = [
                word.split("=", 1)[0]
                for word in message.split(":", 1)[1].split()
                if word[:1] == "-"
            ]
            message = "unrecognized arguments: " + (" ".join(names) or "(values without a flag)")
        self.exit(2, f"{self.prog}: error: {message}\n")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected seconds, such as 2 or 0.5") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than zero")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than zero")
    return value


def build_parser(command: str) -> argparse.ArgumentParser:
    """The parser of one operator command."""
    parser = SafeParser(
        prog=f"{PROG} {command}",
        description=COMMANDS[command][0].upper() + COMMANDS[command][1:] + ".",
        epilog=_EXAMPLES[command] + "\n\n" + _BUS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if command == "call":
        parser.add_argument("endpoint", help="what to call: PJSIP/100, Local/echo@default, ...")
        parser.add_argument(
            "--app", required=True, help="the application the call enters (its Stasis app)"
        )
        parser.add_argument("--node", default="", help="the Asterisk node to call from")
        parser.add_argument("--callerid", default="", help='caller ID, such as "Test <100>"')
        parser.add_argument(
            "--timeout",
            type=_seconds,
            default=30.0,
            metavar="SECONDS",
            help="hang the call up if it lasts longer (default 30)",
        )
    elif command == "tail":
        parser.add_argument(
            "--app",
            action="append",
            default=[],
            help="only this application's events (repeatable; default: every application)",
        )
        parser.add_argument(
            "--type",
            action="append",
            default=[],
            help="only events of this type (repeatable, or comma-separated)",
        )
        parser.add_argument(
            "--count", type=_count, default=0, metavar="N", help="stop after N events"
        )
    else:
        parser.add_argument(
            "--wait",
            type=_seconds,
            default=1.0,
            metavar="SECONDS",
            help="how long to collect answers after the ping (default 1)",
        )
        if command == "nodes":
            parser.add_argument(
                "--app", action="append", default=[], help="only this application (repeatable)"
            )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log what the bus client does (JSON lines on stderr), and show the traceback of "
        "an unexpected error",
    )
    bus = parser.add_argument_group("message bus (as the server takes it)")
    for setting in SETTINGS:
        if setting.name.startswith("messagebus."):
            bus.add_argument(
                setting.flag,
                dest=setting.name,
                default=argparse.SUPPRESS,
                metavar="VALUE",
                help=f"{setting.help} (${setting.env})",
            )
    bus.add_argument(
        "--config", metavar="FILE", help="YAML configuration file (its messagebus section)"
    )
    bus.add_argument(
        "--connect-timeout",
        type=_seconds,
        default=5.0,
        metavar="SECONDS",
        help="give up on an unreachable bus after this long (default 5)",
    )
    return parser


@dataclass(frozen=True)
class BusAccess:
    """The bus as the configuration says, and how long to wait for it."""

    urls: tuple[str, ...]
    settings: BusSettings
    connect_timeout: float
    secrets: tuple[str, ...]

    @property
    def shown(self) -> str:
        """The URLs, redacted, for messages."""
        return ", ".join(redact_url(url) for url in self.urls)

    @property
    def subjects(self) -> Subjects:
        return Subjects(self.settings.prefix)

    async def open(self, command: str) -> Transport:
        """A connected transport named after the command.

        Raises:
            ConnectError: not connected within `connect_timeout`.
        """
        transport = bus_connect(self.urls, settings=self.settings, name=f"{PROG}-{command}")
        await connect_within(transport, self.urls, self.connect_timeout)
        return transport

    def client_arguments(self, command: str) -> tuple[list[str], dict[str, Any]]:
        """URLs and options for `ari_proxy.client.connect`, from the same settings."""
        urls, options = backend_for(self.urls).arguments(list(self.urls), self.settings)
        options["name"] = f"{PROG}-{command}"
        return urls, options


def bus_access(args: dict[str, Any], environ: dict[str, str]) -> BusAccess:
    """Read the bus settings the way the server does: flag > environment > file > default.

    Raises:
        ConfigError: a setting is invalid (one line, never a secret).
    """
    flags = {name: str(value) for name, value in args.items() if name.startswith("messagebus.")}
    config = load_config({**flags, **_ARI_PLACEHOLDERS}, environ, args.get("config"))
    secrets = url_secrets(config.bus_urls, config.bus_password, config.bus_token)
    return BusAccess(
        urls=config.bus_urls,
        settings=config.bus_settings(),
        connect_timeout=args["connect_timeout"],
        secrets=tuple(secrets),
    )


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _note(line: str) -> None:
    """A line for the person watching (stderr), apart from the output."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


# --- nodes and ping ---------------------------------------------------------------------------


async def collect_answers(
    bus: Transport, subjects: Subjects, wait: float, apps: Sequence[str] = ()
) -> list[Answer]:
    """Ping, and gather the announcements that arrive within `wait` seconds.

    Each server's round trip is the time from the ping to its first announcement after it.
    """
    answers: dict[tuple[str, str], Answer] = {}
    sent = float("inf")

    def on_announce(message: BusMessage) -> None:
        now = time.monotonic()
        seen = Answer.parse(message.data)
        if seen is None or (apps and seen.application not in apps):
            return
        key = (seen.node, seen.application)
        known = answers.setdefault(key, seen)
        known.features, known.version = seen.features, seen.version
        known.last_seen = time.time()
        if known.rtt is None and now >= sent:
            known.rtt = now - sent

    subscription = await bus.subscribe(subjects.announce, on_announce)
    try:
        sent = time.monotonic()
        await bus.ping(subjects.ping, _PING_BODY)
        await asyncio.sleep(wait)
    finally:
        with contextlib.suppress(AriProxyError):
            await subscription.unsubscribe()
    return sorted(answers.values(), key=lambda a: (a.node, a.application))


async def run_nodes(args: argparse.Namespace, access: BusAccess, stop: asyncio.Event) -> int:
    bus = await access.open("nodes")
    try:
        answers = await collect_answers(bus, access.subjects, args.wait, args.app)
    finally:
        await bus.close()
    if not answers:
        raise OpsError(f"no ari-proxy server announced itself within {args.wait:g}s")
    if args.json:
        _out(nodes_json(answers))
        return 0
    headers = ["NODE", "APPLICATIONS", "SERVER", "VERSION", "FEATURES", "LAST SEEN"]
    _out(table(headers, node_rows(answers, time.time())))
    return 0


async def run_ping(args: argparse.Namespace, access: BusAccess, stop: asyncio.Event) -> int:
    bus = await access.open("ping")
    try:
        answers = await collect_answers(bus, access.subjects, args.wait)
    finally:
        await bus.close()
    answered = [a for a in answers if a.rtt is not None]
    if not answered:
        raise OpsError(f"no ari-proxy server answered the ping within {args.wait:g}s")
    if args.json:
        _out(ping_json(answered))
        return 0
    count = f"{len(answered)} server{'s' if len(answered) != 1 else ''}"
    _out(f"PING {access.shown}: {count} answered within {args.wait:g}s")
    _out(table(["NODE", "APPLICATION", "SERVER", "RTT"], ping_rows(answered)))
    return 0


# --- tail -------------------------------------------------------------------------------------


def _subject_app_node(subject: str, prefix: str) -> tuple[str, str]:
    """(app, node) of `<prefix>event.<app>.<node>`, or ("", "")."""
    parts = subject.removeprefix(prefix).split(".")
    return (parts[1], parts[2]) if len(parts) == 3 else ("", "")


async def run_tail(args: argparse.Namespace, access: BusAccess, stop: asyncio.Event) -> int:
    types = {t.strip() for value in args.type for t in value.split(",") if t.strip()}
    subjects = access.subjects
    try:
        patterns = (
            [subjects.listen_subscription(app) for app in args.app]
            if args.app
            else [subjects.event_subscription(None)]
        )
    except ProtocolError as exc:
        raise OpsError(str(exc)) from None
    printed = 0

    def on_event(message: BusMessage) -> None:
        nonlocal printed
        if stop.is_set():
            return
        try:
            event = decode_event(message.data)
        except ProtocolError as exc:
            _note(f"{PROG} tail: not an event on {message.subject}: {exc}")
            return
        if types and event_type(event) not in types:
            return
        app, node = _subject_app_node(message.subject, subjects.prefix)
        _out(event_json(event) if args.json else event_line(event, app, node))
        printed += 1
        if args.count and printed >= args.count:
            stop.set()

    bus = await access.open("tail")
    try:
        bus.on_state(_bus_state_notes("tail"))
        for pattern in patterns:
            await bus.subscribe(pattern, on_event)
        what = ", ".join(args.app) if args.app else "every application"
        _note(f"{PROG} tail: events of {what} on {access.shown} (Ctrl-C stops)")
        await stop.wait()
    finally:
        await bus.close()
    return 0


def _bus_state_notes(command: str) -> Callable[[BusState], None]:
    def on_state(state: BusState) -> None:
        if state is BusState.RECONNECTING:
            _note(f"{PROG} {command}: lost the bus; reconnecting (events meanwhile are missed)")
        elif state is BusState.CONNECTED:
            _note(f"{PROG} {command}: the bus is back")

    return on_state


# --- call -------------------------------------------------------------------------------------


async def run_call(args: argparse.Namespace, access: BusAccess, stop: asyncio.Event) -> int:
    urls, options = access.client_arguments("call")
    client = await proxy_connect(
        args.app, urls, connect_timeout=access.connect_timeout, timeout=10.0, **options
    )
    async with client:
        serving = await _servers_of(client, args.node, wait=3.0)
        if not serving:
            raise OpsError(f"no ari-proxy server serves application {args.app!r} on {access.shown}")
        if args.node and args.node not in serving:
            raise OpsError(
                f"node {args.node} does not serve application {args.app!r} "
                f"(nodes that do: {', '.join(sorted(serving))})"
            )
        try:
            staged = await client.channels.stage_originate(
                args.endpoint,
                app=args.app,
                node=args.node or None,
                caller_id=args.callerid or None,
            )
        except AriProxyError as exc:
            raise OpsError(f"could not call {args.endpoint}: {exc}") from None
        async with staged.subscribe(maxsize=10_000) as events:
            started = time.monotonic()
            try:
                channel = await staged.execute()
            except AriProxyError as exc:
                raise OpsError(f"could not call {args.endpoint}: {exc}") from None
            _note(
                f"{PROG} call: {args.endpoint} is channel {channel.id} on node "
                f"{channel.node or '-'}, entering {args.app}"
            )
            deadline = started + args.timeout
            hung_up = ""
            while True:
                if not hung_up and (stop.is_set() or time.monotonic() >= deadline):
                    hung_up = (
                        "at Ctrl-C" if stop.is_set() else f"after {args.timeout:g}s (--timeout)"
                    )
                    _note(f"{PROG} call: hanging up {channel.id} ({hung_up})")
                    with contextlib.suppress(NotFoundError):  # it ended meanwhile
                        await channel.hangup()
                    deadline = time.monotonic() + 10.0
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise OpsError(
                        f"channel {channel.id} was hung up but no ChannelDestroyed came within 10s"
                    )
                event = await _next_or_stop(events.next(timeout=remaining), stop, hung_up)
                if event is None:
                    continue
                _out(event_json(event) if args.json else event_line(event))
                if event_type(event) == "ChannelDestroyed":
                    break
        if not args.json:
            cause = getattr(event, "cause_txt", "") or "-"
            code = getattr(event, "cause", None)
            lasted = f"{time.monotonic() - started:.1f}s"
            how = f"hung up {hung_up} by {PROG} call" if hung_up else f"ended after {lasted}"
            _out(f"call {how}: {cause}" + (f" (cause {code})" if code is not None else ""))
    return 0


async def _servers_of(client: ProxyClient, node: str, wait: float) -> set[str]:
    """The nodes serving the client's application: as soon as one does (and `node`, when
    given, is among them), else whatever answered within `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        serving = {n.node for n in client.nodes()}
        if (serving and (not node or node in serving)) or time.monotonic() >= deadline:
            return serving
        await client.refresh()
        await asyncio.sleep(0.2)


async def _next_or_stop(
    next_event: Awaitable[Any], stop: asyncio.Event, hung_up: str
) -> Any | None:
    """The next event, or None when the timeout passed or Ctrl-C came first (the loop then
    hangs up)."""
    waiter = asyncio.ensure_future(next_event)
    stopper = asyncio.ensure_future(stop.wait()) if not hung_up else None
    try:
        pending: set[asyncio.Future[Any]] = {waiter} if stopper is None else {waiter, stopper}
        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (waiter, stopper):
            if task is not None and not task.done():
                task.cancel()
    if not waiter.done() or waiter.cancelled():
        return None
    try:
        return waiter.result()
    except TimeoutError:
        return None


# --- running a command ------------------------------------------------------------------------

_RUNNERS: dict[str, Callable[[argparse.Namespace, BusAccess, asyncio.Event], Awaitable[int]]] = {
    "nodes": run_nodes,
    "ping": run_ping,
    "tail": run_tail,
    "call": run_call,
}


async def _run(command: str, args: argparse.Namespace, access: BusAccess) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        return await _RUNNERS[command](args, access, stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def run_command(command: str, argv: Sequence[str]) -> int:
    """Run `ari-proxy <command> <argv>`; return the exit code."""
    parser = build_parser(command)
    args = parser.parse_args(list(argv))
    if args.verbose:
        configure_logging(verbose=True)
    else:  # the transports log each failed attempt: the one line at the end says it all
        logging.getLogger().addHandler(logging.NullHandler())
        logging.getLogger().setLevel(logging.CRITICAL + 1)
    prog = f"{PROG} {command}"
    secrets: Sequence[str] = ()
    try:
        access = bus_access(vars(args), dict(os.environ))
        secrets = access.secrets
        return asyncio.run(_run(command, args, access))
    except ConfigError as exc:
        _note(f"{prog}: error: {scrub(str(exc), secrets)}")
        return 2
    except (OpsError, AriProxyError, ValueError, OSError) as exc:
        _note(f"{prog}: error: {scrub(_one_line(exc), secrets)}")
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: still one line, the traceback on request
        if args.verbose:
            traceback.print_exc()
        detail = scrub(_one_line(exc), secrets)
        _note(f"{prog}: error: unexpected {type(exc).__name__}: {detail} (-v shows where)")
        return 1


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
