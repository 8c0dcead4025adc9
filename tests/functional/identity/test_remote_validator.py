"""What a process without identity uses: service tokens and the caching remote validator."""

from __future__ import annotations

import pytest

from stratus.errors import Unauthorized
from stratus.identity.client import RemoteValidator, fetch_service_token
from stratus.settings import load_settings
from tests.functional.identity.conftest import Keystone, Tenant
from tests.support.cloud import CloudProcess


async def test_remote_validator_builds_contexts_and_rejects_bad_tokens(
        cloud: CloudProcess, keystone: Keystone, tenants: tuple[Tenant, Tenant]) -> None:
    settings = load_settings(environ=cloud.env)
    calls = []

    async def service_headers() -> dict[str, str]:
        calls.append(1)
        token, _ = await fetch_service_token(settings, "image")
        return {"X-Auth-Token": token}

    validator = RemoteValidator(settings, service_headers)
    tenant = tenants[0]
    context = await validator.validate(tenant.reader_token)
    assert context.project_id == tenant.project["id"]
    assert context.user_id == tenant.reader["id"]
    assert set(context.roles) == {"reader"}
    again = await validator.validate(tenant.reader_token)
    assert again is context and len(calls) == 1, "the second validation is cached"
    with pytest.raises(Unauthorized):
        await validator.validate("not-a-token")
    admin = await validator.validate(keystone.admin_token)
    assert {"admin", "manager", "member", "reader"} <= set(admin.roles)
