"""TCP sequence-number arithmetic, modulo 2**32 (RFC 9293 3.4, RFC 1982).

Every comparison of sequence or acknowledgment numbers in the analyzer goes
through this module, so wrap-around is handled in exactly one place. ``a`` is
"before" ``b`` when the signed 32-bit distance from ``a`` to ``b`` is positive.
"""

from __future__ import annotations

from typing import Final

__all__ = ["seq_add", "seq_diff", "seq_geq", "seq_gt", "seq_leq", "seq_lt", "seq_max"]

_MOD: Final = 1 << 32
_HALF: Final = 1 << 31


def seq_add(a: int, n: int) -> int:
    """``a + n`` in sequence space."""
    return (a + n) % _MOD


def seq_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` in sequence space, in [-2**31, 2**31)."""
    d = (a - b) % _MOD
    return d - _MOD if d >= _HALF else d


def seq_lt(a: int, b: int) -> bool:
    """``a < b`` modulo 2**32."""
    return seq_diff(a, b) < 0


def seq_leq(a: int, b: int) -> bool:
    """``a <= b`` modulo 2**32."""
    return seq_diff(a, b) <= 0


def seq_gt(a: int, b: int) -> bool:
    """``a > b`` modulo 2**32."""
    return seq_diff(a, b) > 0


def seq_geq(a: int, b: int) -> bool:
    """``a >= b`` modulo 2**32."""
    return seq_diff(a, b) >= 0


def seq_max(a: int, b: int) -> int:
    """The later of two sequence numbers."""
    return b if seq_lt(a, b) else a
