"""The Go interop tests: deselected with one line where the binaries are absent, never passed;
an error where CI requires them; found through ARI_PROXY_GOREF."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ari_proxy.testing import GOREF_ENV, GoReference
from ari_proxy.testing.pytest_plugin import REQUIRE_GOREF_ENV

pytest_plugins = ["pytester"]

TESTS = """
import pytest

def test_uses_the_binaries(goref):
    assert goref.server_binary.exists()

@pytest.mark.goref
def test_marked():
    pass

def test_plain():
    pass
"""


@pytest.fixture
def runner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv(REQUIRE_GOREF_ENV, raising=False)
    monkeypatch.setenv(GOREF_ENV, str(pytester.path / "nowhere"))
    pytester.makeconftest('pytest_plugins = ["ari_proxy.testing.pytest_plugin"]')
    pytester.makepyfile(TESTS)
    return pytester


def fake_binaries(folder: Path) -> None:
    folder.mkdir(parents=True)
    for name in ("ari-proxy-go", "ari-goclient"):
        path = folder / name
        path.write_text("#!/bin/sh\necho v5.3.1\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_absent_binaries_deselect_exactly_the_go_tests(runner: pytest.Pytester) -> None:
    result = runner.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, deselected=2)
    result.stdout.fnmatch_lines(["*deselected 2 Go interop tests: the Go reference binaries*"])
    assert "goref: not found" in result.stdout.str()


def test_required_binaries_that_are_absent_fail_the_run(
    runner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(REQUIRE_GOREF_ENV, "1")
    result = runner.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{REQUIRE_GOREF_ENV} is set but the Go reference*"])


def test_found_binaries_run_the_go_tests(
    runner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_binaries(runner.path / "bin")
    monkeypatch.setenv(GOREF_ENV, str(runner.path / "bin"))
    result = runner.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_find_needs_both_executables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(GOREF_ENV, raising=False)
    assert GoReference.find(tmp_path) is None
    fake_binaries(tmp_path / "bin")
    assert GoReference.find(tmp_path / "bin") == GoReference((tmp_path / "bin").resolve())
    (tmp_path / "bin" / "ari-goclient").chmod(0o644)
    assert GoReference.find(tmp_path / "bin") is None
    monkeypatch.setenv(GOREF_ENV, os.fspath(tmp_path / "elsewhere"))
    assert GoReference.find(tmp_path / "bin") is None  # the variable wins over the default


def test_go_params_asking_for_the_binaries_are_marked() -> None:
    # A fixture that asks for `goref` by name (`getfixturevalue`) hides it from the collection
    # hook: its Go parameters must carry `pytest.mark.goref`, or a clone without the binaries
    # errors instead of deselecting them.
    tests = Path(__file__).resolve().parents[1]
    for path in tests.rglob("*.py"):
        text = path.read_text()
        if 'getfixturevalue("goref")' in text and path.name != Path(__file__).name:
            assert "marks=pytest.mark.goref" in text or "pytest.mark.goref," in text, path
