"""The wiring other services rely on: runtime.token_validator and runtime.service_headers."""

from __future__ import annotations

from pathlib import Path

import pytest

from stratus.errors import Unauthorized
from stratus.runtime import build
from stratus.settings import load_settings


async def test_in_process_validator_and_service_headers(tmp_path: Path) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path, services="identity",
                             identity={"admin_password": "pw", "password_hash_rounds": 4})
    runtime = await build(settings)
    try:
        headers = await runtime.service_headers()
        assert headers == await runtime.service_headers(), "cached until near expiry"
        assert runtime.token_validator is not None
        context = await runtime.token_validator.validate(headers["X-Auth-Token"])
        assert context.user_name == "compute" and context.project_name == "service"
        assert {"service", "admin", "manager", "member", "reader"} <= set(context.roles)
        with pytest.raises(Unauthorized):
            await runtime.token_validator.validate("garbage")
        assert any("OS_CLIENT_CONFIG_FILE" in line for line in runtime.extras["banner"])
        assert (tmp_path / "clouds.yaml").stat().st_mode & 0o077 == 0
    finally:
        await runtime.db.dispose()
