"""Reading strategy and campaign YAML into models, with every problem located by line and column.

PyYAML's composer gives a node tree with the marks of every key and value; pydantic gives each error a
location tuple (``("objectives", 0, "target")``); walking the tree along that tuple finds the line. The
functions here take text, not paths, so that they stay pure: the ``app`` layer reads the files.

Anchors and aliases are allowed within bounds: at most ``MAX_ALIASES`` aliases, adding at most
``MAX_ALIAS_EXPANSION`` values once expanded, and none inside the value it names. A file beyond them (a
"billion laughs" alias bomb) is refused while it is composed, before anything walks its expansion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from tummler.core.errors import StrategyError
from tummler.strategy._findings import Finding, Severity
from tummler.strategy._models import ID_PATTERN, Campaign, Strategy

__all__ = [
    "CampaignDocument",
    "SourceMap",
    "StrategyDocument",
    "load_campaign",
    "load_strategy",
    "read_campaign",
    "read_strategy",
]

_ModelT = TypeVar("_ModelT", bound=BaseModel)
Location = tuple[int | None, int | None]

#: Aliases one file may use: a strategy needs a few (one ``limits`` block shared by channels...).
MAX_ALIASES = 1_000
#: Values that aliases may add to a file once expanded; an alias bomb adds billions.
MAX_ALIAS_EXPANSION = 100_000


class _AliasLimitError(Exception):
    """An alias that goes beyond the bounds, with the place of the alias in the file."""

    def __init__(self, message: str, alias: yaml.Event) -> None:
        super().__init__(message)
        self.message = message
        mark = alias.start_mark
        self.location: Location = (None, None) if mark is None else (mark.line + 1, mark.column + 1)


class _BoundedLoader(yaml.SafeLoader):
    """A safe loader that knows, while it composes, how many values each alias stands for.

    PyYAML resolves an alias to the anchored node itself, so a file of a dozen lines can compose to
    a graph of a few dozen nodes that every walk over it (duplicate keys, construction, validation)
    expands to billions. A node's expanded size is known once it is composed, its children coming
    first, so each alias is counted as it is read and the file is refused at the alias that goes
    beyond the bounds. An alias to a node still being composed is inside the value it names: its
    expansion never ends.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._expanded: dict[yaml.Node, int] = {}
        self._aliases = 0
        self._added = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        is_alias = self.check_event(yaml.AliasEvent)
        # The alias's own event, for its place in the file (the stubs leave peek_event untyped).
        alias: yaml.Event | None = self.peek_event() if is_alias else None  # type: ignore[no-untyped-call]
        node = super().compose_node(parent, index)
        if node is None:
            return None
        if alias is not None:
            self._count_alias(node, alias)
        else:
            self._expanded[node] = 1 + sum(self._expanded[child] for child in _children(node))
        return node

    def _count_alias(self, node: yaml.Node, alias: yaml.Event) -> None:
        size = self._expanded.get(node)
        if size is None:
            raise _AliasLimitError(
                "this alias refers to the node that contains it, so its value never ends: "
                "write the value out instead",
                alias,
            )
        self._aliases += 1
        self._added += size
        if self._aliases > MAX_ALIASES:
            raise _AliasLimitError(
                f"more than {MAX_ALIASES:,} aliases; a strategy needs a few: write the values out",
                alias,
            )
        if self._added > MAX_ALIAS_EXPANSION:
            raise _AliasLimitError(
                f"aliases expand too much: up to this one they stand for more than "
                f"{MAX_ALIAS_EXPANSION:,} values (an alias bomb?); use fewer aliases, "
                "or aliases of smaller values",
                alias,
            )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


