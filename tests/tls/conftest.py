"""What the TLS tests share: a CA made for the run, with the certificates it signed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ari_proxy.testing import Certificates


@pytest.fixture(scope="session")
def certs() -> Iterator[Certificates]:
    with Certificates() as made:
        yield made
