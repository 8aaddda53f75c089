"""The deployment examples in docs/deploy/ agree with the command they run: every variable they
set is a setting, every flag parses, the whole makes a valid configuration, and the probes and
the metrics port are those the server serves."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ari_proxy.server import SETTINGS, ServerConfig, load_config
from ari_proxy.server._cli import build_parser
from ari_proxy.server._config import split_address
from ari_proxy.server._http import LIVENESS_PATHS, METRICS_PATH, READINESS_PATH

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "docs/deploy"
ENV_NAMES = {setting.env for setting in SETTINGS}


def config_from(argv: list[str], environ: dict[str, str]) -> ServerConfig:
    """What `ari-proxy argv` builds with `environ` (the parser must accept every flag)."""
    args = vars(build_parser().parse_args(argv))
    config_file = args.pop("config", None)
    assert config_file is None, "the examples configure through flags and the environment"
    return load_config({name: str(value) for name, value in args.items()}, environ)


def env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def seconds(text: str) -> float:
    return float(text.removesuffix("s"))


# --- systemd --------------------------------------------------------------------------------------


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((DEPLOY / "ari-proxy.service").read_text())
    return parser


def test_systemd_unit_runs_the_command_with_real_settings() -> None:
    service = unit()["Service"]
    command = shlex.split(service["ExecStart"])
    assert Path(command[0]).name == "ari-proxy"
    assert service["EnvironmentFile"] == "/etc/ari-proxy/ari-proxy.env"
    environ = env_file(DEPLOY / "ari-proxy.env")
    for line in service.get("Environment", "").splitlines():
        name, _, value = line.partition("=")
        environ[name] = value
    unknown = set(environ) - ENV_NAMES
    assert not unknown, f"not settings of ari-proxy: {sorted(unknown)}"
    config = config_from(command[1:], environ)
    assert config.applications == ("myapp",)
    assert config.metrics_address == "127.0.0.1:9480"
    assert config.stats_interval == 60.0
    # SIGKILL comes after the graceful stop could finish.
    assert seconds(service["TimeoutStopSec"]) > config.shutdown_grace
    assert service["KillSignal"] == "SIGTERM"
    assert service["RestartPreventExitStatus"] == "2"  # the command's configuration error


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze on this machine")
    text = (DEPLOY / "ari-proxy.service").read_text()
    # verify wants the executable and the environment file to exist.
    text = text.replace("/opt/ari-proxy/bin/ari-proxy", "/bin/true")
    text = text.replace("/etc/ari-proxy/ari-proxy.env", str(DEPLOY / "ari-proxy.env"))
    path = tmp_path / "ari-proxy.service"
    path.write_text(text)
    result = subprocess.run(
        [analyze, "verify", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


# --- Kubernetes -----------------------------------------------------------------------------------


def manifests() -> dict[str, Any]:
    docs = list(yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text()))
    return {doc["kind"]: doc for doc in docs if doc}


def test_kubernetes_manifest_runs_the_command_with_real_settings() -> None:
    found = manifests()
    assert set(found) == {"Secret", "ConfigMap", "Deployment"}
    secret, config_map = found["Secret"], found["ConfigMap"]
    assert {"ARI_PASSWORD", "MESSAGEBUS_URL"} <= set(secret["stringData"])
    pod = found["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["ari-proxy"]
    environ: dict[str, str] = {}
    for source in container["envFrom"]:
        if "configMapRef" in source:
            assert source["configMapRef"]["name"] == config_map["metadata"]["name"]
            environ.update(config_map["data"])
        else:
            assert source["secretRef"]["name"] == secret["metadata"]["name"]
            environ.update(secret["stringData"])
    for item in container.get("env", []):
        environ[item["name"]] = item["value"]
    assert all(isinstance(value, str) for value in environ.values()), "quote numbers in YAML"
    unknown = set(environ) - ENV_NAMES
    assert not unknown, f"not settings of ari-proxy: {sorted(unknown)}"
    config = config_from([str(arg) for arg in container.get("args", [])], environ)
    assert config.ari_password == "change-me" and config.bus_user == "ari-proxy"
    assert pod["terminationGracePeriodSeconds"] > config.shutdown_grace
    spec = found["Deployment"]["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"


def test_kubernetes_probes_and_port_are_what_the_server_serves() -> None:
    found = manifests()
    pod_template = found["Deployment"]["spec"]["template"]
    (container,) = pod_template["spec"]["containers"]
    address = found["ConfigMap"]["data"]["PROXY_METRICS_ADDRESS"]
    host, port = split_address(address)
    assert host is None, "probes come from the kubelet: listen on every interface"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == port
    for name, path in (
        ("livenessProbe", LIVENESS_PATHS[0]),
        ("readinessProbe", READINESS_PATH),
        ("startupProbe", LIVENESS_PATHS[0]),
    ):
        get = container[name]["httpGet"]
        assert get["path"] == path, name
        assert ports.get(get["port"], get["port"]) == port, name
    annotations = pod_template["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == METRICS_PATH
    assert annotations["prometheus.io/scrape"] == "true"


def test_operations_doc_points_to_the_examples() -> None:
    text = (ROOT / "docs/operations.md").read_text()
    for name in ("deploy/ari-proxy.service", "deploy/ari-proxy.env", "deploy/kubernetes.yaml"):
        assert name in text, name
