"""Compact storage for a connection's replayed trace.

Theory of operation
-------------------
A connection keeps every segment it saw, with both endpoints' states after it
(``tracker.Step``): the findings (``findings.py``) and the ladder diagram
(``ladder.py``) read the whole story when the connection is retired. Kept as
objects, a step costs about 640 bytes (the ``Segment``, its ``TcpOptions``, the
``Step`` and the integers they point to), and a closed connection is held for
its TIME_WAIT window and the late-segment window after it: on a busy capture
that is most of the memory.

:class:`Trace` stores each step as one fixed-size binary record (48 bytes),
written as six little-endian 64-bit words to a ``librt.strings.BytesWriter``
(natively when compiled: ``write_i64_le`` takes a machine integer, where a
``struct`` call boxed every argument): the frame,
the time, and four that each hold a 32-bit number (sequence, acknowledgment,
TSval, TSecr) with a 32-bit one or the small fields (flags, window, the bits
below, both states' indices, the checksum verdict, the options kind) above it.
The records are read from one ``bytes`` copy of the writer's, made when first
read after an append, a word at a time with ``librt.strings.read_i64_le``
(natively when compiled: no integer object made per field, where a ``struct``
call made one). What a record does not hold is
rebuilt from the connection:
the addresses and ports from the direction bit and the connection's two
endpoints, the VLAN tags from a bit saying whether the segment came on the
connection's own tags or on the other direction's (``Connection.reverse_vlan``:
a connection's two directions can be routed on different VLANs).
TCP options that are only a timestamp pair, Linux's usual case, are held in the
record; anything else (a SYN's MSS and window scale, SACK blocks) goes into a
side table keyed by the step's index.

Reading (``len``, indexing, slicing, iteration) materializes ``Step`` objects
once and caches them until :meth:`Trace.release`; a trace read again after
that is rebuilt. The rebuilt objects compare equal, field by field, to the ones
appended. The detectors, which read a few steps of most connections (its FINs
and what follows them), read :meth:`Trace.lazy` instead: each step built when
first read (a trace read again before its release is given the whole list),
and the flags and directions of all of them straight from the records
(``flags``, ``directions``), as their sequence and acknowledgment numbers and
payload lengths (one step's: ``seq_ack_len``; all of them: ``numbers``).

:class:`Frozen` is what stands in the tracker's tables for a closed connection
whose rows and trace went to the freezer's spill file (``freeze.py``).
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Iterator, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, Final, overload

from librt.strings import BytesWriter, read_i64_le, write_i64_le

from .segment import Segment, TcpOptions
from .states import State

if TYPE_CHECKING:
    from .tracker import Connection, Step

__all__ = ["Frozen", "LazySteps", "Trace"]

# frame, ts_ns, seq, payload_len, ack, ip_len, ts_val, flags, window, bits, ts_ecr,
# client state, server state, checksum (-1 unknown / 0 bad / 1 good), options kind.
_RECORD: Final = struct.Struct("<qqIIIIIBHBIBBbB")
# The same record as written: six little-endian 64-bit words, the last four of two
# halves each (_HIGH the shift of the upper half, _HIGH_* those of the fields in it).
_HIGH: Final = 32
_LOW32: Final = 0xFFFFFFFF
_WRAP: Final = 1 << 64
_HIGH_WINDOW: Final = 8  # above ts_val: flags, window, bits
_HIGH_BITS: Final = 24
_HIGH_SERVER_STATE: Final = 8  # above ts_ecr: client state, server state, checksum, kind
_HIGH_CHECKSUM: Final = 16
_HIGH_KIND: Final = 24
# Where a record's flags and direction bits are: one byte each, read for all records
# at once by a strided slice of the buffer.
_FLAGS_AT: Final = struct.calcsize("<qqIIIII")
_BITS_AT: Final = struct.calcsize("<qqIIIIIBH")

# Where a record's sequence number is (its payload length above it, then the
# acknowledgment number and the IP length).
_SEQ_AT: Final = struct.calcsize("<qq")

_SIZE: Final = _RECORD.size
# The records as 32-bit words (numbers): the array type code of that size, whether its
# byte order is not the records' (little-endian), a record's words, its seq's word
# (payload_len's and ack's follow it).
_U32: Final = next(code for code in ("I", "L") if array(code).itemsize == 4)
_SWAP: Final = sys.byteorder != "little"
_WORDS: Final = _SIZE // 4
_SEQ_WORD: Final = _SEQ_AT // 4

# Final, as every module constant read per step: compiled, a Final one is a C
# variable, any other a lookup in the module's dict each time it is read.
_STATES: Final = tuple(State)
_STATE_INDEX: Final = {s: i for i, s in enumerate(_STATES)}
_ESTABLISHED: Final = State.ESTABLISHED
_ESTABLISHED_INDEX: Final = _STATE_INDEX[State.ESTABLISHED]

# bits
_FROM_CLIENT: Final = 1
_REVERSE_VLAN: Final = 2
_CAPLEN_SHORT: Final = 4

# A bits byte -> its _FROM_CLIENT bit alone (bytes.translate).
_FROM_CLIENT_ONLY: Final = bytes(b & _FROM_CLIENT for b in range(256))

# options kinds
_NO_OPTIONS: Final = 0
_TIMESTAMPS_ONLY: Final = 1
_OTHER_OPTIONS: Final = 2

# The checksum verdict's byte of an unknown one (-1 as a signed byte); 0 bad, 1 good.
_CHECK_UNKNOWN: Final = 0xFF


class Trace(Sequence["Step"]):
    """A connection's steps, packed; reads as a sequence of ``Step``."""

    __slots__ = (
        "_bytes",
        "_cache",
        "_client",
        "_lazy",
        "_n",
        "_options",
        "_rev",
        "_server",
        "_vlan",
        "_writer",
    )

    def __init__(
        self, client: tuple[bytes, int], server: tuple[bytes, int], vlan: tuple[int, ...]
    ) -> None:
        self._client = client
        self._server = server
        self._vlan = vlan
        self._rev = vlan  # the other direction's tags, when a segment came on them
        self._writer = BytesWriter()
        self._bytes: bytes | None = b""  # the records written, while no more are
        self._n = 0
        self._options: dict[int, TcpOptions] | None = None
        self._cache: list[Step] | None = None
        self._lazy: LazySteps | None = None

    def add(
        self,
        seg: Segment,
        from_client: bool,
        client_state: State,
        server_state: State,
    ) -> None:
        """Append one step (the segment and both states after it)."""
        vlan = seg.vlan
        if vlan is self._vlan or vlan == self._vlan:
            bits = _FROM_CLIENT if from_client else 0
        else:
            self._rev = vlan
            bits = (_FROM_CLIENT | _REVERSE_VLAN) if from_client else _REVERSE_VLAN
        if seg.caplen_short:
            bits |= _CAPLEN_SHORT
        opts = seg.options
        if opts is None:
            kind, tsv, tse = _NO_OPTIONS, 0, 0
        elif (
            opts.ts_val is not None
            and opts.ts_ecr is not None
            and opts.mss is None
            and opts.wscale is None
            and not opts.sack_permitted
            and not opts.sack_blocks
        ):
            kind, tsv, tse = _TIMESTAMPS_ONLY, opts.ts_val, opts.ts_ecr
        else:
            kind, tsv, tse = _OTHER_OPTIONS, 0, 0
            if self._options is None:
                self._options = {}
            self._options[self._n] = opts
        ok = seg.checksum_ok
        flags, window = seg.flags, seg.window
        seq, ack, plen, ip_len = seg.seq, seg.ack, seg.payload_len, seg.ip_len
        if (seq | ack | plen | ip_len | tsv | tse) >> 32 or flags >> 8 or window >> 16:
            # They share a packed word with others: out of range, they would spill into them.
            raise ValueError(
                f"flags {flags}, window {window}, seq {seq}, ack {ack}, lengths {plen} and "
                f"{ip_len} or timestamps {tsv} and {tse} out of the TCP header's range"
            )
        # ESTABLISHED, by far the most common state, without a lookup
        cs = _ESTABLISHED_INDEX if client_state is _ESTABLISHED else _STATE_INDEX[client_state]
        ss = _ESTABLISHED_INDEX if server_state is _ESTABLISHED else _STATE_INDEX[server_state]
        check = _CHECK_UNKNOWN if ok is None else 1 if ok else 0
        w = self._writer
        write_i64_le(w, seg.frame)
        write_i64_le(w, seg.ts_ns)
        # (a length from 2**31 on, made up, sets the top bit: written as the signed
        # word of the same bytes. Told by the length: compiled, comparing the word
        # with 2**63, a long integer, takes the slow path of every comparison.)
        word = seq | plen << _HIGH
        write_i64_le(w, word if plen >> 31 == 0 else word - _WRAP)
        word = ack | ip_len << _HIGH
        write_i64_le(w, word if ip_len >> 31 == 0 else word - _WRAP)
        write_i64_le(w, tsv | (flags | window << _HIGH_WINDOW | bits << _HIGH_BITS) << _HIGH)
        write_i64_le(
            w,
            tse
            | (cs | ss << _HIGH_SERVER_STATE | check << _HIGH_CHECKSUM | kind << _HIGH_KIND)
            << _HIGH,
        )
        self._bytes = None
        self._n += 1
        self._cache = self._lazy = None

    def _records(self) -> bytes:
        """The records written (one copy of the writer's bytes, made when first asked for)."""
        records = self._bytes
        if records is None:
            records = self._bytes = self._writer.getvalue()
        return records

    def release(self) -> None:
        """Drop the materialized steps (they are rebuilt when read again)."""
        self._cache = self._lazy = None

    def steps(self) -> list[Step]:
        """The materialized steps (the cached list itself: do not change it)."""
        return self._items()

    def lazy(self) -> Sequence[Step]:
        """The steps for one reading: each built when first read.

        Read once (a connection retired), most steps are never built. A trace
        read again before ``release`` is given the whole list instead (the steps
        already built and the rest), which a reader indexes faster.
        """
        if self._cache is not None:
            return self._cache
        if self._lazy is None:
            self._lazy = LazySteps(self)
            return self._lazy
        return self._items()

    # bytes, not the bytearray a slice of the buffer is: mypyc (setup.py) compiles a
    # loop over bytes, and fails on one over a bytearray.
    def flags(self) -> bytes:
        """Each step's TCP flags, one byte per step."""
        return self._records()[_FLAGS_AT::_SIZE]

    def directions(self) -> bytes:
        """Per step a byte: 1 if the segment came from the client, else 0."""
        return self._records()[_BITS_AT::_SIZE].translate(_FROM_CLIENT_ONLY)

    def flags_directions(self) -> tuple[bytes, bytes]:
        """``(flags(), directions())`` in one call."""
        records = self._records()
        return records[_FLAGS_AT::_SIZE], records[_BITS_AT::_SIZE].translate(_FROM_CLIENT_ONLY)

    def seq_ack_len(self, i: int) -> tuple[int, int, int]:
        """Step ``i``'s sequence number, acknowledgment number and payload length.

        Read from its record (0 <= i < len): no step is built, and (compiled) no
        integer object is made.
        """
        if not 0 <= i < self._n:
            raise IndexError(f"step {i} of a trace of {self._n}")
        records = self._records()
        at = i * _SIZE + _SEQ_AT
        seq_len: int = read_i64_le(records, at)
        ack_ip: int = read_i64_le(records, at + 8)
        return seq_len & _LOW32, ack_ip & _LOW32, (seq_len >> _HIGH) & _LOW32

    def numbers(self) -> tuple[Sequence[int], Sequence[int], Sequence[int]]:
        """Every step's sequence number, acknowledgment number and payload length.

        Three columns read from the records at once (no step built); step ``i``'s
        are the ``i``-th of each, as ``seq_ack_len(i)`` gives them.
        """
        words = array(_U32)
        words.frombytes(self._records())
        if _SWAP:
            words.byteswap()
        return (
            words[_SEQ_WORD::_WORDS],
            words[_SEQ_WORD + 2 :: _WORDS],
            words[_SEQ_WORD + 1 :: _WORDS],
        )

    def dump(self) -> tuple[object, ...]:
        """The trace as plain values (``marshal``-able); ``Trace.load`` makes it back."""
        side = {
            i: (o.mss, o.wscale, o.sack_permitted, o.sack_blocks, o.ts_val, o.ts_ecr)
            for i, o in (self._options or {}).items()
        }
        return (
            self._client,
            self._server,
            self._vlan,
            self._rev,
            self._records(),
            self._n,
            side,
        )

    @classmethod
    def load(cls, data: Any) -> Trace:
        """The trace ``dump`` gave."""
        client, server, vlan, rev, buf, n, side = data
        trace = cls(client, server, vlan)
        trace._rev = rev
        trace._writer.write(buf)
        trace._bytes = buf
        trace._n = n
        if side:
            trace._options = {i: TcpOptions(*o) for i, o in side.items()}
        return trace

    def __reduce__(self) -> tuple[Any, tuple[object, ...]]:
        # (copy and pickle: the writer itself is neither)
        return _loaded, (self.dump(),)

    def _items(self) -> list[Step]:
        if self._cache is None:
            self._cache = self._materialize()
        return self._cache

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> Step: ...

    @overload
    def __getitem__(self, index: slice) -> list[Step]: ...

    def __getitem__(self, index: int | slice) -> Step | list[Step]:
        return self._items()[index]

    def __iter__(self) -> Iterator[Step]:
        return iter(self._items())

    def __bool__(self) -> bool:
        return self._n > 0

    def _materialize(self) -> list[Step]:
        if self._lazy is not None:
            return self._lazy[:]
        return [self._step(i) for i in range(self._n)]

    def _step(self, i: int) -> Step:
        """Step ``i`` (0 <= i < len) rebuilt from its record (its words read natively)."""
        records = self._records()
        at = i * _SIZE
        frame: int = read_i64_le(records, at)
        ts: int = read_i64_le(records, at + 8)
        word: int = read_i64_le(records, at + 16)
        seq, plen = word & _LOW32, (word >> _HIGH) & _LOW32
        word = read_i64_le(records, at + 24)
        ack, ip_len = word & _LOW32, (word >> _HIGH) & _LOW32
        word = read_i64_le(records, at + 32)  # (its top bits are small: never negative)
        tsv, high = word & _LOW32, word >> _HIGH
        flags, window, bits = high & 0xFF, (high >> _HIGH_WINDOW) & 0xFFFF, high >> _HIGH_BITS
        word = read_i64_le(records, at + 40)
        tse, high = word & _LOW32, word >> _HIGH
        cs, ss = high & 0xFF, (high >> _HIGH_SERVER_STATE) & 0xFF
        check, kind = (high >> _HIGH_CHECKSUM) & 0xFF, high >> _HIGH_KIND
        opts: TcpOptions | None
        if kind == _NO_OPTIONS:
            opts = None
        elif kind == _TIMESTAMPS_ONLY:
            opts = TcpOptions(ts_val=tsv, ts_ecr=tse)
        else:
            assert self._options is not None
            opts = self._options[i]
        from_client = bool(bits & _FROM_CLIENT)
        (c_addr, c_port), (s_addr, s_port) = self._client, self._server
        if from_client:
            src, sport, dst, dport = c_addr, c_port, s_addr, s_port
        else:
            src, sport, dst, dport = s_addr, s_port, c_addr, c_port
        seg = Segment(
            frame,
            ts,
            self._rev if bits & _REVERSE_VLAN else self._vlan,
            src,
            dst,
            sport,
            dport,
            seq,
            ack,
            flags,
            window,
            plen,
            ip_len,
            opts,
            bool(bits & _CAPLEN_SHORT),
            None if check == _CHECK_UNKNOWN else check == 1,
        )
        return _step_class()(seg, from_client, _STATES[cs], _STATES[ss])


