"""TOTP secrets sealed at rest: AES-256-GCM under a data key kept outside the database.

A stored value is `v1:` + base64(nonce ‖ ciphertext ‖ tag); the account id is bound in as
associated data, so a sealed secret copied onto another account does not open. A stolen
`identity.db` alone yields no second factor. The key file is created (mode 0600) on first start;
replicas of identity share it, as they share the signing key.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from contactpoint.platform.keys import load_or_create_secret_file

PREFIX = "v1:"
_NONCE = 12
_AAD = b"contactpoint-identity-totp:"


class SealingError(Exception):
    """A sealed value does not open with this key (wrong key file, or the value was altered)."""


def _new_key_text() -> bytes:
    return base64.b64encode(secrets.token_bytes(32)) + b"\n"


class Sealer:
    """Seals and opens TOTP secrets with one AES-256-GCM key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the TOTP data key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def from_file(cls, path: Path) -> Sealer:
        """The key in `path` (base64 text), created when missing."""
        return cls(base64.b64decode(load_or_create_secret_file(path, _new_key_text).strip()))

    def seal(self, secret: str, *, account_id: str) -> str:
        """The stored form of `secret` for `account_id`."""
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, secret.encode(), _AAD + account_id.encode())
        return PREFIX + base64.b64encode(nonce + sealed).decode()

    def open(self, stored: str, *, account_id: str) -> str:
        """The secret in `stored` (a value from before sealing existed is returned as it is)."""
        if not is_sealed(stored):
            return stored
        raw = base64.b64decode(stored[len(PREFIX) :])
        try:
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], _AAD + account_id.encode()).decode()
        except InvalidTag as exc:
            raise SealingError("a TOTP secret does not open with this key") from exc


def is_sealed(stored: str) -> bool:
    """Whether a stored TOTP secret is sealed."""
    return stored.startswith(PREFIX)
