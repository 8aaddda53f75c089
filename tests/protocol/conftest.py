"""Parametrises the protocol tests over the recorded Go vectors (see `protocol_vectors`)."""

from __future__ import annotations

import pytest
from protocol_vectors import PARAMETERS, dialog_pairs


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for name, vectors in PARAMETERS.items():
        if name in metafunc.fixturenames:
            found = vectors()
            metafunc.parametrize(name, found, ids=[v.id for v in found])
    if "dialog_pair" in metafunc.fixturenames:
        pairs = dialog_pairs()
        metafunc.parametrize("dialog_pair", pairs, ids=[d.id for _, d in pairs])
