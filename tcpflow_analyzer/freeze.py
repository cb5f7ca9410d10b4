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

1. Its rows are made at once (the caller's ``made``: in ``stream.py``,
   ``rows.RowTexts.made``, the code the normal retirement runs). They can
   depend on the time ``R`` at which the connection is retired in one way only:
   an endpoint still in TIME_WAIT leaves it at its deadline ``d`` if ``R >=
   d``, and otherwise its ``time_wait_s`` runs to ``R``. So the rows are made
   as of now, with what changes at ``d`` kept beside them: the tracker applies
   the expiry, and the end states and the text of the expiry's ``transitions``
   rows (the caller's ``more``) are taken from it; ``time_wait_s`` is
   recomputed for ``min(R, d)`` from the state's parts
   (``findings.state_parts``). Nothing else in a closed connection's rows moves
   with ``R``, except findings whose text measures time up to the capture's end
   (a FIN or SYN never answered): such a connection is not frozen, nor one with
   two TIME_WAIT deadlines pending (a simultaneous close), a previous
   incarnation still attached, or two VLANs.
2. The rows of the other tables are made into their text at once (the
   CSV lines, joined), since only the connection's row can change; the
   connection's line (made with no row dict, cut around the fields that can:
   ``rows.LINE_CUTS``) is kept as the pieces around them. The values of that row the summary reads
   (``SUMMARY_COLUMNS``, a tuple), the pieces
   of its line, the texts and the packed trace (``compact.Trace``) go to a
   spill file as two ``marshal`` records, the trace last, as retiring does
   not read it; memory keeps a :class:`Frozen` record of about 200 bytes in
   the connection's place.
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

import io
import marshal
import os
import tempfile
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

from .compact import Frozen, Trace
from .csvtext import EOL, LineFormat
from .findings import Code, Finding, seconds_from_parts, state_parts
from .report import CONNECTION_COLUMNS, SUMMARY_READS
from .rows import LINE_CUTS
from .segment import Segment
from .states import State

if TYPE_CHECKING:
    from .tracker import Connection, TransitionRecord

__all__ = ["SUMMARY_COLUMNS", "Batch", "RowFreezer", "Spill", "SpillError"]

# The values of a connection's row the summary reads (SUMMARY_COLUMNS), the row's line
# cut around _AT_END's fields (parts that joined make the line, those fields at the odd
# places; none when there is no output but the summary), the text of its rows of
# the other tables by table (lines joined by EOL; a table without rows left out; none
# without output), its findings.
MadeFn = Callable[["Connection"], tuple[tuple[Any, ...], list[str], dict[str, str], list[Finding]]]
# The text of the transition rows of some of a connection's records ("" for none).
MoreFn = Callable[["Connection", list["TransitionRecord"]], str]
# The connection's row (the columns of SUMMARY_COLUMNS), the texts of its rows, its findings.
EmitFn = Callable[[dict[str, Any], dict[str, str], list[Finding]], None]

# The connection row's columns that move with the retirement time (see the module
# docstring), in column order: those RowTexts.made gives its line cut around.
_AT_END: Final = LINE_CUTS

# The columns of a connection's row the summary reads (report.SUMMARY_READS), in column
# order: the order of rows.RowTexts.made's values.
SUMMARY_COLUMNS: Final = tuple(c for c in CONNECTION_COLUMNS if c in SUMMARY_READS)

# A row with the keys the summary reads (copied, then its values set).
_SUMMARY_ROW: Final[dict[str, Any]] = dict.fromkeys(SUMMARY_COLUMNS)

# Findings whose text measures time up to the capture's end.
_TIMED_CODES: Final = frozenset({Code.FIN_RETRANSMIT, Code.SYN_UNANSWERED})


# The most buffers os.pwritev takes at once (IOV_MAX on Linux and the BSDs).
_IOV_MOST: Final = 1024

# The least a read reads ahead, when it does (see Spill).
_AHEAD_LEAST: Final = 16 << 10

