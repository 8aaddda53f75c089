"""The files of a release that cannot run here, checked for what can be: the release workflow's
structure (and its version check, run), the Containerfile's shape, the compose files against the
server's settings and the Asterisk configuration beside them, and the changelog's format."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging_kit import REPO, SOURCE_FILES, source_version

from ari_proxy.server import SETTINGS

WORKFLOW = REPO / ".github/workflows/release.yml"
COMPOSE = REPO / "docs/compose"
SETTING_ENVS = {setting.env for setting in SETTINGS}


def load_workflow() -> dict[Any, Any]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(workflow, dict)
    return workflow


def steps(job: str) -> list[dict[str, Any]]:
    return list(load_workflow()["jobs"][job]["steps"])


def step_using(job: str, action: str) -> list[dict[str, Any]]:
    return [s for s in steps(job) if str(s.get("uses", "")).startswith(action + "@")]


def test_the_workflow_runs_on_version_tags_only() -> None:
    workflow = load_workflow()
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert on == {"push": {"tags": ["v*"]}}
    assert workflow["permissions"] == {"contents": "read"}


def test_the_workflow_jobs_and_their_order() -> None:
    jobs = load_workflow()["jobs"]
    assert jobs.keys() == {"dist", "image", "pypi"}
    assert jobs["image"]["needs"] == "dist"
    assert set(jobs["pypi"]["needs"]) == {"dist", "image"}  # PyPI last: it cannot be redone


def test_every_action_is_pinned_to_a_version() -> None:
    for job in load_workflow()["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                name, _, ref = step["uses"].partition("@")
                assert ref, f"{name} has no version"


def test_the_dist_job_builds_and_checks_both_distributions() -> None:
    text = "\n".join(str(s.get("run", "")) for s in steps("dist"))
    assert "python -m build" in text
    assert "twine check --strict dist/*" in text
    (upload,) = step_using("dist", "actions/upload-artifact")
    assert upload["with"]["path"] == "dist/"


def test_the_image_job_builds_the_containerfile_and_pushes_to_ghcr() -> None:
    job = load_workflow()["jobs"]["image"]
    assert job["permissions"]["packages"] == "write"
    builds = step_using("image", "docker/build-push-action")
    assert len(builds) == 2  # one loaded for the smoke test, one pushed for both platforms
    for build in builds:
        assert (REPO / build["with"]["context"] / build["with"]["file"]).is_file()
    assert builds[-1]["with"]["push"] is True
    assert "linux/amd64" in builds[-1]["with"]["platforms"]
    (login,) = step_using("image", "docker/login-action")
    assert login["with"]["registry"] == "ghcr.io"
    assert "--version" in "\n".join(str(s.get("run", "")) for s in job["steps"])


def test_the_pypi_job_publishes_by_trusted_publishing() -> None:
    job = load_workflow()["jobs"]["pypi"]
    assert job["permissions"] == {"id-token": "write"}
    assert job["environment"]["name"] == "pypi"
    (publish,) = step_using("pypi", "pypa/gh-action-pypi-publish")
    assert "with" not in publish or "password" not in publish["with"]  # no token
    (download,) = step_using("pypi", "actions/download-artifact")
    assert download["with"]["name"] == "dist"


def version_check(tmp_path: Path, tag: str, changelog: str) -> subprocess.CompletedProcess[str]:
    """Run the dist job's version step in a copy of what it reads, as GitHub would."""
    (step,) = [s for s in steps("dist") if s.get("id") == "version"]
    (tmp_path / "ari_proxy").mkdir()
    shutil.copy2(REPO / "ari_proxy/_version.py", tmp_path / "ari_proxy/_version.py")
    (tmp_path / "CHANGELOG.md").write_text(changelog)
    output = tmp_path / "output"
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "GITHUB_REF_NAME": tag,
        "GITHUB_OUTPUT": str(output),
    }
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", step["run"]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    result.stdout += output.read_text() if output.exists() else ""
    return result


def test_the_version_check_passes_a_released_version(tmp_path: Path) -> None:
    version = source_version()
    log = f"# Changelog\n\n## [Unreleased]\n\n## [{version}] - 2026-12-01\n\n### Added\n\n- x\n"
    result = version_check(tmp_path, f"v{version}", log)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"version={version}" in result.stdout


@pytest.mark.parametrize(
    ("tag", "section", "error"),
    [
        ("v99.0.0", True, "is not v"),  # a tag that is not the package's version
        ("v{version}", False, "CHANGELOG.md has no"),  # a version the changelog does not have
    ],
)
def test_the_version_check_refuses(tmp_path: Path, tag: str, section: bool, error: str) -> None:
    version = source_version()
    log = "# Changelog\n\n## [Unreleased]\n" + (f"\n## [{version}] - 2026-12-01\n" * section)
    result = version_check(tmp_path, tag.format(version=version), log)
    assert result.returncode == 1
    assert error in result.stdout


def test_the_containerfile() -> None:
    text = (REPO / "Containerfile").read_text()
    assert re.search(r"^ARG BASE=python:3\.\d+-slim$", text, re.MULTILINE)
    froms = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert froms == ["${BASE}", "${BASE}"]  # multi-stage, one base for both
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.MULTILINE):
        for name in source.split():
            assert (REPO / name).exists(), name
    assert re.search(r"^USER \d+:\d+$", text, re.MULTILINE)
    assert re.search(r"^HEALTHCHECK .*\n.*/readyz", text, re.MULTILINE)
    assert 'ENTRYPOINT ["/opt/ari-proxy/bin/ari-proxy"]' in text


