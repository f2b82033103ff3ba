"""What the witness decides (C2SP tlog-witness): cosign a checkpoint only when the log signed it
with the key the witness follows and it is consistent with the checkpoint last cosigned; follow a
rotation of the log's key only on proof that the rotation is an entry of the log.

Functions take a connection (one transaction, owned by the caller); none imports grpc.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection

from contactpoint.platform import merkle
from contactpoint.platform.checkpoints import Checkpoint, Cosignature, parse_rotation, signed_by
from contactpoint.platform.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from services.witness import repository
from services.witness.repository import Witnessed

MAX_PROOF_HASHES = 128  # 2·log2 of any tree we could hold, with room


@dataclass(frozen=True)
class Witness:
    """Who the witness is and which log it follows."""

    key: Ed25519PrivateKey
    name: str
    log_origin: str
    # The key of the log's first checkpoint (later keys come from logged rotations).
    first_log_key: bytes | None


@dataclass(frozen=True)
class Rotation:
    """A logged rotation of the log's signing key, with its inclusion proof."""

    leaf_index: int
    leaf_data: bytes
    inclusion_proof: Sequence[bytes]


@dataclass(frozen=True)
class NewCheckpoint:
    """What a log sends to be cosigned."""

    old_size: int
    consistency_proof: Sequence[bytes]
    checkpoint: str
    log_signature: bytes
    rotation: Rotation | None = None


def _checked(request: NewCheckpoint, witness: Witness) -> Checkpoint:
    problems: list[FieldViolation] = []
    checkpoint: Checkpoint | None = None
    try:
        checkpoint = Checkpoint.parse_exact(request.checkpoint)
    except ValueError as exc:
        problems.append(FieldViolation("checkpoint", str(exc)))
    if len(request.log_signature) != 64:
        problems.append(FieldViolation("log_signature", "must be a 64-byte Ed25519 signature"))
    hashes = [*request.consistency_proof, *(request.rotation.inclusion_proof if request.rotation else ())]
    if len(hashes) > 2 * MAX_PROOF_HASHES or any(len(h) != 32 for h in hashes):
        problems.append(FieldViolation("consistency_proof", "must be SHA-256 hashes, at most 128"))
    if checkpoint is not None and checkpoint.size < request.old_size:
        problems.append(FieldViolation("old_size", "must not be larger than the checkpoint's tree size"))
    if problems or checkpoint is None:
        raise InvalidArgument(problems)
    if checkpoint.origin != witness.log_origin:
        raise NotFound(f"this witness does not witness the log {checkpoint.origin!r}")
    return checkpoint


def _rotated_key(rotation: Rotation, last: Witnessed, origin: str) -> bytes:
    """The log's new key, when `rotation` is an entry of the checkpoint last cosigned that
    rotates the key the witness follows; FailedPrecondition otherwise."""
    included = rotation.leaf_index < last.tree_size and merkle.verify_inclusion(
        rotation.leaf_index,
        last.tree_size,
        merkle.leaf_hash(rotation.leaf_data),
        list(rotation.inclusion_proof),
        last.root_hash,
    )
    if not included:
        raise FailedPrecondition(
            "the key rotation is not an entry of the checkpoint this witness last cosigned",
            "ROTATION_NOT_LOGGED",
            {"size": str(last.tree_size)},
        )
    stated = parse_rotation(rotation.leaf_data)
    if stated is None or stated.old_key != last.public_key or stated.size != rotation.leaf_index:
        raise FailedPrecondition(
            "the entry does not rotate the log's signing key from the key this witness follows",
            "NOT_A_ROTATION",
        )
    if not stated.valid_for(origin):
        raise FailedPrecondition("the rotation is not endorsed by the key it names", "NOT_A_ROTATION")
    return stated.new_key


