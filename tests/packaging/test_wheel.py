"""The package as people install it: `python -m build` makes the sdist and, from it, the wheel;
the wheel goes into a fresh, empty virtualenv (its dependencies from the index, through pip's
cache); and there, with no checkout on the path (`python -I`, run from an empty folder), the
command, the public API, the data files and the README's call flow work, the proxy server being
the installed `ari-proxy` program.

`ARI_PROXY_WHEEL_PYTHON` names another interpreter for the virtualenv (the classifiers list the
versions this was run on).
"""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import json
import os
import secrets
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging_kit import (
    REPO,
    Distributions,
    ServerProcess,
    build_distributions,
    clean_env,
    copy_source,
    package_files,
    package_modules,
    quickstart_body,
    readme_example_body,
    run,
    server_env,
    source_version,
    take_one_call,
)

from ari_proxy.server import SETTINGS
from ari_proxy.testing import Instance

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

# Needs pytest, a test-time dependency: the one module a bare install cannot import.
NEEDS_PYTEST = "ari_proxy.testing.pytest_plugin"
VERSION = source_version()


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Distributions:
    src = copy_source(tmp_path_factory.mktemp("src"))
    return build_distributions(src, tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def venv(dists: Distributions, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv with the wheel and its dependencies, and nothing else."""
    path = tmp_path_factory.mktemp("venv")
    python = os.environ.get("ARI_PROXY_WHEEL_PYTHON", sys.executable)
    run([python, "-m", "venv", path])
    # pip's own environment (index, certificates, cache) but none of the checkout.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    run([path / "bin/python", "-m", "pip", "install", "-q", dists.wheel], timeout=600, env=env)
    return path


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working directory of everything run from the virtualenv: nothing to import there."""
    return tmp_path_factory.mktemp("empty")


def wheel_metadata(dists: Distributions) -> email.message.Message:
    with zipfile.ZipFile(dists.wheel) as whl:
        text = whl.read(f"ari_proxy-{VERSION}.dist-info/METADATA").decode()
    return email.parser.Parser(policy=email.policy.compat32).parsestr(text)


def test_the_distributions_are_named_after_the_one_version(dists: Distributions) -> None:
    assert dists.wheel.name == f"ari_proxy-{VERSION}-py3-none-any.whl"
    assert dists.sdist.name == f"ari_proxy-{VERSION}.tar.gz"


def test_the_wheel_holds_every_file_of_the_package(dists: Distributions) -> None:
    info = f"ari_proxy-{VERSION}.dist-info/"
    with zipfile.ZipFile(dists.wheel) as whl:
        names = set(whl.namelist())
        entry_points = whl.read(f"{info}entry_points.txt").decode()
    assert package_files() - names == set(), "files of ari_proxy/ missing from the wheel"
    assert {n for n in names if not n.startswith(info)} == package_files()
    assert "ari_proxy/py.typed" in names
    assert "ari_proxy/testing/data/uac_wait_bye.xml" in names  # read by testing/_sipp.py
    assert f"{info}licenses/LICENSE" in names
    assert "ari-proxy = ari_proxy.server._cli:main" in entry_points


def test_the_sdist_holds_the_package_and_its_documents(dists: Distributions) -> None:
    top = f"ari_proxy-{VERSION}/"
    with tarfile.open(dists.sdist) as sdist:
        names = {n.removeprefix(top) for n in sdist.getnames()}
    assert package_files() - names == set(), "files of ari_proxy/ missing from the sdist"
    for name in ("pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "PKG-INFO"):
        assert name in names
    assert not any(n.startswith("tests/") for n in names)


def test_the_metadata_is_complete(dists: Distributions) -> None:
    meta = wheel_metadata(dists)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert meta["Name"] == "ari-proxy"
    assert meta["Version"] == VERSION
    assert meta["Summary"] == project["description"]
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["License-File"] == "LICENSE"
    assert meta["Requires-Python"] == ">=3.11"
    assert meta["Description-Content-Type"] == "text/markdown"
    classifiers = meta.get_all("Classifier")
    running = f"Programming Language :: Python :: {sys.version_info[0]}.{sys.version_info[1]}"
    for needed in (running, "Typing :: Typed", "Framework :: AsyncIO"):
        assert needed in classifiers
    assert any(c.startswith("Development Status ::") for c in classifiers)
    assert any(c.startswith("Operating System ::") for c in classifiers)
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert {"Homepage", "Repository", "Issues", "Changelog"} <= urls.keys()
    runtime = [r for r in meta.get_all("Requires-Dist") if "extra ==" not in r]
    assert len(runtime) == len(project["dependencies"])
    assert all(">=" in r for r in runtime), "every runtime dependency has a tested lower bound"


def test_twine_accepts_the_distributions(dists: Distributions) -> None:
    run([sys.executable, "-m", "twine", "check", "--strict", dists.sdist, dists.wheel])


def test_the_installed_command(venv: Path, empty: Path) -> None:
    version = run([venv / "bin/ari-proxy", "--version"], cwd=empty, env=clean_env())
    assert version.stdout.strip() == f"ari-proxy {VERSION}"
    help_text = run([venv / "bin/ari-proxy", "--help"], cwd=empty, env=clean_env()).stdout
    for setting in SETTINGS:
        assert setting.flag in help_text, setting.flag


IMPORT_EVERYTHING = """
import importlib, importlib.resources, json, pathlib, sys
import ari_proxy
missing = [name for name in ari_proxy.__all__ if not hasattr(ari_proxy, name)]
top = pathlib.Path(ari_proxy.__file__).parent
modules, failed = [], {}
for path in sorted(top.rglob("*.py")):
    parts = ("ari_proxy", *path.relative_to(top).with_suffix("").parts)
    name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    modules.append(name)
    if parts[-1] == "__main__":  # a program (it would run the server), not a module to import
        continue
    try:
        importlib.import_module(name)
    except ImportError as exc:
        failed[name] = repr(exc)
files = importlib.resources.files("ari_proxy")
print(json.dumps({
    "file": ari_proxy.__file__,
    "version": ari_proxy.__version__,
    "sys_path": sys.path,
    "missing_from_all": missing,
    "modules": modules,
    "failed": failed,
    "py_typed": files.joinpath("py.typed").is_file(),
    "data": sorted(p.name for p in files.joinpath("testing", "data").iterdir()),
}))
"""


def test_the_installed_package(venv: Path, empty: Path) -> None:
    result = run([venv / "bin/python", "-I", "-c", IMPORT_EVERYTHING], cwd=empty, env=clean_env())
    found = json.loads(result.stdout)
    site = str(venv / "lib")
    assert found["file"].startswith(site), "ari_proxy came from outside the virtualenv"
    assert not any(str(REPO) in p for p in found["sys_path"])
    assert found["version"] == VERSION
    assert found["missing_from_all"] == []
    assert set(found["modules"]) == package_modules()
    assert found["failed"].keys() == {NEEDS_PYTEST}, found["failed"]
    assert "No module named 'pytest'" in found["failed"][NEEDS_PYTEST]
    assert found["py_typed"]
    source_data = sorted(p.name for p in (REPO / "ari_proxy/testing/data").iterdir())
    assert found["data"] == source_data


def test_the_call_flow_is_the_readmes() -> None:
    assert quickstart_body() == readme_example_body()


class InstalledRun:
    """One run of the installed server with the README's call flow through it."""

    def __init__(self, report: dict[str, object], code: int, server: ServerProcess) -> None:
        self.report = report
        self.code = code
        self.server = server


@pytest.fixture(scope="module")
def installed_run(
    venv: Path, empty: Path, asterisk: Instance, nats_url: str
) -> Iterator[InstalledRun]:
    app = "t-" + secrets.token_hex(5)
    env = clean_env(**server_env(asterisk, nats_url, app, PROXY_SHUTDOWN_GRACE="5s"))
    server = ServerProcess([venv / "bin/ari-proxy"], env, empty.parent / "server.log", empty)
    try:
        server.wait_for("serving")
        report = take_one_call(venv / "bin/python", nats_url, app, empty)
        code = server.stop()
    except BaseException:
        server.kill()
        raise
    yield InstalledRun(report, code, server)


def test_the_quick_start_through_the_installed_server(
    venv: Path, installed_run: InstalledRun
) -> None:
    report = installed_run.report
    assert str(report["ari_proxy"]).startswith(str(venv / "lib"))
    outcome = {k: report.get(k) for k in ("played", "call_is_the_caller", "hung_up")}
    assert outcome == {"played": True, "call_is_the_caller": True, "hung_up": True}, report
    assert installed_run.code == 0, installed_run.server.tail()
    msgs = [line.get("msg") for line in installed_run.server.lines()]
    assert "serving" in msgs and "stopped" in msgs
    assert not [line for line in installed_run.server.lines() if line.get("level") == "error"]


def test_the_start_log_line_names_the_version(installed_run: InstalledRun) -> None:
    (starting,) = [line for line in installed_run.server.lines() if line.get("msg") == "starting"]
    assert starting.get("version") == VERSION