# Spill.fetch: records at most this far apart are read together, in reads of at most
# _FETCH_MOST bytes; records longer than _GAP_MOST are left to get().
_GAP_MOST: Final = 64 << 10
_FETCH_MOST: Final = 4 << 20


class SpillError(Exception):
    """A spill file could not be written (the message names the directory)."""


class Spill:
    """Anonymous temporary files of records, read back by (offset, length).

    Records go to the current file until it holds ``file_bytes``; then a new
    one is started. Each file counts its records not yet taken back
    (``release``): a full file whose records are all taken back is closed,
    which frees its disk space. Records are taken back in about the order they
    were written (connections retire a fixed hold after they froze), so the
    disk used follows the connections frozen at one time, not the capture's
    length. An offset carries its file's number in its high bits.

    Records are gathered in memory, as they were put (no copy made), and
    written ``buffer_bytes`` at a time (``os.pwritev``). A record is read back
    from memory if it has not been written yet, else with ``os.pread``, which reads ahead: the
    records that follow, read in about their order too, are then taken from
    what it read (the *window*), one read for many. How far it reads ahead
    adapts: twice as far (up to ``ahead_bytes``) when the next read starts where
    the window ends, or after a window at least half of whose bytes read ahead
    were taken back before the next read; half as far after one that was not,
    so records read in no order cost a read each and little more than their
    own bytes. No file position is kept, so a read between two writes costs no
    seek.
    """

    _SHIFT = 40  # a file holds less than 2**40 bytes

    def __init__(
        self, file_bytes: int = 64 << 20, buffer_bytes: int = 1 << 20, ahead_bytes: int = 1 << 20
    ) -> None:
        self._file_bytes = file_bytes
        self._buffer_bytes = buffer_bytes
        self._ahead_most = ahead_bytes
        self._ahead = min(_AHEAD_LEAST, ahead_bytes)  # bytes the next read reads ahead
        self._window = b""  # bytes read from file _window_number at _window_at
        self._window_number = -1
        self._window_at = 0
        self._window_taken = 0  # bytes of the window's records taken back
        self._window_first = 0  # bytes of the record it was read for
        self._files: dict[int, Any] = {}  # number -> open file
        self._fds: dict[int, int] = {}  # number -> its descriptor
        self._live: dict[int, int] = {}  # number -> records not yet released
        self._current = -1
        self._end = 0  # bytes put in the current file (written or still buffered)
        self._written = 0  # bytes of the current file written to it
        # The current file's records from _written to _end, not written yet: their
        # parts in order, and each record's parts by its place in the file.
        self._parts: list[bytes] = []
        self._pending: dict[int, tuple[bytes, bytes]] = {}
        self._filled = 0  # their bytes
        self.size = 0  # bytes put, all files
        self.peak = 0  # bytes held on disk at most (files not yet closed)
        self._held = 0
        self._sizes: dict[int, int] = {}
        self._fetched: dict[int, bytes] = {}  # offset -> a record read by fetch()
        self._new_file()

    def _new_file(self) -> None:
        self._current += 1
        # Kept open until all its records are released (or close()): no context manager.
        f = tempfile.TemporaryFile(prefix="tcpflow-analyzer-", buffering=0)  # noqa: SIM115
        self._files[self._current] = f
        self._fds[self._current] = f.fileno()
        self._live[self._current] = 0
        self._sizes[self._current] = 0
        self._end = self._written = 0

    def put(self, data: bytes, more: bytes = b"") -> tuple[int, int]:
        """Put the record ``data + more`` (two parts: no copy made to join them)."""
        try:
            return self._put(data, more)
        except OSError as exc:
            where = tempfile.gettempdir()
            raise SpillError(f"cannot write a temporary file in {where}: {exc}") from exc

    def _put(self, data: bytes, more: bytes) -> tuple[int, int]:
        n = len(data) + len(more)
        if self._end and self._end + n > self._file_bytes:
            self._write()
            done = self._current
            self._new_file()
            self._drop_if_empty(done)
        ref = ((self._current << self._SHIFT) | self._end, n)
        self._pending[self._end] = (data, more)
        self._parts.append(data)
        if more:
            self._parts.append(more)
        self._filled += n
        self._end += n
        self._live[self._current] += 1
        self._sizes[self._current] += n
        self.size += n
        self._held += n
        self.peak = max(self.peak, self._held)
        if self._filled >= self._buffer_bytes:
            self._write()
        return ref

    def _write(self) -> None:
        """Write the records not written yet to the current file (no copy made of them)."""
        fd, parts, at = self._fds[self._current], self._parts, self._written
        for first in range(0, len(parts), _IOV_MOST):
            some = parts[first : first + _IOV_MOST]
            size = sum([len(part) for part in some])
            n = os.pwritev(fd, some, at)
            if n < size:  # the rest one piece at a time
                rest = b"".join(some)[n:]
                while rest:
                    done = os.pwrite(fd, rest, at + n)
                    rest, n = rest[done:], n + done
            at += size
        parts.clear()
        self._pending.clear()
        self._filled = 0
        self._written = self._end

    def get(self, ref: tuple[int, int]) -> bytes:
        """The first ``length`` bytes (or more) of the record at ``ref = (offset, length)``."""
        offset, length = ref
        if self._fetched:
            fetched = self._fetched.pop(offset, None)
            if fetched is not None:
                return fetched
        number, at = offset >> self._SHIFT, offset & ((1 << self._SHIFT) - 1)
        if number == self._current and at >= self._written:
            data, more = self._pending[at]
            return data if length <= len(data) else data + more
        start = at - self._window_at
        if number == self._window_number and 0 <= start <= len(self._window) - length:
            self._window_taken += length
            return self._window[start : start + length]
        return self._read(number, at, length)

    def fetch(self, refs: list[tuple[int, int]]) -> None:
        """Read the records at ``refs`` now, in the order of the file, for ``get`` to take
        (those of an earlier call not taken are dropped).

        For records taken back in an order of their own: the connections retired
        at a capture's end come in ``conn_id`` order, which the order they froze in
        (the file's) follows only roughly, so that one at a time each would cost a
        read of its own. Records less than ``_GAP_MOST`` bytes apart are read in one
        read of at most ``_FETCH_MOST`` bytes; records not written yet, and long
        ones, are left to ``get``.
        """
        fetched: dict[int, bytes] = {}
        self._fetched = fetched
        mask = (1 << self._SHIFT) - 1
        current, written = self._current, self._written
        wanted = sorted(
            [
                (offset, length)
                for offset, length in refs
                if length <= _GAP_MOST
                and (offset >> self._SHIFT != current or offset & mask < written)
            ]
        )
        i = 0
        while i < len(wanted):
            offset = wanted[i][0]
            end = offset + wanted[i][1]
            j = i + 1
            while j < len(wanted):
                o, n = wanted[j]
                if o - end > _GAP_MOST or o + n - offset > _FETCH_MOST:
                    break
                if o >> self._SHIFT != offset >> self._SHIFT:
                    break  # another file
                end = max(end, o + n)
                j += 1
            data = self._pread(offset >> self._SHIFT, offset & mask, end - offset, end - offset)
            for o, n in wanted[i:j]:
                fetched[o] = data[o - offset : o - offset + n]
            i = j

    def _pread(self, number: int, at: int, length: int, least: int) -> bytes:
        """``length`` bytes of file ``number`` from ``at``: at least ``least`` of them (it
        holds them)."""
        fd = self._fds[number]
        data: bytes = os.pread(fd, length, at)
        while len(data) < least:
            more: bytes = os.pread(fd, length - len(data), at + len(data))
            if not more:
                raise SpillError(f"a temporary file ended early ({at + len(data)} bytes)")
            data += more
        return data

    def _read(self, number: int, at: int, length: int) -> bytes:
        """A record not in the window, and a new window from it."""
        window = self._window
        went_on = number == self._window_number and at == self._window_at + len(window)
        first = self._window_first  # the bytes read for the record, then those ahead
        ahead, taken = len(window) - first, self._window_taken - first
        if went_on or (ahead and taken * 2 >= ahead):
            self._ahead = min(max(self._ahead * 2, _AHEAD_LEAST), self._ahead_most)
        elif ahead:
            self._ahead //= 2
        # What the file holds (the current one: what was written of it).
        held = self._written if number == self._current else self._sizes[number]
        want = max(length, min(length + self._ahead, held - at))
        data = self._pread(number, at, want, length)
        self._window, self._window_number, self._window_at = data, number, at
        self._window_taken = self._window_first = length
        return data[:length] if len(data) > length else data

    def release(self, ref: tuple[int, int]) -> None:
        """The record at ``ref`` will not be read again."""
        number = ref[0] >> self._SHIFT
        self._live[number] -= 1
        self._drop_if_empty(number)

    def _drop_if_empty(self, number: int) -> None:
        if number != self._current and self._live.get(number) == 0:
            if number == self._window_number:
                self._window, self._window_number = b"", -1
            self._files.pop(number).close()
            del self._fds[number]
            del self._live[number]
            self._held -= self._sizes.pop(number)

    @property
    def files(self) -> int:
        """Files open now."""
        return len(self._files)

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
        self._fds.clear()
        self._parts.clear()
        self._pending.clear()
        self._fetched = {}
        self._filled = 0
        self._window, self._window_number = b"", -1


