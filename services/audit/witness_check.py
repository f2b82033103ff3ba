"""Whether the log still holds what its witness cosigned, and whether the witness is the one pinned.

A witness cosigns only checkpoints consistent with the last one it cosigned, so a log found
shorter than that checkpoint, or whose first entries hash to another root, has been cut or
rewritten: its tail deleted by an insider, or its database restored from an older copy. (What is
compared is the tree as stored, its leaf hashes and interior nodes: a leaf's data edited under an
unchanged hash is `audit verify`'s to find, which hashes every entry again.) Every
entry appended to such a log is on a fork the witness will never cosign, where a later cut or edit
would go unseen. So the audit service refuses to start on it, and stops appending when its witness
says so while it runs (`WitnessClient.contradiction`; appends then fail FAILED_PRECONDITION with
reason LOG_CONTRADICTS_WITNESS, and every caller fails closed). It goes on by itself once the log
holds the witnessed entries again (restored from a standby or the write-ahead log's archive). If
they are lost for good, that is an incident for the log's and the witness's operators together:
a new log (a new database and origin), the old one and the witness's checkpoint kept as evidence.

A witness whose cosignature does not verify under the key pinned in
CONTACTPOINT_AUDIT_WITNESS_PUBLIC_KEY is not the log's witness (or the pin is wrong), and `audit
verify` would fail on every checkpoint it cosigns: found by probing, such a pin was accepted at
start and only `audit verify` noticed it.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from sqlalchemy import Connection

from contactpoint.platform import merkle
from contactpoint.platform.checkpoints import Checkpoint, Cosignature
from contactpoint.platform.db import Database
from contactpoint.platform.errors import FailedPrecondition
from contactpoint.platform.logging import get_logger
from contactpoint.platform.settings import ConfigurationError
from contactpoint.witness.v1 import witness_service_pb2 as witness_pb
from contactpoint.witness.v1 import witness_service_pb2_grpc as witness_grpc
from services.audit import proofs, state_repository
from services.audit.sequencer import LOG_CONTRADICTS_WITNESS
from services.audit.settings import AuditSettings

log = get_logger(__name__)

# How long the start waits for the witness's newest checkpoint; an absent witness delays only the
# witnessing (`WitnessClient`), so the service then starts and checks when the witness answers.
START_TIMEOUT_SECONDS = 3.0
_REMEDY = (
    "restore the missing or altered entries (from a standby or the write-ahead log's archive); if "
    "they are lost, start a new log with the witness's operator and keep this one as evidence"
)


@dataclass(frozen=True)
class Verdict:
    """Why the log contradicts the witness's checkpoint (None: it does not), and the consistency
    proof from the checkpoint's size to the log's that showed it does not (sent on to the witness
    with the log's head of that size)."""

    why: str | None
    proof: list[bytes]


def contradiction(conn: Connection, witnessed: Checkpoint) -> str | None:
    """Why the log cannot be the one whose checkpoint `witnessed` its witness cosigned, or None
    (see `judge`)."""
    return judge(conn, witnessed, state_repository.state_and_span(conn)).why


def judge(conn: Connection, witnessed: Checkpoint, span: state_repository.Span) -> Verdict:
    """Whether the log, as `span` read it, can be the one whose checkpoint `witnessed` its witness
    cosigned.

    The log is its tree state, the size and peaks every append extends (found by probing: judged by
    its newest head row instead, a cut log passed with its old newest head put back, and a stopped
    one resumed on a fork when a row copying the witness's checkpoint was inserted). It
    contradicts the checkpoint when it holds fewer entries, or when its root is not proven by its
    own stored nodes to extend the witnessed root (a rewritten tree, or nodes missing or altered).

    Its stored entries must also run from 0 to the state's size, less one (found by re-probing:
    entries deleted at the tail with the state left alone, or the state set back under later
    entries, passed; appends then left a gap, or failed INTERNAL for ever). Entries deleted from
    the middle are `audit verify`'s to find: counting every entry would cost a scan of the log."""
    size = span.size
    if size < witnessed.size:
        return Verdict(
            f"the log holds {_entries(size)} but its witness cosigned {witnessed.size}: its tail was "
            f"cut, or its database restored from an older copy; {_REMEDY}",
            [],
        )
    expected = (0, size - 1) if size else (None, None)
    if (span.lowest, span.highest) != expected:
        stored = "none" if span.highest is None else f"{span.lowest} to {span.highest}"
        return Verdict(
            f"the log's tree holds {_entries(size)} but its stored entries are {stored}: entries were "
            f"deleted, or its tree state set back; {_REMEDY}",
            [],
        )
    if witnessed.size == 0:
        return Verdict(None, [])
    root = merkle.root_from_peaks(span.peaks)
    try:
        proof = proofs.consistency_proof(conn, witnessed.size, size) if witnessed.size < size else []
    except LookupError:
        return Verdict(
            f"the log's stored tree is incomplete (interior nodes missing), so it cannot be shown to "
            f"extend the {witnessed.size} entries its witness cosigned; {_REMEDY}",
            [],
        )
    if not merkle.verify_consistency(witnessed.size, size, witnessed.root, root, proof):
        return Verdict(
            f"the log's first {witnessed.size} entries are not those its witness cosigned: the log "
            f"was rewritten; {_REMEDY}",
            [],
        )
    return Verdict(None, proof)


def _entries(n: int) -> str:
    return "1 entry" if n == 1 else f"{n} entries"


def refuse_a_fork(conn: Connection, witnessed: Checkpoint | None) -> None:
    """For the `contactpoint audit` commands that append (`audit report`, `audit rotate-key`):
    FailedPrecondition LOG_CONTRADICTS_WITNESS when the log contradicts `witnessed`, the witness's
    newest checkpoint (None: no witness, or none could be read; the command then goes on, as the
    service does with its witness away). Found by probing: the commands wrote straight onto a log
    the service refused to start on."""
    why = contradiction(conn, witnessed) if witnessed is not None else None
    if why is not None:
        raise FailedPrecondition(why, LOG_CONTRADICTS_WITNESS)


def pinned_key_mismatch(settings: AuditSettings, checkpoint: str, cosignature: Cosignature) -> str | None:
    """Why the witness's cosignature of `checkpoint` shows it is not the pinned witness, or None
    (also None when no witness key is pinned)."""
    pinned = settings.pinned_witness_key()
    if pinned is None or cosignature.valid_for(checkpoint, settings.witness_name, pinned):
        return None
    return (
        f"the witness at {settings.witness_target} does not cosign as {settings.witness_name!r} with "
        "the key pinned in CONTACTPOINT_AUDIT_WITNESS_PUBLIC_KEY (pin the key `contactpoint audit "
        "keys` prints beside the witness, and CONTACTPOINT_AUDIT_WITNESS_NAME to its name, or point "
        "CONTACTPOINT_AUDIT_WITNESS_TARGET at the log's witness)"
    )


def cosignature_of(c: witness_pb.Cosignature) -> Cosignature:
    """The platform's form of a witness's cosignature message."""
    return Cosignature(c.witness, bytes(c.key_id), int(c.timestamp), bytes(c.signature))


class NotThePinnedWitness(Exception):
    """The witness's cosignature does not verify under the pinned key (the message says what to do)."""


async def newest_witnessed(
    stub: witness_grpc.WitnessServiceAsyncStub,
    settings: AuditSettings,
    *,
    seconds: float,
    wait_for_ready: bool = False,
) -> Checkpoint:
    """The newest checkpoint the witness cosigned for the log (size 0 before its first). Raises
    the call's AioRpcError when the witness does not answer within `seconds`, NotThePinnedWitness when its
    cosignature does not verify under the pinned key, ValueError when the checkpoint is malformed."""
    try:
        resp = await stub.GetCheckpoint(
            witness_pb.GetCheckpointRequest(origin=settings.origin),
            timeout=seconds,
            wait_for_ready=wait_for_ready,
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return Checkpoint(settings.origin, 0, b"")
    mismatch = pinned_key_mismatch(settings, resp.checkpoint, cosignature_of(resp.cosignature))
    if mismatch is not None:
        raise NotThePinnedWitness(mismatch)
    return Checkpoint.parse_exact(resp.checkpoint)


async def check_at_start(db: Database, channel: grpc.aio.Channel, settings: AuditSettings) -> None:
    """ConfigurationError when the witness answers with a cosignature the pinned key does not
    verify, or a checkpoint the log contradicts; nothing when it cannot be reached (then the
    witness client checks when it answers)."""
    stub = witness_grpc.WitnessServiceStub(channel)
    try:
        # A witness starting beside audit (or just restarted) is waited for.
        witnessed = await newest_witnessed(stub, settings, seconds=START_TIMEOUT_SECONDS, wait_for_ready=True)
    except grpc.aio.AioRpcError as exc:
        log.warning("audit.witness_unreachable_at_start", code=exc.code().name, details=exc.details())
        return
    except NotThePinnedWitness as exc:
        raise ConfigurationError(str(exc)) from None
    except ValueError as exc:
        raise ConfigurationError(f"the witness's newest checkpoint is malformed: {exc}") from None
    found = await db.read(lambda conn: contradiction(conn, witnessed))
    if found is not None:
        raise ConfigurationError(found)
