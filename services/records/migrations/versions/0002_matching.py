"""matching, data managers and lifecycle: blocking keys, review tasks, kept-apart pairs, merges,
match models; records stored as protobuf with their matching features; archive dates

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import datetime as dt
import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("children") as batch:
        batch.add_column(
            sa.Column("provisional_shield", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("archive_on", sa.Date))
        batch.add_column(sa.Column("purged_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("merged_into", sa.String(12)))
        batch.create_foreign_key("fk_children_merged_into", "children", ["merged_into"], ["contactpoint_id"])
    op.create_index("ix_children_status_archive_on", "children", ["status", "archive_on"])
    op.create_index("ix_children_status_archived_at", "children", ["status", "archived_at"])

    with op.batch_alter_table("source_records") as batch:
        batch.add_column(sa.Column("record", sa.LargeBinary))
        batch.add_column(sa.Column("features", sa.Text))
        batch.add_column(sa.Column("blocking", sa.LargeBinary))
        batch.add_column(sa.Column("match_outcome", sa.String(16), nullable=False, server_default="CREATED"))
        batch.add_column(sa.Column("match_score", sa.Float))
        batch.add_column(sa.Column("match_reasons", sa.JSON))
    op.drop_index("ix_source_records_system_record", "source_records")
    op.create_table(
        "blocking_keys",
        sa.Column("key", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("source_id", sa.String(32), primary_key=True),
    )
    _backfill()
    with op.batch_alter_table("source_records") as batch:
        batch.drop_column("content")
        batch.alter_column("record", existing_type=sa.LargeBinary, nullable=False)
        batch.alter_column("features", existing_type=sa.Text, nullable=False)
        batch.alter_column("blocking", existing_type=sa.LargeBinary, nullable=False)
        batch.alter_column("match_reasons", existing_type=sa.JSON, nullable=False)
        batch.alter_column("match_outcome", existing_type=sa.String(16), server_default=None)
    with op.batch_alter_table("children") as batch:
        batch.alter_column("provisional_shield", existing_type=sa.Boolean, server_default=None)

    op.create_table(
        "review_tasks",
        sa.Column("task_id", sa.String(32), primary_key=True),
        sa.Column("new_child", sa.String(12), sa.ForeignKey("children.contactpoint_id"), nullable=False),
        sa.Column("candidate", sa.String(12), sa.ForeignKey("children.contactpoint_id"), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("held_by", sa.String(128)),
        sa.Column("held_until", sa.DateTime(timezone=True)),
        sa.Column("decision", sa.String(16)),
        sa.Column("decided_by", sa.String(128)),
        sa.Column("decision_reason", sa.String(500)),
        sa.Column("result_id", sa.String(12)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_review_tasks_new_child", "review_tasks", ["new_child"])
    op.create_index("ix_review_tasks_candidate", "review_tasks", ["candidate"])
    op.create_index("ix_review_tasks_status_created", "review_tasks", ["status", "created_at"])
    op.create_table(
        "kept_apart",
        sa.Column("child_a", sa.String(12), sa.ForeignKey("children.contactpoint_id"), primary_key=True),
        sa.Column("child_b", sa.String(12), sa.ForeignKey("children.contactpoint_id"), primary_key=True),
        sa.Column("decided_by", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_kept_apart_child_b", "kept_apart", ["child_b"])
    op.create_table(
        "merges",
        sa.Column("merge_id", sa.String(32), primary_key=True),
        sa.Column("survivor_id", sa.String(12), sa.ForeignKey("children.contactpoint_id"), nullable=False),
        sa.Column("retired_id", sa.String(12), sa.ForeignKey("children.contactpoint_id"), nullable=False),
        sa.Column("moved_sources", sa.JSON, nullable=False),
        sa.Column("survivor_shielded", sa.Boolean, nullable=False),
        sa.Column("retired_shielded", sa.Boolean, nullable=False),
        sa.Column("merged_by", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True)),
        sa.Column("undone_by", sa.String(128)),
        sa.Column("undo_reason", sa.String(500)),
    )
    op.create_index("ix_merges_retired_id", "merges", ["retired_id"])
    op.create_table(
        "match_models",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("pairs", sa.Integer, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def _plain_key_hash(key: str) -> int:
    """A blocking key as this revision stored it: unkeyed (0004 re-keys them once data keys exist)."""
    import hashlib

    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def _backfill() -> None:
    """Records held before matching existed: protobuf, features and blocking keys for each; every
    child's archive date. Uses the code's own functions so that old and new rows agree."""
    from google.protobuf import json_format

    from contactpoint.records.v1 import records_service_pb2 as pb
    from services.records.children import archive_date
    from services.records.linkage import blocking_keys, features_of
    from services.records.repository.writes import pack_hashes

    conn = op.get_bind()
    sources = sa.table(
        "source_records",
        sa.column("id"),
        sa.column("contactpoint_id"),
        sa.column("content", sa.JSON),
        sa.column("record", sa.LargeBinary),
        sa.column("features", sa.Text),
        sa.column("blocking", sa.LargeBinary),
        sa.column("match_reasons", sa.JSON),
        sa.column("withdrawn", sa.Boolean),
        sa.column("as_of", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    keys = sa.table("blocking_keys", sa.column("key"), sa.column("source_id"))
    kids = sa.table("children", sa.column("contactpoint_id"), sa.column("archive_on", sa.Date))
    by_child: dict[str, list[tuple[dt.datetime, pb.SourceRecord]]] = {}
    rows = conn.execute(
        sa.select(
            sources.c.id,
            sources.c.contactpoint_id,
            sources.c.content,
            sources.c.withdrawn,
            sources.c.as_of,
            sources.c.updated_at,
        )
    ).all()
    for row in rows:
        content = row.content if isinstance(row.content, dict) else json.loads(row.content)
        record = json_format.ParseDict(content, pb.SourceRecord(), ignore_unknown_fields=True)
        features = features_of(record)
        hashes = [] if row.withdrawn else [_plain_key_hash(k) for k in sorted(set(blocking_keys(features)))]
        conn.execute(
            sa.update(sources)
            .where(sources.c.id == row.id)
            .values(
                record=record.SerializeToString(deterministic=True),
                features=features.to_json(),
                blocking=pack_hashes(hashes),
                match_reasons=[],
            )
        )
        if not row.withdrawn:
            if hashes:
                conn.execute(sa.insert(keys), [{"key": h, "source_id": row.id} for h in hashes])
            when = row.as_of or row.updated_at
            by_child.setdefault(row.contactpoint_id, []).append((when, record))
    for contactpoint_id, held in by_child.items():
        ordered = [r for _, r in sorted(held, key=lambda pair: str(pair[0]))]
        conn.execute(
            sa.update(kids)
            .where(kids.c.contactpoint_id == contactpoint_id)
            .values(archive_on=archive_date(ordered))
        )


def downgrade() -> None:
    raise NotImplementedError("0002 moves records to protobuf; restore from a backup to go back")
