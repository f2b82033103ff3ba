"""personal data sealed at rest: source records' protobuf and features and the match models become
sealed bytes (`sealed_with` names the data key; NULL until the service seals a row held from
before); FindChild's name keys become keyed hashes with sealed names (rebuilt by the service from
the source records on its first start with data keys); archive dates kept to their month; the
data keys' check values

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The plaintext name keys go; the service files every active record's names again, sealed.
    op.drop_table("match_keys")
    with op.batch_alter_table("source_records") as batch:
        batch.add_column(sa.Column("sealed_with", sa.Integer))
        batch.alter_column("features", type_=sa.LargeBinary, postgresql_using="convert_to(features, 'UTF8')")
    op.create_index("ix_source_records_sealed_with", "source_records", ["sealed_with"])
    with op.batch_alter_table("match_models") as batch:
        batch.add_column(sa.Column("sealed_with", sa.Integer))
        batch.alter_column("model", type_=sa.LargeBinary, postgresql_using="convert_to(model, 'UTF8')")
    op.create_table(
        "match_keys",
        sa.Column("source_id", sa.String(32), sa.ForeignKey("source_records.id"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column(
            "contactpoint_id", sa.String(12), sa.ForeignKey("children.contactpoint_id"), nullable=False
        ),
        sa.Column("dob_hash", sa.BigInteger, nullable=False),
        sa.Column("family_hash", sa.BigInteger, nullable=False),
        sa.Column("postcode_hash", sa.BigInteger, nullable=False),
        sa.Column("gender", sa.Integer, nullable=False),
        sa.Column("names", sa.LargeBinary, nullable=False),
        sa.Column("sealed_with", sa.Integer, nullable=False),
    )
    op.create_index("ix_match_keys_contactpoint_id", "match_keys", ["contactpoint_id"])
    op.create_index("ix_match_keys_dob_hash", "match_keys", ["dob_hash"])
    op.create_index("ix_match_keys_family_hash", "match_keys", ["family_hash"])
    op.create_index("ix_match_keys_postcode_hash", "match_keys", ["postcode_hash"])
    op.create_index("ix_match_keys_sealed_with", "match_keys", ["sealed_with"])
    # An archive date is a birthday (18 or 25 years on): only its month is kept (lifecycle takes
    # the exact date from the sealed records).
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE children SET archive_on = date_trunc('month', archive_on)::date"
            " WHERE archive_on IS NOT NULL"
        )
    else:
        op.execute(
            "UPDATE children SET archive_on = date(archive_on, 'start of month') WHERE archive_on IS NOT NULL"
        )
    op.create_table(
        "data_keys",
        # 0 is the index key; 1, 2, ... the seal keys.
        sa.Column("key_id", sa.Integer, primary_key=True, autoincrement=False),
        # A constant sealed (or hashed) with the key: a wrong key file is caught on start-up.
        sa.Column("check_value", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("sealed data cannot be unsealed by a migration")
