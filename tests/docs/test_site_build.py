"""`scripts/docs` builds the site without a warning, and a warning (a broken link) fails it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from docsite import ROOT, Build

pytestmark = pytest.mark.integration


def test_scripts_docs_builds_without_warnings(built_site: Build) -> None:
    assert built_site.returncode == 0, built_site.output
    assert "WARNING" not in built_site.output
    assert re.search(r"scripts/docs: built site/ \(\d+ pages\), 0 warnings", built_site.output)
    for page in ("index.html", "tutorial/index.html", "migration/index.html"):
        assert (built_site.site / page).is_file(), page
    for module in ("ari_proxy", "resources", "ari", "client", "testing", "exceptions"):
        assert (built_site.site / "reference" / module / "index.html").is_file(), module


def test_links_to_repository_files_point_at_the_repository(built_site: Build) -> None:
    """docs/schemas.md links ../schemas/*.json, outside docs/: on the site, the repository's."""
    page = (built_site.site / "schemas/index.html").read_text()
    assert (
        'href="https://github.com/ari-proxy/ari-proxy/blob/main/schemas/request.schema.json"'
        in page
    )
    assert (ROOT / "schemas/request.schema.json").is_file()


def test_the_reference_shows_what_calls_raise(built_site: Build) -> None:
    page = (built_site.site / "reference/ari_proxy/index.html").read_text()
    # Client.request's docstring: "Raises: ClientClosedError: the client was closed."
    assert "ClientClosedError" in page and "the client was closed" in page
    assert "Raises" in page


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    subprocess.run(["cp", "-r", str(ROOT / "docs"), str(docs)], check=True)
    with (docs / "tutorial.md").open("a") as page:
        page.write("\nSee [the missing page](no-such-page.md).\n")
    config = (ROOT / "mkdocs.yml").read_text()
    config = config.replace("docs_dir: docs", f"docs_dir: {docs}")
    config = config.replace("site_dir: site", f"site_dir: {tmp_path / 'site'}")
    config = config.replace("paths: [.]", f"paths: [{ROOT}]")
    config = config.replace("- scripts/mkdocs_hooks.py", f"- {ROOT / 'scripts/mkdocs_hooks.py'}")
    (tmp_path / "mkdocs.yml").write_text(config)
    run = subprocess.run(
        [str(Path(sys.executable).parent / "mkdocs"), "build", "--strict"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode != 0
    assert "no-such-page.md" in run.stderr, run.stderr
