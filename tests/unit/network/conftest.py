from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.unit.network.harness import Net, network_service


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[Net]:
    async with network_service(tmp_path) as (service, _):
        yield service


@pytest.fixture
async def admin(net: Net) -> AsyncIterator[httpx.AsyncClient]:
    async with net.client("admin") as c:
        yield c


@pytest.fixture
async def alice(net: Net) -> AsyncIterator[httpx.AsyncClient]:
    async with net.client("alice") as c:
        yield c


@pytest.fixture
async def bob(net: Net) -> AsyncIterator[httpx.AsyncClient]:
    async with net.client("bob") as c:
        yield c
