"""`contactpoint audit verify`: recompute the Merkle tree from the stored entries and check it
against every stored signed tree head.

The log is read in one snapshot, streamed in index order, so memory stays flat however long it
is. A head is signed after every batch of appends (one event, or many gathered into one
transaction by the sequencer), so the checks run in log order and the first problem found names
the first bad entry, or the first entry of the batch whose head no longer matches:

- leaf indexes run 0..n-1 without a gap (a deleted or renumbered entry);
- each stored leaf hash is the hash of its data, the data decodes to an event, and the filter
  columns (contactpoint_id, actor, time) and the index of the other children it names are copies
  of it (an edit to data, columns or index: `entry_checks`);
- every stored head's root is the root recomputed from the entries before it, its checkpoint
  text is exactly what was signed, and its signature verifies (reordered, swapped or rewritten
  entries; a forged or edited head);
- the newest head covers every entry (no unsigned tail), no head covers entries that are not
  there, and the tree state that appends build on agrees with the entries (a truncated log).
  An intermediate head deleted loses a checkpoint, not an entry: the heads after it still cover
  every entry before them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, RowMapping, make_url
from sqlalchemy.exc import SQLAlchemyError

from contactpoint.platform import merkle
from contactpoint.platform.checkpoints import Checkpoint, checkpoint_body
from contactpoint.platform.db import is_sqlite, make_engine
from services.audit import repository, state_repository
from services.audit.entry_checks import Bad, EntryChecker
from services.audit.keychain import BrokenChain, KeyChain, key_chain


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of a verification. When not `ok`, `message` says what is wrong and
    `first_bad_index` names the first bad entry (None when no single entry is to blame)."""

    ok: bool
    tree_size: int
    heads_checked: int
    message: str
    first_bad_index: int | None = None
    # The log could not be read at all (the database down, a bad URL): not checked, which is not
    # "NOT intact" (found by probing: an unreachable database was reported as tampering).
    unreadable: bool = False
    # How many of the `tree_size` entries stored were checked before the first problem (all of
    # them when `ok`). Found by probing: a log of 48 entries altered at entry 7 was reported with
    # a tree_size of 7, as if it had been cut there; `tree_size` is now the entries stored.
    entries_checked: int = 0


class _RootMismatch(Bad):
    """A head whose root is not its entries': one of them was altered, or the head itself."""

    def __init__(self, message: str, index: int, size: int) -> None:
        super().__init__(message, index)
        self.size = size


def _check_head(
    head: RowMapping, root: bytes, keys: KeyChain | None, origin: str | None, *, since: int
) -> None:
    """Check the head of size n against the root of entries 0..n-1; the entries signed first by
    this head are since..n-1 (the ones a mismatch can be blamed on)."""
    size = int(head["tree_size"])
    checkpoint = str(head["checkpoint"])
    expected_origin = origin if origin is not None else checkpoint.split("\n", 1)[0]
    blamed = f"entry {since}" if since == size - 1 else f"one of entries {since}..{size - 1}"
    if bytes(head["root_hash"]) != root or checkpoint != checkpoint_body(expected_origin, size, root):
        raise _RootMismatch(
            f"tree head {size} does not match entries 0..{size - 1}: {blamed} was altered, removed or moved",
            since,
            size,
        )
    if keys is not None:
        try:
            keys.key_for(size).verify(bytes(head["signature"]), checkpoint.encode())
        except InvalidSignature:
            raise Bad(f"tree head {size} has a bad signature", since) from None


