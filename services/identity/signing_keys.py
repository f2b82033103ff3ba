"""Identity's token-signing keys, rotated by `kid`.

The current key (`signing_key_file`) signs every new token. `rotate` retires it beside the new one
(`<name>.retired-<kid>.pem`, its modification time the moment of retirement); a retired key is
still published to verifiers until every token it signed has expired (the token lifetime plus a
minute), so rotating logs nobody out; verifiers refuse its tokens that claim to be issued after its
retirement, and every token of a retired key once they must all have expired, so a leaked key,
rotated, signs nothing that works for longer than a token lives. Replicas of identity share the
key folder and pick a rotation up on their next verification-state answer (a `stat` of the
current key file).
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contactpoint.platform.keys import key_id, load_or_create_signing_key, raw_public_key

# Retired keys stay published this long beyond the token lifetime (clock skew between replicas).
GRACE_SECONDS = 60.0
# A new key is published this long before it signs, so that every verifier (polling twice a
# second) knows it before the first token it signs arrives; until then the retired key signs.
PUBLISH_LEAD_SECONDS = 3.0


@dataclass(frozen=True)
class _Loaded:
    stamp: tuple[int, int]
    current: Ed25519PrivateKey
    published: dict[str, bytes]
    # When the current key was put in place, and the key it replaced (if it still verifies).
    current_since: float
    previous: Ed25519PrivateKey | None
    # When each published retired key was retired (Unix seconds).
    retired_at: dict[str, float]


def _retired_glob(path: Path) -> str:
    return f"{path.stem}.retired-*{path.suffix}"


class KeyRing:
    """The current signing key and the retired keys that still verify."""

    def __init__(self, path: Path, *, ttl_seconds: float) -> None:
        self._path = path
        self._keep = ttl_seconds + GRACE_SECONDS
        load_or_create_signing_key(path)
        self._loaded = self._load()

    def _stamp(self) -> tuple[int, int]:
        st = self._path.stat()
        return (st.st_ino, st.st_mtime_ns)

    def _load(self) -> _Loaded:
        stamp = self._stamp()
        current = load_or_create_signing_key(self._path)
        current_since = self._path.stat().st_mtime
        published = {key_id(current): raw_public_key(current)}
        cutoff = time.time() - self._keep
        previous: tuple[float, Ed25519PrivateKey] | None = None
        retirements: dict[str, float] = {}
        for retired in sorted(self._path.parent.glob(_retired_glob(self._path))):
            retired_at = retired.stat().st_mtime
            if retired_at >= cutoff:
                key = load_or_create_signing_key(retired)
                published[key_id(key)] = raw_public_key(key)
                retirements[key_id(key)] = retired_at
                if previous is None or retired_at > previous[0]:
                    previous = (retired_at, key)
        return _Loaded(
            stamp, current, published, current_since, previous[1] if previous else None, retirements
        )

    def refresh(self) -> None:
        """Pick up a rotation (cheap when nothing changed), and let expired retired keys go."""
        if self._stamp() != self._loaded.stamp or len(self._loaded.published) > 1:
            self._loaded = self._load()

    @property
    def current(self) -> Ed25519PrivateKey:
        """The key that signs new tokens: the newest, once it has been published for
        `PUBLISH_LEAD_SECONDS`; until then the key it replaced."""
        if self._stamp() != self._loaded.stamp:
            self._loaded = self._load()
        loaded = self._loaded
        if loaded.previous is not None and time.time() - loaded.current_since < PUBLISH_LEAD_SECONDS:
            return loaded.previous
        return loaded.current

    def public_keys(self) -> dict[str, bytes]:
        """Every key id that verifiers should accept, with its raw public key."""
        return dict(self._loaded.published)

    def retired_at(self) -> dict[str, float]:
        """When each published retired key was retired (Unix seconds)."""
        return dict(self._loaded.retired_at)


def rotate(path: Path) -> tuple[str, str]:
    """Retire the current key and put a new one in its place; returns (old kid, new kid). The
    current key file exists throughout (a hard link keeps the old one, then an atomic replace)."""
    old = load_or_create_signing_key(path)
    old_kid = key_id(old)
    retired = path.with_name(f"{path.stem}.retired-{old_kid}{path.suffix}")
    if not retired.exists():
        os.link(path, retired)
    os.utime(retired)  # its retirement moment
    new = Ed25519PrivateKey.generate()
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(
            new.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    return old_kid, key_id(new)
