"""A token's lifetime in whole seconds (a JWT's `exp`) is its configured lifetime to the nearest
second: cut down, a token lived up to a second less, and one of 1 s could expire at once (found by
review of CONTRACT §5: "access tokens live CONTACTPOINT_IDENTITY_TOKEN_TTL_SECONDS")."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.identity.repository import Account
from services.identity.token_issuer import TokenIssuer


def _account() -> Account:
    values: dict[str, object] = {f.name: None for f in fields(Account)}
    values |= {
        "id": "a1",
        "kind": "person",
        "name": "pat",
        "organisation": "E08000003",
        "roles": ("practitioner",),
        "totp_last_step": 0,
        "failed_logins": 0,
        "suspended": False,
    }
    return Account(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("ttl", [1, 2, 900])
@pytest.mark.parametrize("fraction", [0.0, 0.2, 0.49, 0.51, 0.8, 0.999])
def test_a_token_lives_its_lifetime_to_the_nearest_second(ttl: int, fraction: float) -> None:
    now = datetime(2026, 12, 6, 10, 0, 0, tzinfo=UTC) + timedelta(seconds=fraction)
    issued = TokenIssuer(Ed25519PrivateKey.generate(), ttl_seconds=ttl).issue(_account(), now=now)
    claims = jwt.decode(issued.token, options={"verify_signature": False})
    lives = claims["exp"] - now.timestamp()
    assert ttl - 0.5 < lives <= ttl + 0.5, lives
    assert issued.expire_time == datetime.fromtimestamp(claims["exp"], UTC)
