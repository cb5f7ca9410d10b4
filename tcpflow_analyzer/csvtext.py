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

The lines ``rows.RowTexts`` makes with no row dict are written field by field
to a ``librt.strings.StringWriter``: ``write_int`` and ``write_micros`` write
an integer's and a time's field there in pieces of text made once (three
digits at a time), with no text made for the number itself.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, cast

from librt.strings import StringWriter

__all__ = [
    "COMMA",
    "EOL",
    "LineFormat",
    "field_prefix",
    "float_text",
    "int_text",
    "micros_text",
    "needs_quotes",
    "prefix_records",
    "quoted",
    "text_field",
    "write_int",
    "write_micros",
]

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


def text_field(text: str) -> str:
    """The field of a text, as to_csv writes it (quoted when the csv module would)."""
    return quoted(text) if needs_quotes(text) else text


def field_prefix(text: str) -> bytes:
    """The field of a text with its comma, to go in front of a line (``prefix_records``);
    in UTF-8, a file name that is not (its bytes held as lone surrogates) as its bytes."""
    return (text_field(text) + ",").encode("utf-8", "surrogateescape")


def prefix_records(data: bytes, prefix: bytes, inside: bool = False) -> tuple[bytes, int, bool]:
    """``data`` (CSV lines, each with its end) with ``prefix`` in front of each record.

    A record is a line, but a line that ends inside a quoted field (a field
    holding a line break: an odd count of quotes in the record so far) is
    continued by the next, which gets no prefix (``inside``: the first line
    continues one). Gives the text, how many records begin in it, and whether
    it ends inside a quoted field. When every line end has an even count of
    quotes before it (no field holds a line break: the rule), the prefixes go
    in by one replace; otherwise line by line.
    """
    import numpy as np

    if not data:
        return data, 0, inside
    text = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(text == _LF)
    if not inside and len(ends) and ends[-1] == len(data) - 1:
        quotes = np.flatnonzero(text == _QUOTE)
        if not (np.searchsorted(quotes, ends) & 1).any():
            return prefix + data[:-1].replace(b"\n", b"\n" + prefix) + b"\n", len(ends), False
    out: list[bytes] = []
    count = 0
    for line in data.splitlines(keepends=True):
        if not inside:
            out.append(prefix)
            count += 1
        out.append(line)
        if line.count(b'"') & 1:
            inside = not inside
    return b"".join(out), count, inside


_LF: Final = ord("\n")
_QUOTE: Final = ord('"')


def quoted(text: str) -> str:
    """A field quoted as the csv module quotes it: in quotes, quotes inside doubled."""
    return '"' + text.replace('"', '""') + '"'


# The texts of small integers (counts, ports, flags: most integer fields), made once.
_SMALL_INTS: Final = [str(i) for i in range(1024)]


def int_text(value: int) -> str:
    """The field of an integer (``Int64`` column): ``str(value)``."""
    return _SMALL_INTS[value] if 0 <= value < 1024 else str(value)


# Three digits, with leading zeros; and with trailing zeros dropped too.
_DIGITS: Final = [f"{i:03}" for i in range(1000)]
_DIGITS_LEFT: Final = [f"{i:03}".rstrip("0") for i in range(1000)]


def float_text(value: float) -> str:
    """The field of a float (``float64`` column): its ``repr``; NaN (missing) as "".

    ``repr`` is slow (it looks for the fewest digits that read back as the
    float), and most floats of the tables are times in microseconds (seconds
    with at most six decimals: timestamps, durations). Such a float's text is
    made from its whole microseconds ``u`` when ``value`` is the double nearest
    ``D = u / 10**6`` (``u / 1e6`` is that double: a division of exact doubles,
    rounded once). Then ``D``'s digits read back as ``value``, and ``repr``,
    which writes the fewest digits that do, writes ``D`` (``s`` significant
    digits, ``k <= 6`` after the point, trailing zeros dropped) unless another
    number ``T`` of at most ``s`` digits reads back as ``value`` too. ``T``
    would be within one unit in the last place of ``value`` (``ulp``) of ``D``:
    ``|T - D| <= ulp <= 2**-21`` (``value < 2**32``). If ``T >= 1`` has as many
    digits before the point as ``D`` or more, it has at most ``k`` after it, so
    ``T`` and ``D`` are multiples of ``10**-k >= 10**-6 > ulp``: ``T == D``.
    With fewer, ``T < 10**(m - 1) <= D`` (``m`` digits before the point), so
    ``D`` is a power of ten plus less than ``ulp``: a whole number (``k = 0``,
    whose ``repr`` is ``N.0``). And below 1 ``s <= 6``: up to 15 digits survive
    the trip through a double, so no other such number reads back as
    ``value``. ``repr`` sets the digits out as here: in exponent notation below
    ``1e-4`` (``5e-06``, ``1.5e-05``), with a point up to ``1e16``. Anything
    else takes ``repr``.
    """
    if 0.0 < value < 4e9:  # u < 2**53: an exact double
        micros = int(value * 1e6 + 0.5)  # u, if value is the double nearest u / 10**6
        if float(micros) / 1e6 == value:
            return micros_text(micros)
    return "" if value != value else repr(value)


