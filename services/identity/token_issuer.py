"""Identity's access tokens: Ed25519-signed JWTs naming the account, its organisation and roles,
short-lived, with a unique id (for revocation) and the issue time to the millisecond (a
suspension ends exactly the tokens issued before it)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contactpoint.platform.auth import ALGORITHM, ISSUER
from contactpoint.platform.keys import key_id, raw_public_key
from services.identity.repository import Account
from services.identity.signing_keys import KeyRing


@dataclass(frozen=True)
class IssuedToken:
    """A signed access token and when it expires."""

    token: str
    expire_time: datetime
    organisation: str
    roles: tuple[str, ...]


class TokenIssuer:
    """Signs access tokens with identity's current Ed25519 key (a fixed key, or a `KeyRing` that
    rotates)."""

    def __init__(self, key: Ed25519PrivateKey | KeyRing, ttl_seconds: int) -> None:
        self._ring = key if isinstance(key, KeyRing) else None
        self._fixed = key if isinstance(key, Ed25519PrivateKey) else None
        self._ttl = timedelta(seconds=ttl_seconds)

    @property
    def _key(self) -> Ed25519PrivateKey:
        if self._ring is not None:
            return self._ring.current
        assert self._fixed is not None
        return self._fixed

    @property
    def key_id(self) -> str:
        """The `kid` of the key that signs now."""
        return key_id(self._key)

    @property
    def public_key(self) -> bytes:
        """The raw public key of the key that signs now."""
        return raw_public_key(self._key)

    def public_keys(self) -> dict[str, bytes]:
        """Every key verifiers should accept: the current one and retired ones still in use."""
        if self._ring is not None:
            self._ring.refresh()
            return self._ring.public_keys()
        return {self.key_id: self.public_key}

    def retired_at_ms(self) -> dict[str, int]:
        """When each published retired key was retired, Unix milliseconds (after `public_keys`)."""
        if self._ring is None:
            return {}
        return {kid: int(at * 1000) for kid, at in self._ring.retired_at().items()}

    @property
    def ttl_seconds(self) -> int:
        """How long a token lives."""
        return int(self._ttl.total_seconds())

    def issue(self, account: Account, *, now: datetime) -> IssuedToken:
        """A token for `account`."""
        exp = int(now.timestamp() + self._ttl.total_seconds() + 0.5)
        roles = account.roles
        claims = {
            "iss": ISSUER,
            "sub": account.id,
            "name": account.name,
            "org": account.organisation,
            "roles": list(roles),
            "kind": account.kind,
            "jti": uuid.uuid4().hex,
            "iat": int(now.timestamp()),
            # To the millisecond: a suspension ends exactly the tokens issued before it.
            "iat_ms": int(now.timestamp() * 1000),
            # To the nearest second (a JWT's times are whole seconds): cut down, a token lived
            # up to a second less than its lifetime, and one of 1 s could expire at once (found by
            # review). Now it lives its lifetime give or take half a second.
            "exp": exp,
        }
        token = jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.key_id})
        return IssuedToken(token, datetime.fromtimestamp(exp, UTC), account.organisation, roles)
