"""Personal data sealed at rest: AES-256-GCM under data keys kept outside the database, and keyed
hashes (BLAKE2b in its keyed, MAC mode) for what must still be looked up by equality.

A key ring holds one *index* key, for the keyed hashes, and one or more numbered *seal* keys; the
newest seal key seals (or the one a `sealing` line names), every listed one opens. Its text form,
one key per line:

    # ContactPoint records data keys: keep apart from the database and its backups
    index <base64 of 32 bytes>
    seal 1 <base64 of 32 bytes>
    seal 2 <base64 of 32 bytes>
    sealing 1        (optional: key 2 is known to every replica before any seals with it)

A sealed value is `0x01 ‖ key id (4 bytes) ‖ nonce (12) ‖ ciphertext ‖ tag (16)`, with the row's
identity and the column's name bound in as associated data (a sealed value moved to another row or
column does not open). A value that does not open is an error, never silently garbage.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from contactpoint.platform.keys import load_or_create_secret_file, write_secret_file
from contactpoint.platform.settings import ConfigurationError

FORMAT = 1
_HEADER = struct.Struct(">BI")
_NONCE = 12
_OVERHEAD = _HEADER.size + _NONCE + 16
_KEY_BYTES = 32
_COMMENT = "# ContactPoint records data keys: keep apart from the database and its backups\n"


class DataKeyError(ConfigurationError):
    """The data keys are missing, malformed, or do not open what the database holds."""


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The index key and the numbered seal keys (ascending ids); `sealing` names the key that
    seals (0: the newest)."""

    index: bytes
    seal: tuple[tuple[int, bytes], ...]
    sealing: int = 0

    def __post_init__(self) -> None:
        if len(self.index) != _KEY_BYTES or not self.seal:
            raise DataKeyError("a key ring needs a 32-byte index key and at least one seal key")
        ids = [i for i, _ in self.seal]
        if ids != sorted(set(ids)) or any(len(k) != _KEY_BYTES for _, k in self.seal):
            raise DataKeyError("seal keys must have distinct ascending ids and 32 bytes each")
        if self.sealing and self.sealing not in ids:
            raise DataKeyError(f"the sealing key {self.sealing} is not in the ring")

    @property
    def newest(self) -> int:
        """The id of the key that seals."""
        return self.sealing or self.seal[-1][0]

    @classmethod
    def new(cls) -> KeyRing:
        """A fresh ring: a random index key and seal key 1."""
        return cls(secrets.token_bytes(_KEY_BYTES), ((1, secrets.token_bytes(_KEY_BYTES)),))

    def rotated(self, *, standby: bool = False) -> KeyRing:
        """This ring with a new seal key (the next id), which seals from now on (or, `standby`,
        only opens until a later ring names it `sealing`)."""
        new_id = self.seal[-1][0] + 1
        sealing = self.newest if standby else 0
        return KeyRing(self.index, (*self.seal, (new_id, secrets.token_bytes(_KEY_BYTES))), sealing)

    def without(self, key_id: int) -> KeyRing:
        """This ring without seal key `key_id` (which must not be the newest)."""
        if key_id == self.newest:
            raise DataKeyError("the newest seal key cannot be retired; rotate first")
        if key_id not in dict(self.seal):
            raise DataKeyError(f"there is no seal key {key_id}")
        return KeyRing(self.index, tuple((i, k) for i, k in self.seal if i != key_id), self.sealing)

    def render(self) -> str:
        """The ring's text form."""
        lines = [_COMMENT, f"index {base64.b64encode(self.index).decode()}\n"]
        lines += [f"seal {i} {base64.b64encode(k).decode()}\n" for i, k in self.seal]
        if self.sealing:
            lines.append(f"sealing {self.sealing}\n")
        return "".join(lines)

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        """A ring from its text form; DataKeyError (saying which line) when malformed."""
        index: bytes | None = None
        seal: list[tuple[int, bytes]] = []
        sealing = 0
        for number, line in enumerate(text.splitlines(), start=1):
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            try:
                if words[0] == "index" and len(words) == 2 and index is None:
                    index = _key_bytes(words[1])
                elif words[0] == "seal" and len(words) == 3:
                    seal.append((int(words[1]), _key_bytes(words[2])))
                elif words[0] == "sealing" and len(words) == 2 and not sealing:
                    sealing = int(words[1])
                else:
                    raise ValueError(words[0])
            except ValueError:
                raise DataKeyError(
                    f"line {number} is not 'index KEY', 'seal ID KEY' or 'sealing ID'"
                ) from None
        if index is None:
            raise DataKeyError("no index key")
        return cls(index, tuple(sorted(seal)), sealing)


