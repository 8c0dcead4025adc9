"""Password and secret hashing (bcrypt), off the event loop.

bcrypt releases the GIL, so checks run in worker threads in parallel while
the loop keeps serving cheap requests (token validation) meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets

import bcrypt

_BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

# bcrypt only reads 72 bytes; longer secrets are pre-hashed so that every
# byte counts (the prefix marks it, so plain hashes keep verifying).
_PREHASH = "$sha256$"


def _material(secret: str) -> bytes:
    raw = secret.encode("utf-8")
    if len(raw) <= 72:
        return raw
    return base64.b64encode(hashlib.sha256(raw).digest())


class Hasher:
    def __init__(self, rounds: int = 12) -> None:
        self.rounds = rounds
        # A well-formed hash nobody knows the secret of, for checks against users
        # who do not exist: the caller spends the same time whether or not the
        # user is real. (Made up, not computed: no hashing cost at start-up.)
        digest = "".join(secrets.choice(_BCRYPT_ALPHABET) for _ in range(31))
        self._dummy = bcrypt.gensalt(rounds).decode() + digest

    def hash_sync(self, secret: str) -> str:
        raw = secret.encode("utf-8")
        hashed = bcrypt.hashpw(_material(secret), bcrypt.gensalt(self.rounds)).decode()
        return (_PREHASH + hashed) if len(raw) > 72 else hashed

    def verify_sync(self, secret: str, hashed: str | None) -> bool:
        target = hashed or self._dummy
        material = _material(secret)
        if target.startswith(_PREHASH):
            target = target[len(_PREHASH):]
        elif len(secret.encode("utf-8")) > 72:
            material = secret.encode("utf-8")[:72]
        try:
            ok = bcrypt.checkpw(material, target.encode())
        except ValueError:
            return False
        return ok and hashed is not None

    async def hash(self, secret: str) -> str:
        return await asyncio.to_thread(self.hash_sync, secret)

    async def verify(self, secret: str, hashed: str | None) -> bool:
        """Whether ``secret`` matches; ``hashed=None`` costs the same and answers False."""
        return await asyncio.to_thread(self.verify_sync, secret, hashed)
