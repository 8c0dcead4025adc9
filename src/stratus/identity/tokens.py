"""Fernet tokens: the key repository and the token payload.

The key repository is Keystone's layout: files named by integers in one
directory. ``0`` is the *staged* key (next to become primary), the highest
number is the *primary* (encrypts new tokens), the rest are *secondary*
(still decrypt). Rotation promotes the staged key to primary, writes a new
staged key and drops the oldest secondaries beyond ``max_active_keys``. Since
every process already knows the staged key before it becomes primary, tokens
issued by any process decrypt in every other one across a rotation.

A token is nothing but its encrypted payload: who, how, what scope, until
when. Tokens are never stored.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

PAYLOAD_VERSION = 1
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class KeyRepositoryError(Exception):
    """The key repository is missing, unreadable or empty."""


def format_time(value: datetime) -> str:
    """Keystone's wire format: six-digit microseconds and a ``Z``."""
    return value.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def new_audit_id() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")


class KeyRepository:
    """Fernet keys in a directory; reloads itself when another process rotates."""

    def __init__(self, path: Path, max_active_keys: int = 3) -> None:
        self.path = path
        self.max_active_keys = max(2, max_active_keys)
        self._fernet: MultiFernet | None = None
        self._primary: Fernet | None = None
        self._stamp: tuple[float, tuple[str, ...]] | None = None
        self._checked = 0.0

    def _indexes(self) -> list[int]:
        if not self.path.is_dir():
            return []
        return sorted(int(p.name) for p in self.path.iterdir() if p.name.isdigit())

    def _write_key(self, index: int) -> None:
        tmp = self.path / f".{index}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key())
        os.replace(tmp, self.path / str(index))

    def ensure(self) -> bool:
        """Create the repository with a staged and a primary key if it has none."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self._indexes():
            return False
        self._write_key(0)
        self.rotate()
        return True

    def rotate(self) -> int:
        """Staged becomes primary, a new staged key appears; returns the new primary index."""
        indexes = self._indexes()
        if 0 not in indexes:
            self._write_key(0)
            indexes = self._indexes()
        new_primary = max(indexes) + 1
        os.replace(self.path / "0", self.path / str(new_primary))
        self._write_key(0)
        keep = self.max_active_keys - 2  # beyond the primary and the staged key
        secondaries = sorted(i for i in self._indexes() if i not in (0, new_primary))
        for old in secondaries[:max(0, len(secondaries) - keep)]:
            (self.path / str(old)).unlink(missing_ok=True)
        self._fernet = None  # reload on next use
        return new_primary

    def describe(self) -> dict[str, object]:
        indexes = self._indexes()
        primary = max(indexes) if indexes else None
        return {"path": str(self.path), "primary": primary, "staged": 0 if 0 in indexes else None,
                "secondary": [i for i in indexes if i not in (0, primary)]}

    def _load(self) -> None:
        indexes = self._indexes()
        if not indexes or max(indexes) == 0:
            raise KeyRepositoryError(
                f"no fernet keys in {self.path}; run `stratus identity bootstrap`")
        # Primary first (it encrypts), then the newest secondaries, the staged key last.
        order = [max(indexes)] + sorted((i for i in indexes if i not in (0, max(indexes))),
                                        reverse=True) + ([0] if 0 in indexes else [])
        try:
            keys = [Fernet((self.path / str(i)).read_bytes().strip()) for i in order]
        except (OSError, ValueError) as exc:
            raise KeyRepositoryError(f"cannot read fernet keys in {self.path}: {exc}") from exc
        self._fernet = MultiFernet(keys)
        self._primary = keys[0]
        self._stamp = self._current_stamp()

    def _current_stamp(self) -> tuple[float, tuple[str, ...]]:
        try:
            return (self.path.stat().st_mtime, tuple(sorted(os.listdir(self.path))))
        except OSError:
            return (0.0, ())

    def _fresh(self) -> MultiFernet:
        now = time.monotonic()
        if self._fernet is None or (now - self._checked > 1.0
                                    and self._current_stamp() != self._stamp):
            self._load()
        self._checked = now
        assert self._fernet is not None
        return self._fernet

    def encrypt(self, data: bytes) -> str:
        self._fresh()
        assert self._primary is not None
        return self._primary.encrypt(data).decode("ascii").rstrip("=")

    def decrypt(self, token: str) -> bytes:
        """The payload, or :class:`InvalidToken` for a token none of our keys made."""
        padded = token + "=" * (-len(token) % 4)
        try:
            return self._fresh().decrypt(padded.encode("ascii"))
        except InvalidToken:
            if self._stamp is not None and self._current_stamp() != self._stamp:
                self._load()  # rotated under us: try the new set once
                assert self._fernet is not None
                return self._fernet.decrypt(padded.encode("ascii"))
            raise
        except (UnicodeEncodeError, ValueError):
            raise InvalidToken() from None


# Scope kinds in the payload.
PROJECT, DOMAIN, SYSTEM = "p", "d", "s"


@dataclass(frozen=True)
class TokenPayload:
    """Everything a token says; the rest (names, roles, catalog) is looked up."""

    user_id: str
    methods: tuple[str, ...]
    expires_at: datetime
    issued_at: datetime
    audit_ids: tuple[str, ...]
    scope_kind: str | None = None  # PROJECT, DOMAIN, SYSTEM or None (unscoped)
    scope_id: str | None = None  # project id, domain id, or "all"
    app_cred_id: str | None = None
    trust_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def project_id(self) -> str | None:
        return self.scope_id if self.scope_kind == PROJECT else None

    @property
    def domain_id(self) -> str | None:
        return self.scope_id if self.scope_kind == DOMAIN else None

    @property
    def system(self) -> str | None:
        return self.scope_id if self.scope_kind == SYSTEM else None


def _micros(value: datetime) -> int:
    return int(value.timestamp() * 1_000_000)


def _from_micros(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1_000_000, UTC)


def encode(payload: TokenPayload) -> bytes:
    items: list[object] = [
        PAYLOAD_VERSION, payload.user_id, list(payload.methods), _micros(payload.expires_at),
        _micros(payload.issued_at), list(payload.audit_ids), payload.scope_kind,
        payload.scope_id, payload.app_cred_id, payload.trust_id,
    ]
    while items and items[-1] is None:
        items.pop()
    return json.dumps(items, separators=(",", ":")).encode()


def decode(data: bytes) -> TokenPayload:
    """Raises ValueError for anything that is not a payload we wrote."""
    try:
        items = json.loads(data)
    except ValueError as exc:
        raise ValueError(f"token payload is not JSON: {exc}") from None
    if not isinstance(items, list) or len(items) < 6 or items[0] != PAYLOAD_VERSION:
        raise ValueError("unknown token payload version")
    items = items + [None] * (10 - len(items))
    try:
        return TokenPayload(
            user_id=str(items[1]), methods=tuple(items[2]), expires_at=_from_micros(items[3]),
            issued_at=_from_micros(items[4]), audit_ids=tuple(items[5]), scope_kind=items[6],
            scope_id=items[7], app_cred_id=items[8], trust_id=items[9],
        )
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"malformed token payload: {exc}") from None


class TokenCodec:
    """Payload ⇄ token string with the key repository."""

    def __init__(self, keys: KeyRepository) -> None:
        self.keys = keys

    def issue(self, payload: TokenPayload) -> str:
        return self.keys.encrypt(encode(payload))

    def read(self, token: str) -> TokenPayload:
        """The payload of a token we made; ValueError for anything else (expiry not checked)."""
        if not token or len(token) > 1024:
            raise ValueError("not a token")
        try:
            return decode(self.keys.decrypt(token))
        except InvalidToken:
            raise ValueError("token was not made with any of our keys") from None
