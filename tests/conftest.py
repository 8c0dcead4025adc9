"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cloud import CloudProcess


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudProcess]:
    """One all-in-one Stratus (fake driver, SQLite, memory bus) for the session."""
    with CloudProcess(Path(tmp_path_factory.mktemp("cloud"))) as proc:
        yield proc
