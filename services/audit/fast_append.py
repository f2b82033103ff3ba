"""The audit service's own appends on PostgreSQL: a batch in one statement, from the event loop.

`domain.append_batch` locks the tree state row, then inserts leaves, nodes, state and head: five
statements and a commit, through SQLAlchemy in a worker thread. Here the tree's size and peaks are
kept in memory between batches, and the batch is written by one statement (its own transaction)
whose every part depends on the state row still holding the size it was planned on:

    UPDATE tree_state … WHERE size = <planned on>   -- and, only if that row was updated:
    INSERT leaves, INSERT other_children, INSERT tree_nodes, INSERT tree_heads

Another writer (a second replica, or `contactpoint audit` commands) that appended meanwhile has
moved the size on: nothing is written, the state is read again, and the batch planned anew on
it. Under READ COMMITTED the UPDATE waits for a concurrent writer's lock and then re-checks the
size against the committed row, so two writers never both write the same indexes; the leaves'
primary key would refuse it anyway. Each head is signed over exactly the leaves before it, as on
the general path, which SQLite and every other writer keep using.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import TextClause, text

from contactpoint.audit.v1 import audit_service_pb2 as pb
from contactpoint.platform.db import TransactionConflict
from contactpoint.platform.merkle import Peaks
from contactpoint.platform.statements import Statements
from services.audit import domain, repository, state_repository

READ_STATE = text("SELECT size, peaks FROM tree_state WHERE id = 1")
_OTHERS = (
    "), o AS ("
    "  INSERT INTO other_children (leaf_index, contactpoint_id)"
    "  SELECT * FROM unnest(CAST(:other_leaf_index AS bigint[]), CAST(:other_child AS text[]))"
    "  WHERE EXISTS (SELECT 1 FROM s)"
)


def _write_batch(*, others: bool) -> TextClause:
    """The one statement that writes a batch; with `others` it also indexes the other children
    its events name (left out otherwise: most batches name none, and the extra part costs)."""
    return text(
        "WITH s AS ("  # noqa: S608 (constant text: the part added is one of two constants)
        "  UPDATE tree_state SET size = :new_size, peaks = :peaks WHERE id = 1 AND size = :old_size"
        "  RETURNING id"
        "), l AS ("
        "  INSERT INTO leaves (leaf_index, leaf_data, leaf_hash, contactpoint_id, actor, time)"
        "  SELECT * FROM unnest(CAST(:leaf_index AS bigint[]), CAST(:leaf_data AS bytea[]),"
        "    CAST(:leaf_hash AS bytea[]), CAST(:contactpoint_id AS text[]), CAST(:actor AS text[]),"
        "    CAST(:time AS timestamptz[]))"
        "  WHERE EXISTS (SELECT 1 FROM s)" + (_OTHERS if others else "") + "), n AS ("
        "  INSERT INTO tree_nodes (level, node_index, hash)"
        "  SELECT * FROM unnest(CAST(:level AS smallint[]), CAST(:node_index AS bigint[]),"
        "    CAST(:hash AS bytea[]))"
        "  WHERE EXISTS (SELECT 1 FROM s)"
        "), h AS ("
        "  INSERT INTO tree_heads (tree_size, root_hash, checkpoint, signature, time)"
        "  SELECT :new_size, :root_hash, :checkpoint, :signature, :now WHERE EXISTS (SELECT 1 FROM s)"
        ")"
        " SELECT EXISTS (SELECT 1 FROM s) AS written"
    )


WRITE_BATCH = _write_batch(others=False)
WRITE_BATCH_AND_OTHERS = _write_batch(others=True)
# A batch planned on a stale size is planned again this many times before the sequencer writes
# it the locking way (each time another writer appended in between).
ATTEMPTS = 3


def _params(old_size: int, plan: domain.BatchPlan) -> dict[str, object]:
    rows, nodes, head = plan.rows, plan.nodes, plan.head
    return {
        "old_size": old_size,
        "new_size": plan.size,
        "peaks": state_repository.peaks_text(plan.peaks),
        "leaf_index": [r.index for r in rows],
        "leaf_data": [r.data for r in rows],
        "leaf_hash": [r.digest for r in rows],
        "contactpoint_id": [repository.filter_key(r.contactpoint_id) for r in rows],
        "actor": [repository.filter_key(r.actor) for r in rows],
        "time": [r.time for r in rows],
        "level": [level for level, _, _ in nodes],
        "node_index": [index for _, index, _ in nodes],
        "hash": [digest for _, _, digest in nodes],
        "root_hash": head.root_hash,
        "checkpoint": head.checkpoint,
        "signature": head.signature,
        "now": plan.now,
        **_others_params(rows),
    }


def _others_params(rows: Sequence[repository.Leaf]) -> dict[str, list[object]]:
    """The rows of the index of other children, as WRITE_BATCH_AND_OTHERS takes them."""
    if not any(r.others for r in rows):
        return {}
    return {
        "other_leaf_index": [r.index for r in rows for _ in r.others],
        "other_child": [other for r in rows for other in r.others],
    }


class FastAppender:
    """Writes the sequencer's batches on PostgreSQL (see the module's doc). One per process."""

    def __init__(self, store: Statements, signer: domain.Signer) -> None:
        self._store = store
        self._signer = signer
        self._state: tuple[int, Peaks] | None = None

    async def append(
        self, batch: Sequence[tuple[pb.AuditEvent, str]], *, commit_by: float | None = None
    ) -> list[int]:
        """Append the batch under one signed head; its leaf indexes. With `commit_by` (a
        `time.monotonic()`), committed by then or not at all (`DeadlinePassed`)."""
        for _ in range(ATTEMPTS):
            if self._state is None:
                row = await self._store.one(READ_STATE, {})
                self._state = (int(row.size), state_repository.peaks_of(row.peaks))
            size, peaks = self._state
            plan = domain.plan_batch(size, peaks, batch, signer=self._signer)
            self._state = None  # until this batch is known to be written
            params = _params(size, plan)
            statement = WRITE_BATCH_AND_OTHERS if "other_child" in params else WRITE_BATCH
            written = await self._store.one(statement, params, commit_by=commit_by)
            if written.written:
                self._state = (plan.size, plan.peaks)
                return [r.index for r in plan.rows]
        raise TransactionConflict("other writers kept appending to the log; retry")