def test_the_build_context_holds_what_the_containerfile_copies() -> None:
    ignore = [
        line
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert ignore[0] == "*"
    kept = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert kept == {*SOURCE_FILES, "ari_proxy"}


def compose_files() -> list[Path]:
    return sorted(COMPOSE.glob("*.yaml"))


def asterisk_conf(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(
        strict=False, inline_comment_prefixes=(";",), comment_prefixes=(";",), interpolation=None
    )
    parser.read_string((COMPOSE / "asterisk" / name).read_text())
    return parser


def proxy_service(compose: dict[str, Any]) -> dict[str, Any]:
    (service,) = [
        s
        for s in compose["services"].values()
        if s.get("build", {}).get("dockerfile") == "Containerfile"
    ]
    return service


def test_there_is_a_compose_file_per_bus() -> None:
    assert [p.name for p in compose_files()] == ["nats.yaml", "rabbitmq.yaml"]


@pytest.mark.parametrize("path", compose_files(), ids=lambda p: p.name)
def test_a_compose_file_sets_only_real_settings(path: Path) -> None:
    compose = yaml.safe_load(path.read_text())
    proxy = proxy_service(compose)
    env = proxy["environment"]
    assert isinstance(env, dict)
    assert set(env) <= SETTING_ENVS, set(env) - SETTING_ENVS
    assert {"ARI_APPLICATION", "ARI_USERNAME", "ARI_PASSWORD", "ARI_HTTP_URL"} <= set(env)
    # The image is built from this checkout's Containerfile when it cannot be pulled.
    assert (path.parent / proxy["build"]["context"] / "Containerfile").is_file()
    assert proxy["image"].startswith("ghcr.io/ari-proxy/ari-proxy:")
    # The bus named is a service of the file.
    bus_host = re.match(r"\w+://([^:/]+)", env["MESSAGEBUS_URL"])
    assert bus_host is not None and bus_host.group(1) in compose["services"]
    assert env["MESSAGEBUS_URL"].startswith({"nats": "nats://", "rabbitmq": "amqp://"}[path.stem])


@pytest.mark.parametrize("path", compose_files(), ids=lambda p: p.name)
def test_a_compose_file_agrees_with_its_asterisk_configuration(path: Path) -> None:
    compose = yaml.safe_load(path.read_text())
    env = proxy_service(compose)["environment"]
    asterisk = compose["services"]["asterisk"]
    for volume in asterisk["volumes"]:
        assert (path.parent / volume.split(":")[0]).is_file(), volume
    ari = asterisk_conf("ari.conf")
    assert ari[env["ARI_USERNAME"]]["type"] == "user"
    assert ari[env["ARI_USERNAME"]]["password"] == env["ARI_PASSWORD"]
    http = asterisk_conf("http.conf")["general"]
    assert env["ARI_HTTP_URL"] == f"http://asterisk:{http['bindport']}/ari"
    assert env["ARI_WEBSOCKET_URL"] == f"ws://asterisk:{http['bindport']}/ari/events"
    dialplan = (COMPOSE / "asterisk/extensions.conf").read_text()
    assert f"Stasis({env['ARI_APPLICATION']})" in dialplan


def test_the_rabbitmq_compose_file_gives_the_proxy_a_broker_user() -> None:
    compose = yaml.safe_load((COMPOSE / "rabbitmq.yaml").read_text())
    env = proxy_service(compose)["environment"]
    broker = compose["services"]["rabbitmq"]["environment"]
    assert env["MESSAGEBUS_USER"] == broker["RABBITMQ_DEFAULT_USER"] != "guest"
    assert env["MESSAGEBUS_PASSWORD"] == broker["RABBITMQ_DEFAULT_PASS"]


def test_the_install_doc_names_real_settings_and_files() -> None:
    text = (REPO / "docs/install.md").read_text()
    named = set(re.findall(r"-e ([A-Z][A-Z0-9_]*)=", text))
    named |= set(re.findall(r"\b((?:ARI|MESSAGEBUS|PROXY)_[A-Z_]+)=", text))
    assert named and named <= SETTING_ENVS, named - SETTING_ENVS
    for link in re.findall(r"\]\(([^)#]+)\)", text):
        assert (REPO / "docs" / link).exists(), link
    for path in re.findall(r"\b((?:docs|scripts|tests)/[\w./-]+\w)", text):
        assert (REPO / path).exists(), path


KEEP_A_CHANGELOG_TYPES = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def test_the_changelog_keeps_a_changelog() -> None:
    text = (REPO / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog\n")
    assert "https://keepachangelog.com/" in text
    versions = re.findall(r"^## \[([^\]]+)\](.*)$", text, re.MULTILINE)
    assert versions and versions[0] == ("Unreleased", "")
    for name, rest in versions[1:]:
        assert re.fullmatch(r"\d+\.\d+\.\d+\S*", name), name
        assert re.fullmatch(r" - \d{4}-\d{2}-\d{2}", rest), f"{name}: no date"
    for kind in re.findall(r"^### (\w+)", text, re.MULTILINE):
        assert kind in KEEP_A_CHANGELOG_TYPES, kind


def test_the_licence_is_apache_2() -> None:
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