def _key_bytes(text: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError("not base64") from None
    if len(raw) != _KEY_BYTES:
        raise ValueError("not 32 bytes")
    return raw


def read_key_ring(path: Path) -> KeyRing:
    """The ring in `path`; DataKeyError when it is missing, unreadable or malformed."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise DataKeyError(f"cannot read the data key file {path}: {exc.strerror}") from None
    try:
        return KeyRing.parse(text)
    except DataKeyError as exc:
        raise DataKeyError(f"the data key file {path} is malformed: {exc}") from None


def create_key_ring(path: Path) -> KeyRing:
    """A new ring written to `path` (0600) unless one is already there; the ring in the file."""
    load_or_create_secret_file(path, lambda: KeyRing.new().render().encode())
    return read_key_ring(path)


def save_key_ring(path: Path, ring: KeyRing) -> None:
    """Replace the ring in `path` atomically (0600): readers see the old ring or the new one."""
    write_secret_file(path, ring.render().encode())


@dataclass(frozen=True, slots=True)
class _Keys:
    """A ring ready to use, replaced whole on a reload (never half of one seen by a seal)."""

    ring: KeyRing
    aeads: dict[int, AESGCM]
    newest: int

    @classmethod
    def of(cls, ring: KeyRing) -> _Keys:
        return cls(ring, {i: AESGCM(k) for i, k in ring.seal}, ring.newest)


class Vault:
    """Seals, opens and keys values with a key ring. `reload` (when given) is asked for the ring
    again when a value names a seal key this vault has not seen: another replica rotated first."""

    def __init__(
        self,
        ring: KeyRing,
        *,
        reload: Callable[[], KeyRing] | None = None,
        accept: Callable[[KeyRing], None] | None = None,
    ) -> None:
        self._reload = reload
        # Checks a reloaded ring (against what the database was sealed with) before it is used;
        # raises DataKeyError to refuse it, and the ring in use stays.
        self._accept = accept
        self._keys = _Keys.of(ring)

    @property
    def ring(self) -> KeyRing:
        """The key ring in use."""
        return self._keys.ring

    @property
    def newest(self) -> int:
        """The id of the seal key new values are sealed with."""
        return self._keys.newest

    @property
    def key_ids(self) -> tuple[int, ...]:
        """Every seal key this vault can open with."""
        return tuple(i for i, _ in self._keys.ring.seal)

    def refresh(self) -> bool:
        """Read the ring again (when it can be); whether it changed. A ring that drops the index
        key or a key in use is the caller's to refuse (`check` on start-up)."""
        if self._reload is None:
            return False
        ring = self._reload()
        if ring == self._keys.ring:
            return False
        if ring.index != self._keys.ring.index:
            raise DataKeyError("the data key file's index key changed; restart with the right file")
        if self._accept is not None:
            self._accept(ring)
        self._keys = _Keys.of(ring)
        return True

    def seal(self, plain: bytes, context: bytes, *, key_id: int | None = None) -> bytes:
        """`plain` sealed with the newest key (or `key_id`), bound to `context` (row and column)."""
        keys = self._keys  # one ring for the whole seal, whatever a reload does meanwhile
        key_id = keys.newest if key_id is None else key_id
        nonce = os.urandom(_NONCE)
        return _HEADER.pack(FORMAT, key_id) + nonce + keys.aeads[key_id].encrypt(nonce, plain, context)

    def open(self, sealed: bytes, context: bytes) -> bytes:
        """The value `seal` sealed; DataKeyError when it names an unknown key or does not open."""
        if len(sealed) < _OVERHEAD or sealed[0] != FORMAT:
            raise DataKeyError("a stored value is not sealed (or is damaged)")
        key_id = _HEADER.unpack_from(sealed)[1]
        aead = self._keys.aeads.get(key_id)
        if aead is None and self.refresh():
            aead = self._keys.aeads.get(key_id)
        if aead is None:
            raise DataKeyError(
                f"a stored value is sealed with data key {key_id}, which is not in the key ring"
            )
        nonce = sealed[_HEADER.size : _HEADER.size + _NONCE]
        try:
            return aead.decrypt(nonce, sealed[_HEADER.size + _NONCE :], context)
        except InvalidTag:
            raise DataKeyError(f"a stored value does not open with data key {key_id}") from None

    def open_text(self, sealed: bytes, context: bytes) -> str:
        """`open` for text."""
        return self.open(sealed, context).decode()

    def hash64(self, value: bytes) -> int:
        """`keyed_hash64` under this ring's index key."""
        return keyed_hash64(value, self.ring.index)


def keyed_hash64(value: bytes, index_key: bytes) -> int:
    """A keyed 64-bit hash (signed, for a BIGINT column): equal values give equal hashes, and
    without the index key nobody can compute one to test a guess against."""
    digest = hashlib.blake2b(value, digest_size=8, key=index_key).digest()
    return int.from_bytes(digest, "big", signed=True)


def sealed_key_id(sealed: bytes) -> int:
    """The id of the seal key a value is sealed with."""
    return int(_HEADER.unpack_from(sealed)[1])
