"""Fernet tokens: payload format, key rotation, tampering."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stratus.identity.tokens import (
    PROJECT,
    KeyRepository,
    TokenCodec,
    TokenPayload,
    format_time,
    new_audit_id,
    parse_time,
)


def payload(**kw: object) -> TokenPayload:
    now = datetime.now(UTC)
    base = dict(user_id="u" * 32, methods=("password",), expires_at=now + timedelta(hours=1),
                issued_at=now, audit_ids=(new_audit_id(),), scope_kind=PROJECT,
                scope_id="p" * 32)
    base.update(kw)
    return TokenPayload(**base)  # type: ignore[arg-type]


@pytest.fixture
def repo(tmp_path: Path) -> KeyRepository:
    keys = KeyRepository(tmp_path / "keys", max_active_keys=3)
    keys.ensure()
    return keys


def test_expires_at_has_six_digit_microseconds_and_z() -> None:
    text = format_time(datetime(2030, 1, 2, 3, 4, 5, 60, tzinfo=UTC))
    assert text == "2030-01-02T03:04:05.000060Z"
    assert parse_time(text) == datetime(2030, 1, 2, 3, 4, 5, 60, tzinfo=UTC)


def test_new_repository_has_staged_and_primary_keys_private(repo: KeyRepository) -> None:
    assert repo.describe()["primary"] == 1 and repo.describe()["staged"] == 0
    assert (repo.path / "1").stat().st_mode & 0o077 == 0
    assert not repo.ensure()  # idempotent


def test_payload_round_trips_with_microsecond_times(repo: KeyRepository) -> None:
    codec = TokenCodec(repo)
    original = payload(app_cred_id="a" * 32)
    token = codec.issue(original)
    assert "=" not in token and len(token) < 400
    back = codec.read(token)
    assert back.user_id == original.user_id and back.scope_id == original.scope_id
    assert back.methods == original.methods and back.audit_ids == original.audit_ids
    assert abs((back.issued_at - original.issued_at).total_seconds()) < 1e-5
    assert back.app_cred_id == "a" * 32


def test_tokens_survive_one_rotation_but_not_beyond_max_keys(repo: KeyRepository) -> None:
    codec = TokenCodec(repo)
    token = codec.issue(payload())
    repo.rotate()
    assert codec.read(token).user_id == "u" * 32
    repo.rotate()  # the key that made the token is now beyond max_active_keys
    with pytest.raises(ValueError):
        codec.read(token)


def test_staged_key_lets_a_not_yet_rotated_process_read_new_tokens(
        repo: KeyRepository, tmp_path: Path) -> None:
    other_dir = tmp_path / "copy"
    shutil.copytree(repo.path, other_dir)
    other = KeyRepository(other_dir)
    repo.rotate()  # this host rotated; the other still has the old set
    token = TokenCodec(repo).issue(payload())
    assert TokenCodec(other).read(token).user_id == "u" * 32


def test_rotation_by_another_process_is_picked_up(repo: KeyRepository) -> None:
    codec = TokenCodec(repo)
    codec.issue(payload())  # loads the keys
    outside = KeyRepository(repo.path, max_active_keys=3)
    outside.rotate()
    outside.rotate()
    token = TokenCodec(outside).issue(payload())
    assert codec.read(token).user_id == "u" * 32


@pytest.mark.parametrize("garbage", ["", "x", "gAAAAA", "a" * 2000, "é" * 10,
                                     "gAAAAABnotreallyafernettoken0000000000000000000000"])
def test_garbage_is_rejected(repo: KeyRepository, garbage: str) -> None:
    with pytest.raises(ValueError):
        TokenCodec(repo).read(garbage)


def test_tampered_token_is_rejected(repo: KeyRepository) -> None:
    token = TokenCodec(repo).issue(payload())
    flipped = token[:40] + ("A" if token[40] != "A" else "B") + token[41:]
    with pytest.raises(ValueError):
        TokenCodec(repo).read(flipped)


def test_token_of_another_cloud_is_rejected(repo: KeyRepository, tmp_path: Path) -> None:
    foreign = KeyRepository(tmp_path / "foreign")
    foreign.ensure()
    with pytest.raises(ValueError):
        TokenCodec(repo).read(TokenCodec(foreign).issue(payload()))
