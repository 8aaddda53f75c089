"""What the packaging tests share: the source tree, the distributions built from a copy of it,
the proxy server run as a program (from a virtualenv or from the container image), and the
README's call flow run against it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "ari_proxy"
QUICKSTART = Path(__file__).with_name("quickstart_app.py")
# What the wheel is built from (and what Containerfile copies).
SOURCE_FILES = ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", "CHANGELOG.md")
# The programs run from the installed package see none of the checkout, and no Python setting.
CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def source_version() -> str:
    """`__version__` as written in ari_proxy/_version.py."""
    text = (PACKAGE / "_version.py").read_text()
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    assert match is not None, "ari_proxy/_version.py has no __version__ line"
    return match.group(1)


def package_files() -> set[str]:
    """Every file of the source tree's package (`ari_proxy/...`), bytecode and caches aside."""
    return {
        path.relative_to(REPO).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix not in (".pyc", ".pyo")
    }


def package_modules() -> set[str]:
    """The dotted names of every module of the source tree's package."""
    names = set()
    for name in package_files():
        if name.endswith(".py"):
            dotted = name[: -len(".py")].replace("/", ".")
            names.add(dotted.removesuffix(".__init__"))
    return names


def copy_source(dest: Path) -> Path:
    """Copy what the distributions are built from into `dest` (no .venv, caches or tests)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in SOURCE_FILES:
        shutil.copy2(REPO / name, dest / name)
    shutil.copytree(
        PACKAGE, dest / "ari_proxy", ignore=shutil.ignore_patterns("__pycache__", "*.py[co]")
    )
    return dest


def clean_env(**extra: str) -> dict[str, str]:
    """An environment for a program under test: a plain PATH, HOME and locale, and `extra`."""
    env = {"PATH": CLEAN_PATH, "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
    env.update(extra)
    return env


def run(
    argv: Sequence[str | Path], *, timeout: float = 300, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run a command to its end, its output captured as text; fail with that output."""
    result = subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, argv))} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
        )
    return result


@dataclass(frozen=True)
class Distributions:
    sdist: Path
    wheel: Path


def build_distributions(src: Path, outdir: Path) -> Distributions:
    """`python -m build`: the sdist, then the wheel built from that sdist."""
    run([sys.executable, "-m", "build", "--outdir", outdir, src], timeout=600, cwd=src)
    (sdist,) = outdir.glob("*.tar.gz")
    (wheel,) = outdir.glob("*.whl")
    return Distributions(sdist, wheel)


def server_env(asterisk: Any, bus_url: str, app: str, **extra: str) -> dict[str, str]:
    """The Go server's environment variables for `app` on a sandbox Asterisk instance."""
    return {
        "ARI_APPLICATION": app,
        "ARI_USERNAME": asterisk.username,
        "ARI_PASSWORD": asterisk.password,
        "ARI_HTTP_URL": asterisk.http_url,
        "ARI_WEBSOCKET_URL": asterisk.ws_url,
        "MESSAGEBUS_URL": bus_url,
        **extra,
    }


class ServerProcess:
    """The `ari-proxy` program run to serve, its JSON log lines on stderr kept in a file.

    `pid_of_server` finds the process to signal when `argv` is a wrapper (`buildah run`): the
    server is then a descendant of the process started here.
    """

    def __init__(
        self, argv: Sequence[str | Path], env: dict[str, str], log: Path, cwd: Path
    ) -> None:
        self.log = log
        self._log_file = open(log, "w")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            [str(a) for a in argv],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def lines(self) -> list[dict[str, Any]]:
        """The log lines so far that are JSON objects (anything else is kept in the file)."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict):
                found.append(item)
        return found

    def wait_for(self, msg: str, timeout: float = 60) -> dict[str, Any]:
        """The first log line with `msg`; fail when the server exits or it does not come."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # bounded poll of a file another process writes
            for line in self.lines():
                if line.get("msg") == msg:
                    return line
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the server exited {self.process.returncode} before {msg!r}:\n{self.tail()}"
                )
            time.sleep(0.1)
        raise AssertionError(f"no {msg!r} log line in {timeout} s:\n{self.tail()}")

    def tail(self, count: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-count:])

    def stop(self, pid: int | None = None, timeout: float = 30) -> int:
        """SIGTERM the server (`pid`, else the process started here); return the exit code."""
        try:
            if self.process.poll() is None:
                os.kill(pid if pid is not None else self.process.pid, signal.SIGTERM)
                try:
                    return self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(10)
                    raise AssertionError(
                        f"the server did not stop on SIGTERM:\n{self.tail()}"
                    ) from None
            return self.process.returncode
        finally:
            self._log_file.close()

    def kill(self) -> None:
        """End the process group at once (cleanup after a failure)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self._log_file.close()


def descendants(pid: int) -> Iterator[int]:
    """The processes below `pid`, from /proc (the chroot of `buildah run` shares the PID space)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        yield child
        todo.extend(children.get(child, []))


def cmdline(pid: int) -> list[str]:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []


def take_one_call(
    python: str | Path, bus_url: str, app: str, cwd: Path, *, checkout: bool = False
) -> dict[str, Any]:
    """Run the README's call flow (quickstart_app.py); return its report.

    With `python -I` (the checkout out of reach) unless `checkout`: then with the checkout's
    package first on the path.
    """
    script = cwd / QUICKSTART.name
    shutil.copy2(QUICKSTART, script)
    flags, env = ["-I"], clean_env()
    if checkout:
        flags, env = [], clean_env(PYTHONPATH=str(REPO))
    result = run([python, *flags, script, bus_url, app], timeout=120, cwd=cwd, env=env)
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def readme_example_body() -> list[str]:
    """The README "Using it" example's call handling, stripped lines, comments dropped."""
    text = (REPO / "README.md").read_text()
    block = text.split("## Using it", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    lines = [line.strip() for line in block.splitlines()]
    start = lines.index("async for call in calls:")
    return [line for line in lines[start:] if line and not line.startswith("#")]


def quickstart_body() -> list[str]:
    """quickstart_app.py's lines between its README markers, stripped, comments dropped."""
    lines = [line.strip() for line in QUICKSTART.read_text().splitlines()]
    body = lines[lines.index("# README begin") + 1 : lines.index("# README end")]
    return [line for line in body if line and not line.startswith("#")]