@dataclass
class _Heads:
    """Heads whose root does not match their entries, until a later head tells which was altered:
    a signed head that matches covers every entry before it as stored, so the heads before it
    were altered themselves, and no entry is to blame (found by probing: one head's root changed
    was reported as "entry 599 was altered", though the heads after it covered the entries). That
    finding is reported only if nothing worse turns up: the walk goes on, so that an entry altered
    and every later head re-signed with the log's key is still caught by the witness's or a
    trusted checkpoint (found by re-probing)."""

    first: _RootMismatch | None = None  # the first of the heads in a row that did not match
    sizes: list[int] = field(default_factory=list)  # theirs (the first few, for the message)
    count: int = 0  # how many in the row
    altered: Bad | None = None  # heads found altered themselves

    def check(
        self, head: RowMapping, root: bytes, keys: KeyChain | None, origin: str | None, *, since: int
    ) -> None:
        try:
            _check_head(head, root, keys, origin, since=since)
        except _RootMismatch as mismatch:
            self.first = self.first or mismatch
            self.count += 1
            if len(self.sizes) < 5:
                self.sizes.append(mismatch.size)
            return
        if self.first is not None and self.altered is None:
            named = ", ".join(map(str, self.sizes)) + (", …" if self.count > len(self.sizes) else "")
            which = f"tree head {named} was" if self.count == 1 else f"tree heads {named} were"
            self.altered = Bad(
                f"{which} altered: not matching the entries they sign, which the signed tree head "
                f"{int(head['tree_size'])} covers as stored",
                None,
            )
        self.first, self.sizes, self.count = None, [], 0

    def anchored(self, anchor: Anchor, root: bytes) -> None:
        """Check the entries so far against a checkpoint kept outside the database. When they do
        not match it, the heads that did not match them either were not altered: the entries
        were, and the first such head names the first one to blame (found by probing: two
        entries swapped were reported against the witness's checkpoint with no entry named)."""
        try:
            _check_anchor(anchor, root)
        except Bad as bad:
            if self.first is None:
                raise
            raise Bad(f"{self.first.message}; {bad.message}", self.first.index) from None

    def unexplained(self) -> None:
        """Heads at the end of the log that did not match, with none after them to tell: an entry
        the first signs is blamed."""
        if self.first is not None:
            raise self.first


@dataclass
class _Progress:
    entries: int = 0
    heads: int = 0
    stored: int = 0  # entries stored, as counted when the walk began


@dataclass(frozen=True)
class Anchor:
    """A checkpoint the log must still hold, unchanged: one kept outside the audit database (the
    trusted checkpoint, the witness's newest) or the tree a key rotation's new key endorsed;
    `what` names it in messages."""

    checkpoint: Checkpoint
    what: str


def _check_anchor(anchor: Anchor, root: bytes) -> None:
    if root != anchor.checkpoint.root:
        raise Bad(
            f"the log is inconsistent with {anchor.what}: its first {anchor.checkpoint.size} entries "
            "have another root (entries were altered, removed or reordered since)",
            None,
        )


def _first_origin(conn: Connection) -> str:
    """The origin line of the log's stored heads (when none was given to check them against)."""
    head = next(repository.stream_tree_heads(conn), None)
    return str(head["checkpoint"]).split("\n", 1)[0] if head is not None else ""


def _walk(
    conn: Connection,
    key: bytes | None,
    origin: str | None,
    done: _Progress,
    anchors: tuple[Anchor, ...] = (),
) -> None:
    """Check the whole log, counting in `done`; Bad at the first problem in log order."""
    done.stored = repository.leaf_count(conn)
    log_origin = origin if origin is not None else _first_origin(conn)
    try:
        keys = key_chain(conn, key, log_origin) if key is not None else None
    except BrokenChain as broken:
        raise Bad(broken.message, broken.index) from None
    if keys is not None:
        endorsed = (
            Anchor(
                Checkpoint(log_origin, size, root),
                f"the tree its key rotation at entry {size} was endorsed over",
            )
            for size, root in keys.anchors
        )
        anchors = (*anchors, *endorsed)
    heads: Iterator[RowMapping] = repository.stream_tree_heads(conn)
    head = next(heads, None)
    peaks: merkle.Peaks = []
    signed = 0  # entries 0..signed-1 are covered by a head checked so far
    entries = EntryChecker(repository.stream_other_children(conn))
    checked = _Heads()
    for row in repository.stream_leaves(conn):
        peaks = merkle.append(peaks, entries.check(done.entries, row))
        done.entries += 1
        size = done.entries
        for anchor in anchors:
            if size == anchor.checkpoint.size:
                checked.anchored(anchor, merkle.root_from_peaks(peaks))
        if head is not None and int(head["tree_size"]) < size:
            raise Bad(f"tree head {int(head['tree_size'])} is out of order", signed)
        if head is not None and int(head["tree_size"]) == size:
            checked.check(head, merkle.root_from_peaks(peaks), keys, origin, since=signed)
            done.heads += 1
            signed = size
            head = next(heads, None)
    checked.unexplained()
    size = done.entries
    entries.finish(size)
    for anchor in anchors:
        if size < anchor.checkpoint.size:
            raise Bad(
                f"the log holds {size} entries, fewer than the {anchor.checkpoint.size} of "
                f"{anchor.what}: entries were removed",
                size,
            )
        if anchor.checkpoint.size == 0:
            _check_anchor(anchor, merkle.EMPTY_ROOT)
    if signed < size:
        raise Bad(f"there is no signed tree head for entries {signed}..{size - 1}", signed)
    if head is not None:
        raise Bad(
            f"tree head {int(head['tree_size'])} covers entries that are not stored (from entry {size})",
            size,
        )
    state = state_repository.read_state(conn)
    if state is None:
        raise Bad("the tree state is missing", None)
    stored_size, stored_peaks = state
    if stored_size != size:
        raise Bad(
            f"the tree state counts {stored_size} entries but {size} are stored",
            min(stored_size, size),
        )
    if stored_peaks != peaks:
        raise Bad("the tree state does not match the entries", None)
    if checked.altered is not None:
        raise checked.altered


