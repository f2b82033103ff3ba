"""Checkpoints and witness cosignatures, as C2SP specifies them, shared by the audit log (which
signs checkpoints), its witness (which cosigns them) and `audit verify` (which checks both).

- A checkpoint body (C2SP tlog-checkpoint) is "<origin>\\n<tree size>\\n<base64 root hash>\\n".
- A cosignature (C2SP tlog-cosignature, Ed25519, signature type 0x04) is an Ed25519 signature
  by the witness over "cosignature/v1\\ntime <Unix seconds>\\n" followed by the checkpoint body:
  the witness states that at that time it had verified this checkpoint consistent with every
  checkpoint of the log it cosigned before. Its key id is the first 4 bytes of
  SHA-256(<witness name> ‖ "\\n" ‖ 0x04 ‖ <32-byte public key>) (C2SP signed-note).
- A rotation of the log's signing key is itself an entry of the log: an event with action
  `RotateSigningKey`, written by the audit command line, whose detail names the old and the new
  key. The old key signs the head that
  first covers it, the new key every head after; the witness follows the log to the new key only
  on proof that this entry is in a checkpoint it cosigned.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from contactpoint.platform.convert import exact_base64

COSIGNATURE_TYPE = b"\x04"
COSIGNATURE_HEADER = "cosignature/v1\n"
MAX_SIZE_DIGITS = 19  # a signed 64-bit size


def signed_by(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Whether `signature` is Ed25519 over `message` by `public_key` (raw 32 bytes)."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    """The C2SP tlog-checkpoint body: origin, size and base64 root, each on its own line."""
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


@dataclass(frozen=True)
class Checkpoint:
    """The three facts a checkpoint states: which log, how many entries, and their root."""

    origin: str
    size: int
    root: bytes

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Read a C2SP checkpoint body ("<origin>\\n<size>\\n<base64 root>\\n", extension lines
        and a signed note's signature lines after it allowed); ValueError says what is wrong."""
        lines = text.split("\n")
        if len(lines) < 3 or not lines[0]:
            raise ValueError("a checkpoint is three lines: origin, tree size and base64 root hash")
        origin, size_text, root_text = lines[0], lines[1], lines[2]
        if not (size_text.isascii() and size_text.isdigit()) or len(size_text) > MAX_SIZE_DIGITS:
            raise ValueError(f"the tree size {size_text[:30]!r} is not a number")
        root = exact_base64(root_text, 32)
        if root is None:
            raise ValueError("the root hash is not 32 bytes of base64")
        return cls(origin, int(size_text), root)

    @classmethod
    def parse_exact(cls, text: str) -> Checkpoint:
        """Like `parse`, but the text must be exactly a checkpoint body and nothing more (what a
        log signs and a witness cosigns)."""
        checkpoint = cls.parse(text)
        if checkpoint.body() != text:
            raise ValueError("the checkpoint is not exactly origin, size and root, each on one line")
        return checkpoint

    def body(self) -> str:
        """The checkpoint body these facts make."""
        return checkpoint_body(self.origin, self.size, self.root)


def witness_key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte C2SP key id of a witness's Ed25519 cosigning key."""
    return hashlib.sha256(name.encode() + b"\n" + COSIGNATURE_TYPE + public_key).digest()[:4]


def cosigned_message(body: str, timestamp: int) -> bytes:
    """The bytes a witness signs for `body` at `timestamp` (Unix seconds)."""
    return f"{COSIGNATURE_HEADER}time {timestamp}\n{body}".encode()


@dataclass(frozen=True)
class Cosignature:
    """One witness's cosignature of one checkpoint body."""

    witness: str
    key_id: bytes
    timestamp: int
    signature: bytes

    @classmethod
    def sign(cls, key: Ed25519PrivateKey, witness: str, body: str, timestamp: int) -> Cosignature:
        """Cosign `body` as `witness` at `timestamp`."""
        public = key.public_key().public_bytes_raw()
        return cls(
            witness, witness_key_id(witness, public), timestamp, key.sign(cosigned_message(body, timestamp))
        )

    @classmethod
    def of(cls, witness: str, public_key: bytes, timestamp: int, signature: bytes) -> Cosignature:
        """A stored cosignature by `witness` under `public_key` (raw 32 bytes)."""
        return cls(witness, witness_key_id(witness, public_key), timestamp, signature)

    def valid_for(self, body: str, witness: str, public_key: bytes) -> bool:
        """Whether this is `witness`'s cosignature of `body` under `public_key` (raw 32 bytes)."""
        if self.witness != witness or self.key_id != witness_key_id(witness, public_key):
            return False
        return signed_by(public_key, self.signature, cosigned_message(body, self.timestamp))

    def note_line(self) -> str:
        """The signed-note signature line ("— <name> <base64(key id ‖ time ‖ signature)>")."""
        blob = self.key_id + struct.pack(">Q", self.timestamp) + self.signature
        return f"\u2014 {self.witness} {base64.b64encode(blob).decode()}\n"


