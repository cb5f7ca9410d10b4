"""csvtext.float_text: repr's text of a float, made from integers for whole microseconds."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from tcpflow_analyzer.csvtext import float_text, seconds_text
from tcpflow_analyzer.findings import seconds


@settings(max_examples=3000)
@given(st.integers(min_value=0, max_value=2**33 * 10**6))
def test_whole_microseconds_read_as_repr_writes_them(micros: int) -> None:
    value = seconds(micros * 1000)  # a pcap time (or duration) of microsecond resolution
    assert float_text(value) == repr(value)
    assert seconds_text(micros * 1000) == repr(value)


@settings(max_examples=3000)
@given(st.integers(min_value=0, max_value=2**62))
def test_nanosecond_times_read_as_repr_writes_them(ns: int) -> None:
    value = seconds(ns)
    assert float_text(value) == repr(value)
    assert seconds_text(ns) == repr(value)


@settings(max_examples=3000)
@given(st.floats(allow_nan=False))
def test_any_float_reads_as_repr_writes_it(value: float) -> None:
    assert float_text(value) == repr(value)


def test_the_edges_of_the_range() -> None:
    edges = [1e-4, 2.0**32, 1.0, 0.5, 1e-6, 0.0]
    values = [0.0, -0.0, -1.5, 1e-7, 1e-5, 9.9e-5, 0.000123, 1.0, 10.0, 123456.5]
    for edge in edges:
        below, above = edge, edge
        for _ in range(4):
            below, above = math.nextafter(below, -1.0), math.nextafter(above, math.inf)
            values += [below, above]
        values.append(edge)
    values += [(2**32 * 10**6 + k) / 1e6 for k in range(-5, 6)]
    values += [k / 1e6 for k in range(95, 106)]
    for value in values:
        assert float_text(value) == repr(value), value


def test_seconds_text_at_the_edges_of_the_range() -> None:
    for micros in [0, 1, 99, 100, 101, 10**6, 2**32 * 10**6 - 1, 2**32 * 10**6, 2**33 * 10**6]:
        for ns in (micros * 1000 - 1, micros * 1000, micros * 1000 + 1):
            assert seconds_text(ns) == repr(seconds(ns)), ns
