"""The data key ring and the vault (platform/vault.py): sealing is bound to its row and column,
a damaged or moved value never opens, keys rotate, and the keyed hashes need the index key."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contactpoint.platform.vault import (
    DataKeyError,
    KeyRing,
    Vault,
    create_key_ring,
    keyed_hash64,
    read_key_ring,
    save_key_ring,
    sealed_key_id,
)

RING = KeyRing.new()


@given(st.binary(max_size=2000), st.binary(min_size=1, max_size=64))
def test_what_is_sealed_opens_with_its_context_only(plain: bytes, context: bytes) -> None:
    vault = Vault(RING)
    sealed = vault.seal(plain, context)
    assert len(plain) < 16 or plain not in sealed
    assert vault.open(sealed, context) == plain
    with pytest.raises(DataKeyError, match="does not open"):
        vault.open(sealed, context + b"x")


def test_a_damaged_or_unsealed_value_never_opens() -> None:
    vault = Vault(RING)
    sealed = bytearray(vault.seal(b"Amelia Okafor", b"row:1"))
    sealed[-1] ^= 1
    with pytest.raises(DataKeyError, match="does not open"):
        vault.open(bytes(sealed), b"row:1")
    with pytest.raises(DataKeyError, match="not sealed"):
        vault.open(b"Amelia Okafor in the clear", b"row:1")


def test_the_ring_round_trips_through_its_text_and_refuses_bad_lines() -> None:
    ring = RING.rotated().rotated(standby=True)
    assert KeyRing.parse(ring.render()) == ring
    assert ring.newest == 2 and [i for i, _ in ring.seal] == [1, 2, 3]
    for bad in ("seal 1 AAAA\n", "index zz\nseal 1 " + "A" * 44 + "\n", "hello\n", ""):
        with pytest.raises(DataKeyError):
            KeyRing.parse(bad)
    with pytest.raises(DataKeyError, match="newest"):
        ring.without(2)


def test_a_vault_meeting_a_newer_key_reads_the_ring_again(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    ring = create_key_ring(path)
    assert path.stat().st_mode & 0o777 == 0o600
    lagging = Vault(ring, reload=lambda: read_key_ring(path))
    save_key_ring(path, ring.rotated())
    current = Vault(read_key_ring(path))
    sealed = current.seal(b"value", b"ctx")
    assert sealed_key_id(sealed) == 2
    assert lagging.open(sealed, b"ctx") == b"value"
    assert lagging.newest == 2  # and it seals with the new key from now on
    stranger = Vault(KeyRing(ring.index, ring.seal))  # no way to reload: refused, not garbage
    with pytest.raises(DataKeyError, match="not in the key ring"):
        stranger.open(sealed, b"ctx")


def test_a_reload_with_another_index_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    ring = create_key_ring(path)
    vault = Vault(ring, reload=lambda: read_key_ring(path))
    save_key_ring(path, KeyRing.new())
    with pytest.raises(DataKeyError, match="index key changed"):
        vault.refresh()


def test_keyed_hashes_need_the_index_key() -> None:
    other = KeyRing.new()
    assert Vault(RING).hash64(b"dob:2015-03-14") == keyed_hash64(b"dob:2015-03-14", RING.index)
    assert Vault(RING).hash64(b"dob:2015-03-14") != Vault(other).hash64(b"dob:2015-03-14")