def micros_text(micros: int) -> str:
    """``float_text`` of the double nearest ``micros / 10**6`` (``0 < micros < 4e15``).

    That double's ``repr`` is the text of ``micros / 10**6`` itself, with no
    more digits than it takes (see ``float_text``), so it is made from the
    integer alone, with no float (``write_micros``).
    """
    out = StringWriter()
    write_micros(out, micros)
    return out.getvalue()


def write_micros(out: StringWriter, micros: int) -> None:
    """Write ``micros_text(micros)`` to ``out`` (``0 < micros < 4e15``): in pieces, with
    no text made for it (compiled, the writer's calls are native)."""
    if micros < 100:
        if micros < 10:
            out.write(_SMALL_INTS[micros])
            out.write("e-06")
        else:
            tens, ones = micros // 10, micros % 10
            out.write(_SMALL_INTS[tens])
            if ones:
                out.append(_POINT)
                out.write(_SMALL_INTS[ones])
            out.write("e-05")
        return
    whole = micros // 1_000_000
    frac = micros % 1_000_000
    if whole < 1024:  # a duration, most likely: not kept as the last time's
        out.write(_SMALL_INTS[whole])
        out.append(_POINT)
    else:
        last = _LAST_WHOLE  # times come in order: most share the last one's whole seconds
        if whole != last.seconds:
            last.seconds = whole
            last.text = f"{whole}."
        out.write(last.text)
    if frac == 0:
        out.append(_ZERO)
        return
    # The six digits after the point, trailing zeros dropped, three at a time.
    low = frac % 1000
    high = frac // 1000
    if low:
        out.write(_DIGITS[high])
        out.write(_DIGITS_LEFT[low])
    else:
        out.write(_DIGITS_LEFT[high])


def write_int(out: StringWriter, value: int) -> None:
    """Write ``int_text(value)`` to ``out``: three digits at a time below 10**9, with no
    text made for it (compiled)."""
    if 0 <= value < 1024:
        out.write(_SMALL_INTS[value])
    elif 0 <= value < 1_000_000_000:
        if value >= 1_000_000:
            out.write(_SMALL_INTS[value // 1_000_000])
            out.write(_DIGITS[value // 1000 % 1000])
        else:
            out.write(_SMALL_INTS[value // 1000])
        out.write(_DIGITS[value % 1000])
    else:
        out.write(str(value))


# Code points written with StringWriter.append.
_ZERO: Final = ord("0")
_POINT: Final = ord(".")
COMMA: Final = ord(",")


class _Whole:
    """The whole seconds of the last time ``micros_text`` wrote, and their text with
    the point."""

    def __init__(self) -> None:
        self.seconds = -1
        self.text = ""


_LAST_WHOLE: Final = _Whole()


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
        if type(row) is dict:  # (a dict's items are read for less)
            items = cast(dict[str, Any], row)
            return [self._field(items[names[i]], i) for i in range(len(names))]
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
            return self.text(cast(str, value))
        if kind == _INT and t is int:
            return int_text(cast(int, value))
        if kind == _FLOAT and t is float:
            return float_text(cast(float, value))
        if kind == _FLOAT and t is int:
            return repr(float(cast(int, value)))
        if kind == _BOOL and t is bool:
            return "True" if value else "False"
        return self._fallback(value, self.dtypes[i])

    def split(self, row: Mapping[str, Any], holes: Sequence[str]) -> list[str]:
        """``line(row)`` cut around the fields of ``holes`` (columns in column order).

        ``fill`` puts fields back in the holes: ``fill(split(row, holes),
        [field(h, row[h]) for h in holes]) == line(row)``; another value's
        field gives the line of the row with that value.
        """
        return self.cut(self.fields(row), [self._index[h] for h in holes])

    @staticmethod
    def cut(fields: list[str], holes: Sequence[int]) -> list[str]:
        """The line of ``fields`` cut around the fields at ``holes`` (places in order), as
        ``split`` cuts it."""
        pieces: list[str] = []
        start = 0
        for i in holes:
            # The commas beside a hole go with the pieces: none before the first
            # field, none after the last.
            before = ",".join(fields[start:i]) + "," if i > start else ""
            pieces.append("," + before if pieces else before)
            start = i + 1
        rest = ",".join(fields[start:])
        pieces.append("," + rest if pieces and start < len(fields) else rest)
        return pieces

    @staticmethod
    def fill(pieces: list[str], fields: list[str]) -> str:
        """The line ``split`` cut, with ``fields`` in its holes (lists: compiled, read
        with no object made for the index)."""
        out = [pieces[0]]
        for k in range(len(fields)):
            out.append(fields[k])
            out.append(pieces[k + 1])
        return "".join(out)

    def text(self, value: str) -> str:
        """The field of a text (``string`` column)."""
        texts = self._texts
        field = texts.get(value)
        if field is None:
            field = text_field(value)
            if len(texts) >= _TEXTS_KEPT:
                texts.clear()
            texts[value] = field
        return field