def verify_log(
    database_url: str,
    public_key: bytes | None = None,
    *,
    origin: str | None = None,
    trusted: Checkpoint | None = None,
    witnessed: Checkpoint | None = None,
) -> VerifyReport:
    """Check every entry and every signed tree head of the log in `database_url`.

    Signatures are checked against `public_key` (raw 32-byte Ed25519) when it is given; the
    checkpoints' origin line against `origin` when it is given; and that the log still holds,
    unchanged, the entries of `trusted` (a checkpoint an auditor kept) and of `witnessed` (the
    newest checkpoint its witness cosigned): checkpoints kept outside the database, so that
    neither a cut tail nor a log rewritten and re-signed passes.
    """
    anchors = tuple(
        Anchor(checkpoint, what)
        for checkpoint, what in (
            (trusted, "the trusted checkpoint"),
            (witnessed, "the newest checkpoint its witness cosigned"),
        )
        if checkpoint is not None
    )
    for anchor in anchors:
        if origin is not None and anchor.checkpoint.origin != origin:
            return VerifyReport(
                False, 0, 0, f"{anchor.what} is for the log {anchor.checkpoint.origin!r}, not {origin!r}"
            )
    key = public_key
    if key is not None:
        Ed25519PublicKey.from_public_bytes(key)  # a malformed key fails here, not mid-walk
    if (missing := missing_file(database_url)) is not None:
        return VerifyReport(False, 0, 0, f"there is no audit database at {missing}", unreadable=True)
    done = _Progress()
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            if not is_sqlite(database_url):
                # One snapshot for every query, so appends made meanwhile do not look like tampering.
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                _walk(conn, key, origin, done, anchors)
    except Bad as bad:
        stored = max(done.stored, done.entries)
        return VerifyReport(False, stored, done.heads, bad.message, bad.index, entries_checked=done.entries)
    except SQLAlchemyError as exc:
        return VerifyReport(
            False,
            done.entries,
            done.heads,
            f"the audit database cannot be read ({type(exc).__name__})",
            unreadable=done.entries == 0,
        )
    finally:
        engine.dispose()
    unsigned = "" if key is not None else " (signatures not checked: no public key given)"
    against = "".join(f"; consistent with {a.what} of size {a.checkpoint.size}" for a in anchors)
    message = f"{done.entries} entries and {done.heads} signed tree heads checked{against}{unsigned}"
    return VerifyReport(True, done.entries, done.heads, message, entries_checked=done.entries)


def missing_file(database_url: str) -> str | None:
    """The path of a SQLite database file that does not exist (None for any other database)."""
    if not is_sqlite(database_url):
        return None
    path = make_url(database_url).database
    return path if path and path != ":memory:" and not Path(path).exists() else None
