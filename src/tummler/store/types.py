"""Column types shared by every table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = ["JSONDocument", "PrimaryKey", "UTCDateTime", "sqlite_timestamp"]

#: 64-bit ids on PostgreSQL; SQLite needs exactly ``INTEGER PRIMARY KEY`` to alias the rowid.
PrimaryKey = BigInteger().with_variant(Integer(), "sqlite")

#: JSON everywhere, JSONB on PostgreSQL (indexable, compact).
JSONDocument = JSON().with_variant(postgresql.JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    PostgreSQL stores ``timestamptz``; SQLite stores naive UTC text, and the zone is put back on read.
    A naive datetime is refused: a time without a zone is ambiguous, and the store is the system of
    record.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: give times with a time zone (UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stored: datetime = value
        if stored.tzinfo is None:
            return stored.replace(tzinfo=UTC)
        return stored.astimezone(UTC)


def sqlite_timestamp(value: datetime) -> str:
    """The text SQLite stores for ``value`` — for bulk loads that bypass the ORM."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
