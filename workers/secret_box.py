"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``)
with a key derived from ``SECRET_KEY`` by HKDF, so no second key needs
managing and the derived key is good for this purpose only.

``seal`` and ``unseal`` are the only way a project secret is written or read;
a ciphertext made under another ``SECRET_KEY`` raises ``SecretUnreadable``.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_INFO = b"notebook-fleet project secrets v1"


class SecretUnreadable(Exception):
    """The ciphertext was not made with this installation's SECRET_KEY."""


def _fernet() -> Fernet:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO)
    key = hkdf.derive(settings.SECRET_KEY.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(plaintext: str) -> str:
    """The ciphertext of ``plaintext`` ("" stays "": no secret)."""
    return _fernet().encrypt(plaintext.encode()).decode() if plaintext else ""


def unseal(ciphertext: str) -> str:
    if not ciphertext:
        return ""
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable(
            "a project secret cannot be decrypted (was SECRET_KEY changed?); "
            "a project manager must enter it again"
        ) from exc
