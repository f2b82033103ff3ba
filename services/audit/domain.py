"""The audit log's domain: append with a signed tree head, read pages, proofs, tree heads.
What an event may hold is checked in `events`; reads are recorded in the log by `reading`.

Functions take a connection (one transaction, owned by the caller) and keyword arguments; none
imports grpc.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection

from contactpoint.audit.v1 import audit_service_pb2 as pb
from contactpoint.platform import merkle
from contactpoint.platform.checkpoints import checkpoint_body
from contactpoint.platform.convert import timestamp
from contactpoint.platform.errors import FieldViolation, InvalidArgument
from contactpoint.platform.ids import contactpoint_id_problem
from services.audit import leafcodec, proofs, repository, state_repository
from services.audit.events import MAX_ACTOR, validate_event

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# Page tokens carry a leaf index; anything beyond a signed 64-bit column is not one we issued.
MAX_INDEX = 2**63 - 1


@dataclass(frozen=True)
class TreeHead:
    """A signed tree head."""

    tree_size: int
    root_hash: bytes
    checkpoint: str
    signature: bytes


class Signer:
    """Signs checkpoints with the audit service's Ed25519 key."""

    def __init__(self, key: Ed25519PrivateKey, origin: str) -> None:
        self._key = key
        self.origin = origin

    def head(self, size: int, root: bytes) -> TreeHead:
        """A signed tree head for `size` and `root`."""
        body = checkpoint_body(self.origin, size, root)
        return TreeHead(size, root, body, self._key.sign(body.encode()))


def append(conn: Connection, *, event: pb.AuditEvent | None, signer: Signer, appended_by: str) -> int:
    """Append one event, as sent by `appended_by`, and sign the new tree head; returns its leaf
    index (`append_batch` of one, after checking the event)."""
    validate_event(event)
    assert event is not None  # validate_event refuses a missing event
    return append_batch(conn, [(event, appended_by)], signer=signer)[0]


@dataclass(frozen=True)
class BatchPlan:
    """What one batch writes: its leaves, the interior nodes they complete, the tree's new size
    and peaks, and the head signed over exactly the leaves up to the last of them."""

    rows: list[repository.Leaf]
    nodes: list[merkle.Node]
    size: int
    peaks: merkle.Peaks
    head: TreeHead
    now: datetime


def plan_batch(
    size: int, peaks: merkle.Peaks, batch: Sequence[tuple[pb.AuditEvent, str]], *, signer: Signer
) -> BatchPlan:
    """The batch appended to a tree of `size` leaves with `peaks`, stamped and signed (nothing is
    stored). The service stamps each event itself: its `time` (this service's clock, read under
    the lock, so that times follow the log's order unless a clock is set back) and `appended_by`;
    whatever the caller put in those fields and in `leaf_index` is replaced."""
    now = datetime.now(UTC)
    stamped = timestamp(now)
    rows: list[repository.Leaf] = []
    nodes: list[merkle.Node] = []
    for offset, (event, appended_by) in enumerate(batch):
        stored = pb.AuditEvent()
        stored.CopyFrom(event)
        stored.leaf_index = 0
        stored.appended_by = appended_by
        stored.time.CopyFrom(stamped)
        data = leafcodec.encode(stored)
        digest = merkle.leaf_hash(data)
        c = leafcodec.columns_of(stored, now)
        rows.append(repository.Leaf(size + offset, data, digest, c.contactpoint_id, c.actor, now, c.others))
        peaks, completed = merkle.append_with_nodes(peaks, digest)
        nodes.extend(completed)
    new_size = size + len(rows)
    return BatchPlan(rows, nodes, new_size, peaks, signer.head(new_size, merkle.root_from_peaks(peaks)), now)


def append_batch(
    conn: Connection, batch: Sequence[tuple[pb.AuditEvent, str]], *, signer: Signer
) -> list[int]:
    """Append checked events, each as sent by its `appended_by`, in order, and sign one tree head
    over exactly the leaves up to the last of them (`plan_batch`); returns their leaf indexes.

    The tree state row is locked first (FOR UPDATE on PostgreSQL; SQLite's write transactions
    already hold the database's write lock), so concurrent batches take consecutive indexes and
    each signed head covers exactly the leaves before it. (The audit service's own appends on
    PostgreSQL take `fast_append`'s one-statement way; this is the way of every other writer.)
    """
    size, peaks = state_repository.lock_state(conn)
    plan = plan_batch(size, peaks, batch, signer=signer)
    repository.insert_leaves(conn, plan.rows)
    repository.insert_nodes(conn, plan.nodes)
    state_repository.save_state(conn, plan.size, plan.peaks)
    head = plan.head
    repository.insert_tree_head(
        conn,
        size=head.tree_size,
        root=head.root_hash,
        checkpoint=head.checkpoint,
        signature=head.signature,
        time=plan.now,
    )
    return [row.index for row in plan.rows]


