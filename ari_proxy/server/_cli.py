"""The `ari-proxy` command: configuration, logging, signals, exit codes.

`ari-proxy` alone runs the server. `ari-proxy nodes|tail|call|ping ...` runs an operator command
instead (`_ops.py`); the server's flags and environment are untouched by them.

Exit codes: 0 after a clean shutdown (SIGTERM or SIGINT), 1 when the server could not start or
failed, 2 for a configuration error (one line on stderr, never holding a secret), or when the
message bus refused the credentials at startup (logged: "the message bus refused the
credentials ...").
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

from .._exceptions import AriProxyError, AuthenticationError, CertificateError
from .._version import __version__
from ._config import SETTINGS, ConfigError, ServerConfig, load_config
from ._logging import configure_logging
from ._ops import COMMANDS, SafeParser, run_command
from ._server import Server

__all__ = ["main"]

logger = logging.getLogger("ari_proxy.server")

PROG = "ari-proxy"


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser: one flag per setting, plus `--config` and `--version`."""
    parser = SafeParser(
        prog=PROG,
        description="ARI proxy: serves one Asterisk's ARI over NATS or RabbitMQ, "
        "wire-compatible with CyCoreSystems/ari-proxy v5.",
        epilog="Every flag also reads an environment variable (ari.http_url: ARI_HTTP_URL) and\n"
        "a YAML key (ari: {http_url: ...}); precedence flag > environment > file > default.\n\n"
        "operator commands (ari-proxy COMMAND --help for each):\n"
        + "\n".join(f"  {name:<6} {what}" for name, what in COMMANDS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="FILE", help="YAML configuration file")
    parser.add_argument("-V", "--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        dest="verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="debug logging ($VERBOSE)",
    )
    for setting in SETTINGS:
        if setting.name == "verbose":
            continue
        parser.add_argument(
            setting.flag,
            dest=setting.name,
            default=argparse.SUPPRESS,
            metavar="VALUE",
            help=f"{setting.help} (${setting.env})",
        )
    parser.add_argument(
        "--nats.url", dest="nats.url", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the proxy server until SIGTERM or SIGINT, or an operator command (`ari-proxy nodes`,
    `tail`, `call`, `ping`); return the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] in COMMANDS:
        return run_command(arguments[0], arguments[1:])
    args = vars(build_parser().parse_args(arguments))
    config_file = args.pop("config", None)
    flags = {name: str(value) for name, value in args.items()}
    try:
        config = load_config(flags, os.environ, config_file)
    except ConfigError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return 2
    configure_logging(verbose=config.verbose)
    try:
        with asyncio.Runner(loop_factory=loop_factory(config.loop)) as runner:
            return runner.run(serve(config))
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        return 130


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop `proxy.loop` asks for: uvloop for `uvloop`, and for `auto` where it is
    installed; else asyncio's own (None: the default). For this command only, never set as a
    policy (docs/benchmarks.md has what uvloop gains)."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":  # load_config checked it is installed
            raise
        return None
    return uvloop.new_event_loop


async def serve(config: ServerConfig) -> int:
    """Run one server with signal handling; return the exit code."""
    try:
        server = Server(config)
    except (ValueError, AriProxyError) as exc:
        logger.error("cannot start: %s", exc)
        return 2
    loop = asyncio.get_running_loop()
    logger.info("event loop: %s", type(loop).__module__.partition(".")[0])  # uvloop, asyncio
    main_task = asyncio.current_task()
    received: list[signal.Signals] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig)
        if len(received) == 1:
            logger.info("shutting down", extra={"signal": sig.name})
            server.request_stop()
        elif main_task is not None:
            logger.warning("second signal: stopping now", extra={"signal": sig.name})
            main_task.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await server.run()
    except asyncio.CancelledError:
        return 1 if received else 130
    except (AuthenticationError, CertificateError) as exc:
        # Retrying cannot help until the credentials or the CA change: a configuration error.
        logger.error("cannot start: %s", exc)
        return 2
    except AriProxyError as exc:
        logger.error("server failed: %s", exc)
        return 1
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 0