def _loaded(data: Any) -> Trace:
    """``Trace.load``, for ``Trace.__reduce__``."""
    return Trace.load(data)


@cache
def _step_class() -> type[Step]:
    # tracker imports this module: its Step is looked up once, when first needed.
    from .tracker import Step

    return Step


class LazySteps(Sequence["Step"]):
    """A packed trace's steps, each rebuilt from its record when first read, then kept.

    What ``Trace.lazy`` gives; it reads as the list ``Trace.steps`` would be.
    """

    __slots__ = ("_built", "_trace")

    def __init__(self, trace: Trace) -> None:
        self._trace = trace
        self._built: list[Step | None] = [None] * len(trace)

    def __len__(self) -> int:
        return len(self._built)

    @overload
    def __getitem__(self, index: int) -> Step: ...

    @overload
    def __getitem__(self, index: slice) -> list[Step]: ...

    def __getitem__(self, index: int | slice) -> Step | list[Step]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self._built))[index]]
        step = self._built[index]  # (IndexError as a list's, negative indices too)
        if step is None:
            i = index if index >= 0 else index + len(self._built)
            step = self._built[i] = self._trace._step(i)
        return step

    def __iter__(self) -> Iterator[Step]:
        for i in range(len(self._built)):
            yield self[i]

    def __bool__(self) -> bool:
        return bool(self._built)


