"""A suppression list for forgotten people, the store's own secret for it, and the files to scrub.

* ``store_secrets``: random values the store makes for itself; this migration makes the
  ``suppression`` key (32 random bytes, hex) that the suppression list's digests are keyed with.
* ``suppressions``: keyed one-way digests of a forgotten person's identifiers, so that an import,
  the API or a provider callback cannot bring them back.
* ``personal_files``: the files tummler wrote that may hold personal data (rejects files, exports,
  dry-run outboxes, access-request documents), so that forgetting a person reaches them too.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 10:00:00.000000
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    secrets_table = op.create_table(
        "store_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_store_secrets")),
    )
    op.create_table(
        "suppressions",
        sa.Column("id", _ID, nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
        sa.UniqueConstraint("digest", name=op.f("uq_suppressions_digest")),
    )
    op.create_table(
        "personal_files",
        sa.Column("id", _ID, nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_personal_files")),
        sa.UniqueConstraint("path", name=op.f("uq_personal_files_path")),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        secrets_table,
        [
            {
                "name": "suppression",
                "value": secrets.token_hex(32),
                # SQLite keeps naive UTC text, as tummler.store.types.UTCDateTime writes it
                "created_at": now.replace(tzinfo=None) if _is_sqlite() else now,
            }
        ],
    )


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def downgrade() -> None:
    op.drop_table("personal_files")
    op.drop_table("suppressions")
    op.drop_table("store_secrets")
