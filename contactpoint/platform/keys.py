"""Secret key files (created with mode 0600 on first start): Ed25519 signing keys in PEM, and
symmetric data keys."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def load_or_create_secret_file(path: Path, make: Callable[[], bytes]) -> bytes:
    """The bytes in `path`, first writing `make()` there (mode 0600, folder 0700) when it does
    not exist yet."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Write a private temporary file, then link it into place: the link fails if another
        # replica got there first, and no reader ever sees a half-written key.
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(make())
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first; use theirs
        finally:
            tmp.unlink()
    return path.read_bytes()


def write_secret_file(path: Path, data: bytes) -> None:
    """Replace `path` atomically with `data` (mode 0600): a reader sees the old or the new file,
    never half of one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        # The rename itself survives a crash only once the folder is on disk too.
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    finally:
        tmp.unlink(missing_ok=True)


def _new_signing_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """The key in `path`, creating it (and its folder) when it does not exist yet."""
    key = serialization.load_pem_private_key(
        load_or_create_secret_file(path, _new_signing_pem), password=None
    )
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key


def raw_public_key(key: Ed25519PrivateKey) -> bytes:
    """The raw 32-byte public key."""
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PrivateKey) -> str:
    """A short stable id for the key (hex of the first 8 bytes of SHA-256 of the public key)."""
    return hashlib.sha256(raw_public_key(key)).hexdigest()[:16]
