"""An index on ``deliveries.decision_id``.

The outbox counts a contact's recent sends (fatigue and frequency caps) through the contact's
decisions; without this index each count walked every sent delivery, so sending slowed down as the
outbox grew (13 ms per check at 5,600 deliveries on SQLite, 0.02 ms with it).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 12:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deliveries_decision_id"), ["decision_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_decision_id"))
