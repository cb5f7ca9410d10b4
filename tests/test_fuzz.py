"""Fuzzing in CI: mutated real captures never raise anything but CaptureError.

Hypothesis draws a capture from ``captures/`` and a short list of
structure-aware mutations (``tests/fuzz/mutate.py``: flipped bytes, cut files,
wrong lengths in record headers, shuffled, duplicated and dropped records,
gzip) and feeds the result to ``tcpflow_analyzer.analyze()`` through a
BytesIO. The oracle also checks that the frame counts add up. Bounded: 150
examples, no deadline. The long campaign is ``tests/fuzz/campaign.py``; its
crashes are kept as regression tests in ``tests/test_hostile.py``.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .fuzz.mutate import KINDS, Op, apply, check, seeds

SEEDS = seeds()

ops = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    min_size=1,
    max_size=5,
)


def test_seeds_are_the_real_captures() -> None:
    assert len(SEEDS) >= 20
    assert any(name.endswith(".pcapng") for name in SEEDS)
    for data in SEEDS.values():
        check(data)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(name=st.sampled_from(sorted(SEEDS)), mutation=ops)
def test_mutated_capture_raises_only_capture_error(name: str, mutation: list[Op]) -> None:
    check(apply(SEEDS[name], mutation))
