"""CSV lines straight from row dicts: the text pandas would write for the typed frame.

Theory of operation
-------------------
The library returns typed DataFrames (``report.typed_frame``) and writes them
with ``report.frame_csv``, which gives ``to_csv``'s text. A streamed analysis
(``stream.py``) has no use for the frames: it turns each row into its line of
text at once, with :class:`LineFormat`, and the lines must be those
``frame_csv(typed_frame(rows, columns))`` writes. Per column dtype:

- ``Int64``: an integer as ``str``; None (``<NA>``) as "".
- ``float64``: the value made a float, as ``repr`` (numpy's and pandas'
  float text); None and NaN (missing) as "".
- ``boolean``: "True" or "False"; None as "".
- ``string``: the text, quoted as the csv module quotes it when it holds a
  delimiter, a quote or a line break; None and "" (missing: an empty text
  reads back from CSV as missing, so the frames make it so) as "".

A value of any other type (a numpy scalar, a float in an integer column, a
number in a text column) is handed to the ``fallback`` the caller gives, which
makes the text through the frame path itself. tests/test_frame_csv.py checks
the equality on every table of every capture and on awkward, odd-typed and
random values.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable, Mapping
from typing import Any, Final, cast

__all__ = ["EOL", "LineFormat", "needs_quotes", "quoted"]

# The line end to_csv writes (and the streamed tables join their lines with).
EOL: Final = os.linesep

_INT: Final = 0
_FLOAT: Final = 1
_BOOL: Final = 2
_TEXT: Final = 3
_KINDS: Final = {"Int64": _INT, "float64": _FLOAT, "boolean": _BOOL, "string": _TEXT}

# Distinct texts remembered with their field text (rules, states, addresses repeat).
_TEXTS_KEPT: Final = 1 << 16


def _csv_quotes(char: str) -> bool:
    """Does the csv module, as pandas sets it up, quote a field for holding ``char``?"""
    out = io.StringIO()
    csv.writer(out, lineterminator=os.linesep).writerow([f"a{char}b", "x"])
    return out.getvalue().startswith('"')


# The characters for which a field is quoted (QUOTE_MINIMAL): the delimiter, the quote
# character and line breaks, asked of the csv module itself (which line breaks it
# quotes for has changed between Python versions).
_NEEDS_QUOTES: Final = re.compile("[" + "".join(c for c in ',"\r\n' if _csv_quotes(c)) + "]")


def needs_quotes(text: str) -> bool:
    """Is ``text`` a field the csv module would quote?"""
    return _NEEDS_QUOTES.search(text) is not None


def quoted(text: str) -> str:
    """A field quoted as the csv module quotes it: in quotes, quotes inside doubled."""
    return '"' + text.replace('"', '""') + '"'


def header_line(names: list[str]) -> str:
    """The header line ``to_csv`` writes for these column names (with its line end)."""
    out = io.StringIO()
    csv.writer(out, lineterminator=os.linesep).writerow(names)
    return out.getvalue()


class LineFormat:
    """Makes the CSV line (without its end) of a row of one table.

    ``columns`` maps each name to its dtype (``report.TABLES``);
    ``fallback(value, dtype)`` gives the field text of a value this class
    does not format itself.
    """

    def __init__(self, columns: Mapping[str, str], fallback: Callable[[Any, str], str]) -> None:
        self.names: list[str] = list(columns)
        self.dtypes: list[str] = list(columns.values())
        self.kinds: list[int] = [_KINDS.get(d, -1) for d in self.dtypes]
        self.header: str = header_line(self.names)
        self._fallback = fallback
        self._texts: dict[str, str] = {}

    def line(self, row: Mapping[str, Any]) -> str:
        """The fields of ``row`` (a dict with every column) joined by commas."""
        fields: list[str] = []
        names, kinds = self.names, self.kinds
        for i in range(len(names)):
            value: object = row[names[i]]
            kind = kinds[i]
            # Exact types: a subclass (numpy's float64, str_, bool_) goes to the fallback.
            t = type(value)
            if value is None:
                fields.append("")
            elif kind == _TEXT and t is str:
                fields.append(self._text(cast(str, value)))
            elif kind == _INT and t is int:
                fields.append(str(value))
            elif kind == _FLOAT and t is float:
                fields.append("" if value != value else repr(value))
            elif kind == _FLOAT and t is int:
                fields.append(repr(float(cast(int, value))))
            elif kind == _BOOL and t is bool:
                fields.append("True" if value else "False")
            else:
                fields.append(self._fallback(value, self.dtypes[i]))
        return ",".join(fields)

    def _text(self, value: str) -> str:
        texts = self._texts
        field = texts.get(value)
        if field is None:
            field = quoted(value) if needs_quotes(value) else value
            if len(texts) >= _TEXTS_KEPT:
                texts.clear()
            texts[value] = field
        return field
