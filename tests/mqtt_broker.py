"""The local Mosquitto every test that publishes or subscribes uses (127.0.0.1:1883).

Missing broker: the test is skipped, except under ``CI=true``, where it must be there and its
absence fails the test (as for PostgreSQL in :mod:`tests.db_fixtures`).
"""

from __future__ import annotations

import os
import socket

import pytest

BROKER = ("127.0.0.1", 1883)
HOST, PORT = BROKER


def require_broker() -> None:
    """Skip the test when Mosquitto is not reachable (fail under CI=true, where it must be)."""
    try:
        socket.create_connection(BROKER, timeout=2).close()
    except OSError as exc:
        message = f"Mosquitto is not reachable at {HOST}:{PORT}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
