"""Analysis settings: one frozen object, passed explicitly to every layer that needs it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Config"]


@dataclass(frozen=True, slots=True)
class Config:
    """Settings for one analysis.

    ``msl``: maximum segment lifetime in seconds; TIME_WAIT lasts ``2 * msl``
    (RFC 9293 3.10.8). The default 30 s gives Linux's fixed 60 s TIME_WAIT.

    ``close_wait_linger_s`` / ``fin_wait_2_linger_s``: an endpoint that holds
    CLOSE_WAIT / FIN_WAIT_2 longer than this many seconds draws a
    ``close_wait_linger`` / ``fin_wait_2_linger`` finding (``findings.py``).
    """

    msl: float = 30.0
    close_wait_linger_s: float = 1.0
    fin_wait_2_linger_s: float = 1.0

    def __post_init__(self) -> None:
        if not self.msl > 0:
            raise ValueError(f"msl must be a positive number of seconds, not {self.msl!r}")
        for name in ("close_wait_linger_s", "fin_wait_2_linger_s"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"{name} must be a number of seconds >= 0, not {value!r}")

    @property
    def time_wait_ns(self) -> int:
        """Length of TIME_WAIT (2 * MSL) in nanoseconds."""
        return round(2 * self.msl * 1_000_000_000)