class Frozen:
    """A frozen connection in the tracker's tables, in the place of the connection.

    What the tracker needs to file, retire or thaw it, and no more: one is
    held for every connection in its TIME_WAIT window, so it is kept small
    (about 500 bytes with its table entries). Its rows, trace and the rest are
    in the freezer's spill file at ``offset`` (see ``freeze.py``).
    """

    __slots__ = (
        "conn_id",
        "deadline",
        "end_ns",
        "frozen_at",
        "head",
        "incarnation",
        "key",
        "length",
        "offset",
        "prev_conn_id",
        "retired",
        "retired_ns",
    )

    # Never dropped (only half-open connections are), never on two VLANs.
    dropped = False
    reverse_vlan: tuple[int, ...] | None = None

    def __init__(
        self,
        conn: Connection,
        frozen_at: int,
        deadline: int | None,
        ref: tuple[int, int],
        head: int,
    ) -> None:
        self.conn_id = conn.conn_id
        self.key = conn.key
        self.incarnation = conn.incarnation
        self.prev_conn_id = conn.prev_conn_id
        self.end_ns = conn.end_ns
        self.frozen_at = frozen_at
        self.deadline = deadline
        self.offset, self.length = ref
        self.head = head  # the bytes of its record before the trace (what retiring reads)
        self.retired = False
        self.retired_ns: int | None = None

    @property
    def ref(self) -> tuple[int, int]:
        """Where its record is in the spill file: (offset, length)."""
        return self.offset, self.length

    @property
    def head_ref(self) -> tuple[int, int]:
        """Where its record's first part is (all but the trace: what retiring reads)."""
        return self.offset, self.head

    def done(self) -> bool:
        return True

    def ended(self) -> bool:
        return True
