"""Fixtures for the client-library unit tests: an in-memory fake apiserver and clients bound to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kubelite.client import Client
from tests.unit.client.fake_apiserver import FakeApiServer


@pytest.fixture
async def fake() -> AsyncIterator[FakeApiServer]:
    server = FakeApiServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def client(fake: FakeApiServer) -> AsyncIterator[Client]:
    c = Client.from_url(fake.url)
    try:
        yield c
    finally:
        await c.close()