ROTATION_ACTION = "RotateSigningKey"
# Who a rotation entry names and who appended it: the audit command line, a name no account can
# bear (so no caller of AppendEvent can write an entry that passes for a rotation).
ROTATION_ACTOR = "(audit key rotation)"
ROTATION_APPENDED_BY = "(audit command line)"
_ROTATION_DETAIL = (
    "signing key rotated from {old} to {new} after {size} entries of root {root} endorsed {sig}"
)
ENDORSEMENT_HEADER = "contactpoint-audit-key-rotation/v1\n"


def endorsement_message(origin: str, old_key: bytes, new_key: bytes, size: int, root: bytes) -> bytes:
    """What the new key signs when it takes over: the log, both keys, and the tree it takes over
    (its size and root just before the rotation entry). Only the new key's holder can make it, so
    no one holding the log's database (nor a stolen retired key) can rotate the log to a key that
    is pinned elsewhere, or rewrite the entries before a rotation."""
    b64 = base64.b64encode
    return (
        f"{ENDORSEMENT_HEADER}{origin}\n{b64(old_key).decode()}\n{b64(new_key).decode()}\n"
        f"{size}\n{b64(root).decode()}\n"
    ).encode()


@dataclass(frozen=True)
class KeyRotation:
    """A rotation of the log's signing key, as its entry states it."""

    old_key: bytes
    new_key: bytes
    size: int  # entries before the rotation entry (its index)
    root: bytes  # their root
    endorsement: bytes  # the new key's signature over `endorsement_message`

    @classmethod
    def endorsed(
        cls, origin: str, old_key: bytes, new_key: Ed25519PrivateKey, size: int, root: bytes
    ) -> KeyRotation:
        """A rotation from `old_key` to `new_key` after `size` entries of `root`, endorsed."""
        public = new_key.public_key().public_bytes_raw()
        signature = new_key.sign(endorsement_message(origin, old_key, public, size, root))
        return cls(old_key, public, size, root, signature)

    def detail(self) -> str:
        """The rotation entry's detail."""
        b64 = base64.b64encode
        return _ROTATION_DETAIL.format(
            old=b64(self.old_key).decode(),
            new=b64(self.new_key).decode(),
            size=self.size,
            root=b64(self.root).decode(),
            sig=b64(self.endorsement).decode(),
        )

    def valid_for(self, origin: str) -> bool:
        """Whether the new key endorsed this rotation of the log `origin`."""
        message = endorsement_message(origin, self.old_key, self.new_key, self.size, self.root)
        return signed_by(self.new_key, self.endorsement, message)


def parse_rotation(leaf_data: bytes) -> KeyRotation | None:
    """The rotation an entry states, when `leaf_data` is an entry rotating the log's signing key
    written by the audit command line (its endorsement is checked by `KeyRotation.valid_for`)."""
    try:
        event = json.loads(leaf_data)
    except ValueError:
        return None
    if not isinstance(event, dict) or (event.get("action"), event.get("actor"), event.get("appendedBy")) != (
        ROTATION_ACTION,
        ROTATION_ACTOR,
        ROTATION_APPENDED_BY,
    ):
        return None
    detail = str(event.get("detail", ""))
    words = detail.split(" ")
    if len(words) != 15 or not (words[8].isascii() and words[8].isdigit()) or len(words[8]) > MAX_SIZE_DIGITS:
        return None
    old, new, root = exact_base64(words[4], 32), exact_base64(words[6], 32), exact_base64(words[12], 32)
    sig = exact_base64(words[14], 64)
    if old is None or new is None or root is None or sig is None or old == new:
        return None
    rotation = KeyRotation(old, new, int(words[8]), root, sig)
    return rotation if rotation.detail() == detail else None
