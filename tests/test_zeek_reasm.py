"""``zeek._Reassembler``'s split storage against a plain list of blocks.

The reassembler keeps its last block in two integers and the others in a list
(so the in-order segment makes no object). Driven by random operations, it
must hold the same blocks and give the same answers as the straightforward
model below: the set of sequence numbers held, whose maximal runs are the
blocks. ``zeek._u64`` must be the 64-bit mask it stands for.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

import tcpflow_analyzer.zeek as zeek

_M64 = 2**64 - 1


class _Model:
    """The reference: the set of sequence numbers held; the blocks are its maximal runs.

    (Blocks that overlap or touch are merged when one is inserted, so they are
    always the runs of what is held.)
    """

    def __init__(self) -> None:
        self.held: set[int] = set()
        self.lrs = 1

    @property
    def blocks(self) -> list[tuple[int, int]]:
        runs: list[tuple[int, int]] = []
        for n in sorted(self.held):
            if runs and runs[-1][1] == n:
                runs[-1] = (runs[-1][0], n + 1)
            else:
                runs.append((n, n + 1))
        return runs

    def insert(self, lo: int, hi: int) -> None:
        self.held.update(range(lo, hi))

    def drop_through(self, seq: int) -> None:
        for lo, hi in self.blocks:
            if hi <= seq:
                self.held.difference_update(range(lo, hi))

    def deliver(self) -> bool:
        if self.lrs not in self.held:
            return False
        while self.lrs in self.held:
            self.lrs += 1
        return True

    def data_size(self) -> int:
        return len(self.held)

    def undelivered_bytes(self) -> int:
        return (max(self.held) + 1 - self.lrs) & _M64 if self.held else 0


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.integers(0, 300), st.integers(1, 60)),
        st.tuples(st.just("drop"), st.integers(0, 400), st.just(0)),
        st.tuples(st.just("deliver"), st.just(0), st.just(0)),
        st.tuples(st.just("lrs"), st.integers(0, 400), st.just(0)),
        st.tuples(st.just("lrs_at"), st.integers(0, 9), st.integers(0, 60)),
        st.tuples(st.just("clear"), st.just(0), st.just(0)),
        st.tuples(st.just("set"), st.integers(0, 300), st.integers(1, 60)),
    ),
    max_size=40,
)


def _agree(r: zeek._Reassembler, m: _Model) -> None:
    assert r.ranges() == m.blocks
    # One representation of each set of blocks: the last in lo/hi, none there when empty.
    if m.blocks:
        assert (r.lo, r.hi) == m.blocks[-1] and r.blocks == m.blocks[:-1]
        assert r.first_lo() == m.blocks[0][0]
    else:
        assert (r.lo, r.hi, r.blocks) == (0, 0, [])
    assert r.lrs == m.lrs
    assert r.data_size() == m.data_size()
    assert r.undelivered_bytes() == m.undelivered_bytes()


@given(ops=_OPS)
def test_split_blocks_behave_as_one_list(ops: list[tuple[str, int, int]]) -> None:
    r, m = zeek._Reassembler(), _Model()
    for op, a, b in ops:
        if op == "insert":
            r.insert(a, a + b)
            m.insert(a, a + b)
        elif op == "drop":
            r.drop_through(a)
            m.drop_through(a)
        elif op == "deliver":
            assert r.deliver() == m.deliver()
        elif op == "lrs":
            r.lrs = m.lrs = a
        elif op == "lrs_at":  # in a block held (or at its end), for deliver to find
            blocks = m.blocks
            if blocks:
                lo, hi = blocks[a % len(blocks)]
                r.lrs = m.lrs = lo + b % (hi - lo + 1)
        elif op == "clear":
            r.clear()
            m.held = set()
        else:
            r.set_ranges([(a, a + b), (a + b + 5, a + 2 * b + 5)])
            m.held = {*range(a, a + b), *range(a + b + 5, a + 2 * b + 5)}
        _agree(r, m)


def test_undelivered_bytes_wraps_as_unsigned() -> None:
    r, m = zeek._Reassembler(), _Model()
    r.insert(10, 20)
    m.insert(10, 20)
    r.lrs = m.lrs = 50  # beyond the last block: negative, as an unsigned 64-bit number
    assert r.undelivered_bytes() == m.undelivered_bytes() == 2**64 - 30


_EDGES = [0, 1, 2**31, 2**32 - 1, 2**62 - 1, 2**62, 2**63, 2**64 - 1, 2**64, 2**65 + 7]


def test_u64_is_the_mask() -> None:
    for n in [*_EDGES, *(-e for e in _EDGES), -1]:
        assert zeek._u64(n) == n & _M64, n


@given(n=st.integers(min_value=-(2**70), max_value=2**70))
def test_u64_is_the_mask_anywhere(n: int) -> None:
    assert zeek._u64(n) == n & _M64
