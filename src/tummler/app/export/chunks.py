"""An export's rows, read chunk by chunk from one consistent snapshot of the store."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection, select

from tummler.app.export.columns import (
    OTHER_IDENTITIES,
    TEXT,
    Column,
    ContactLayout,
    decisions_query,
    events_query,
    identity_column,
    json_text,
)
from tummler.app.export.kinds import IDENTITY_SEPARATOR, ExportKind
from tummler.store.models import (
    ChannelIdentity,
    ConsentEvent,
    Contact,
)

__all__ = ["Chunk", "read_chunks"]


#: A chunk: column name -> Python values, one per row.
Chunk = dict[str, list[Any]]


def read_chunks(
    connection: Connection,
    kind: ExportKind,
    columns: Sequence[Column],
    layout: ContactLayout | None,
    chunk_size: int,
) -> Iterator[Chunk]:
    """An export's rows as chunks of columns, in the order of ``columns``."""
    if layout is not None:
        yield from _contact_chunks(connection, layout, chunk_size)
        return
    query = decisions_query() if kind is ExportKind.DECISIONS else events_query()
    # Options on the statement, not the connection: the side queries of a chunk are not streamed.
    result = connection.execute(query.execution_options(yield_per=chunk_size))
    for rows in result.partitions():
        yield {column.name: [row[i] for row in rows] for i, column in enumerate(columns)}


def _contact_chunks(
    connection: Connection, layout: ContactLayout, chunk_size: int
) -> Iterator[Chunk]:
    """Contacts with their identities and current consent, one chunk of contacts at a time.

    Contacts are streamed in id order; the identities and consent events of a chunk are read with one
    range query each on ``contact_id`` (between the chunk's first and last id), which every backend
    answers from an index and which needs no list of ids as parameters.
    """
    columns = layout.columns()
    query = select(
        Contact.id,
        Contact.external_id,
        Contact.time_zone,
        Contact.locale,
        Contact.stage,
        Contact.attributes,
        Contact.forgotten_at,
    ).order_by(Contact.id)
    attribute_columns = dict(layout.attributes)
    result = connection.execute(query.execution_options(yield_per=chunk_size))
    for rows in result.partitions():
        # Columns are filled by position, and only where there is something: the work grows with
        # the identities, consent events and attributes held, not with contacts × channels.
        n = len(rows)
        chunk: Chunk = {column.name: [None] * n for column in columns}
        position = {row.id: i for i, row in enumerate(rows)}
        forgotten = [row.forgotten_at is not None for row in rows]
        chunk["external_id"] = [row.external_id for row in rows]
        chunk["time_zone"] = [
            "UTC" if forgotten[i] else row.time_zone for i, row in enumerate(rows)
        ]
        chunk["locale"] = [None if forgotten[i] else row.locale for i, row in enumerate(rows)]
        chunk["stage"] = [row.stage for row in rows]

        first, last = rows[0].id, rows[-1].id
        others: dict[int, list[str]] = {}
        for contact_id, channel, address in connection.execute(
            select(ChannelIdentity.contact_id, ChannelIdentity.channel, ChannelIdentity.address)
            .where(ChannelIdentity.contact_id.between(first, last))
            .order_by(ChannelIdentity.contact_id, ChannelIdentity.id)
        ):
            i = position.get(contact_id)
            values = chunk.get(identity_column(channel))
            # A contact or channel that appeared after this export began is left out.
            if i is None or values is None or forgotten[i]:
                continue
            if values[i] is None:
                values[i] = address
            else:
                others.setdefault(i, []).append(f"{channel}:{address}")
        for i, pairs in others.items():
            chunk[OTHER_IDENTITIES][i] = IDENTITY_SEPARATOR.join(pairs)
        # Ordered so that the last event seen per (contact, channel) is its current state.
        for contact_id, channel, status in connection.execute(
            select(ConsentEvent.contact_id, ConsentEvent.channel, ConsentEvent.status)
            .where(ConsentEvent.contact_id.between(first, last))
            .order_by(ConsentEvent.contact_id, ConsentEvent.at, ConsentEvent.id)
        ):
            i = position.get(contact_id)
            values = chunk.get(f"consent_{channel}")
            if i is not None and values is not None and not forgotten[i]:
                values[i] = status

        for i, row in enumerate(rows):
            if forgotten[i] or not row.attributes:
                continue
            for key, value in row.attributes.items():
                column = attribute_columns.get(key)
                if column is not None:
                    chunk[column.name][i] = _attribute_value(value, column.type)
        yield chunk


def _attribute_value(value: Any, arrow_type: pa.DataType) -> Any:
    """An attribute as its column holds it: typed when the column is, otherwise text."""
    if value is None or arrow_type != TEXT or isinstance(value, str):
        return value
    return json_text(value)
