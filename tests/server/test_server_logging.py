"""The server's log configuration: JSON lines, and no error-level line for what it handles."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from ari_proxy.server._logging import configure_logging


@pytest.fixture
def configured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("aiormq.connection").level)
    stream = io.StringIO()
    configure_logging(stream=stream)
    try:
        yield stream
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        logging.getLogger("aiormq.connection").setLevel(saved[2])


def test_a_broker_restart_writes_no_error_line(configured: io.StringIO) -> None:
    # What aiormq says when RabbitMQ restarts, and what our link says about the same moment.
    logging.getLogger("aiormq.connection").error("Unexpected connection close from remote")
    logging.getLogger("ari_proxy.bus._rabbitmq_link").warning("lost the connection to RabbitMQ")

    lines = [json.loads(line) for line in configured.getvalue().splitlines()]
    assert [(line["level"], line["msg"]) for line in lines] == [
        ("warning", "lost the connection to RabbitMQ")
    ]
