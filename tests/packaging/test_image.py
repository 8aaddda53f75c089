"""The server's container image: built from Containerfile with buildah (no daemon), on a Debian
python3 base made here with debootstrap (no registry is reachable), then run with the host's
network against the Asterisk sandbox and NATS, and our client completes the README's call flow
through it.

`scripts/image` builds the base and the image (and installs buildah when missing); the first run
builds the base's root (about 40 s), later runs reuse it. `scripts/image test` runs this file.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging_kit import (
    REPO,
    ServerProcess,
    cmdline,
    descendants,
    run,
    server_env,
    source_version,
    take_one_call,
)

from ari_proxy.testing import Instance, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

ENTRYPOINT = "/opt/ari-proxy/bin/ari-proxy"
BUILDAH_RUN = ["buildah", "run", "--isolation", "chroot", "--network", "host"]


@dataclass(frozen=True)
class Image:
    tag: str
    config: dict[str, Any]  # the Docker image config: Entrypoint, User, Env, Healthcheck...
    build_seconds: float
    size: int
    base_size: int


def image_size(tag: str) -> int:
    return int(run([REPO / "scripts/image", "size", tag]).stdout.split()[-1])


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    base = run([REPO / "scripts/image", "base"], timeout=900).stdout.split()[-1]
    tag = f"localhost/ari-proxy:test-{os.getpid()}"
    start = time.monotonic()
    run([REPO / "scripts/image", "build", "--base", base, "--tag", tag], timeout=900)
    seconds = time.monotonic() - start
    try:
        inspected = json.loads(run(["buildah", "inspect", "--type", "image", tag]).stdout)
        built = Image(
            tag, inspected["Docker"]["config"], seconds, image_size(tag), image_size(base)
        )
        print(  # shown with -s; scripts/image build prints the same
            f"\nimage {tag}: built in {built.build_seconds:.1f} s, {built.size / 1e6:.1f} MB "
            f"({(built.size - built.base_size) / 1e6:.1f} MB over the base)",
            file=sys.stderr,
        )
        yield built
    finally:
        run(["buildah", "rmi", tag])


def is_the_server(argv: list[str]) -> bool:
    """The entrypoint's process: the venv's python running the `ari-proxy` script (buildah's
    own processes above it carry the same words in their arguments)."""
    return (
        len(argv) >= 2 and argv[0].startswith("/opt/ari-proxy/bin/python") and argv[1] == ENTRYPOINT
    )


@pytest.fixture
def container(image: Image) -> Iterator[str]:
    """A working container of the image (`buildah from`), removed at the end."""
    name = run(["buildah", "from", "--pull-never", image.tag]).stdout.strip()
    try:
        yield name
    finally:
        run(["buildah", "rm", name])


def test_the_image_runs_the_server_as_a_user(image: Image) -> None:
    config = image.config
    assert config["Entrypoint"] == [ENTRYPOINT]
    user = config["User"].split(":")[0]
    assert user and user not in ("0", "root")
    health = config["Healthcheck"]["Test"]
    assert health[0] == "CMD" and "/readyz" in health[-1]
    assert "PROXY_METRICS_ADDRESS=:9480" in config["Env"]
    assert "9480/tcp" in config["ExposedPorts"]
    # Smaller than the base plus 40 MB: the virtualenv with the wheel, and no pip or build tools.
    assert image.size - image.base_size < 40e6


def test_the_image_holds_the_wheel_and_no_build_tools(container: str) -> None:
    version = run([*BUILDAH_RUN, container, "--", ENTRYPOINT, "--version"]).stdout.strip()
    assert version == f"ari-proxy {source_version()}"
    listing = run([*BUILDAH_RUN, container, "--", "ls", "/opt/ari-proxy/bin"]).stdout.split()
    assert "ari-proxy" in listing and "pip" not in listing
    found = run([*BUILDAH_RUN, container, "--", "ls", "/opt", "/tmp"]).stdout.split()
    assert "build" not in found and "dist" not in found


def test_a_call_flow_through_the_image(
    image: Image, container: str, asterisk: Instance, nats_url: str, tmp_path: Path
) -> None:
    app = "t-" + secrets.token_hex(5)
    metrics = f"127.0.0.1:{free_port()}"
    env = server_env(
        asterisk, nats_url, app, PROXY_SHUTDOWN_GRACE="5s", PROXY_METRICS_ADDRESS=metrics
    )
    # As `docker run -e NAME=value`: the container's environment, then its entrypoint.
    run(["buildah", "config", *(f"--env={k}={v}" for k, v in env.items()), container])
    argv = [*BUILDAH_RUN, container, "--", *image.config["Entrypoint"]]
    server = ServerProcess(argv, dict(os.environ), tmp_path / "server.log", tmp_path)
    try:
        server.wait_for("serving", timeout=90)
        health = image.config["Healthcheck"]["Test"][1:]
        run([*BUILDAH_RUN, container, "--", *health], timeout=30)  # the HEALTHCHECK says ready
        report = take_one_call(sys.executable, nats_url, app, tmp_path, checkout=True)
        (pid,) = [p for p in descendants(server.process.pid) if is_the_server(cmdline(p))]
        code = server.stop(pid)  # SIGTERM to the server itself, as `docker stop` sends it
    except BaseException:
        server.kill()
        raise
    outcome = {k: report.get(k) for k in ("played", "call_is_the_caller", "hung_up")}
    assert outcome == {"played": True, "call_is_the_caller": True, "hung_up": True}, report
    assert code == 0, server.tail()
    msgs = [line.get("msg") for line in server.lines()]
    assert "serving" in msgs and "stopped" in msgs
    assert not [line for line in server.lines() if line.get("level") == "error"]