def tree_head(conn: Connection, *, signer: Signer) -> TreeHead:
    """The latest signed tree head (for an empty log, a freshly signed head of size 0)."""
    row = repository.latest_tree_head(conn)
    if row is None:
        return signer.head(0, merkle.EMPTY_ROOT)
    return TreeHead(
        int(row["tree_size"]), bytes(row["root_hash"]), str(row["checkpoint"]), bytes(row["signature"])
    )


def _filters_tag(contactpoint_id: str, actor: str) -> str:
    """What a page token says of the filters it was issued for (AIP-158: a token is good only for
    the request it continues). The same on every replica: no secret, just a digest. The actor as
    the filter reads it (" Pat.Smith " is pat.smith: found by re-probing, a token was refused as
    "issued for other filters" when the same actor was typed another way)."""
    return hashlib.sha256(f"{contactpoint_id}\x00{actor.strip().lower()}".encode()).hexdigest()[:16]


def _page_token(index: int, filters: str) -> str:
    return base64.urlsafe_b64encode(f"v2:{index}:{filters}".encode()).decode()


def _page_start(token: str, filters: str) -> tuple[int | None, str]:
    """Where the page `token` continues from, or None and why it cannot be used. A `v1` token
    (issued before tokens named their filters) is still taken, as its index alone."""
    if not token:
        return 0, ""
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None, "is not a token this service issued"
    version, _, rest = text.partition(":")
    index, _, tag = rest.partition(":")
    if version not in ("v1", "v2") or not (index.isascii() and index.isdigit()) or len(index) > 19:
        return None, "is not a token this service issued"
    if version == "v2" and tag != filters:
        return None, "was issued for other filters: page with the filters it was issued for"
    start = int(index)
    return (start, "") if start <= MAX_INDEX else (None, "is not a token this service issued")


@dataclass(frozen=True)
class Page:
    """A page of events and the token for the next one."""

    events: list[pb.AuditEvent]
    next_page_token: str


def list_events(
    conn: Connection, *, contactpoint_id: str, actor: str, page_size: int, page_token: str
) -> Page:
    """Events in log order, filtered by child and/or actor, decoded from the hashed leaf data.

    `page_size` 0 means the default; above the maximum it is lowered to the maximum (AIP-158).
    """
    problems: list[FieldViolation] = []
    if page_size < 0:
        problems.append(FieldViolation("page_size", "must not be negative"))
    filters = _filters_tag(contactpoint_id, actor)
    start, token_problem = _page_start(page_token, filters)
    if start is None:
        problems.append(FieldViolation("page_token", token_problem))
    if contactpoint_id and (problem := contactpoint_id_problem(contactpoint_id)):
        problems.append(FieldViolation("contactpoint_id", problem))
    if len(actor) > MAX_ACTOR:
        problems.append(FieldViolation("actor", f"at most {MAX_ACTOR} characters"))
    if problems or start is None:
        raise InvalidArgument(problems)
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    rows = repository.page_of_leaves(
        conn, contactpoint_id=contactpoint_id, actor=actor, start=start, limit=size + 1
    )
    events = [leafcodec.decode(data, index) for index, data in rows[:size]]
    token = _page_token(rows[size][0], filters) if len(rows) > size else ""
    return Page(events, token)


def inclusion_proof(conn: Connection, *, leaf_index: int, tree_size: int) -> tuple[bytes, list[bytes]]:
    """(leaf data, audit path) for one leaf in the tree of `tree_size`, from O(log n) stored
    nodes (`proofs`)."""
    read = proofs.inclusion(conn, min(leaf_index, MAX_INDEX), min(tree_size, MAX_INDEX + 1))
    current = read.current_size
    problems: list[FieldViolation] = []
    if tree_size == 0 or tree_size > current:
        problems.append(FieldViolation("tree_size", f"between 1 and the current size {current}"))
    if leaf_index >= tree_size:
        problems.append(FieldViolation("leaf_index", "must be smaller than tree_size"))
    if problems:
        raise InvalidArgument(problems)
    assert read.leaf_data is not None and read.proof is not None  # every index below the size is stored
    return read.leaf_data, read.proof


def consistency_proof(conn: Connection, *, first_size: int, second_size: int) -> list[bytes]:
    """The consistency proof between two tree sizes, from O(log n) stored nodes (`proofs`)."""
    read = proofs.consistency(conn, min(first_size, MAX_INDEX + 1), min(second_size, MAX_INDEX + 1))
    current = read.current_size
    problems: list[FieldViolation] = []
    if second_size > current:
        problems.append(FieldViolation("second_size", f"at most the current size {current}"))
    if first_size == 0 or first_size > second_size:
        problems.append(FieldViolation("first_size", "between 1 and second_size"))
    if problems:
        raise InvalidArgument(problems)
    assert read.proof is not None  # sizes within the tree have their proof
    return read.proof