@dataclass(frozen=True)
class SourceMap:
    """Where each value of one YAML document is: maps a path of keys and indexes to line and column."""

    file: str | None
    root: yaml.Node | None

    def _walk(self, path: Sequence[str | int]) -> tuple[yaml.Node | None, yaml.Node | None]:
        """The deepest value node along ``path`` and, when the last step was a key, its key node."""
        node = self.root
        key_node: yaml.Node | None = None
        for part in path:
            if isinstance(node, yaml.MappingNode):
                found = next(
                    (
                        (k, v)
                        for k, v in node.value
                        if isinstance(k, yaml.ScalarNode) and k.value == str(part)
                    ),
                    None,
                )
                if found is None:
                    break
                key_node, node = found
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if not 0 <= part < len(node.value):
                    break
                key_node, node = None, node.value[part]
            else:
                break
        return node, key_node

    def locate(self, *path: str | int) -> Location:
        """1-based line and column of the value at ``path`` (or of its deepest existing parent)."""
        node, _ = self._walk(path)
        return _mark(node)

    def locate_key(self, *path: str | int) -> Location:
        """1-based line and column of the key at the end of ``path`` (the value's, for an index)."""
        node, key_node = self._walk(path)
        return _mark(key_node if key_node is not None else node)

    def node(self, *path: str | int) -> yaml.Node | None:
        node, _ = self._walk(path)
        return node

    def finding(
        self, severity: Severity, code: str, message: str, *path: str | int, key: bool = False
    ) -> Finding:
        """A finding located at ``path`` of this document."""
        line, column = self.locate_key(*path) if key else self.locate(*path)
        return Finding(severity, code, message, self.file, line, column)


def _mark(node: yaml.Node | None) -> Location:
    if node is None:
        return None, None
    return node.start_mark.line + 1, node.start_mark.column + 1


@dataclass(frozen=True)
class StrategyDocument:
    """A parsed ``strategy.yaml`` with its source map."""

    strategy: Strategy
    source: SourceMap


@dataclass(frozen=True)
class CampaignDocument:
    """A parsed campaign file with its source map."""

    campaign: Campaign
    source: SourceMap


def _compose(text: str, file: str | None) -> tuple[Any, SourceMap | None, list[Finding]]:
    try:
        loader = _BoundedLoader(text)
    except yaml.reader.ReaderError as exc:
        return None, None, [_reader_error(exc, text, file)]
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        return (
            None,
            None,
            [
                Finding(
                    Severity.ERROR,
                    "yaml-syntax",
                    f"YAML syntax error: {problem}; fix the YAML at this line and column",
                    file,
                    line,
                    column,
                )
            ],
        )
    except yaml.reader.ReaderError as exc:
        return None, None, [_reader_error(exc, text, file)]
    except _AliasLimitError as exc:
        finding = Finding(Severity.ERROR, "yaml-aliases", exc.message, file, *exc.location)
        return None, None, [finding]
    except RecursionError:
        message = "the YAML is nested too deeply to read; a strategy needs a few levels only"
        return None, None, [Finding(Severity.ERROR, "yaml-syntax", message, file, 1, 1)]
    except yaml.YAMLError as exc:
        return None, None, [Finding(Severity.ERROR, "yaml-syntax", f"YAML error: {exc}", file)]
    finally:
        loader.dispose()
    source = SourceMap(file, root)
    findings = _duplicate_keys(root, file)
    if not isinstance(data, dict):
        what = "empty" if data is None else f"a {type(data).__name__}"
        findings.append(
            Finding(
                Severity.ERROR,
                "not-a-mapping",
                f"the file is {what}; it must be a mapping of fields (see `tummler strategy schema`)",
                file,
                *_mark(root),
            )
        )
        return None, source, findings
    return data, source, findings


def _reader_error(exc: yaml.reader.ReaderError, text: str, file: str | None) -> Finding:
    """A character YAML does not allow (a control character), located by line and column."""
    before = text[: exc.position]
    line = before.count("\n") + 1
    column = exc.position - (before.rfind("\n") + 1) + 1
    return Finding(
        Severity.ERROR,
        "yaml-syntax",
        f"YAML does not allow the character U+{_code_point(exc.character):04X}; "
        "remove it or save the file as plain UTF-8 text",
        file,
        line,
        column,
    )


def _code_point(character: object) -> int:
    # PyYAML gives the code point for text and the byte for bytes
    if isinstance(character, int):
        return character
    return ord(str(character)[:1] or "\0")


def _duplicate_keys(root: yaml.Node | None, file: str | None) -> list[Finding]:
    """PyYAML keeps the last of two equal keys silently; a strategy file must not hide one.

    Each node is visited once, however many aliases name it: one finding per duplicate in the file.
    """
    findings: list[Finding] = []
    stack = [root]
    visited: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, yaml.Node] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        first = seen[key.value].start_mark.line + 1
                        findings.append(
                            Finding(
                                Severity.ERROR,
                                "duplicate-key",
                                f"key {key.value!r} appears twice (first at line {first}); "
                                "the second would silently replace the first: keep one",
                                file,
                                *_mark(key),
                            )
                        )
                    seen.setdefault(key.value, key)
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return findings


