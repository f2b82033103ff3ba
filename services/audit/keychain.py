"""Which key signed which of the log's heads: the log's signing key changes only by a rotation
entry in the log itself (`contactpoint audit rotate-key`). The key before a rotation signs every
head up to the one that first covers the rotation entry; the key it names signs every head after.
`audit verify` follows this chain from the first key to the log's current key (the pinned one),
so a head signed by a retired key after its rotation fails, as does a chain that does not end at
the pinned key. Each rotation is endorsed by its new key over the tree it takes over (size and
root), so no one without that key can write one, nor rewrite the entries before it."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection

from contactpoint.platform.checkpoints import ROTATION_ACTOR, KeyRotation, parse_rotation
from services.audit import repository


class BrokenChain(Exception):
    """The rotation entries do not lead from one key to the next and on to the log's key;
    `index` is the entry to blame, when there is one."""

    def __init__(self, message: str, index: int | None) -> None:
        super().__init__(message)
        self.message, self.index = message, index


@dataclass
class KeyChain:
    """The log's keys in order, and the head size after which each next one signs."""

    keys: list[bytes]
    boundaries: list[int]  # heads larger than boundaries[i] are signed by keys[i + 1]
    # (size, root) of the tree each rotation's new key endorsed: the walk checks the log has it.
    anchors: list[tuple[int, bytes]] = field(default_factory=list)
    _public: dict[bytes, Ed25519PublicKey] = field(default_factory=dict)

    def key_for(self, size: int) -> Ed25519PublicKey:
        """The key that must have signed the head of `size` entries."""
        raw = self.keys[bisect.bisect_left(self.boundaries, size)]
        if raw not in self._public:
            self._public[raw] = Ed25519PublicKey.from_public_bytes(raw)
        return self._public[raw]


def rotations(conn: Connection) -> list[tuple[int, KeyRotation]]:
    """(index, rotation) of every rotation entry, in log order (one indexed read); endorsements
    are not checked here (`key_chain` does)."""
    found = []
    for index, data in repository.leaves_by_actor(conn, ROTATION_ACTOR):
        rotation = parse_rotation(data)
        if rotation is not None:
            found.append((index, rotation))
    return found


def key_chain(conn: Connection, current: bytes, origin: str) -> KeyChain:
    """The chain of keys from the log's first to `current`; BrokenChain when the rotations
    recorded in the log do not lead there, or one of them was not endorsed by the key it names
    (over its own index). Each rotation's endorsed tree (its size and root) is in `anchors`, for
    the walk to check: the entries before a rotation cannot change without its new key."""
    found = rotations(conn)
    if not found:
        return KeyChain([current], [])
    keys = [found[0][1].old_key]
    for index, rotation in found:
        if rotation.size != index or not rotation.valid_for(origin):
            raise BrokenChain(f"entry {index} is a key rotation its new key did not endorse", index)
        if rotation.old_key != keys[-1]:
            raise BrokenChain(f"entry {index} rotates from a key that was not the log's signing key", index)
        keys.append(rotation.new_key)
    if keys[-1] != current:
        raise BrokenChain(
            f"the log's last key rotation (entry {found[-1][0]}) is to another key than the log's public key",
            found[-1][0],
        )
    anchors = [(index, rotation.root) for index, rotation in found]
    return KeyChain(keys, [index + 1 for index, _ in found], anchors=anchors)
