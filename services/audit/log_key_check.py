"""At start, the signing key and origin must be the log's own: the key that signed its newest head
(through the rotations logged in it) and the origin its heads name. Found by probing: a missing
key file was quietly replaced by a new one, and a changed CONTACTPOINT_AUDIT_ORIGIN accepted;
either way the service signed heads that `audit verify` then called tampering for good."""

from __future__ import annotations

from pathlib import Path

from cryptography.exceptions import InvalidSignature
from sqlalchemy import Connection

from contactpoint.platform.checkpoints import Checkpoint
from contactpoint.platform.errors import FailedPrecondition
from contactpoint.platform.settings import ConfigurationError
from services.audit import repository
from services.audit.keychain import BrokenChain, key_chain

_ROTATE = "a log's key changes only through `contactpoint audit rotate-key`"


def refuse_a_new_key(conn: Connection, key_file: Path) -> None:
    """Before a missing key file is created: refused when the log already holds entries (or
    heads: found by re-probing, a log whose heads were deleted counted as empty)."""
    if repository.holds_entries(conn):
        raise ConfigurationError(
            f"no audit signing key at {key_file}, but the log holds entries: restore the log's key "
            f"there ({_ROTATE})"
        )


def check_log_key(conn: Connection, public_key: bytes, key_file: Path, origin: str) -> None:
    """ConfigurationError unless the log is empty, or its newest head names `origin` and was
    signed by the key its rotations lead from to `public_key`."""
    head = repository.latest_tree_head(conn)
    if head is None:
        return
    named = Checkpoint.parse(str(head["checkpoint"])).origin
    if named != origin:
        raise ConfigurationError(
            f"the log's heads name the origin {named!r}, not CONTACTPOINT_AUDIT_ORIGIN={origin!r}: "
            "a log keeps its origin for life"
        )
    try:
        signer = key_chain(conn, public_key, origin).key_for(int(head["tree_size"]))
        signer.verify(bytes(head["signature"]), str(head["checkpoint"]).encode())
    except (BrokenChain, InvalidSignature):
        raise ConfigurationError(
            f"the audit signing key at {key_file} is not the log's key: it did not sign the log's "
            f"newest head, and no rotation in the log leads to it ({_ROTATE})"
        ) from None


def writable_with(conn: Connection, public_key: bytes, key_file: Path, origin: str) -> None:
    """`check_log_key` for a command that writes to the log itself (`audit report`, `audit
    rotate-key`): FailedPrecondition NOT_THE_LOG_KEY (found by re-probing: each signed heads with
    a swapped key or under another origin, which the service's start then took as the log's)."""
    try:
        check_log_key(conn, public_key, key_file, origin)
    except ConfigurationError as exc:
        raise FailedPrecondition(str(exc), "NOT_THE_LOG_KEY") from None
