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

    ``idle_timeout``: a connection not yet closed that sees no segment for this
    many seconds is retired (reported, and its memory freed; a later segment
    on its 4-tuple starts a new connection). A closed one is retired
    ``2 * msl + late_segment_s`` after its last segment: long enough for a
    late retransmitted FIN, answered by an RST once TIME_WAIT is over, to
    still count as this connection's. ``max_connections``: at most this many connections are held
    at once; past it the oldest are retired early, and half-open ones (no
    completed handshake, no data: a SYN flood or a scan) are dropped without a
    row and only counted (``Analysis.expired``), so memory stays bounded.

    ``freeze_after_s``: in a streamed analysis (the command line's ``analyze``),
    a closed connection quiet for this many seconds is *frozen*: its rows are
    made at once and it is kept only as a small record plus its packed trace
    in a spill file (``freeze.py``), until it is retired as above. A late
    segment thaws it (its trace is replayed), so results do not depend on
    this setting; it trades memory for the cost of thawing.
    """

    msl: float = 30.0
    close_wait_linger_s: float = 1.0
    fin_wait_2_linger_s: float = 1.0
    idle_timeout: float = 300.0
    late_segment_s: float = 120.0
    max_connections: int = 50_000
    freeze_after_s: float = 1.0

    def __post_init__(self) -> None:
        if not self.msl > 0:
            raise ValueError(f"msl must be a positive number of seconds, not {self.msl!r}")
        if not self.idle_timeout > 0:
            raise ValueError(f"idle_timeout must be > 0 seconds, not {self.idle_timeout!r}")
        if not self.late_segment_s >= 0:
            raise ValueError(f"late_segment_s must be >= 0 seconds, not {self.late_segment_s!r}")
        if not self.freeze_after_s >= 0:
            raise ValueError(f"freeze_after_s must be >= 0 seconds, not {self.freeze_after_s!r}")
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, not {self.max_connections!r}")
        for name in ("close_wait_linger_s", "fin_wait_2_linger_s"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"{name} must be a number of seconds >= 0, not {value!r}")

    @property
    def closed_hold_ns(self) -> int:
        """How long a closed connection is held after its last segment."""
        return self.time_wait_ns + round(self.late_segment_s * 1_000_000_000)

    @property
    def freeze_after_ns(self) -> int:
        """``freeze_after_s`` in nanoseconds."""
        return round(self.freeze_after_s * 1_000_000_000)

    @property
    def idle_ns(self) -> int:
        """``idle_timeout`` in nanoseconds."""
        return round(self.idle_timeout * 1_000_000_000)

    @property
    def time_wait_ns(self) -> int:
        """Length of TIME_WAIT (2 * MSL) in nanoseconds."""
        return round(2 * self.msl * 1_000_000_000)
