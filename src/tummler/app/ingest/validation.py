"""Validating rows against a kind's schema: accepted rows in field order, rejects with reasons."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tummler.app.ingest.attributes import attribute_value, declared_attribute
from tummler.app.ingest.fields import (
    MISSING,
    FieldError,
    one_value,
    shown,
)
from tummler.app.ingest.schemas import FieldSpec, KindSchema

__all__ = ["Reject", "RowValidator", "RowWarning"]


@dataclass(frozen=True, slots=True)
class Reject:
    """One reason a row was not imported: where, which field, the value, why."""

    line: int
    field: str
    value: str
    reason: str


@dataclass(frozen=True, slots=True)
class RowWarning:
    """Something to check about a row that was imported: where, which field, the value, why.

    ``summary`` is the same for every row with this kind of warning: the import's summary counts
    rows by it.
    """

    line: int
    field: str
    value: str
    reason: str
    summary: str


#: Columns of ``tummler export contacts`` that are not attributes: the current consent state (import
#: consent as its log, with times, through ``tummler import consent``) and identities on channels a
#: contacts file does not carry (``tummler import identities``).
_EXPORT_ONLY = re.compile(r"consent_[a-z]+|other_identities|mastodon|bluesky|linkedin|webhook")


class RowValidator:
    """Checks rows laid out as ``columns`` against a kind's schema.

    Built once per header (per chunk for JSON Lines, whose objects may differ in keys); ``validate``
    returns the accepted rows as lists in the schema's field order, plus the rejects. Contact attributes
    (extra columns) are appended as a last element, a dict.

    Validation is column-wise where it pays: a column of text is first given to its field's fast parser
    (a set look-up for enums, ``datetime.fromisoformat`` over the column for times), and only when that
    cannot vouch for every value is the column checked value by value, to find which rows fail and why.
    """

    def __init__(
        self,
        schema: KindSchema,
        columns: Sequence[str],
        attribute_types: Mapping[str, str] | None = None,
    ) -> None:
        self.schema = schema
        position = {name: index for index, name in enumerate(columns)}
        self._plan = [(spec, position.get(spec.name)) for spec in schema.fields]
        known = set(schema.names)
        declared = attribute_types or {}
        #: (attribute, column index, column name, declared type or None)
        self._extras = (
            [
                (
                    name.removeprefix("attributes."),
                    index,
                    name,
                    declared.get(name.removeprefix("attributes.")),
                )
                for index, name in enumerate(columns)
                if name not in known and not _EXPORT_ONLY.fullmatch(name)
            ]
            if schema.extras_to_attributes
            else []
        )

    def validate(
        self, lines: Sequence[int], rows: Sequence[Sequence[Any]]
    ) -> tuple[list[tuple[int, Sequence[Any]]], list[Reject]]:
        """The chunk's accepted ``(line, row)`` pairs and its rejects, column by column."""
        count = len(rows)
        if count == 0:
            return [], []
        rejects: list[Reject] = []
        bad: set[int] = set()
        parsed = self._parse_columns(lines, rows, rejects, bad)
        if self.schema.complete is not None:
            self.schema.complete(parsed)
        plain = self.schema.finish is None and not self.schema.extras_to_attributes
        # Rows that nothing will change stay tuples: one allocation per row fewer.
        assembled: Iterator[Sequence[Any]] = (
            zip(*parsed, strict=True) if plain else map(list, zip(*parsed, strict=True))
        )
        if bad:
            candidates = [
                (lines[number], row) for number, row in enumerate(assembled) if number not in bad
            ]
        else:
            candidates = list(zip(lines, assembled, strict=True))
        if plain:
            return candidates, rejects
        return self._finish_rows(candidates, lines, rows, rejects), rejects

    def _parse_columns(
        self,
        lines: Sequence[int],
        rows: Sequence[Sequence[Any]],
        rejects: list[Reject],
        bad: set[int],
    ) -> list[list[Any]]:
        """Each planned field's parsed column; a required key absent from the whole chunk
        rejects every row."""
        count = len(rows)
        table = list(zip(*rows, strict=True))
        parsed: list[list[Any]] = []
        for spec, index in self._plan:
            if index is None:
                if spec.required:  # JSON Lines: the key is in no object of this chunk
                    rejects.extend(
                        Reject(line, spec.name, "", "missing required value") for line in lines
                    )
                    bad.update(range(count))
                parsed.append([spec.default] * count)
                continue
            parsed.append(self._column(spec, table[index], lines, rejects, bad))
        return parsed

    def _finish_rows(
        self,
        candidates: list[tuple[int, Sequence[Any]]],
        lines: Sequence[int],
        rows: Sequence[Sequence[Any]],
        rejects: list[Reject],
    ) -> list[tuple[int, Sequence[Any]]]:
        """The schema's whole-row check and the extra columns as attributes, row by row."""
        finish = self.schema.finish
        accepted: list[tuple[int, Sequence[Any]]] = []
        where = {line: number for number, line in enumerate(lines)}
        for line, values in candidates:
            row = list(values)  # already a list here: map(list, ...) above; this only types it
            try:
                if finish is not None:
                    finish(row)
                if self.schema.extras_to_attributes:
                    row.append(self._attributes(rows[where[line]]))
            except FieldError as exc:
                rejects.append(Reject(line, exc.field, exc.value, str(exc)))
                continue
            accepted.append((line, row))
        return accepted

    @staticmethod
    def _column(
        spec: FieldSpec,
        column: Sequence[Any],
        lines: Sequence[int],
        rejects: list[Reject],
        bad: set[int],
    ) -> list[Any]:
        types = set(map(type, column))
        if spec.fast is not None and types == {str}:
            try:
                return spec.fast(column, spec.required, spec.default)
            except Exception:
                pass
        nested = not types.isdisjoint((list, tuple, dict))
        values: list[Any] = []
        parse, required, default, name = spec.parse, spec.required, spec.default, spec.name
        for number, raw in enumerate(column):
            if raw is None or raw == "" or raw is MISSING:
                if required:
                    rejects.append(Reject(lines[number], name, "", "missing required value"))
                    bad.add(number)
                values.append(default)
                continue
            try:
                if nested:
                    one_value(raw)
                values.append(parse(raw))
            except FieldError as exc:
                rejects.append(Reject(lines[number], name, shown(raw), str(exc)))
                bad.add(number)
                values.append(None)
        return values

    def _attributes(self, row: Sequence[Any]) -> dict[str, Any]:
        attributes: dict[str, Any] = {}
        for name, index, column, declared in self._extras:
            raw = row[index]
            if raw is None or raw == "" or raw is MISSING:
                continue
            if declared is None:
                value = attribute_value(raw)
            else:
                try:
                    value = declared_attribute(declared, raw)
                except FieldError as exc:
                    raise FieldError(str(exc), field=column, value=shown(raw)) from None
            if value is not None:
                attributes[name] = value
        return attributes