def _finding_values(found: list[Finding]) -> tuple[tuple[Any, ...], ...]:
    return tuple(
        (
            f.conn_id,
            f.code._value_,
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


# Finding codes by their value (a dict lookup: Code(value) is a call to the enum's class).
_CODES: Final = {code._value_: code for code in Code}


def _findings(values: tuple[tuple[Any, ...], ...]) -> list[Finding]:
    return [Finding(v[0], _CODES[v[1]], v[2], v[3], v[4], v[5], v[6], v[7], v[8]) for v in values]


def _closed(*args: Any) -> Any:
    raise RuntimeError("the freezer is closed")


def _summary_row(summary: tuple[Any, ...]) -> dict[str, Any]:
    """The row the summary reads, of its values (``SUMMARY_COLUMNS``): a copy of a dict
    with its keys (no growing)."""
    row = _SUMMARY_ROW.copy()
    for i in range(len(SUMMARY_COLUMNS)):
        row[SUMMARY_COLUMNS[i]] = summary[i]
    return row


def _nothing() -> None:
    pass


class Batch:
    """Retired connections' results, gathered until ``size`` connections are held.

    ``add`` takes a connection's results (an ``EmitFn``): its row (``rows``),
    its texts (each appended to its table's list in ``lines``) and its
    findings (``findings``); once ``size`` are held it calls ``full()``, which
    is to take them and ``clear`` them. ``close`` drops ``full`` (the owner's
    method: kept, it would make a reference cycle of the two).
    """

    def __init__(self, names: Iterable[str], size: int, full: Callable[[], None]) -> None:
        self.rows: list[dict[str, Any]] = []
        self.lines: dict[str, list[str]] = {name: [] for name in names}
        self.findings: list[Finding] = []
        self._size = size
        self._full = full

    def add(self, row: dict[str, Any], texts: dict[str, str], found: list[Finding]) -> None:
        self.rows.append(row)
        lines = self.lines
        for name, text in texts.items():
            lines[name].append(text)
        if found:
            self.findings.extend(found)
        if len(self.rows) >= self._size:
            self._full()

    def clear(self) -> None:
        self.rows.clear()
        for lines in self.lines.values():
            lines.clear()
        self.findings.clear()

    def close(self) -> None:
        self._full = _nothing


class RowFreezer:
    """Makes the rows of connections the tracker freezes, and emits them when retired.

    ``made(conn)`` makes the values of a connection's row the summary reads,
    its line cut around the fields that change by retirement (``_AT_END``),
    the text of its other rows and its findings (``MadeFn``);
    ``more(conn, records)`` the text of some of its transition records' rows,
    and ``line`` the format of the connection row's line; both None when there
    is no output but the summary. The texts are made at freezing and kept as
    text: only the connection's row changes by retirement, and its line is kept
    cut around the fields that change. ``emit(row, texts, findings)`` takes a
    retired connection's results; the row holds the columns of
    ``SUMMARY_COLUMNS``. ``retire_live`` retires a connection that was not
    frozen.
    """

    def __init__(
        self, made: MadeFn, more: MoreFn | None, line: LineFormat | None, emit: EmitFn
    ) -> None:
        self._made = made
        self._more = more
        self._line = line
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
        summary, fields, texts, found_a = self._made(conn)
        if any(f.code in _TIMED_CODES for f in found_a):
            conn.retired_ns = None
            return None
        trace: Any = conn.trace.dump()
        tw_parts = state_parts(conn, State.TIME_WAIT)
        # Without a deadline nothing in the row moves: a line with no holes; else the
        # pieces around _AT_END's fields.
        pieces: list[str] | None = None
        if self._line is not None:
            pieces = ["".join(fields)] if deadline is None else fields[0::2]
        expired: tuple[str, str, str] | None = None
        if deadline is not None:
            # What retiring at or after the deadline changes (see the module docstring):
            # the expiry's transitions and the end states; time_wait_s from tw_parts.
            before = len(conn.transitions)
            expire(deadline)
            more = self._more
            expired = (
                conn.client.state._value_,
                conn.server.state._value_,
                more(conn, conn.transitions[before:]) if more is not None else "",
            )
        record = (summary, pieces, texts, expired, tw_parts, _finding_values(found_a))
        # The trace last: retiring reads the record alone (marshal.loads ignores what
        # follows), thawing reads both.
        head = marshal.dumps(record)
        ref = self.spill.put(head, marshal.dumps(trace))
        self.frozen += 1
        return Frozen(conn, now_ns, deadline, ref, len(head))

    def retire(self, frozen: Frozen, now_ns: int) -> None:
        """Emit the rows of ``frozen`` retired at ``now_ns`` (>= its freezing time)."""
        record = marshal.loads(self.spill.get(frozen.head_ref))
        summary: tuple[Any, ...] = record[0]
        pieces: list[str] | None = record[1]
        texts: dict[str, str] = record[2]
        self.spill.release(frozen.ref)
        row = _summary_row(summary)
        deadline = frozen.deadline
        fields: list[str] = []  # the line's holes' fields: _AT_END's, or none
        if deadline is not None:
            client, server, more = record[3]
            if now_ns >= deadline:
                row["client_state_at_end"], row["server_state_at_end"] = client, server
                if more:
                    had = texts.get("transitions")
                    texts["transitions"] = had + EOL + more if had else more
            time_wait_s = seconds_from_parts(record[4], min(now_ns, deadline))
            line = self._line
            if line is not None:
                values = (row["client_state_at_end"], row["server_state_at_end"], time_wait_s)
                fields = [line.field(_AT_END[i], values[i]) for i in range(len(_AT_END))]
        if self._line is not None and pieces is not None:
            texts["connections"] = self._line.fill(pieces, fields)
        found = record[5]
        self._emit(row, texts, _findings(found) if found else [])

    def fetch(self, frozen: Iterable[Frozen]) -> None:
        """``frozen`` are to be retired next, in any order: read their records now, together
        (``Spill.fetch``)."""
        self.spill.fetch([f.head_ref for f in frozen])

    def retire_live(self, conn: Connection) -> None:
        """Emit the rows of ``conn``, retired (not frozen)."""
        summary, fields, texts, found = self._made(conn)
        if self._line is not None:
            texts["connections"] = "".join(fields)
        self._emit(_summary_row(summary), texts, found)

    def segments(self, frozen: Frozen) -> list[Segment]:
        """The segments of ``frozen``'s trace, for the tracker to replay when thawing."""
        data = io.BytesIO(self.spill.get(frozen.ref))
        marshal.load(data)  # the record
        trace = marshal.load(data)
        self.spill.release(frozen.ref)
        self.thawed += 1
        return [step.seg for step in Trace.load(trace)]

    def close(self) -> None:
        """Close the spill files; the callbacks are dropped (they are the owner's
        methods: kept, they would make a reference cycle of the two)."""
        self.spill.close()
        self._made = self._emit = _closed
        self._more = None
