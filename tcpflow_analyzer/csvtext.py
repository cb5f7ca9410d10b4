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
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, cast

from .findings import seconds

__all__ = ["EOL", "LineFormat", "float_text", "needs_quotes", "quoted", "seconds_text"]

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


# float_text's range: repr writes values below 1e-4 with an exponent; below 2**32 two
# doubles are less than 1e-6 apart (the spacing there is at most 2**-21).
_MICRO_LOW: Final = 1e-4
_MICRO_HIGH: Final = 4294967296.0
_MICROS_LOW: Final = 100  # the range in microseconds
_MICROS_HIGH: Final = 4294967296 * 1_000_000
_ZEROS: Final = ("", "0", "00", "000", "0000", "00000")


def float_text(value: float) -> str:
    """``repr(value)``, made from an integer when ``value`` is a whole number of microseconds.

    A time or duration from a pcap's microsecond timestamps is the double ``v``
    nearest to a decimal ``d`` with six decimals (``m / 1e6``: both exact, one
    rounding). ``repr`` writes the shortest decimal that reads back as ``v``
    (the nearest to ``v`` among the shortest). ``d`` reads back as ``v``. Any
    other decimal of at most six decimals is at least 1e-6 from ``d``, so more
    than 1e-6 - ulp/2 from ``v``; between 1e-4 and 2**32 the spacing of doubles
    (ulp) is below 1e-6, so that is more than ulp/2: it reads back as another
    double. So ``repr(v)`` is ``d`` without trailing zeros (one digit kept after
    the point), written here from the integer ``m`` without the shortest-digits
    search (``dtoa``), which took about 7% of a streamed analysis's instructions.
    Other values (nanosecond times, outside the range, not a float of a whole
    number of microseconds) are ``repr``'s.
    """
    if _MICRO_LOW <= value < _MICRO_HIGH:
        micros = int(value * 1e6 + 0.5)
        if micros / 1e6 == value:
            return _micros_text(micros)
    return repr(value)


def seconds_text(ns: int) -> str:
    """``float_text(findings.seconds(ns))``: from the integer alone for whole microseconds.

    ``seconds(ns)`` is the double nearest to ``ns / 10**9``; for a multiple of
    1000 that is ``m / 1e6`` with ``m = ns // 1000``, whose text ``float_text``
    makes from ``m`` (see there) when it is in the range.
    """
    if ns % 1000 == 0:
        micros = ns // 1000
        if _MICROS_LOW <= micros < _MICROS_HIGH:
            return _micros_text(micros)
    return float_text(seconds(ns))


def _micros_text(micros: int) -> str:
    """``micros / 1e6`` as a decimal: at least one digit after the point, no trailing zeros."""
    whole = micros // 1_000_000
    frac = micros - whole * 1_000_000
    if frac == 0:
        return f"{whole}.0"
    width = 6
    while frac % 10 == 0:
        frac //= 10
        width -= 1
    digits = str(frac)
    return f"{whole}.{_ZEROS[width - len(digits)]}{digits}"


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
        self._index: dict[str, int] = {name: i for i, name in enumerate(self.names)}
        self.dtypes: list[str] = list(columns.values())
        self.kinds: list[int] = [_KINDS.get(d, -1) for d in self.dtypes]
        self.header: str = header_line(self.names)
        self._fallback = fallback
        self._texts: dict[str, str] = {}

    def line(self, row: Mapping[str, Any]) -> str:
        """The fields of ``row`` (a dict with every column) joined by commas."""
        return ",".join(self.fields(row))

    def fields(self, row: Mapping[str, Any]) -> list[str]:
        """The field texts of ``row`` (a dict with every column), in column order."""
        names = self.names
        return [self._field(row[names[i]], i) for i in range(len(names))]

    def field(self, name: str, value: object) -> str:
        """The text of ``value`` in column ``name``."""
        return self._field(value, self._index[name])

    def _field(self, value: object, i: int) -> str:
        kind = self.kinds[i]
        # Exact types: a subclass (numpy's float64, str_, bool_) goes to the fallback.
        t = type(value)
        if value is None:
            return ""
        if kind == _TEXT and t is str:
            return self._text(cast(str, value))
        if kind == _INT and t is int:
            return str(value)
        if kind == _FLOAT and t is float:
            return "" if value != value else float_text(cast(float, value))
        if kind == _FLOAT and t is int:
            return float_text(float(cast(int, value)))
        if kind == _BOOL and t is bool:
            return "True" if value else "False"
        return self._fallback(value, self.dtypes[i])

    def split(self, row: Mapping[str, Any], holes: Sequence[str]) -> list[str]:
        """``line(row)`` cut around the fields of ``holes`` (columns in column order).

        ``fill`` puts fields back in the holes: ``fill(split(row, holes),
        [field(h, row[h]) for h in holes]) == line(row)``; another value's
        field gives the line of the row with that value.
        """
        fields = self.fields(row)
        at = [self._index[h] for h in holes]
        pieces: list[str] = []
        start = 0
        for k, i in enumerate(at):
            # The commas beside a hole go with the pieces: none before the first
            # field, none after the last.
            lead = [""] if k else []
            pieces.append(",".join([*lead, *fields[start:i], ""]))
            start = i + 1
        rest = fields[start:]
        pieces.append(",".join(["", *rest]) if at else ",".join(rest))
        return pieces

    @staticmethod
    def fill(pieces: Sequence[str], fields: Sequence[str]) -> str:
        """The line ``split`` cut, with ``fields`` in its holes."""
        out = [pieces[0]]
        for k in range(len(fields)):
            out.append(fields[k])
            out.append(pieces[k + 1])
        return "".join(out)

    def _text(self, value: str) -> str:
        texts = self._texts
        field = texts.get(value)
        if field is None:
            field = quoted(value) if needs_quotes(value) else value
            if len(texts) >= _TEXTS_KEPT:
                texts.clear()
            texts[value] = field
        return field
