"""``csvtext.float_text`` (a float's field, made from its digits where it can) writes
what ``repr`` writes (and "" for NaN, as ``LineFormat`` does).

On the floats it makes itself: microsecond times (``seconds`` of timestamps and
durations, ten digits before the point and six after, whole numbers, the few
below 1e-4 in exponent notation), near powers of two and ten, and the doubles
next to them; on floats of any value and bit pattern, which it leaves to repr.
"""

from __future__ import annotations

import math
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from tcpflow_analyzer.csvtext import float_text
from tcpflow_analyzer.findings import seconds


def _same(value: float) -> None:
    assert float_text(value) == ("" if math.isnan(value) else repr(value))


# Timestamps (seconds since 1970: ten digits before the point) and short durations.
_WHOLE = (
    st.sampled_from([0, 1, 9, 10, 999_999_999, 10**9, 10**9 + 1, 2**30, 2**31, 2**32 - 1])
    | st.integers(0, 4 * 10**9)
    | st.integers(0, 30).map(lambda b: 2**b - 1)
    | st.integers(0, 9).map(lambda e: 10**e - 1)
)


@settings(max_examples=2000, deadline=None)
@given(_WHOLE, st.integers(0, 10**9 - 1), st.sampled_from([1, 10, 1000, 10**5, 10**6]))
def test_float_text_of_times(whole: int, part: int, step: int) -> None:
    """Times in nanoseconds, microseconds and coarser (what ``seconds`` makes)."""
    ns = whole * 10**9 + part // step * step
    _same(seconds(ns))
    _same(ns / 10**9)


@settings(max_examples=2000, deadline=None)
@given(st.integers(0, 4 * 10**15) | st.integers(0, 2000), st.integers(-3, 3))
def test_float_text_of_microseconds_and_their_neighbours(micros: int, ulps: int) -> None:
    """``u / 1e6`` (also the few below 1e-4, in exponent notation) and the doubles
    next to it (which are not the nearest to any ``u``), either sign."""
    value = micros / 1e6
    for _ in range(abs(ulps)):
        value = math.nextafter(value, math.inf if ulps > 0 else -math.inf)
    _same(value)
    _same(-value)


@settings(max_examples=2000, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True) | st.floats(1e-5, 5e9))
def test_float_text_of_any_float(value: float) -> None:
    _same(value)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=50))
def test_float_text_of_any_bit_pattern(bits: list[int]) -> None:
    for b in bits:
        _same(struct.unpack("<d", b.to_bytes(8, "little"))[0])
