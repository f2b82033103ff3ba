"""Records' tables (SQLAlchemy Core). The Alembic history in migrations/ creates them.

A child is composed from the source records linked to it; the child row itself holds only what
belongs to the registry (its ContactPoint ID, lifecycle, shielding, and where a retired id now
points). Child rows are never deleted, so an ID can never be issued twice.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    false,
)

metadata = MetaData()

# children.status
ACTIVE = "active"
ARCHIVED = "archived"
MERGED = "merged"  # retired by a merge: reads as `merged_into`
PURGED = "purged"  # personal data deleted; the id stays reserved for ever

children = Table(
    "children",
    metadata,
    Column("contactpoint_id", String(12), primary_key=True),
    Column("status", String(16), nullable=False),
    # Shielded by a data manager (or by a merge with a shielded child).
    Column("shielded", Boolean, nullable=False, default=False),
    # Shown shielded while a review task pairs it with a shielded child (fail safe).
    Column("provisional_shield", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The day the record is due to be archived: the 18th (25th) birthday, or a year after death.
    Column("archive_on", Date),
    # When it was archived: the start of that month only (the day is a birthday or the anniversary
    # of a death), and a keyed hash of the day itself, which tells whether a changed record moved
    # the day (`repository.lifecycle.reactivate`) and gives no day to anyone without the keys.
    Column("archived_at", DateTime(timezone=True)),
    Column("archived_check", BigInteger),
    Column("purged_at", DateTime(timezone=True)),
    Column("merged_into", String(12), ForeignKey("children.contactpoint_id")),
)
# Archiving walks the children due in (archive_on, contactpoint_id) order, a batch at a time.
Index(
    "ix_children_status_archive_on_id", children.c.status, children.c.archive_on, children.c.contactpoint_id
)
# The children merged into a child (only the rows that have one).
Index(
    "ix_children_merged_into",
    children.c.merged_into,
    postgresql_where=children.c.merged_into.isnot(None),
    sqlite_where=children.c.merged_into.isnot(None),
)
Index("ix_children_status_archived_at", children.c.status, children.c.archived_at)
# Children archived before the day's keyed check was kept (0012) that have none yet: each start of
# the service looks for them (`old_archives`), and nearly always finds none.
_UNCHECKED = (children.c.status == ARCHIVED) & children.c.archived_check.is_(None)
Index(
    "ix_children_unchecked_archives",
    children.c.contactpoint_id,
    postgresql_where=_UNCHECKED,
    sqlite_where=_UNCHECKED,
)

source_records = Table(
    "source_records",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("organisation", String(64), nullable=False),
    Column("source_system", String(64), nullable=False),
    Column("source_record_id", String(128), nullable=False),
    Column("contactpoint_id", String(12), ForeignKey("children.contactpoint_id"), nullable=False, index=True),
    # The validated, normalised SourceRecord, serialised (protobuf binary), sealed.
    Column("record", LargeBinary, nullable=False),
    # What matching compares (linkage.Features as JSON), sealed.
    Column("features", LargeBinary, nullable=False),
    # The data key `record` and `features` are sealed with (NULL: held from before sealing, until
    # the service seals it on start-up).
    Column("sealed_with", Integer, index=True),
    # The services this record ever told of as sensitive (a JSON list of their names, sealed with
    # `sealed_with`; NULL: none): remembered when the record drops the involvement or is withdrawn,
    # so another source's unflagged copy of the service stays hidden (found by probing).
    Column("sensitive_services", LargeBinary),
    # The blocking keys filed for it (8-byte hashes, repository/writes.pack_hashes): what to
    # delete when it changes, so the keys need no index by source record.
    Column("blocking", LargeBinary, nullable=False),
    # The version of `linkage.blocking` those keys were made by (`blocking.SCHEME`; 1 for rows
    # stored before versions): an older one is rebuilt at start-up (services/records/key_scheme.py).
    Column("key_scheme", Integer, nullable=False, server_default="1"),
    # SHA-256 of the record without as_of: equal hashes mean an unchanged record.
    Column("content_hash", String(64), nullable=False),
    # As the source gave it (None when it did not): orders a child's sources, latest wins.
    Column("as_of", DateTime(timezone=True)),
    Column("withdrawn", Boolean, nullable=False, default=False),
    Column("withdrawn_at", DateTime(timezone=True)),
    # How matching placed this record when it first arrived: outcome, match weight, reasons.
    Column("match_outcome", String(16), nullable=False),
    Column("match_score", Float),
    Column("match_reasons", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Received while its child was one with a shielded child, found so by an unmerge
    # (`unmerge_shields`): the child holding it is shielded after any unmerge, until a data manager
    # unshields that child (which clears the mark).
    Column("kept_shielded", Boolean, nullable=False, server_default=false()),
    UniqueConstraint("organisation", "source_system", "source_record_id", name="uq_source_records_key"),
)
# Whether any record is keyed by an older scheme (asked at every start): nearly every row holds the
# current one, so the index is small and a new row goes to its last page.
Index("ix_source_records_key_scheme", source_records.c.key_scheme)

# Blocking keys of every active source record: finding a new record's candidates is one indexed
# lookup per key, whatever the size of the registry. A dozen rows per record, written and deleted
# only with their source record (repository/source_keys.py), so no foreign key (its per-row check
# was a third of the cost of storing them) and no index by source record (they are deleted by
# their full primary key, from the hashes kept in `source_records.blocking`).
blocking_keys = Table(
    "blocking_keys",
    metadata,
    # A 64-bit hash of the key (repository/keyhash.py): a third the index of the text, and a
    # collision only brings one more candidate to be scored.
    Column("key", BigInteger, primary_key=True, autoincrement=False),
    Column("source_id", String(32), primary_key=True),
)

# Every change to the blocking keys, as the packed hashes it wrote or deleted (repository/
# key_changes.py): a batch that decided before taking its key locks then reads what changed since,
# not its every key again. One counter per shard (a transaction's id picks its shard), so a
# shard's changes are numbered in commit order; a few hundred of each are kept.
key_change_shards = Table(
    "key_change_shards",
    metadata,
    Column("shard", Integer, primary_key=True, autoincrement=False),
    Column("generation", BigInteger, nullable=False),
)
key_changes = Table(
    "key_changes",
    metadata,
    Column("shard", Integer, primary_key=True, autoincrement=False),
    Column("generation", BigInteger, primary_key=True, autoincrement=False),
    Column("hashes", LargeBinary, nullable=False),
)

# One row per name (current first, then former names) of every active source record: FindChild.
# Nothing here is in the clear: the date of birth, and the date of birth with the family name or
# the postcode, are looked up by keyed hash (platform/vault.py); the names FindChild compares are
# sealed.
match_keys = Table(
    "match_keys",
    metadata,
    Column("source_id", String(32), ForeignKey("source_records.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("contactpoint_id", String(12), ForeignKey("children.contactpoint_id"), nullable=False, index=True),
    Column("dob_hash", BigInteger, nullable=False, index=True),
    Column("family_hash", BigInteger, nullable=False, index=True),
    Column("postcode_hash", BigInteger, nullable=False, index=True),
    Column("gender", Integer, nullable=False),
    # Sealed: the family name's key and the given names' keys (repository/search.py).
    Column("names", LargeBinary, nullable=False),
    Column("sealed_with", Integer, nullable=False, index=True),
)

# The data keys this database has seen, each with a check value: a wrong key file is caught on
# start-up, not by the first read. Key 0 is the index key; 1, 2, ... the seal keys.
data_keys = Table(
    "data_keys",
    metadata,
    Column("key_id", Integer, primary_key=True, autoincrement=False),
    Column("check_value", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Idempotency: the first answer to each (organisation, source_system, request_id): each feeding
# system numbers its own requests.
submissions = Table(
    "submissions",
    metadata,
    Column("organisation", String(64), primary_key=True),
    Column("source_system", String(64), primary_key=True, server_default=""),
    Column("request_id", String(128), primary_key=True),
    # SHA-256 of the record as submitted: a retry must send the same record.
    Column("request_hash", String(64), nullable=False),
    Column("contactpoint_id", String(12), ForeignKey("children.contactpoint_id"), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
)

# Possible matches waiting for (or decided by) a data manager.
review_tasks = Table(
    "review_tasks",
    metadata,
    Column("task_id", String(32), primary_key=True),
    Column("new_child", String(12), ForeignKey("children.contactpoint_id"), nullable=False, index=True),
    Column("candidate", String(12), ForeignKey("children.contactpoint_id"), nullable=False, index=True),
    Column("score", Float, nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("status", String(16), nullable=False),  # open | resolved
    Column("held_by", String(128)),
    Column("held_until", DateTime(timezone=True)),
    Column("decision", String(16)),  # LINK | KEEP_APART
    Column("decided_by", String(128)),
    Column("decision_reason", String(500)),
    Column("result_id", String(12)),
    # For each side, the child it named when the task was raised, once a merge has carried that
    # side to the child's survivor (NULL: the child it names): undoing the merge gives the side
    # back to that child alone.
    Column("new_child_was", String(12)),
    Column("candidate_was", String(12)),
    # When the pair was first raised (a task a merge carries keeps its place in the queue).
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
)
# The review queue, walked in order (status, created_at, task_id); and the tasks a data manager
# holds, in that order (only the rows held).
_QUEUE_ORDER = (review_tasks.c.status, review_tasks.c.created_at, review_tasks.c.task_id)
Index("ix_review_tasks_status_created_id", *_QUEUE_ORDER)
Index(
    "ix_review_tasks_held_by",
    review_tasks.c.held_by,
    *_QUEUE_ORDER,
    postgresql_where=review_tasks.c.held_by.isnot(None),
    sqlite_where=review_tasks.c.held_by.isnot(None),
)

# The organisations whose data managers shielded a child (`shielding`): only they lift the shield
# while they hold the child. A shield set on a merged child is remembered on each child merged into
# it, so that it stands on either after an unmerge.
shields = Table(
    "shields",
    metadata,
    Column("contactpoint_id", String(12), ForeignKey("children.contactpoint_id"), primary_key=True),
    Column("organisation", String(128), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Pairs of children a data manager said are different (child_a < child_b): never joined again.
kept_apart = Table(
    "kept_apart",
    metadata,
    Column("child_a", String(12), ForeignKey("children.contactpoint_id"), primary_key=True),
    Column("child_b", String(12), ForeignKey("children.contactpoint_id"), primary_key=True, index=True),
    Column("decided_by", String(128), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Every merge, so that it can be undone exactly.
merges = Table(
    "merges",
    metadata,
    Column("merge_id", String(32), primary_key=True),
    Column("survivor_id", String(12), ForeignKey("children.contactpoint_id"), nullable=False, index=True),
    Column("retired_id", String(12), ForeignKey("children.contactpoint_id"), nullable=False, index=True),
    # The source records that moved from the retired child to the survivor.
    Column("moved_sources", JSON, nullable=False),
    Column("survivor_shielded", Boolean, nullable=False),
    Column("retired_shielded", Boolean, nullable=False),
    Column("merged_by", String(128), nullable=False),
    # The merging data manager's organisation (none for merges before 0015): it may undo its own
    # decision though it holds nothing of the child put back.
    Column("merged_by_organisation", String(128)),
    Column("reason", String(500), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("undone_at", DateTime(timezone=True)),
    Column("undone_by", String(128)),
    Column("undo_reason", String(500)),
    # When each child's record last changed before the merge, and a keyed fingerprint of it then
    # (`merge_snapshots`; none for merges before 0010): an unmerge gives a child whose record is
    # as it was back its update time.
    Column("survivor_updated_at", DateTime(timezone=True)),
    Column("retired_updated_at", DateTime(timezone=True)),
    Column("survivor_fingerprint", String(64)),
    Column("retired_fingerprint", String(64)),
    # The version of every active source record the two children held at the merge, source id to
    # content hash (none for merges before 0014): what either received while they were one child
    # (`unmerge_shields`).
    Column("held_at_merge", JSON),
)

# Matching's m/u weights and name frequencies, re-estimated from the registry (newest row wins).
match_models = Table(
    "match_models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # linkage.MatchModel as JSON (it holds name frequencies), sealed.
    Column("model", LargeBinary, nullable=False),
    Column("sealed_with", Integer),
    Column("pairs", Integer, nullable=False),
    # Used by matching only once activated: a model trained on siblings can over-link.
    Column("active", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
