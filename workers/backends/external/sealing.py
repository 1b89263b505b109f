"""Setup-step credentials on the runtime gateway protocol.

The control plane's own sealed secrets (``workers.secret_box``, a key from
its ``SECRET_KEY``) mean nothing to a gateway. The client therefore unseals
them and seals them again for the gateway, under a key both sides already
share: HKDF-SHA256 of the gateway's bearer token (no salt, info
``INFO``, 32 bytes) as a Fernet key. So the plaintext is never in a request
body (a proxy or a request log in between sees ciphertext), no second
secret needs distributing, and rotating the token rotates this key. The
gateway unseals them into its setup step's environment only.

No Django here: the reference gateway imports it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

INFO = b"notebook-fleet runtime gateway setup secrets v1"
SEALED_FIELDS = ("git_secret_sealed", "index_secret_sealed")


class GatewaySecretUnreadable(Exception):
    """A secret was not sealed with this gateway's token."""


def _fernet(token: str) -> Fernet:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO)
    return Fernet(base64.urlsafe_b64encode(hkdf.derive(token.encode())))


def seal_for_gateway(token: str, plaintext: str) -> str:
    """``plaintext`` sealed for the gateway with bearer ``token`` ("" = none)."""
    return _fernet(token).encrypt(plaintext.encode()).decode() if plaintext else ""


def gateway_unsealer(token: str) -> Callable[[str], str]:
    """The gateway's ``unseal`` for its backend (``LocalBackend(unseal=…)``)."""
    fernet = _fernet(token)

    def unseal(ciphertext: str) -> str:
        if not ciphertext:
            return ""
        try:
            return fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise GatewaySecretUnreadable(
                "a setup credential was not sealed with this gateway's token; "
                "the control plane and the gateway must share the same token"
            ) from exc

    return unseal


def reseal_setup(
    setup: dict, *, token: str, unseal: Callable[[str], str] | None
) -> dict:
    """``setup`` (a SetupSpec as JSON) with its sealed credentials turned
    from the control plane's ciphertext into the gateway's; without an
    ``unseal`` they are dropped (the gateway may hold its own)."""
    setup = dict(setup)
    for name in SEALED_FIELDS:
        sealed = setup.get(name, "")
        plaintext = unseal(sealed) if sealed and unseal else ""
        setup[name] = seal_for_gateway(token, plaintext)
    return setup
