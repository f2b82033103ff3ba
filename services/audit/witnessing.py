"""Keeping the log witnessed: after each batch (at most one checkpoint every
`CONTACTPOINT_AUDIT_WITNESS_INTERVAL_SECONDS`; every second for entries appended by the
`contactpoint audit` commands; once more at shutdown) the newest signed tree head goes to the
witness with a consistency proof from the size the witness last cosigned (C2SP tlog-witness).

The witness keeps what it cosigned in its own database, under its own key, so `audit verify` can
tell a log cut short or rewritten after the fact. Nothing here holds up an append: a caller is
answered once its batch is durable, and the witness catches up (a slow or absent witness delays
only the witnessing, and says so in the log every minute it lasts). A log that contradicts its
witness is another matter: checked on every push (the tree state against the witness's newest
checkpoint, `witness_check.contradiction`), and whenever the witness calls a new head
inconsistent. The log was then cut or rewritten, and `contradiction` is set, which stops appends
until the log holds the witnessed entries again.

After a rotation of the log's signing key the witness must see, in order, the head that first
covers the rotation entry (signed by the old key) and then a head signed by the new key together
with the proof that the rotation is an entry of the checkpoint it cosigned.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from contactpoint.platform.checkpoints import Checkpoint
from contactpoint.platform.db import Database
from contactpoint.platform.logging import get_logger
from contactpoint.platform.peers import PEER_TIMEOUT_SECONDS
from contactpoint.witness.v1 import witness_service_pb2_grpc as witness_grpc
from services.audit import repository
from services.audit.sequencer import LOG_CONTRADICTS_WITNESS as REASON
from services.audit.settings import AuditSettings
from services.audit.witness_check import (
    NotThePinnedWitness,
    cosignature_of,
    newest_witnessed,
    pinned_key_mismatch,
)
from services.audit.witness_heads import Head, request_for, rotation_indexes, tree_tip

log = get_logger(__name__)

POLL_SECONDS = 1.0
INTERVAL_SECONDS = 0.25
RETRY_SECONDS = 1.0
WARN_EVERY_SECONDS = 60.0
FINAL_PUSH_SECONDS = 3.0
# A witness that cosigned under a key other than the pinned one (logged as an error; the log goes on).
NOT_THE_PINNED_WITNESS = "NOT_THE_PINNED_WITNESS"


class WitnessRefused(Exception):
    """The witness refused a checkpoint: `reason` is its ErrorInfo reason (SIZE_MISMATCH,
    INCONSISTENT, BAD_LOG_SIGNATURE…) and `size` the size it says it last cosigned, if it did."""

    def __init__(self, code: grpc.StatusCode, reason: str, message: str, size: int | None) -> None:
        super().__init__(f"{code.name} {reason}: {message}")
        self.code, self.reason, self.size = code, reason, size


def _refusal(exc: grpc.aio.AioRpcError) -> WitnessRefused | None:
    code = exc.code()
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
        return None
    reason, size = "", None
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    for detail in status.details if status else []:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            reason = info.reason
            text = info.metadata.get("size", "")
            size = int(text) if text.isdigit() else None
    return WitnessRefused(code, reason, exc.details() or "", size)


class WitnessClient:
    """Sends the log's newest checkpoints to its witness, one at a time, in the background."""

    def __init__(self, db: Database, channel: grpc.aio.Channel, *, settings: AuditSettings) -> None:
        self._db = db
        self._settings = settings
        # At most one checkpoint per interval: under load a batch commits every few milliseconds,
        # and cosigning each would cost the witness and this service a request per batch.
        self._interval = settings.witness_interval_seconds
        self._stub = witness_grpc.WitnessServiceStub(channel)
        self._origin = settings.origin
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        # The checkpoint the witness last cosigned, as far as we know (None: ask it; size 0: none).
        self._witnessed: Checkpoint | None = None
        self._failing_since: float | None = None
        self._warned_at = 0.0
        # Why the log contradicts what its witness cosigned, while it does (appends stop).
        self.contradiction: str | None = None
        # The log's key rotations' leaf indexes (None: not read yet).
        self._rotation_indexes: list[int] | None = None

    def notify(self) -> None:
        """A batch has committed: send the new head on (the sequencer's on_commit)."""
        self._wake.set()

    def start(self) -> None:
        """Start witnessing in the background (on the running event loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="audit-witnessing")
            self._wake.set()

    async def close(self) -> None:
        """Stop, after a last attempt (bounded) to have the newest head witnessed."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.push(), FINAL_PUSH_SECONDS)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            self._wake.clear()
            try:
                await self.push()
                if self._failing_since is not None:
                    log.info("audit.witness_caught_up", size=self.witnessed_size)
                self._failing_since = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep trying; appends go on meanwhile
                self._failed(exc)
                await asyncio.sleep(RETRY_SECONDS)
            await asyncio.sleep(self._interval)

    def _failed(self, exc: Exception) -> None:
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        if now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            grave = isinstance(exc, WitnessRefused) and exc.reason in (REASON, NOT_THE_PINNED_WITNESS)
            report = log.error if grave else log.warning
            report(
                "audit.witness_behind",
                error=str(exc)[:200] if isinstance(exc, WitnessRefused) else type(exc).__name__,
                witnessed_size=self.witnessed_size,
                for_seconds=round(now - self._failing_since),
            )

    @property
    def witnessed_size(self) -> int | None:
        """The size the witness last cosigned, as far as this client knows (None: not asked yet)."""
        return self._witnessed.size if self._witnessed is not None else None

    async def push(self) -> int:
        """Have the newest signed head cosigned (and any rotation heads before it); returns the
        size the witness has now cosigned. Sets `contradiction` (and raises) when the log
        contradicts the witness's checkpoint, and clears it once it no longer does."""
        async with self._lock:
            if self.contradiction is not None:
                self._witnessed = None  # ask the witness again: the log may have been restored
            witnessed = await self._checkpoint()
            # Read after the witness's answer: a log only grows, so by now it holds at least what
            # the witness had cosigned (another replica's newer head included: found by probing, a
            # stale read of the log taken before the witness's answer looked like a cut).
            tip = await self._db.read(lambda conn: tree_tip(conn, witnessed))
            if tip.contradiction is not None:
                self._contradicted(tip.contradiction, witnessed.size)
            if self.contradiction is not None:
                log.info("audit.log_agrees_with_witness", witnessed_size=witnessed.size)
                self.contradiction = None
            if tip.size <= witnessed.size:
                return witnessed.size
            if tip.head is None:
                raise WitnessRefused(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    "NO_HEAD",
                    f"no signed head of the tree's {tip.size} entries with its root",
                    None,
                )
            rotations = await self._rotations()
            handed_over = False
            for index in rotations:
                if witnessed.size <= index < tip.size - 1:  # the head that first covers it, first
                    handover = await self._db.read(functools.partial(repository.tree_head_at, size=index + 1))
                    if handover is not None:
                        await self._send(Head.of(handover), rotations)
                        handed_over = True
            # The proof read for the check is the one to send, unless a handover moved the witness.
            await self._send(tip.head, rotations, None if handed_over else (witnessed.size, tip.proof))
            return self.witnessed_size or 0

    async def _rotations(self) -> list[int]:
        """The log's key rotations (their leaf indexes), read once: a key rotates only with every
        audit process stopped (`audit rotate-key`), and they are read again if the witness calls a
        head's signature bad."""
        if self._rotation_indexes is None:
            self._rotation_indexes = await self._db.read(rotation_indexes)
        return self._rotation_indexes

    def _contradicted(self, why: str, size: int | None) -> None:
        """Stop appends: the log is not the one the witness cosigned (`witness_check`)."""
        if self.contradiction is None:
            log.error("audit.log_contradicts_witness", reason=why, witnessed_size=size)
        self.contradiction = why
        raise WitnessRefused(grpc.StatusCode.FAILED_PRECONDITION, REASON, why, size)

    async def _checkpoint(self) -> Checkpoint:
        """The checkpoint the witness last cosigned (size 0 before its first), asked of it when
        not known; refused when its cosignature does not verify under the pinned key (found by
        probing: any answer from the witness's address was believed, and could clear a stop)."""
        if self._witnessed is None:
            try:
                self._witnessed = await newest_witnessed(
                    self._stub, self._settings, seconds=PEER_TIMEOUT_SECONDS
                )
            except NotThePinnedWitness as exc:
                code = grpc.StatusCode.FAILED_PRECONDITION
                raise WitnessRefused(code, NOT_THE_PINNED_WITNESS, str(exc), None) from None
        return self._witnessed

    async def _send(
        self, head: Head, rotations: list[int], known: tuple[int, list[bytes]] | None = None
    ) -> None:
        """Send `head` (with `known`, a consistency proof to it already read: from which size, and
        the proof); on a size mismatch start again from the witness's checkpoint, and when the
        log's key is not the witness's, add the newest rotation the witness has cosigned."""
        with_rotation = False
        for _ in range(3):
            old = (await self._checkpoint()).size
            if old >= head.size:
                return
            offered = rotations if with_rotation else []
            proof = known[1] if known is not None and known[0] == old else None
            request = await self._db.read(
                functools.partial(request_for, old=old, head=head, rotations=offered, proof=proof)
            )
            try:
                resp = await self._stub.AddCheckpoint(request, timeout=PEER_TIMEOUT_SECONDS)
            except grpc.aio.AioRpcError as exc:
                refused = _refusal(exc)
                if refused is None:
                    raise
                if refused.reason == "SIZE_MISMATCH":
                    self._witnessed = None  # another replica's head got there first: ask again
                    continue
                if refused.reason == "BAD_LOG_SIGNATURE" and not with_rotation:
                    with_rotation = True
                    self._rotation_indexes = None  # read them again next time
                    continue
                if refused.reason == "INCONSISTENT":
                    self._contradicted(
                        f"the log's head of {head.size} entries is not consistent with the checkpoint "
                        f"its witness cosigned at {old}: the log was rewritten",
                        old,
                    )
                raise refused from None
            self._witnessed = Checkpoint.parse_exact(head.checkpoint)
            mismatch = pinned_key_mismatch(self._settings, head.checkpoint, cosignature_of(resp.cosignature))
            if mismatch is not None:
                code = grpc.StatusCode.FAILED_PRECONDITION
                raise WitnessRefused(code, NOT_THE_PINNED_WITNESS, mismatch, None)
            return
        raise WitnessRefused(grpc.StatusCode.ABORTED, "GAVE_UP", f"head {head.size} not cosigned", None)
