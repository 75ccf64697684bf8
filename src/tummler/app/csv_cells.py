"""CSV cells that a spreadsheet shows as text instead of running them as a formula.

Every CSV file tummler writes for people (exports, the rejects file of an import) holds text that
came from outside: names, attributes, handles, the raw value of a rejected row. A spreadsheet that
opens the file takes a cell beginning with ``=``, ``+``, ``-`` or ``@`` for a formula, and a
leading tab or carriage return can hide one, so such a value could run a function in the reader's
spreadsheet (CSV or formula injection). OWASP's rule neutralises the cell with a leading single
quote, which spreadsheets read as "this cell is text" and do not show.

One exception keeps numbers numbers: a cell that is a plain number (``-3.5``, ``+1e3``, or a phone
number in E.164 such as ``+33612345678``) cannot call a function, so it is written as it is. Columns
typed as numbers, booleans or times never hold text and are not touched; the rule is for text
cells.
"""

from __future__ import annotations

import re

__all__ = ["FORMULA_TRIGGERS", "neutralize_formula"]

#: The first characters that make a spreadsheet read a cell as a formula (OWASP's list).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def neutralize_formula(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet would read it as a formula.

    Parameters
    ----------
    text
        One cell's text.

    Returns
    -------
    str
        The text as it is, or ``'`` followed by it when it begins with one of
        ``FORMULA_TRIGGERS`` and is not a plain number.

    Examples
    --------
    >>> neutralize_formula('=HYPERLINK("https://example.org")')
    '\\'=HYPERLINK("https://example.org")'
    >>> neutralize_formula("@SUM(A1:A9)")
    "'@SUM(A1:A9)"
    >>> neutralize_formula("-3.5"), neutralize_formula("+33612345678"), neutralize_formula("a=b")
    ('-3.5', '+33612345678', 'a=b')
    """
    if text.startswith(FORMULA_TRIGGERS) and _PLAIN_NUMBER.fullmatch(text) is None:
        return "'" + text
    return text
