"""Keystone's security-compliance options, each switched on in its own identity runtime."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from stratus.identity import models as m
from tests.functional.identity.inprocess import Client, identity


async def change(client: Client, user_id: str, token: str, old: str, new: str) -> int:
    r = await client.req("POST", f"/users/{user_id}/password", token=token,
                         json={"user": {"original_password": old, "password": new}})
    return int(r.status_code)


async def test_lockout_after_failures_then_unlock_after_duration(tmp_path: Path) -> None:
    async with identity(tmp_path, lockout_failure_attempts=2, lockout_duration=1) as c:
        user = await c.user("right-pw")
        assert (await c.login(user["id"], "right-pw")).status_code == 201
        for _ in range(2):
            assert (await c.login(user["id"], "wrong-pw")).status_code == 401
        locked = await c.login(user["id"], "right-pw")
        assert locked.status_code == 401
        assert "locked" not in locked.text, "the answer must not tell a lockout apart"
        await asyncio.sleep(1.2)
        assert (await c.login(user["id"], "right-pw")).status_code == 201


async def test_a_good_login_forgets_earlier_failures(tmp_path: Path) -> None:
    async with identity(tmp_path, lockout_failure_attempts=2, lockout_duration=60) as c:
        user = await c.user("right-pw")
        assert (await c.login(user["id"], "wrong-pw")).status_code == 401
        assert (await c.login(user["id"], "right-pw")).status_code == 201
        assert (await c.login(user["id"], "wrong-pw")).status_code == 401
        assert (await c.login(user["id"], "right-pw")).status_code == 201


async def test_ignore_lockout_option_exempts_a_user(tmp_path: Path) -> None:
    async with identity(tmp_path, lockout_failure_attempts=1, lockout_duration=60) as c:
        user = await c.user("right-pw", options={"ignore_lockout_failure_attempts": True})
        for _ in range(3):
            assert (await c.login(user["id"], "wrong-pw")).status_code == 401
        assert (await c.login(user["id"], "right-pw")).status_code == 201


async def test_password_history_applies_to_self_service_not_admin_reset(
        tmp_path: Path) -> None:
    async with identity(tmp_path, unique_last_password_count=2) as c:
        user = await c.user("pw-one")
        token = (await c.login(user["id"], "pw-one")).headers["X-Subject-Token"]
        assert await change(c, user["id"], token, "pw-one", "pw-two") == 204
        token = (await c.login(user["id"], "pw-two")).headers["X-Subject-Token"]
        assert await change(c, user["id"], token, "pw-two", "pw-two") == 400
        assert await change(c, user["id"], token, "pw-two", "pw-one") == 400
        assert await change(c, user["id"], token, "pw-two", "pw-three") == 204
        token = (await c.login(user["id"], "pw-three")).headers["X-Subject-Token"]
        assert await change(c, user["id"], token, "pw-three", "pw-one") == 204, \
            "only the last two passwords are remembered"
        r = await c.req("PATCH", f"/users/{user['id']}", json={"user": {"password": "pw-one"}})
        assert r.status_code == 200, "an admin reset is not held to the history"


async def test_minimum_password_age_blocks_self_service_change(tmp_path: Path) -> None:
    async with identity(tmp_path, minimum_password_age=1) as c:
        user = await c.user("pw-one")
        token = (await c.login(user["id"], "pw-one")).headers["X-Subject-Token"]
        assert await change(c, user["id"], token, "pw-one", "pw-two") == 400


async def test_password_regex_rejects_weak_passwords(tmp_path: Path) -> None:
    async with identity(tmp_path, password_regex=r"^(?=.*\d).{8,}$",
                        password_regex_description="8 characters with a digit") as c:
        r = await c.req("POST", "/users", json={"user": {"name": "weak", "password": "short"}})
        assert r.status_code == 400 and "8 characters with a digit" in r.text
        user = await c.user("long-enough-1")
        r = await c.req("PATCH", f"/users/{user['id']}", json={"user": {"password": "nodigits"}})
        assert r.status_code == 400


async def test_expired_passwords_cannot_log_in(tmp_path: Path) -> None:
    async with identity(tmp_path, password_expires_days=1) as c:
        user = await c.user("pw-one")
        assert user["password_expires_at"] is not None
        r = await c.login(user["id"], "pw-one")
        assert r.json()["token"]["user"]["password_expires_at"] == user["password_expires_at"]
        async with c.runtime.db.session() as s:
            await s.execute(update(m.users).where(m.users.c.id == user["id"]).values(
                password_created_at=datetime.now(UTC) - timedelta(days=2)))
        assert (await c.login(user["id"], "pw-one")).status_code == 401


async def test_list_limit_truncates_and_says_so(tmp_path: Path) -> None:
    async with identity(tmp_path, list_limit=2) as c:
        r = await c.req("GET", "/roles")
        body = r.json()
        assert len(body["roles"]) == 2 and body["truncated"] is True
        r = await c.req("GET", "/domains")
        assert "truncated" not in r.json()
