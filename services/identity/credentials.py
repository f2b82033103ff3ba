"""Argon2id hashing of passwords and client secrets, and TOTP (RFC 6238) checks."""

from __future__ import annotations

import hashlib
import hmac
import time

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2-cffi's defaults are RFC 9106's second recommended profile (Argon2id, 64 MiB, t=3).
_hasher = PasswordHasher()
# Checked against when the account does not exist, so that an unknown username costs the same
# time as a wrong password and timing does not reveal which accounts exist.
DUMMY_HASH = _hasher.hash("contactpoint-dummy-password")
TOTP_STEP_SECONDS = 30
TOTP_DIGITS = 6


def hash_secret(secret: str) -> str:
    """An Argon2id hash of a password or client secret."""
    return _hasher.hash(secret)


def verify_secret(stored_hash: str | None, secret: str) -> bool:
    """Whether `secret` matches `stored_hash` (always does the full work, even without a hash)."""
    try:
        return _hasher.verify(stored_hash or DUMMY_HASH, secret) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


# Machine accounts' client secrets are 256 random bits, so a plain SHA-256 is as strong a store
# as Argon2 and costs microseconds: a flood of token requests cannot starve the platform's own
# services of their tokens. (Secrets stored as Argon2 before this still verify, on the slow path.)
MACHINE_PREFIX = "sha256$"
_DUMMY_MACHINE = MACHINE_PREFIX + hashlib.sha256(b"contactpoint-dummy-secret").hexdigest()


def hash_machine_secret(secret: str) -> str:
    """The stored form of a machine account's (random, 256-bit) client secret."""
    return MACHINE_PREFIX + hashlib.sha256(secret.encode()).hexdigest()


def check_machine_secret(stored_hash: str | None, secret: str) -> bool | None:
    """Whether `secret` matches a fast-hashed machine secret (an unknown account compares with a
    dummy in the same time); None when the stored hash is Argon2 and needs `verify_secret`."""
    stored = stored_hash or _DUMMY_MACHINE
    if not stored.startswith(MACHINE_PREFIX):
        return None
    matches = hmac.compare_digest(stored, hash_machine_secret(secret))
    return matches and stored_hash is not None


def new_totp_secret() -> str:
    """A fresh base32 TOTP secret (160 bits)."""
    return pyotp.random_base32(32)


def totp_uri(secret: str, *, username: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app scans."""
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_SECONDS).provisioning_uri(
        name=username, issuer_name=issuer
    )


def totp_step(secret: str, code: str, *, now: float | None = None) -> int | None:
    """The time step (±1 around now) whose code equals `code`, or None."""
    if len(code) != TOTP_DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_SECONDS)
    current = int((time.time() if now is None else now) // TOTP_STEP_SECONDS)
    found = None
    for step in (current - 1, current, current + 1):
        # Compare all three in constant time so timing does not tell which window matched.
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found
