"""``stratus image verify`` finds store files that no longer match their records."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from stratus.cli.main import cli
from tests.unit.image.conftest import make_api


async def _two_images(tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    api = await make_api(tmp_path)
    good = await api.create(name="good")
    bad = await api.create(name="bad")
    await api.upload(good["id"], b"g" * 10_000)
    await api.upload(bad["id"], b"b" * 10_000)
    await api.http.aclose()
    await api.runtime.services["image"].stop()
    await api.runtime.db.dispose()
    return good, bad


def test_verify_reports_corrupted_files(tmp_path: Path) -> None:
    good, bad = asyncio.run(_two_images(tmp_path))
    path = next(p for p in (tmp_path / "images" / "images").rglob(bad["id"]))
    raw = bytearray(path.read_bytes())
    raw[42] = 0
    path.write_bytes(bytes(raw))

    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "image", "verify", "--json"],
                                obj={}, env={})
    assert result.exit_code == 1, result.output
    findings = {f["image_id"]: f for f in map(json.loads, result.output.splitlines())}
    assert findings[good["id"]]["ok"] is True
    assert findings[bad["id"]]["ok"] is False and "md5" in findings[bad["id"]]["detail"]

    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "image", "verify",
                                      good["id"]], obj={}, env={})
    assert result.exit_code == 0 and "1 image(s) checked, 0 corrupt" in result.output
