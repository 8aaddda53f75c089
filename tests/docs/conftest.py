"""The built documentation site, shared by the tests that check it."""

from __future__ import annotations

import pytest
from docsite import Build, build


@pytest.fixture(scope="session")
def built_site() -> Build:
    """The site as `scripts/docs` builds it from this checkout (once per session)."""
    return build()
