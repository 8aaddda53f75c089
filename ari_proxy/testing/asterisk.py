"""Asterisk 22 sandbox: `python -m ari_proxy.testing.asterisk up|down|status`.

Builds (once) a Debian sid root with Asterisk 22 under /var/cache/ari-proxy/asterisk-sid and runs
independent instances from it on loopback. Needs root.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict

from ._asterisk import Instance, InstanceSpec, cli, free_port, make_spec, running, start, stop
from ._asterisk import stop_all as _stop_all
from ._root import DEFAULT_ROOT, PACKAGES, SandboxError, ensure_root, root_is_valid

__all__ = [
    "DEFAULT_ROOT",
    "PACKAGES",
    "Instance",
    "InstanceSpec",
    "SandboxError",
    "cli",
    "ensure_root",
    "free_port",
    "main",
    "make_spec",
    "root_is_valid",
    "running",
    "start",
    "stop",
    "stop_all",
]

stop_all = _stop_all


def _describe(inst: Instance, with_secret: bool) -> dict[str, object]:
    return {
        "name": inst.name,
        "pid": inst.pid,
        "http_url": inst.http_url,
        "ws_url": inst.ws_url,
        "username": inst.username,
        "password": inst.password if with_secret else "********",
        "entity_id": inst.entity_id,
        "sip": f"127.0.0.1:{inst.sip_port}",
        "spec": asdict(inst.spec) if with_secret else None,
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m ari_proxy.testing.asterisk")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build the root if needed and start instances")
    up.add_argument("-n", "--instances", type=int, default=1)
    up.add_argument("--prefix", default="sandbox", help="instance names are <prefix>-<i>")
    up.add_argument("--http-port", type=int, default=8088, help="first instance's ARI port")
    up.add_argument("--sip-port", type=int, default=5060, help="first instance's SIP port")
    up.add_argument("--app", default="test", help="application for `exten => stasis`")
    down = sub.add_parser("down", help="stop instances (all, or those named)")
    down.add_argument("names", nargs="*")
    status = sub.add_parser("status", help="list running instances")
    status.add_argument("--json", action="store_true", help="machine-readable, with credentials")
    sub.add_parser("build", help="only build (or verify) the cached root")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.command == "build":
            print(ensure_root())
        elif args.command == "up":
            for i in range(args.instances):
                name = f"{args.prefix}-{i + 1}"
                if any(r.name == name for r in running()):
                    print(f"{name}: already running")
                    continue
                spec = make_spec(
                    name,
                    http_port=args.http_port + i,
                    sip_port=args.sip_port + i,
                    entity_id=f"02:00:00:00:00:{i + 1:02x}",
                    default_app=args.app,
                )
                inst = start(spec)
                print(f"{name}: ARI {inst.http_url} entity {inst.entity_id} SIP {spec.sip_port}")
        elif args.command == "down":
            names = args.names or [r.name for r in running()]
            stopped = [n for n in names if stop(n)]
            if not args.names:
                stopped += [n for n in _stop_all() if n not in stopped]
            print("stopped: " + (", ".join(stopped) or "nothing"))
        else:
            found = running()
            if args.json:
                print(json.dumps([_describe(i, True) for i in found], indent=2))
            else:
                for inst in found:
                    d = _describe(inst, False)
                    print(f"{d['name']}: pid {d['pid']} {d['http_url']} entity {d['entity_id']}")
                if not found:
                    print("no instances running")
    except SandboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
