"""Unit tests are pure: no network, no AWS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_socket import disable_socket, enable_socket


@pytest.fixture(autouse=True)
def _sockets_disabled() -> Iterator[None]:
    disable_socket()
    yield
    enable_socket()
