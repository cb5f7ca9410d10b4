"""Analysis settings: one frozen object, passed explicitly to every layer that needs it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Config"]


@dataclass(frozen=True, slots=True)
class Config:
    """Settings for one analysis.

    ``msl``: maximum segment lifetime in seconds; TIME_WAIT lasts ``2 * msl``
    (RFC 9293 3.10.8). The default 30 s gives Linux's fixed 60 s TIME_WAIT.
    """

    msl: float = 30.0

    def __post_init__(self) -> None:
        if not self.msl > 0:
            raise ValueError(f"msl must be a positive number of seconds, not {self.msl!r}")

    @property
    def time_wait_ns(self) -> int:
        """Length of TIME_WAIT (2 * MSL) in nanoseconds."""
        return round(2 * self.msl * 1_000_000_000)
