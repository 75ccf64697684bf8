"""The history of each contact's stage and attributes (``contact_changes``), backfilled.

Every contact already in the store gets one row: its current stage and attributes, as its first
known state, since its ``updated_at`` (the last time an import changed it, so the state has held
since then; what it was before is not known). ``source`` says the row came from this migration.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 11:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STAGES = "'prospect', 'subscriber', 'customer', 'advocate', 'lapsed'"


def upgrade() -> None:
    op.create_table(
        "contact_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "contact_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stage_before", sa.String(length=16), nullable=True),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column(
            "attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.CheckConstraint(f"stage IN ({_STAGES})", name=op.f("ck_contact_changes_stage")),
        sa.CheckConstraint(
            f"stage_before IN ({_STAGES})", name=op.f("ck_contact_changes_stage_before")
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_contact_changes_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_changes")),
    )
    with op.batch_alter_table("contact_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_contact_changes_contact_id_changed_at"),
            ["contact_id", "changed_at"],
            unique=False,
        )
    # One set-based statement: a store of millions of contacts is not read into Python.
    op.execute(
        "INSERT INTO contact_changes "
        "(contact_id, changed_at, stage_before, stage, attributes, source) "
        "SELECT id, updated_at, NULL, stage, attributes, 'migration:0002' "
        "FROM contacts ORDER BY id"
    )


def downgrade() -> None:
    with op.batch_alter_table("contact_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contact_changes_contact_id_changed_at"))

    op.drop_table("contact_changes")
