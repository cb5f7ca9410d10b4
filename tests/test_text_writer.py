"""The fast paths of the streamed tables' text against the straightforward ones.

``csvtext.write_int`` and ``csvtext.write_micros`` write a field's text to a
``librt.strings.StringWriter`` in pieces (no text made for the number, compiled):
they must write ``str(value)`` and ``repr(micros / 1e6)`` (``float_text``'s
field), one field after another in one writer too.
"""

from __future__ import annotations

import random

from librt.strings import StringWriter

from tcpflow_analyzer.csvtext import COMMA, write_int, write_micros


def _edges() -> list[int]:
    return [10**k + d for k in range(20) for d in (-1, 0, 1)] + [1023, 1024, 999_999, 1_000_000]


def test_write_int_writes_str() -> None:
    rng = random.Random(5)
    values = list(range(-50, 5000)) + _edges() + [-v for v in _edges()]
    values += [rng.randrange(0, 2 * 10**9) for _ in range(20000)]
    values += [rng.randrange(-(10**20), 10**20) for _ in range(2000)]
    for value in values:
        out = StringWriter()
        write_int(out, value)
        assert out.getvalue() == str(value), value


def test_write_micros_writes_the_float_text() -> None:
    rng = random.Random(6)
    micros = list(range(1, 3000)) + [m for m in _edges() if 0 < m < 4 * 10**15]
    micros += [
        10**6 * k + d for k in (1, 999, 1000, 1024, 1_795_246_741) for d in range(0, 10**6, 4999)
    ]
    micros += [rng.randrange(1, 4 * 10**15) for _ in range(20000)]
    micros += [rng.randrange(1, 2 * 10**9) for _ in range(20000)]
    for m in micros:
        out = StringWriter()
        write_micros(out, m)
        assert out.getvalue() == repr(m / 1e6), m


def test_fields_written_in_turn_make_the_line() -> None:
    rng = random.Random(7)
    for _ in range(500):
        ints = [rng.randrange(0, 10 ** rng.randrange(1, 12)) for _ in range(5)]
        micros = [rng.randrange(1, 4 * 10**15) for _ in range(5)]
        out = StringWriter()
        for i, m in zip(ints, micros, strict=True):
            write_int(out, i)
            out.append(COMMA)
            write_micros(out, m)
            out.append(COMMA)
        want = "".join(f"{i},{m / 1e6!r}," for i, m in zip(ints, micros, strict=True))
        assert out.getvalue() == want
