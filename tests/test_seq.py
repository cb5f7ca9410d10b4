"""Properties of sequence-number arithmetic modulo 2**32 (RFC 9293 3.4, RFC 1982)."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from tcpflow_analyzer.seq import seq_add, seq_diff, seq_geq, seq_gt, seq_leq, seq_lt, seq_max

MOD = 1 << 32
HALF = 1 << 31

seqs = st.integers(0, MOD - 1)
# Sequence numbers that wrap soon: where off-by-one and sign errors show.
near_wrap = st.integers(MOD - 2_000, MOD - 1)
any_seq = st.one_of(seqs, near_wrap, st.sampled_from([0, 1, HALF - 1, HALF, HALF + 1]))
# Distances that RFC 1982 orders: strictly less than half the space.
steps = st.integers(1, HALF - 1)
offsets = st.integers(-HALF, HALF - 1)


@given(any_seq, st.integers(-(4 * MOD), 4 * MOD))
def test_seq_add_stays_in_sequence_space(a: int, n: int) -> None:
    assert 0 <= seq_add(a, n) < MOD
    assert seq_add(a, n) == (a + n) % MOD


@given(any_seq, any_seq)
def test_seq_diff_is_a_signed_32_bit_distance(a: int, b: int) -> None:
    d = seq_diff(a, b)
    assert -HALF <= d < HALF
    assert (d - (a - b)) % MOD == 0


@given(any_seq, any_seq)
def test_seq_add_undoes_seq_diff(a: int, b: int) -> None:
    assert seq_add(b, seq_diff(a, b)) == a


@given(any_seq, offsets)
def test_seq_diff_undoes_seq_add(a: int, n: int) -> None:
    assert seq_diff(seq_add(a, n), a) == n


@given(any_seq, any_seq)
def test_seq_diff_is_antisymmetric(a: int, b: int) -> None:
    assume(seq_diff(a, b) != -HALF)  # exactly half way round: RFC 1982 leaves it undefined
    assert seq_diff(b, a) == -seq_diff(a, b)


@given(any_seq, any_seq, seqs)
def test_seq_diff_is_translation_invariant(a: int, b: int, k: int) -> None:
    assert seq_diff(seq_add(a, k), seq_add(b, k)) == seq_diff(a, b)


@given(any_seq, steps)
def test_later_numbers_compare_later_across_the_wrap(a: int, n: int) -> None:
    b = seq_add(a, n)
    assert seq_lt(a, b) and seq_leq(a, b)
    assert seq_gt(b, a) and seq_geq(b, a)
    assert not seq_lt(b, a) and not seq_gt(a, b)
    assert seq_max(a, b) == b and seq_max(b, a) == b


@given(near_wrap, st.integers(0, 2_000))
def test_numbers_just_past_zero_are_after_numbers_just_before_it(a: int, k: int) -> None:
    b = seq_add(a, MOD - a + k)  # wrapped: b == k, smaller than a as a plain integer
    assert b == k < a
    assert seq_lt(a, b) and seq_gt(b, a)
    assert seq_diff(b, a) == MOD - a + k


def test_the_last_number_before_the_wrap_precedes_zero() -> None:
    assert seq_lt(MOD - 1, 0)
    assert seq_gt(0, MOD - 1)
    assert seq_diff(0, MOD - 1) == 1
    assert seq_add(MOD - 1, 1) == 0


@given(any_seq, any_seq)
def test_exactly_one_order_holds(a: int, b: int) -> None:
    assume(seq_diff(a, b) != -HALF)
    orders = [seq_lt(a, b), a == b, seq_gt(a, b)]
    assert orders.count(True) == 1
    assert seq_leq(a, b) == (seq_lt(a, b) or a == b)
    assert seq_geq(a, b) == (seq_gt(a, b) or a == b)


@given(any_seq)
def test_every_number_equals_itself(a: int) -> None:
    assert seq_diff(a, a) == 0
    assert seq_leq(a, a) and seq_geq(a, a)
    assert not seq_lt(a, a) and not seq_gt(a, a)
    assert seq_max(a, a) == a


@given(any_seq, any_seq)
def test_seq_max_is_one_of_its_arguments_and_not_before_either(a: int, b: int) -> None:
    assume(seq_diff(a, b) != -HALF)
    m = seq_max(a, b)
    assert m in (a, b)
    assert seq_geq(m, a) and seq_geq(m, b)
    assert seq_max(b, a) == m


@given(any_seq, steps, steps)
def test_order_is_transitive_within_half_the_space(a: int, n: int, m: int) -> None:
    assume(n + m < HALF)
    b, c = seq_add(a, n), seq_add(a, n + m)
    assert seq_lt(a, b) and seq_lt(b, c) and seq_lt(a, c)
