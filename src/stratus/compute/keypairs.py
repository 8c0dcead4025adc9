"""Key pairs: generate (the private key is returned once, never stored) or import."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from stratus.errors import BadRequest


def generate(key_type: str = "ssh", subject: str = "stratus") -> tuple[str, str]:
    """A new (private PEM, public) pair, RSA 2048 like Nova's. The public half is
    an OpenSSH key for ``ssh`` and a self-signed X.509 certificate (PEM, ten
    years, CN ``subject``) for ``x509``, as Nova generates for Windows guests."""
    key = rsa.generate_private_key(65537, 2048)
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    if key_type == "x509":
        return private, _self_signed(key, subject)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return private, public + " Generated-by-Stratus"


def _self_signed(key: rsa.RSAPrivateKey, subject: str) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


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
