"""Key pairs: generate (the private key is returned once, never stored) or import."""

from __future__ import annotations

import base64
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from stratus.errors import BadRequest


def generate(key_type: str = "ssh") -> tuple[str, str]:
    """A new (private PEM, public OpenSSH) pair; ssh keys are RSA 2048 like Nova's."""
    key = rsa.generate_private_key(65537, 2048)
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return private, public + " Generated-by-Stratus"


def fingerprint(public_key: str, key_type: str = "ssh") -> str:
    """The MD5 colon fingerprint Nova shows, after checking the key parses."""
    text = public_key.strip()
    if key_type == "x509":
        try:
            cert = x509.load_pem_x509_certificate(text.encode())
        except ValueError as exc:
            raise BadRequest(f"Keypair data is invalid: not an X.509 certificate ({exc})")
        digest = cert.fingerprint(hashes.SHA1())
        return ":".join(f"{b:02x}" for b in digest)
    try:
        serialization.load_ssh_public_key(text.encode())
        blob = base64.b64decode(text.split()[1])
    except (ValueError, IndexError, TypeError) as exc:
        raise BadRequest(f"Keypair data is invalid: failed to parse the public key ({exc})")
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))
