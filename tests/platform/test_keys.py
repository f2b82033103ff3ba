"""Signing keys: created once, private, and the same key for every replica that races to create it."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from contactpoint.platform.keys import load_or_create_signing_key, raw_public_key


def test_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing.pem"
    first = raw_public_key(load_or_create_signing_key(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert raw_public_key(load_or_create_signing_key(path)) == first


def test_concurrent_creators_all_get_one_key(tmp_path: Path) -> None:
    path = tmp_path / "signing.pem"
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: raw_public_key(load_or_create_signing_key(path)), range(16)))
    assert len(keys) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["signing.pem"]  # no temporary files left
