"""Real SIP calls into a sandbox instance with sipp (Debian package `sip-tester`)."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
from dataclasses import dataclass
from importlib import resources

from ._asterisk import Instance, free_port
from ._root import SandboxError

__all__ = ["SippResult", "sipp_calls"]

_SCENARIO = "uac_wait_bye.xml"


@dataclass(frozen=True, slots=True)
class SippResult:
    """What sipp reported when it ended."""

    returncode: int
    successful: int
    failed: int
    output: str


async def sipp_calls(
    instance: Instance,
    service: str,
    *,
    calls: int = 1,
    rate: float = 10,
    concurrent: int | None = None,
    timeout: float = 30,
) -> SippResult:
    """Place `calls` SIP calls to `service` (e.g. `stasis-myapp`) and wait for them to end.

    The scenario sends INVITE, acknowledges the 200 and then waits for Asterisk's BYE, so each
    call ends when the application hangs it up. Raises `SandboxError` when sipp is missing.
    """
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SandboxError("sipp is not installed (apt-get install sip-tester)")
    scenario = resources.files("ari_proxy.testing").joinpath("data", _SCENARIO)
    with resources.as_file(scenario) as path:
        proc = await asyncio.create_subprocess_exec(
            sipp,
            "-sf",
            str(path),
            "-s",
            service,
            "-i",
            "127.0.0.1",
            "-p",
            "0",
            "-mp",
            str(free_port(socket.SOCK_DGRAM)),
            "-m",
            str(calls),
            "-l",
            str(concurrent or calls),
            "-r",
            str(rate),
            "-timeout",
            f"{int(timeout)}s",
            "-recv_timeout",
            f"{int(timeout * 1000)}",
            "-nostdin",
            "-nr",
            f"127.0.0.1:{instance.sip_port}",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd="/tmp",
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout + 15)
    text = out.decode(errors="replace")
    return SippResult(
        returncode=proc.returncode if proc.returncode is not None else -1,
        successful=_count(text, "Successful call"),
        failed=_count(text, "Failed call"),
        output=text,
    )


def _count(text: str, label: str) -> int:
    # sipp's final table: "Successful call | <periodic> | <cumulative>"; take the cumulative column.
    matches = re.findall(rf"{label}\s*\|\s*\d+\s*\|\s*(\d+)", text)
    return int(matches[-1]) if matches else 0