def _dotted(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<document>"


def _validation_findings(error: ValidationError, source: SourceMap, what: str) -> list[Finding]:
    findings = []
    for item in error.errors(include_url=False):
        loc = tuple(p for p in item["loc"] if isinstance(p, int | str))
        is_key = bool(loc) and loc[-1] == "[key]"
        if is_key:
            loc = loc[:-1]
        where = _dotted(loc)
        kind = item["type"]
        ctx = item.get("ctx") or {}
        code = "schema"
        line, column = source.locate_key(*loc) if is_key else source.locate(*loc)
        if kind == "string_pattern_mismatch" and ctx.get("pattern") == ID_PATTERN:
            what_key = f"key {loc[-1]!r}" if is_key else f"{where}: {item['input']!r}"
            message = (
                f"{what_key} is not an id: use lower-case letters, digits, '-' and '_', "
                "starting with a letter (e.g. spring-sale)"
            )
        elif kind == "missing":
            field = str(loc[-1]) if loc else "?"
            parent = _dotted(loc[:-1])
            message = f"{parent if loc[:-1] else what} has no {field!r}; add it"
            if what == "campaign" and loc == ("objective",):
                code = "missing-objective"
                message = (
                    "the campaign has no objective: every campaign must trace to a strategy "
                    "objective; add `objective: <id>` naming one of the strategy's objectives"
                )
            line, column = source.locate(*loc[:-1])
        elif kind == "extra_forbidden":
            message = f"unknown field {where!r}: check its spelling (`tummler strategy schema`)"
            line, column = source.locate_key(*loc)
        elif kind == "expression":
            code = "expression"
            message = f"{where}: {item['msg']}"
            line, column = _expression_position(source, loc, int(ctx.get("column") or 0))
        else:
            message = f"{where}: {item['msg']}"
        findings.append(Finding(Severity.ERROR, code, message, source.file, line, column))
    return findings


def _expression_position(source: SourceMap, loc: Sequence[str | int], column: int) -> Location:
    """Where column ``column`` of an expression is in the file, when its scalar is on one line."""
    node = source.node(*loc)
    line, start = _mark(node)
    if not isinstance(node, yaml.ScalarNode) or start is None or column <= 0:
        return line, start
    if node.style in (None, "'", '"') and node.start_mark.line == node.end_mark.line:
        quote = 0 if node.style is None else 1
        return line, start + quote + column - 1
    return line, start


def _read(
    model: type[_ModelT], text: str, file: str | None, what: str
) -> tuple[_ModelT | None, SourceMap | None, list[Finding]]:
    data, source, findings = _compose(text, file)
    if data is None or source is None:
        return None, source, findings
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        return None, source, findings + _validation_findings(exc, source, what)
    return parsed, source, findings


def read_strategy(
    text: str, file: str | None = None
) -> tuple[StrategyDocument | None, list[Finding]]:
    """Parse ``strategy.yaml`` text; every problem comes back as a finding with its line.

    Returns the document (``None`` when the file cannot be read as a strategy) and the findings.
    """
    parsed, source, findings = _read(Strategy, text, file, "strategy")
    if parsed is None or source is None:
        return None, findings
    return StrategyDocument(parsed, source), findings


def read_campaign(
    text: str, file: str | None = None
) -> tuple[CampaignDocument | None, list[Finding]]:
    """Parse one campaign file's text; every problem comes back as a finding with its line."""
    parsed, source, findings = _read(Campaign, text, file, "campaign")
    if parsed is None or source is None:
        return None, findings
    return CampaignDocument(parsed, source), findings


def _raise_first(findings: list[Finding], file: str | None) -> None:
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if errors:
        details = "; ".join(f"line {f.line}: {f.message}" if f.line else f.message for f in errors)
        raise StrategyError(details, file=file, line=errors[0].line)


def load_strategy(text: str, file: str | None = None) -> Strategy:
    """Parse ``strategy.yaml`` text, raising on the first problem (the Python API's entry point).

    Raises
    ------
    StrategyError
        With the file and line of the first error and every error's message.
    """
    document, findings = read_strategy(text, file)
    _raise_first(findings, file)
    assert document is not None
    return document.strategy


def load_campaign(text: str, file: str | None = None) -> Campaign:
    """Parse one campaign file's text, raising on the first problem.

    Raises
    ------
    StrategyError
        With the file and line of the first error and every error's message.
    """
    document, findings = read_campaign(text, file)
    _raise_first(findings, file)
    assert document is not None
    return document.campaign
