"""The local server has moto build its Lambda request handling before the first dispatch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from orchestrator_local.server import warm_moto


@pytest.fixture
def moto_server() -> Iterator[tuple[Any, str]]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield server, f"http://{host}:{port}"
    finally:
        server.stop()


def _services_with_an_app(server: Any) -> set[str]:
    dispatcher = server._server.app  # moto's DomainDispatcherApplication: one Flask app per service
    return set(dispatcher.app_instances)


def test_warming_builds_the_lambda_app_that_the_workflows_first_task_would_build(
    moto_server: tuple[Any, str],
) -> None:
    server, endpoint = moto_server
    assert "awslambda" not in _services_with_an_app(server)
    warm_moto(endpoint)
    assert "awslambda" in _services_with_an_app(server)
