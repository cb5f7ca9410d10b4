"""findings.seconds: nanoseconds to seconds, the float Python's ``ns / 10**9`` gives, bit for bit.

The rows' times (``start_ts``, ``end_ts``, ``ts``, durations) are made by
``seconds`` so that the module compiled by mypyc (whose ``int / int`` rounds
twice above 2**53) writes the times pure Python writes. Each branch is set
against Python's exactly rounded division: where the plain double division is
exact, where the whole seconds and the fraction are added (today's timestamps,
and the quotients next to a halfway point between two doubles, where a second
rounding would show), and the rest.
"""

from __future__ import annotations

import random

from hypothesis import example, given
from hypothesis import strategies as st

from tcpflow_analyzer.findings import seconds

NS = 1_000_000_000
EXACT = 1 << 53  # ints below are exact doubles
LAST = (1 << 62) - 1  # the largest int mypyc holds unboxed


def _same(ns: int) -> bool:
    got, want = seconds(ns), ns / NS
    return type(got) is float and got.hex() == want.hex()


@given(
    st.one_of(
        st.integers(-EXACT, EXACT),  # one division
        st.integers(EXACT, LAST),  # whole seconds plus the fraction (1970-2116)
        st.integers(1_000_000_000 * NS, 2_000_000_000 * NS),  # 2001-2033
        st.integers(LAST, 1 << 100),  # past 2116 (Python's division)
        st.integers(),  # and anything else
    )
)
@example(0)
@example(-1)
@example(EXACT - 1)
@example(EXACT)
@example(-EXACT)
@example(-EXACT - 1)
@example(EXACT + 1)
@example(LAST)
@example(LAST + 1)
@example(1 << 64)
@example(((1 << 53) + 1) * NS + 900_000_000)  # whole seconds no longer an exact double
@example(-(1 << 64))
def test_seconds_is_pythons_true_division(ns: int) -> None:
    assert _same(ns)


def test_seconds_next_to_halfway_points() -> None:
    """Quotients next to (and on) a halfway point between two doubles round as Python's.

    Adding a rounded fraction to the whole seconds rounds twice; it can only go
    wrong where the exact quotient is within the fraction's error of a halfway
    point, so such neighbourhoods are tried in every binade of whole seconds up
    to the year 2116 (2**32 s).
    """
    rng = random.Random(20241121)
    plain_differs = 0
    for _ in range(40_000):
        e = rng.randrange(1, 33)
        q = rng.randrange(1 << (e - 1), 1 << e)  # whole seconds, 2**(e-1) <= q < 2**e
        t = 54 - e  # halfway points near q are multiples of 2**-t
        b = (q << t) + rng.randrange(1 << t)  # one of them (or a double), times 2**t
        near = b * NS >> t  # the nanosecond count just below b / 2**t seconds
        for ns in (near - 1, near, near + 1, near + 2):
            assert _same(ns), ns
            plain_differs += float(ns) / 1e9 != ns / NS
    assert plain_differs  # (where one double division of the two would not do)


def test_seconds_of_realistic_times() -> None:
    rng = random.Random(7)
    for _ in range(100_000):
        ns = rng.randrange(1_500_000_000, 1_900_000_000) * NS + rng.randrange(NS)
        assert _same(ns), ns
        duration = rng.randrange(1 << 50)
        assert _same(duration), duration
