"""Frozen connections: a closed connection kept as a small record until it is retired.

Theory of operation
-------------------
A closed connection stays in the tracker for its TIME_WAIT window and the
late-segment window after it (``Config.closed_hold_ns``, three minutes by
default), because a late segment on its 4-tuple still belongs to it: a FIN
retransmitted when the final ACK was lost, a stale duplicate, a new SYN that
reopens the 4-tuple. On a busy capture almost every connection held is such a
closed one, so the memory they take is what decides whether memory is flat.

In a streamed analysis (``stream.py``) the tracker *freezes* a closed
connection once it has been quiet for ``Config.freeze_after_s``:

1. Its rows are made at once (``api.connection_rows``, the code the normal
   retirement runs). They can depend on the time ``R`` at which the
   connection is retired in one way only: an endpoint still in TIME_WAIT
   leaves it at its deadline ``d`` if ``R >= d``, and otherwise its
   ``time_wait_s`` runs to ``R``. So the rows are made as of now, with what
   changes at ``d`` kept beside them: the tracker applies the expiry, and the
   end states and the expiry's ``transitions`` rows (``report.record_rows``)
   are taken from it; ``time_wait_s`` is recomputed for ``min(R, d)`` from the
   state's parts (``findings.state_parts``). Nothing else in a closed
   connection's rows moves with ``R``, except findings whose text measures
   time up to the capture's end (a FIN or SYN never answered): such a
   connection is not frozen, nor one with two TIME_WAIT deadlines pending
   (a simultaneous close), a previous incarnation still attached, or two
   VLANs.
2. The rows and the packed trace (``compact.Trace``) go to a spill file as
   one ``marshal`` record; memory keeps a :class:`Frozen` record of about
   200 bytes in the connection's place.
3. Retired at ``R``, the record emits its rows as they are at ``R`` (``R``
   before the freezing time, possible when timestamps go backwards, thaws it
   first). A segment on its 4-tuple *thaws* it:
   the tracker rebuilds the connection by replaying the trace (the same
   segments through the same code give the same state) and goes on as if it
   had never been frozen; the rows made at freezing are dropped.

The equality of a streamed analysis with freezing at once
(``freeze_after_s=0``) and the keep-everything path is tested on every
capture in ``captures/`` and ``../shared/corpus``.
"""

from __future__ import annotations

import marshal
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .compact import Frozen, Trace
from .findings import Code, Finding, seconds_from_parts, state_parts
from .report import record_rows
from .segment import Segment
from .states import State

if TYPE_CHECKING:
    from .tracker import Connection

__all__ = ["RowFreezer", "Spill"]

Rows = dict[str, list[dict[str, Any]]]
RowsFn = Callable[["Connection"], tuple[Rows, list[Finding]]]
EmitFn = Callable[[Rows, list[Finding]], None]

# Findings whose text measures time up to the capture's end.
_TIMED_CODES = frozenset({Code.FIN_RETRANSMIT, Code.SYN_UNANSWERED})


class Spill:
    """An anonymous temporary file of records, read back by (offset, length)."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="tcpflow-analyzer-")  # noqa: SIM115 (kept open)
        self._end = 0

    def put(self, data: bytes) -> tuple[int, int]:
        self._file.seek(self._end)
        self._file.write(data)
        ref = (self._end, len(data))
        self._end += len(data)
        return ref

    def get(self, ref: tuple[int, int]) -> bytes:
        self._file.seek(ref[0])
        return self._file.read(ref[1])

    @property
    def size(self) -> int:
        return self._end

    def close(self) -> None:
        self._file.close()


def _finding_values(found: list[Finding]) -> tuple[tuple[Any, ...], ...]:
    return tuple(
        (
            f.conn_id,
            f.code.value,
            f.endpoint,
            f.frame,
            f.ts_ns,
            f.evidence_frames,
            f.rfc,
            f.detail,
            f.weight,
        )
        for f in found
    )


def _findings(values: tuple[tuple[Any, ...], ...]) -> list[Finding]:
    return [Finding(v[0], Code(v[1]), *v[2:]) for v in values]


class RowFreezer:
    """Makes the rows of connections the tracker freezes, and emits them when retired."""

    def __init__(self, rows: RowsFn, emit: EmitFn) -> None:
        self._rows = rows
        self._emit = emit
        self.spill = Spill()
        self.frozen = 0  # connections frozen
        self.thawed = 0  # frozen connections a later segment brought back

    def freeze(
        self,
        conn: Connection,
        now_ns: int,
        deadline: int | None,
        expire: Callable[[int], None],
    ) -> Frozen | None:
        """Freeze ``conn`` (expiries up to ``now_ns`` applied); None to keep it live.

        ``deadline`` is the one TIME_WAIT deadline still pending, if any;
        ``expire(d)`` applies the expiries due at ``d`` to ``conn``.
        """
        conn.retired_ns = now_ns
        rows_a, found_a = self._rows(conn)
        if any(f.code in _TIMED_CODES for f in found_a):
            conn.retired_ns = None
            return None
        trace = conn.trace.dump()
        tw_parts = state_parts(conn, State.TIME_WAIT)
        expired: tuple[str, str, list[dict[str, Any]]] | None = None
        if deadline is not None:
            # What retiring at or after the deadline changes (see the module docstring):
            # the expiry's transitions and the end states; time_wait_s from tw_parts.
            before = len(conn.transitions)
            expire(deadline)
            expired = (
                conn.client.state.value,
                conn.server.state.value,
                record_rows(conn, conn.transitions.tail(before)),
            )
        record: Any = (trace, rows_a, expired, tw_parts, _finding_values(found_a))
        ref = self.spill.put(marshal.dumps(record))
        self.frozen += 1
        return Frozen(conn, now_ns, deadline, ref)

    def retire(self, frozen: Frozen, now_ns: int) -> None:
        """Emit the rows of ``frozen`` retired at ``now_ns`` (>= its freezing time)."""
        _, rows, expired, tw_parts, found = marshal.loads(self.spill.get(frozen.ref))
        if frozen.deadline is not None:
            row = rows["connections"][0]
            if now_ns >= frozen.deadline:
                row["client_state_at_end"], row["server_state_at_end"], more = expired
                rows["transitions"].extend(more)
            row["time_wait_s"] = seconds_from_parts(tw_parts, min(now_ns, frozen.deadline))
        self._emit(rows, _findings(found))

    def segments(self, frozen: Frozen) -> list[Segment]:
        """The segments of ``frozen``'s trace, for the tracker to replay when thawing."""
        trace = marshal.loads(self.spill.get(frozen.ref))[0]
        self.thawed += 1
        return [step.seg for step in Trace.load(trace)]

    def close(self) -> None:
        self.spill.close()