def _consistent(last: Witnessed, checkpoint: Checkpoint, proof: Sequence[bytes]) -> bool:
    """Whether `checkpoint` extends the one last cosigned (RFC 9162 consistency)."""
    if checkpoint.size == last.tree_size:
        return checkpoint.root == last.root_hash and not proof
    if last.tree_size == 0:
        return not proof  # every tree is consistent with the empty one (RFC 9162 has no proof from 0)
    return merkle.verify_consistency(
        last.tree_size, checkpoint.size, last.root_hash, checkpoint.root, list(proof)
    )


def add_checkpoint(conn: Connection, request: NewCheckpoint, *, witness: Witness, now: int) -> Cosignature:
    """Cosign `request`'s checkpoint and keep it as the log's newest, or raise why not."""
    checkpoint = _checked(request, witness)
    last = repository.newest(conn, checkpoint.origin, lock=True)
    size = last.tree_size if last is not None else 0
    if request.old_size != size:
        raise FailedPrecondition(
            f"this witness last cosigned the log at size {size}, not {request.old_size}",
            "SIZE_MISMATCH",
            {"size": str(size)},
        )
    key = last.public_key if last is not None else witness.first_log_key
    if key is None:
        raise FailedPrecondition(
            "this witness has no key for the log: set CONTACTPOINT_WITNESS_LOG_PUBLIC_KEY", "NO_LOG_KEY"
        )
    rotated = request.rotation is not None
    if request.rotation is not None:
        if last is None:
            raise FailedPrecondition("there is no cosigned checkpoint to rotate from", "ROTATION_NOT_LOGGED")
        key = _rotated_key(request.rotation, last, witness.log_origin)
    if not signed_by(key, request.log_signature, request.checkpoint.encode()):
        raise PermissionDenied("the checkpoint is not signed by the log's key", "BAD_LOG_SIGNATURE")
    if last is not None:
        consistent = _consistent(last, checkpoint, request.consistency_proof)
        if not consistent:
            raise FailedPrecondition(
                f"the checkpoint is not consistent with the one this witness cosigned at size {size}",
                "INCONSISTENT",
                {"size": str(size)},
            )
    cosignature = Cosignature.sign(witness.key, witness.name, request.checkpoint, now)
    repository.save(
        conn,
        Witnessed(
            checkpoint.origin,
            key,
            checkpoint.size,
            checkpoint.root,
            request.checkpoint,
            request.log_signature,
            now,
            cosignature.signature,
        ),
        first=last is None,
    )
    if last is None or rotated:
        repository.add_key(conn, checkpoint.origin, key, from_size=checkpoint.size, at=now)
    return cosignature


def newest_or_none(conn: Connection, *, witness: Witness) -> tuple[Witnessed, Cosignature] | None:
    """The newest checkpoint cosigned for the log, with its cosignature; None before the first."""
    last = repository.newest(conn, witness.log_origin)
    if last is None:
        return None
    public = witness.key.public_key().public_bytes_raw()
    return last, Cosignature.of(witness.name, public, last.cosigned_at, last.cosignature)


def newest(conn: Connection, *, witness: Witness, origin: str) -> tuple[Witnessed, Cosignature]:
    """The newest checkpoint cosigned for `origin`, with its cosignature; NotFound before the first."""
    if origin and origin != witness.log_origin:
        raise NotFound(f"this witness does not witness the log {origin!r}")
    found = newest_or_none(conn, witness=witness)
    if found is None:
        raise NotFound("this witness has not cosigned a checkpoint of the log yet")
    return found


def key_problem(conn: Connection, *, witness: Witness) -> str | None:
    """What is wrong when the log key in the witness's configuration is not one it has followed
    the log to (a key file swapped in beside the log, or a rotation not yet sent to it)."""
    known = repository.keys(conn, witness.log_origin)
    if not known or witness.first_log_key is None or witness.first_log_key in known:
        return None
    return (
        "CONTACTPOINT_WITNESS_LOG_PUBLIC_KEY is not a key the audit log has signed with so far: this "
        "witness follows the log to a new key only through a rotation logged in it "
        "(`contactpoint audit rotate-key`), and refuses checkpoints signed by any other"
    )
