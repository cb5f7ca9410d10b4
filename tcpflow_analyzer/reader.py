"""Capture reader: pcap / pcapng files (optionally gzip-compressed) to TCP segments.

Theory of operation
-------------------
This is the only module that opens capture files. A :class:`CaptureReader`
turns a path, ``"-"`` (standard input) or a binary file object into a stream of
:class:`~tcpflow_analyzer.segment.Segment` records, in capture order:

1. **Bytes.** :class:`_Stream` reads the source in large chunks and keeps one
   buffer that records are cut from with ``struct.unpack_from``. If the source
   starts with the gzip magic 1f 8b it is inflated on the fly (``zlib``,
   multi-member aware), whatever the file is called, so pipes work too. Byte
   offsets in messages are offsets in the (decompressed) capture data.
2. **Records.** The first four bytes pick the format:

   * classic pcap (libpcap file format, draft-ietf-opsawg-pcap): magic
     a1b2c3d4 (microseconds) or a1b23c4d (nanoseconds) in either byte order,
     plus the "modified" a1b2cd34 variant with its 24-byte record header. Only
     version 2.x is accepted. ``thiszone`` is ignored, as libpcap does.
   * pcapng (draft-ietf-opsawg-pcapng): walked block by block here, because
     ``dpkt.pcapng.Reader`` only honours the first interface. Each Section
     Header Block sets the byte order and forgets the interfaces of the
     previous section; each Interface Description Block brings its own link
     type, snap length, ``if_tsresol`` (power of 10 or of 2) and
     ``if_tsoffset``. Enhanced, Simple (interface 0, no timestamp: it takes the
     previous frame's time) and obsolete Packet Blocks are frames; every other
     block is skipped unread.

   Timestamps are converted once, with integer arithmetic, to nanoseconds
   since the epoch (finer resolutions are floored).
3. **Frames.** Every packet record gets the next frame number (1-based,
   Wireshark's ``frame.number``), whether or not it decodes, and goes through
   :func:`~tcpflow_analyzer.decode.decode_frame`. Skip reasons, link types,
   warnings and truncation are tallied in :attr:`CaptureReader.stats`, so that
   ``frames == segments yielded + sum(skipped) + bad_records``.
4. **Order and duplicates.** Frames are analyzed in capture order, always.
   A frame whose timestamp is earlier than the previous frame *of the same
   interface* is counted in ``stats.out_of_order`` and summarized in one
   warning (a writer merging several interfaces, as dumpcap does, interleaves
   their frames in batches; that is not damage, so frames of different
   interfaces are not compared). A frame byte-identical to one of the
   previous :data:`DUPLICATE_WINDOW` frames and captured within
   :data:`DUPLICATE_NS` of it is counted in ``stats.duplicates`` (the same
   packet seen on two interfaces, or a capture stored twice); it is still
   analyzed, and no warning is added: whether a copy is a duplicate or a fast
   retransmission is for the analysis layers to say.
5. **Fast path.** A capture is read by :mod:`~tcpflow_analyzer.fastread`
   instead of steps 1-4 (unless ``fast=False``): an uncompressed regular file
   the reader opened itself directly, anything else (gzip, standard input, a
   pipe, a caller's file object) through the stream of step 1
   (:class:`_StreamFile`, which gives back what the fast path read past its
   stop). The data is read through a large buffer and its frames are decoded
   in numpy batches, any
   frame off the plain Ethernet/IP/TCP path going through ``decode_frame`` as
   above. The segments, statistics and warnings are the same. A classic pcap
   is read so from its first record; a pcapng file from its first packet
   block, when that block is an Enhanced Packet Block of an interface with a
   decimal time resolution (the blocks before it, section and interfaces,
   are walked as in step 2), and then the Enhanced Packet Blocks of that
   interface and of those just like it (link type, snap length, time
   resolution and offset: a merge of captures of both ends). At the first
   record or block it cannot read (damage, or in pcapng any other block:
   another interface's packets, a simple or obsolete packet block,
   statistics, names, a new section), or at the end of the file, it
   hands over to the walk of step 2, which reads the rest (reports the
   damage, or reads what was appended since); in pcapng, the walk hands
   back to the fast path at the next Enhanced Packet Block it can read that
   follows a block other than a packet (statistics, names, a new section or
   interface), with the frames counted, the last frames and each interface's
   last time (for duplicates and order) carried both ways.
   ``CaptureReader(path, fast=False)`` always takes steps 1-4.

Failure policy
--------------
* Nothing usable (cannot open, empty, unknown magic, unsupported version,
  header cut short): :class:`CaptureError` from the constructor.
* Damage after the header never raises (except an I/O error from the source):
  the reader yields every frame before the damage, sets ``stats.truncated``,
  appends a warning naming the file and byte offset, and stops. That covers a
  file ending inside a record, a corrupt gzip stream, a pcapng block with a
  bad length, and a record claiming more than :data:`MAX_CAPLEN` bytes (such
  a header is garbage; its length is never allocated).
* A record that is framed correctly but unusable is skipped with a warning and
  counted in ``stats.bad_records``: a caplen above the snap length plus
  :data:`SNAPLEN_SLACK` (writers that store 65535 still append link headers to
  a 64 KiB datagram, hence the slack), a pcapng packet naming an interface
  its section never described, or a timestamp outside the signed 64-bit
  nanosecond range (pcapng's 64-bit tick counts and offsets can overflow it).
  Per-record warnings are capped at :data:`MAX_RECORD_WARNINGS` per kind,
  then summarized.
* A link type the decoder does not know is one warning per interface that
  carries frames (the pcap file header, or a pcapng Interface Description
  Block), naming the link type and the count; the frames are counted as
  skipped ``unsupported_linktype``. Interfaces described but never used (a
  pcapng file may list every interface of the host) are not worth a warning.
* Memory is bounded whatever the input: a record is only held once its
  length passed the checks above (at most :data:`MAX_CAPLEN` plus a block
  header), blocks that are not packets are skipped without being held
  (pcapng interface options only up to 1 MiB), and gzip input is inflated
  at most 1 MiB at a time, however well it compresses (a "gzip bomb").
"""

from __future__ import annotations

import io
import marshal
import os
import stat
import struct
import sys
import zlib
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, Final, TypeAlias

import dpkt

from .decode import LINKTYPES, decode_frame
from .segment import Segment, SkipReason
from .shard import shard_of

if TYPE_CHECKING:
    from .fastread import FastPcap

__all__ = [
    "DUPLICATE_NS",
    "DUPLICATE_WINDOW",
    "MAX_CAPLEN",
    "MAX_RECORD_WARNINGS",
    "SNAPLEN_SLACK",
    "CaptureError",
    "CaptureReader",
    "ReadStats",
    "gzip_file",
    "inflated_messages",
    "open_raw",
    "opened_stream",
    "series_messages",
    "stream_messages",
]

MAX_CAPLEN: Final = 262_144
"""Largest record accepted: libpcap's MAXIMUM_SNAPLEN (256 KiB)."""
SNAPLEN_SLACK: Final = 256
"""Bytes a record may exceed its declared snap length by before it is skipped."""
MAX_RECORD_WARNINGS: Final = 10
"""Per-record warnings of one kind kept verbatim; the rest are counted."""
DUPLICATE_WINDOW: Final = 8
"""How many previous frames a frame is compared with to find duplicates."""
DUPLICATE_NS: Final = 1_000_000
"""Largest time difference (1 ms) between a frame and its duplicate."""

_CHUNK = 1 << 20  # bytes read from an uncompressed source at a time
_GZ_CHUNK = 1 << 16  # compressed bytes read at a time
_MAX_META_BLOCK = 1 << 20  # largest pcapng SHB/IDB whose options are read
_NS = 1_000_000_000
_TS_MIN = -(2**63) + 1  # datetime64[ns] range; -2**63 itself is NaT
_TS_MAX = 2**63 - 1

_GZIP_MAGIC = b"\x1f\x8b"
_PCAP_USEC = dpkt.pcap.TCPDUMP_MAGIC  # a1b2c3d4
_PCAP_NSEC = dpkt.pcap.TCPDUMP_MAGIC_NANO  # a1b23c4d
_PCAP_MODIFIED = dpkt.pcap.MODPCAP_MAGIC  # a1b2cd34, Alexey Kuznetzov's patched libpcap
_SHB = dpkt.pcapng.PCAPNG_BT_SHB  # 0a0d0d0a, a palindrome: same in both byte orders
_IDB = dpkt.pcapng.PCAPNG_BT_IDB
_PB = dpkt.pcapng.PCAPNG_BT_PB
_SPB = dpkt.pcapng.PCAPNG_BT_SPB
_EPB = dpkt.pcapng.PCAPNG_BT_EPB
_BOM_BE = struct.pack(">I", dpkt.pcapng.BYTE_ORDER_MAGIC)
_BOM_LE = struct.pack("<I", dpkt.pcapng.BYTE_ORDER_MAGIC)
_OPT_TSRESOL = dpkt.pcapng.PCAPNG_OPT_IF_TSRESOL
_OPT_TSOFFSET = dpkt.pcapng.PCAPNG_OPT_IF_TSOFFSET

# (frame number, link type, timestamp ns, captured bytes, interface). The
# interface is numbered across sections; a frame without a timestamp of its own
# (pcapng simple packet block) carries its bitwise complement, ~n < 0.
_Record: TypeAlias = tuple[int, int, int, bytes, int]


class CaptureError(Exception):
    """The capture cannot be read at all; the message names the file and the problem."""


@dataclass(slots=True)
class ReadStats:
    """What the reader saw; filled in while iterating."""

    frames: int = 0  # packet records read (frame numbers handed out)
    skipped: Counter[str] = field(default_factory=Counter)  # SkipReason value -> frames
    warnings: list[str] = field(default_factory=list)
    linktypes: Counter[int] = field(default_factory=Counter)  # link type -> frames
    truncated: bool = False  # reading stopped early at damage (see warnings)
    bad_records: int = 0  # records framed correctly but unusable (see warnings)
    out_of_order: int = 0  # frames timed before the previous frame of their interface
    duplicates: int = 0  # frames byte-identical to a recent frame within 1 ms


@dataclass(frozen=True, slots=True)
class _Interface:
    """A pcapng interface: link type, snap length and timestamp conversion."""

    linktype: int
    snaplen: int
    ts_mul: int  # ns = ((ticks * ts_mul) >> ts_shift) // ts_div + ts_off
    ts_shift: int
    ts_div: int
    ts_off: int

    def ts_ns(self, ticks: int) -> int:
        return ((ticks * self.ts_mul) >> self.ts_shift) // self.ts_div + self.ts_off


def _ng_oversized(frame: int, start: int, caplen: int, snaplen: int) -> tuple[str, str]:
    """The kind and text of the warning for a pcapng frame above its snap length."""
    return (
        "oversized record",
        f"frame {frame} at offset {start} has {caplen} captured bytes, more "
        f"than the snap length {snaplen}; skipped",
    )


def _interface(linktype: int, snaplen: int, tsresol: int, tsoffset: int) -> _Interface:
    # pcapng 4.2 if_tsresol: most significant bit 0 -> 10^-n seconds, 1 -> 2^-n.
    # if_tsoffset: signed seconds added to every timestamp of the interface.
    exp = tsresol & 0x7F
    off = tsoffset * _NS
    if tsresol & 0x80:
        return _Interface(linktype, snaplen, _NS, exp, 1, off)
    if exp <= 9:
        return _Interface(linktype, snaplen, 10 ** (9 - exp), 0, 1, off)
    return _Interface(linktype, snaplen, 1, 0, 10 ** (exp - 9), off)


@dataclass(frozen=True, slots=True)
class _PcapLayout:
    """What a classic pcap file header says about its records."""

    little: bool  # byte order of the header fields
    hlen: int  # record header length: 16, or 24 in the "modified" format
    frac_ns: int  # nanoseconds per unit of the timestamp fraction (1000 or 1)
    linktype: int  # without the FCS bits
    snaplen: int
    limit: int  # largest caplen that is not an oversized record
    # pcapng (``ng``): the fast path reads the Enhanced Packet Blocks of the
    # interfaces ``ifaces`` (IDs in their section, whose interface 0 is
    # ``first_iface`` across the file, as the reader numbers interfaces; all
    # alike: link type, snap length, time resolution and offset), ``hlen`` (28)
    # being where a block's data starts, and timestamps of ``ts_mul`` ns a tick
    # plus ``ts_off`` ns. ``iface_key``: the first packet's interface across
    # the file (pcap: 0).
    ng: bool = False
    ifaces: tuple[int, ...] = ()
    first_iface: int = 0
    iface_key: int = 0
    ts_mul: int = 0
    ts_off: int = 0
    start: int = 24  # file offset of the first record


@dataclass(slots=True)
class _NgState:
    """Where a pcapng walk stands: what it carries from block to block."""

    endian: str = "<"
    interfaces: list[_Interface] = field(default_factory=list)
    first_iface: int = 0  # number of the section's interface 0 across the whole file
    frame: int = 0
    last_ts: int = 0  # the last frame's time (a simple packet block takes it)
    warned_spb: bool = False


class _Damaged(Exception):
    """Internal: the capture is damaged at ``offset``; stop with a warning."""

    def __init__(self, what: str, offset: int) -> None:
        super().__init__(what)
        self.what = what
        self.offset = offset


class _Stream:
    """Chunked reader with one buffer; ``buf[pos:]`` is unread, at ``base + pos`` in the data."""

    __slots__ = (
        "_done",
        "_failure",
        "_given",
        "_inflate",
        "_name",
        "_pending",
        "_produced",
        "_raw",
        "_raw_read",
        "base",
        "buf",
        "cut_short",
        "gzipped",
        "pos",
        "warnings",
    )

    def __init__(self, raw: BinaryIO, name: str) -> None:
        self._raw = raw
        self._name = name
        self._inflate: zlib._Decompress | None = None
        self._pending = b""  # compressed bytes read but not yet inflated
        self._done = False  # no more input will be read
        self._produced = 0  # decompressed bytes handed out so far
        self._raw_read = 0  # bytes read from the source (compressed, if gzip)
        # Corrupt gzip data or a read error met (raised again if asked for more).
        self._failure: _Damaged | CaptureError | None = None
        self.buf = b""
        self.pos = 0
        self.base = 0
        self.gzipped = False
        self.cut_short = False  # the gzip stream ended inside a member
        self.warnings: list[str] = []
        # The pieces of data (and what came with them) given by messages: another
        # process's stream inflating a gzip file (inflated_messages, fanout.py).
        self._given = bool(getattr(raw, "messages", False))
        if self._given:
            self.gzipped = True
            self.buf = self._given_piece()
            return
        head = self._read_raw(_CHUNK)
        while 0 < len(head) < 2:  # short reads from a pipe
            more = self._read_raw(_CHUNK)
            if not more:
                break
            head += more
        if head.startswith(_GZIP_MAGIC):
            self.gzipped = True
            self._pending = head
            self.buf = self._inflate_some()
        else:
            self.buf = head

    @property
    def offset(self) -> int:
        return self.base + self.pos

    @property
    def available(self) -> int:
        return len(self.buf) - self.pos

    def _read_raw(self, size: int) -> bytes:
        if self._done:
            return b""
        try:
            data = self._raw.read(size) or b""
        except OSError as exc:
            where = f"byte {self._raw_read} of the file"
            raise CaptureError(f"{self._name}: read error at {where}: {exc}") from exc
        self._raw_read += len(data)
        return data

    def _inflate_some(self) -> bytes:
        """Up to ``_CHUNK`` bytes of inflated data; b"" at the end.

        Members follow each other (RFC 1952 2.2). Output is capped per call, so
        a gzip bomb costs time, never more than a chunk of memory.
        """
        out: list[bytes] = []
        room = _CHUNK
        try:
            while room > 0:
                if len(self._pending) < 2 and not self._done:
                    # Two bytes show whether another member starts.
                    more = self._read_raw(_GZ_CHUNK)
                    if more:
                        self._pending += more
                        continue
                    self._done = True
                if not self._pending:
                    if self._inflate is not None:  # the input ended inside a member
                        out.append(self._inflate.flush())
                        self._inflate = None
                        self.cut_short = True
                        self.warnings.append(
                            f"{self._name}: gzip stream ends early (compressed file "
                            f"truncated) after {self._produced + sum(map(len, out))} bytes "
                            "of capture data"
                        )
                    break
                if self._inflate is None:
                    if not self._pending.startswith(_GZIP_MAGIC):
                        self.warnings.append(
                            f"{self._name}: trailing bytes after the gzip stream ignored"
                        )
                        self._pending = b""
                        self._done = True
                        break
                    self._inflate = zlib.decompressobj(wbits=31)
                chunk = self._inflate.decompress(self._pending, room)
                if self._inflate.eof:
                    self._pending = self._inflate.unused_data
                    self._inflate = None
                else:
                    self._pending = self._inflate.unconsumed_tail
                out.append(chunk)
                room -= len(chunk)
        except zlib.error as exc:
            offset = self._produced + sum(map(len, out))
            raise _Damaged(f"corrupt gzip data ({exc})", offset) from exc
        result = b"".join(out)
        self._produced += len(result)
        return result

    def _more(self) -> bytes:
        """Next piece of capture data; b"" at the end."""
        if self._failure is not None:
            raise self._failure
        try:
            if self._given:
                return self._given_piece()
            return self._inflate_some() if self.gzipped else self._read_raw(_CHUNK)
        except (_Damaged, CaptureError) as exc:
            # Kept: asked again (after the fast path stopped at it), the same failure.
            self._failure = exc
            raise

    def _given_piece(self) -> bytes:
        """The next piece of data as the giving stream made it, with the warnings and the
        state it had then; its failure where it failed (see ``inflated_messages``)."""
        message = self._raw.message()  # type: ignore[attr-defined]
        if not message:
            return b""  # (the run was stopped)
        kind, payload, warnings, cut_short = marshal.loads(message)
        self.warnings.extend(warnings)
        self.cut_short = cut_short
        if kind == _GIVEN_DAMAGED:
            raise _Damaged(*payload)
        if kind == _GIVEN_ERROR:
            raise CaptureError(payload)
        data: bytes = payload
        return data

    def fill(self, n: int) -> bool:
        """Make ``n`` unread bytes available in ``buf``; False if the data ends first."""
        have = len(self.buf) - self.pos
        if have >= n:
            return True
        parts = [self.buf[self.pos :]]
        self.base += self.pos
        self.pos = 0
        while have < n:
            data = self._more()
            if not data:
                break
            parts.append(data)
            have += len(data)
        self.buf = b"".join(parts)
        return have >= n

    def seek(self, offset: int) -> None:
        """Continue at ``offset`` of an uncompressed, seekable source (the fast path's hand-off)."""
        self._raw.seek(offset)
        self._raw_read = offset
        self.buf = b""
        self.pos = 0
        self.base = offset

    def read_into(self, view: memoryview) -> int:
        """Copy the next bytes, at most ``len(view)``, into ``view``; 0 at the end.

        How the fast path reads a stream that is not a plain file (gzip, a pipe):
        see :class:`_StreamFile`.
        """
        if self.pos >= len(self.buf):
            self._next_piece()
        n = min(len(view), len(self.buf) - self.pos)
        view[:n] = self.buf[self.pos : self.pos + n]
        self.pos += n
        return n

    def rewind(self, offset: int, data: bytes) -> None:
        """Continue at ``offset``, ``data`` being the bytes from there up to where the stream
        is: what the fast path read past the record it stopped at, given back."""
        if offset + len(data) != self.offset:
            raise ValueError(f"rewind to {offset} with {len(data)} bytes from {self.offset}")
        self.buf = data + self.buf[self.pos :]
        self.pos = 0
        self.base = offset

    def skip(self, n: int) -> bool:
        """Discard ``n`` bytes without keeping them; False if the data ends first."""
        while True:
            have = len(self.buf) - self.pos
            if have >= n:
                self.pos += n
                return True
            n -= have
            self._next_piece()
            if not self.buf:
                return False

    def _next_piece(self) -> None:
        """Drop the buffer (read through) for the next piece of data (b"" at the end).

        Where ``_more`` raises, the stream stays where it was: past the dropped bytes.
        """
        self.base += len(self.buf)
        self.buf, self.pos = b"", 0
        self.buf = self._more()


class _StreamFile:
    """The capture data of a stream that is not a plain file (gzip-compressed, standard
    input, a caller's file object), as the file the fast path reads.

    ``readinto`` hands out the stream's bytes in order, ``seek`` only goes forward
    (skipping bytes), and when the fast path stops, what it read past the record it
    stopped at goes back into the stream (``_Stream.rewind``) for the record walk.
    Corrupt gzip data or a read error ends the fast path's reading like the end of
    the file; the walk then meets the same failure where it is (``_Stream._failure``),
    after the segments before it.
    """

    def __init__(self, stream: _Stream) -> None:
        self.stream = stream

    def readinto(self, view: memoryview) -> int:
        try:
            return self.stream.read_into(view)
        except (_Damaged, CaptureError):
            return 0

    def seek(self, offset: int) -> None:
        """Go on at ``offset``, at or after where the stream is (an ``OSError`` otherwise)."""
        ahead = offset - self.stream.offset
        try:
            skipped = ahead >= 0 and self.stream.skip(ahead)
        except (_Damaged, CaptureError):
            skipped = False
        if not skipped:
            raise OSError(f"cannot go to byte {offset} of the stream")


def gzip_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a regular file that starts as gzip data does (False if it
    cannot be read: the reader says why)."""
    try:
        with open(path, "rb") as f:
            return _regular(f) and f.read(2) == _GZIP_MAGIC
    except OSError:
        return False


_GIVEN_DATA, _GIVEN_DAMAGED, _GIVEN_ERROR = 0, 1, 2


def _given_message(
    kind: int, payload: bytes | str | tuple[str, int], warnings: list[str], cut_short: bool
) -> bytes:
    """One message for ``_Stream._given_piece``: a piece of data (or the failure), with
    the warnings the giving stream added with it and whether it was cut short."""
    return marshal.dumps((kind, payload, warnings, cut_short))


def inflated_messages(path: str | os.PathLike[str]) -> Iterator[bytes]:
    """The gzip file at ``path`` inflated, as messages for streams in other processes
    (``_Stream._given_piece``; fanout.py carries them): each piece of data as this
    process's stream makes it, with the warnings it added and whether it was cut
    short; a failure (damage, a read error) as the last message; b"" data at the end.
    The file is opened (and its first piece inflated) here, before the first message."""
    raw, name, _ = open_raw(path)
    try:
        stream = opened_stream(raw, name)
    except BaseException:
        raw.close()
        raise
    return stream_messages(stream, raw.close)


def series_messages(paths: Sequence[str | os.PathLike[str]]) -> Iterator[bytes]:
    """``inflated_messages`` of each gzip file of a series in turn, each file's followed
    by an empty message (fanout.RingPart). A file that cannot be opened (it could be
    when the series was first read) gives its error as its message."""
    for path in paths:
        try:
            messages = inflated_messages(path)
        except CaptureError as exc:
            messages = iter([_given_message(_GIVEN_ERROR, str(exc), [], False)])
        yield from messages
        yield b""


def opened_stream(raw: BinaryIO, name: str) -> _Stream:
    """The reader's stream of ``raw`` (its first piece read, gzip told), raising what
    ``CaptureReader`` raises for a first piece that cannot be read."""
    try:
        return _Stream(raw, name)
    except _Damaged as exc:
        raise CaptureError(f"{name}: {exc.what} at offset {exc.offset}") from exc


def stream_messages(stream: _Stream, close: Callable[[], None] | None) -> Iterator[bytes]:
    """``stream``'s pieces as messages (see ``inflated_messages``); ``close`` at the end."""
    told = 0

    def message(kind: int, payload: bytes | str | tuple[str, int]) -> bytes:
        nonlocal told
        warnings, told = stream.warnings[told:], len(stream.warnings)
        return _given_message(kind, payload, warnings, stream.cut_short)

    try:
        data = stream.buf
        while True:
            yield message(_GIVEN_DATA, data)
            if not data:
                return
            try:
                data = stream._more()
            except _Damaged as exc:
                yield message(_GIVEN_DAMAGED, (exc.what, exc.offset))
                return
            except CaptureError as exc:
                yield message(_GIVEN_ERROR, str(exc))
                return
    finally:
        if close is not None:
            close()


def open_raw(source: str | os.PathLike[str] | BinaryIO) -> tuple[BinaryIO, str, bool]:
    """The binary file of ``source`` (a path, ``"-"`` for standard input, or a file
    object), what to call it, and whether it was opened here (to be closed by the
    opener: never standard input or a caller's object)."""
    if not isinstance(source, str | os.PathLike):
        name = getattr(source, "name", None)
        return source, name if isinstance(name, str) else "<stream>", False
    path = os.fspath(source)
    if path == "-":
        stdin = getattr(sys.stdin, "buffer", None)
        if stdin is None:
            raise CaptureError("<stdin>: standard input is not available as bytes")
        return stdin, "<stdin>", False
    try:
        return open(path, "rb"), path, True
    except OSError as exc:
        raise CaptureError(f"{path}: cannot open: {exc.strerror or exc}") from exc


def _regular(f: io.BufferedReader) -> bool:
    """Whether ``f`` is open on a regular file (not a pipe, a socket or a terminal)."""
    try:
        return stat.S_ISREG(os.fstat(f.fileno()).st_mode)
    except (OSError, ValueError):
        return False


# What the fast path reads: a plain file, or a stream through _StreamFile.
_FastFile: TypeAlias = "io.BufferedReader | _StreamFile"


class CaptureReader:
    """Iterate the TCP segments of a pcap/pcapng capture (see the module docstring).

    ``source`` is a path, ``"-"`` for standard input, or a binary file object
    (only files the reader opened itself are closed by :meth:`close`). The
    constructor opens the source and checks the file header, raising
    :class:`CaptureError` for anything that makes the capture unreadable;
    iteration itself only raises :class:`CaptureError` on an I/O error.
    Iteration is single-pass: iterating again continues where it stopped.
    ``fast=False`` turns the fast path (module docstring, step 5) off. With
    ``reuse=True`` the fast path hands out the same ``Segment`` object again and
    again, its fields set anew for each segment (no object made and freed per
    segment): only for a caller that keeps nothing of a segment but values read
    from it before asking for the next, as the tracker (``replay.replay``).
    ``frame_offset`` is added to every segment's frame number (a file of a rotated
    series, numbered on from the files before it); the statistics and warnings
    count the file's own frames.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | BinaryIO,
        *,
        fast: bool = True,
        reuse: bool = False,
        frame_offset: int = 0,
    ) -> None:
        self.stats = ReadStats()
        self._reuse = reuse
        self._frame_offset = frame_offset
        self._handed = frame_offset  # see handed()
        raw, self.name, opened = open_raw(source)
        self._owned: BinaryIO | None = raw if opened else None
        self._header = b""  # a classic pcap file header, once _probe has checked it
        # The fast path (fastread.py): the file it reads, from the first iteration on.
        self._fast_file: _FastFile | None = None
        self._fast_pcap: FastPcap | None = None
        self._fast: Generator[Segment, None, None] | None = None  # its segments
        self._records: Iterator[_Record] | None = None
        self._ng: _NgState | None = None  # a pcapng walk handed to the fast path and back
        # The file of a pcapng walk that hands blocks back to the fast path (_ng_parts).
        self._ng_file: _FastFile | None = None
        self._resume: _PcapLayout | None = None  # where it stopped for that (see _ng_parts)
        try:
            self._stream = _Stream(raw, self.name)  # (raising as opened_stream does)
            self.format = self._probe()
        except _Damaged as exc:
            self.close()
            raise CaptureError(f"{self.name}: {exc.what} at offset {exc.offset}") from exc
        except BaseException:
            self.close()
            raise
        self._record_warnings: Counter[str] = Counter()
        self._last_ts: dict[int, int] = {}  # interface -> timestamp of its last frame
        self._recent: deque[bytes] = deque(maxlen=DUPLICATE_WINDOW)
        self._recent_ts: deque[int] = deque(maxlen=DUPLICATE_WINDOW)
        self._first_out_of_order = 0
        self._unsupported: Counter[tuple[int, int]] = Counter()  # (interface, link type)
        self._iface_where: dict[int, str] = {0: "the file header"}  # interface -> description
        owned = self._owned
        if fast:
            # A plain file is read directly; anything else through the stream.
            if isinstance(owned, io.BufferedReader) and _regular(owned) and not self.compressed:
                self._fast_file = owned
            else:
                self._fast_file = _StreamFile(self._stream)

    @property
    def compressed(self) -> bool:
        """True when the source was gzip-compressed."""
        return self._stream.gzipped

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the file if the reader opened it (never stdin or a caller's object)."""
        self._fast_file = self._ng_file = None
        if self._fast is not None:
            fast, self._fast, self._fast_pcap = self._fast, None, None
            if self._records is None:
                self._records = iter(())  # stopped inside the fast path: nothing more to read
            fast.close()
        if self._owned is not None:
            self._owned.close()
            self._owned = None

    def __iter__(self) -> Iterator[Segment]:
        return self._iterate(None, None)

    def handed(self) -> int:
        """A frame number (counted on from ``frame_offset``) up to which every frame has
        been handed out, as a segment or (``sharded``) a time, and replayed by a caller
        done with each segment before it asks for the next: a sharded run's progress
        while its reader waits for bytes (shard.py), where no segment of its own says it."""
        fast = self._fast_pcap
        return max(self._handed, fast.handed) if fast is not None else self._handed

    def sharded(self, k: int, n: int, other: Callable[[int], None]) -> Iterator[Segment]:
        """The segments of shard ``k`` of ``n`` (``shard.shard_of``); the others' times: ``other``.

        The other shards' segments are not yielded: each one's time is passed
        to ``other`` at its place, that is after the shard's segments before it
        were handed out and before the next one is. Statistics count every
        frame, as when iterating the reader itself.
        """
        return self._iterate((k, n), other)

    def _iterate(
        self, shard: tuple[int, int] | None, other: Callable[[int], None] | None
    ) -> Iterator[Segment]:
        if self._fast_file is not None:
            self._start_fast(self._fast_file, shard, other)
        if self._ng_file is not None:
            return chain.from_iterable(self._ng_parts(shard, other))
        if self._fast is not None:
            # The fast path's generator itself, then the record walk: ``chain``
            # hands out the segments with no generator of this module in between,
            # and leaves the fast path open when it is dropped, so that iterating
            # again continues where it stopped.
            return chain(self._fast, self._walk_records(shard, other, finish_fast=True))
        return self._walk_records(shard, other)

    def _walk_records(
        self,
        shard: tuple[int, int] | None,
        other: Callable[[int], None] | None,
        finish_fast: bool = False,
    ) -> Iterator[Segment]:
        if finish_fast:
            self._finish_fast()
        stats = self.stats
        skipped = stats.skipped
        linktypes = stats.linktypes
        last_ts = self._last_ts
        recent = self._recent
        recent_ts = self._recent_ts
        unsupported = self._unsupported
        for frame, linktype, ts_ns, data, iface in self._iter_records():
            linktypes[linktype] += 1
            if iface >= 0:
                prev = last_ts.get(iface)
                if prev is not None and ts_ns < prev:
                    if not stats.out_of_order:
                        self._first_out_of_order = frame
                    stats.out_of_order += 1
                last_ts[iface] = ts_ns
            # ``in`` compares in C; the time window is only checked on a match.
            if data in recent and any(
                d == data and abs(ts_ns - t) <= DUPLICATE_NS
                for d, t in zip(recent, recent_ts, strict=True)
            ):
                stats.duplicates += 1
            recent.append(data)
            recent_ts.append(ts_ns)
            result = decode_frame(linktype, data, frame + self._frame_offset, ts_ns)
            if isinstance(result, SkipReason):
                skipped[result.value] += 1
                if result is SkipReason.UNSUPPORTED_LINKTYPE:
                    unsupported[iface if iface >= 0 else ~iface, linktype] += 1
            elif shard is None or shard_of(result, shard[1]) == shard[0]:
                yield result
            elif other is not None:
                other(result.ts_ns)
            self._handed = frame + self._frame_offset  # (before the next record is read)

    def _start_fast(
        self,
        file: _FastFile,
        shard: tuple[int, int] | None,
        other: Callable[[int], None] | None,
    ) -> None:
        """Set up the fast path (:mod:`.fastread`) on the file.

        A pcapng file starts with the block walk, which hands over to the fast
        path as it goes (see :meth:`_ng_parts`): at its first packet block, its
        section and interface blocks walked, when that block is an Enhanced
        Packet Block the fast path can read (:meth:`_ng_layout`).
        """
        self._fast_file = None
        if self.format == "pcap":
            self._open_fast(file, self._pcap_layout(), shard, other)
            return
        self._ng_file = file
        self._ng = _NgState()
        self._records = self._guard(self._pcapng(self._ng))

    def _open_fast(
        self,
        file: _FastFile,
        layout: _PcapLayout,
        shard: tuple[int, int] | None,
        other: Callable[[int], None] | None,
    ) -> None:
        """The fast path's reading, from ``layout.start`` on."""
        from .fastread import FastPcap  # numpy is only needed here

        oversized = self._ng_oversized if layout.ng else self._oversized
        # The window: no larger than a plain file (as it is now: one that grows is read
        # on by the record walk); a stream's size is not known.
        size = os.fstat(file.fileno()).st_size if isinstance(file, io.BufferedReader) else None
        fast = FastPcap(
            file, layout, self.stats, oversized, self._unsupported, self._frame_offset, size
        )
        self._fast_pcap = fast
        self._fast = fast.segments(shard, other, self._reuse)

    def _ng_parts(
        self, shard: tuple[int, int] | None, other: Callable[[int], None] | None
    ) -> Iterator[Iterator[Segment]]:
        """The segments of a pcapng file, in turns (``chain.from_iterable``): the block
        walk's, which stops at an Enhanced Packet Block the fast path can read that
        follows a block other than a packet (the section and interface blocks at the
        start; statistics, names, a new section or interface...), then the fast
        path's from there while it can read the blocks, and so on. (Not at every
        such packet: where the blocks of unlike interfaces alternate, the fast path
        would start again at every other one.) Like ``chain`` in ``_iterate``,
        iterating again goes on where this stopped.
        """
        while True:
            if self._fast is not None:
                yield self._fast
                self._finish_fast()
            yield self._walk_records(shard, other)
            layout, file = self._resume, self._ng_file
            if layout is None or file is None:
                return
            self._resume = None
            self._open_fast(file, layout, shard, other)
            assert self._fast_pcap is not None and self._ng is not None
            recent = list(zip(self._recent, self._recent_ts, strict=True))
            self._fast_pcap.seed(self._ng.frame, recent, self._last_ts)

    def _ng_layout(self, state: _NgState) -> _PcapLayout | None:
        """The fast path's layout for the pcapng block the stream is at, if it can read it."""
        s = self._stream
        if not s.fill(12):
            return None
        u32 = struct.Struct(state.endian + "I").unpack_from
        if u32(s.buf, s.pos)[0] != _EPB:
            return None
        iface_id = u32(s.buf, s.pos + 8)[0]
        if iface_id >= len(state.interfaces):
            return None
        iface = state.interfaces[iface_id]
        if iface.ts_shift or iface.ts_div != 1 or not _TS_MIN <= iface.ts_off <= _TS_MAX:
            # A binary resolution, finer than ns, or an offset beyond the range: the
            # walk's own arithmetic.
            return None
        ifaces: tuple[int, ...] = (iface_id,)
        if iface.linktype in LINKTYPES:
            # Every interface like it (as a merge of captures of one link type has them):
            # the decoder tells their frames apart by nothing but their order and times.
            ifaces = tuple(j for j, other in enumerate(state.interfaces) if other == iface)
        snaplen = iface.snaplen
        return _PcapLayout(
            little=state.endian == "<",
            hlen=28,
            frac_ns=0,
            linktype=iface.linktype,
            snaplen=snaplen,
            limit=snaplen + SNAPLEN_SLACK if snaplen else MAX_CAPLEN,
            ng=True,
            ifaces=ifaces,
            first_iface=state.first_iface,
            iface_key=state.first_iface + iface_id,
            ts_mul=iface.ts_mul,
            ts_off=iface.ts_off,
            start=s.offset,
        )

    def _finish_fast(self) -> None:
        """Hand over from the fast path to the record walk, once.

        The fast path stops at the end of the file (or at a read error), or at
        the first record it cannot frame (cut short, or claiming more than
        :data:`MAX_CAPLEN` bytes). :meth:`_pcap` takes over at that record,
        with the duplicate and ordering state handed over, so whatever follows
        (a damage warning, a read error, or data appended meanwhile) is read
        exactly as without the fast path.
        """
        fast = self._fast_pcap
        if fast is None:
            return
        self._handed = max(self._handed, fast.handed)
        self._fast = self._fast_pcap = None
        for data, ts_ns in fast.recent():
            self._recent.append(data)
            self._recent_ts.append(ts_ns)
        state = self._ng
        self._last_ts.update(fast.last_times)
        if fast.last_ts is not None and state is not None:
            state.last_ts = fast.last_ts
        if fast.first_out_of_order:
            self._first_out_of_order = fast.first_out_of_order
        if isinstance(fast.file, _StreamFile):
            self._stream.rewind(fast.offset, fast.held(fast.offset))
        else:
            self._stream.seek(fast.offset)
        if state is None:
            self._records = self._guard(self._pcap(resume=fast.frame))
        else:
            state.frame = fast.frame
            self._records = self._guard(self._pcapng(state))

    # --- header checks ------------------------------------------------------

    def _error(self, what: str, offset: int | None = None) -> CaptureError:
        where = "" if offset is None else f" at offset {offset}"
        return CaptureError(f"{self.name}: {what}{where}")

    def _probe(self) -> str:
        """Check the file header without consuming it; return "pcap" or "pcapng"."""
        s = self._stream
        s.fill(24)
        head = s.buf[:24]
        gz = " after gzip decompression" if s.gzipped else ""
        if not head:
            raise self._error(f"empty file{gz}", 0)
        magic4 = head[:4]
        if magic4 == struct.pack("<I", _SHB):
            if len(head) < 12:
                raise self._error(f"pcapng section header cut short ({len(head)} bytes)", 0)
            bom = head[8:12]
            if bom not in (_BOM_BE, _BOM_LE):
                raise self._error(f"bad pcapng byte-order magic 0x{bom.hex()}", 8)
            if len(head) < 16:
                raise self._error(f"pcapng section header cut short ({len(head)} bytes)", 0)
            endian = ">" if bom == _BOM_BE else "<"
            major, minor = struct.unpack_from(endian + "HH", head, 12)
            if major != 1:
                raise self._error(f"unsupported pcapng version {major}.{minor}", 12)
            return "pcapng"
        for endian in ("<", ">"):
            if len(head) >= 4 and struct.unpack(endian + "I", magic4)[0] in (
                _PCAP_USEC,
                _PCAP_NSEC,
                _PCAP_MODIFIED,
            ):
                if len(head) < 24:
                    raise self._error(f"pcap file header cut short ({len(head)} of 24 bytes)", 0)
                hdr = (dpkt.pcap.LEFileHdr if endian == "<" else dpkt.pcap.FileHdr)(head)
                if hdr.v_major != 2:
                    raise self._error(f"unsupported pcap version {hdr.v_major}.{hdr.v_minor}", 4)
                self._header = head
                return "pcap"
        raise self._error(f"not a pcap or pcapng file (first bytes 0x{magic4.hex()}){gz}", 0)

    # --- record walking -----------------------------------------------------

    def _iter_records(self) -> Iterator[_Record]:
        if self._records is None:
            walk = self._pcap() if self.format == "pcap" else self._pcapng()
            self._records = self._guard(walk)
        return self._records

    def _guard(self, walk: Iterator[_Record]) -> Iterator[_Record]:
        """Turn damage into a final warning; flush the stream's own warnings."""
        stats = self.stats
        try:
            yield from walk
        except _Damaged as exc:
            stats.truncated = True
            self._warn(f"{exc.what} at offset {exc.offset}; reading stopped")
        finally:
            stats.warnings.extend(self._stream.warnings)
            self._stream.warnings.clear()
            stats.truncated = stats.truncated or self._stream.cut_short
            if self._resume is None:  # (else only handed to the fast path: not the end)
                self._summarize()

    def _summarize(self) -> None:
        """The warnings that sum up the whole reading, at its end."""
        stats = self.stats
        for kind, count in self._record_warnings.items():
            if count > MAX_RECORD_WARNINGS:
                self._warn(f"{count - MAX_RECORD_WARNINGS} more {kind} warnings not shown")
        for (iface, linktype), count in sorted(self._unsupported.items()):
            self._warn(
                f"link type {linktype} of {self._iface_where.get(iface, '?')} is not "
                f"supported: {count} frame(s) skipped as unsupported_linktype"
            )
        if stats.out_of_order:
            self._warn(
                f"{stats.out_of_order} frame(s) timed earlier than the frame before them "
                f"on the same interface (first: frame {self._first_out_of_order}); "
                "analyzed in capture order"
            )

    def _warn(self, text: str) -> None:
        self.stats.warnings.append(f"{self.name}: {text}")

    def _bad_record(self, kind: str, text: str) -> None:
        self.stats.bad_records += 1
        self._record_warnings[kind] += 1
        if self._record_warnings[kind] <= MAX_RECORD_WARNINGS:
            self._warn(text)

    def _cut(self, what: str, offset: int, need: int) -> _Damaged:
        have = self._stream.offset + self._stream.available - offset
        return _Damaged(
            f"file ends inside {what} (record needs {need} bytes, {have} present)", offset
        )

    def _pcap_layout(self) -> _PcapLayout:
        """The classic pcap file header, as checked by :meth:`_probe`."""
        head = self._header
        little = struct.unpack_from("<I", head, 0)[0] in (_PCAP_USEC, _PCAP_NSEC, _PCAP_MODIFIED)
        hdr = (dpkt.pcap.LEFileHdr if little else dpkt.pcap.FileHdr)(head)
        magic = hdr.magic
        snaplen = hdr.snaplen
        return _PcapLayout(
            little=little,
            hlen=24 if magic == _PCAP_MODIFIED else 16,
            frac_ns=1 if magic == _PCAP_NSEC else 1000,
            # The link-type field's upper bits carry FCS information (draft-ietf-opsawg-pcap 4).
            linktype=hdr.linktype & 0xFFFF,
            snaplen=snaplen,
            limit=snaplen + SNAPLEN_SLACK if snaplen else MAX_CAPLEN,
        )

    def _oversized(self, frame: int, start: int, caplen: int, snaplen: int) -> None:
        self._bad_record(
            "oversized record",
            f"record {frame} at offset {start} has {caplen} captured bytes, more than "
            f"the snap length {snaplen}; skipped",
        )

    def _ng_oversized(self, frame: int, start: int, caplen: int, snaplen: int) -> None:
        self._bad_record(*_ng_oversized(frame, start, caplen, snaplen))

    def _pcap(self, resume: int | None = None) -> Iterator[_Record]:
        """Walk classic pcap records from the stream.

        ``resume`` is the number of frames the fast path already handed out; it
        left the stream at the next record (see :meth:`_finish_fast`).
        """
        s = self._stream
        layout = self._pcap_layout()
        snaplen, linktype, frac_ns = layout.snaplen, layout.linktype, layout.frac_ns
        hlen, limit = layout.hlen, layout.limit
        unpack = struct.Struct(("<" if layout.little else ">") + "IIII").unpack_from
        if resume is None:
            s.pos += 24
            frame = 0
        else:
            frame = resume
        stats = self.stats
        while True:
            if len(s.buf) - s.pos < hlen and not s.fill(hlen):
                if s.available:
                    raise self._cut(f"the header of record {frame + 1}", s.offset, hlen)
                return
            sec, frac, caplen, _wirelen = unpack(s.buf, s.pos)
            start = s.offset
            if caplen > MAX_CAPLEN:
                raise _Damaged(
                    f"record {frame + 1} claims {caplen} captured bytes, more than the "
                    f"{MAX_CAPLEN}-byte maximum (corrupt record header)",
                    start,
                )
            if len(s.buf) - s.pos < hlen + caplen and not s.fill(hlen + caplen):
                raise self._cut(f"record {frame + 1}", start, hlen + caplen)
            p = s.pos + hlen
            data = s.buf[p : p + caplen]
            s.pos = p + caplen
            frame += 1
            stats.frames = frame
            if caplen > limit:
                self._oversized(frame, start, caplen, snaplen)
                continue
            yield frame, linktype, sec * _NS + frac * frac_ns, data, 0

    def _pcapng(self, state: _NgState | None = None) -> Iterator[_Record]:
        """Walk pcapng blocks from the stream, from ``state`` on (a new file: None).

        Where the fast path may read the file (``_ng_file``), stop after a
        block other than a packet when the next is one it can read, ``state``
        then holding what the walk goes on with after it (see :meth:`_ng_parts`).
        """
        s = self._stream
        stats = self.stats
        if state is None:
            state = _NgState()
        endian = state.endian
        u32 = struct.Struct(endian + "I").unpack_from
        interfaces = state.interfaces
        first_iface = state.first_iface
        frame = state.frame
        last_ts = state.last_ts
        warned_spb = state.warned_spb
        resumable = self._ng_file is not None
        while True:
            if not s.fill(8):
                if s.available:
                    raise self._cut("a block header", s.offset, 8)
                return
            start = s.offset
            btype = u32(s.buf, s.pos)[0]
            if btype == _SHB:
                # pcapng 4.1: the byte-order magic decides how to read this section,
                # including this block's own length field.
                if not s.fill(16):
                    raise self._cut("a section header block", start, 16)
                bom = s.buf[s.pos + 8 : s.pos + 12]
                if bom not in (_BOM_BE, _BOM_LE):
                    raise _Damaged(f"bad pcapng byte-order magic 0x{bom.hex()}", start + 8)
                endian = ">" if bom == _BOM_BE else "<"
                u32 = struct.Struct(endian + "I").unpack_from
                major, minor = struct.unpack_from(endian + "HH", s.buf, s.pos + 12)
                if major != 1:
                    raise _Damaged(f"unsupported pcapng version {major}.{minor}", start + 12)
                first_iface += len(interfaces)
                interfaces = []  # interface IDs are per section
            blen = u32(s.buf, s.pos + 4)[0]
            if blen < (28 if btype == _SHB else 12) or blen % 4:
                raise _Damaged(f"pcapng block of type 0x{btype:08x} has bad length {blen}", start)
            record: _Record | None = None
            bad: tuple[str, str] | None = None  # (warning kind, text) for a skipped record
            is_packet = btype in (_EPB, _PB, _SPB)
            if is_packet:
                if btype == _SPB:
                    # pcapng 4.4: interface 0, no timestamp; captured length is the
                    # original length capped by the block and the snap length.
                    fixed = 12
                    if blen < fixed + 4:
                        raise _Damaged(f"simple packet block has bad length {blen}", start)
                    if not s.fill(fixed):
                        raise self._cut("a simple packet block", start, blen)
                    caplen = min(u32(s.buf, s.pos + 8)[0], blen - fixed - 4)
                    if interfaces and interfaces[0].snaplen:
                        caplen = min(caplen, interfaces[0].snaplen)
                    iface_id, ticks = 0, None
                else:
                    # pcapng 4.3 (EPB) and appendix A (obsolete PB): 28-byte fixed part,
                    # the PB with a 16-bit interface ID and a drop counter.
                    fixed = 28
                    if blen < fixed + 4:
                        raise _Damaged(f"packet block has bad length {blen}", start)
                    if not s.fill(fixed):
                        raise self._cut("a packet block", start, blen)
                    fmt = endian + ("IIII" if btype == _EPB else "HxxIII")
                    iface_id, high, low, caplen = struct.unpack_from(fmt, s.buf, s.pos + 8)
                    ticks = (high << 32) | low
                frame += 1
                if caplen > MAX_CAPLEN:
                    raise _Damaged(
                        f"frame {frame} claims {caplen} captured bytes, more than the "
                        f"{MAX_CAPLEN}-byte maximum (corrupt block)",
                        start,
                    )
                if fixed + caplen > blen - 4:
                    bad = (
                        "inconsistent block",
                        f"frame {frame} at offset {start}: {caplen} captured bytes overrun "
                        f"the block length {blen}; skipped",
                    )
                elif iface_id >= len(interfaces):
                    bad = (
                        "unknown interface",
                        f"frame {frame} at offset {start} names interface {iface_id}, but "
                        f"its section describes {len(interfaces)}; skipped",
                    )
                elif interfaces[iface_id].snaplen and (
                    caplen > interfaces[iface_id].snaplen + SNAPLEN_SLACK
                ):
                    bad = _ng_oversized(frame, start, caplen, interfaces[iface_id].snaplen)
                else:
                    if not s.fill(fixed + caplen):
                        raise self._cut(f"frame {frame}", start, blen)
                    iface = interfaces[iface_id]
                    p = s.pos + fixed
                    data = s.buf[p : p + caplen]
                    s.pos = p + caplen
                    if ticks is None:
                        if not warned_spb:
                            warned_spb = True
                            self._warn(
                                f"simple packet blocks carry no timestamp (first: frame "
                                f"{frame} at offset {start}); using the previous frame's"
                            )
                        record = (frame, iface.linktype, last_ts, data, ~first_iface)
                    else:
                        ts_ns = iface.ts_ns(ticks)
                        if _TS_MIN <= ts_ns <= _TS_MAX:
                            last_ts = ts_ns
                            record = (frame, iface.linktype, ts_ns, data, first_iface + iface_id)
                        else:
                            bad = (
                                "timestamp out of range",
                                f"frame {frame} at offset {start} has a timestamp {ts_ns} ns "
                                "from the epoch, beyond the 64-bit range; skipped",
                            )
            elif btype == _IDB:
                self._iface_where[first_iface + len(interfaces)] = (
                    f"interface {len(interfaces)} (described at offset {start})"
                )
                interfaces.append(self._read_idb(endian, start, blen))
            # Every other block (SHB options, NRB, ISB, DSB, custom) is skipped unread.
            if not s.skip(start + blen - 4 - s.offset) or not s.fill(4):
                raise self._cut(f"a pcapng block of type 0x{btype:08x}", start, blen)
            trailer = u32(s.buf, s.pos)[0]
            if trailer != blen:
                raise _Damaged(
                    f"pcapng block length {blen} does not match its trailing copy {trailer}",
                    start,
                )
            s.pos += 4
            if is_packet:
                stats.frames = frame
            if bad is not None:
                self._bad_record(*bad)
            elif record is not None:
                yield record
            if resumable and not is_packet:
                # The fast path may go on after this block (see _ng_parts).
                state.endian, state.interfaces, state.first_iface = endian, interfaces, first_iface
                state.frame, state.last_ts, state.warned_spb = frame, last_ts, warned_spb
                layout = self._ng_layout(state)
                if layout is not None:
                    self._resume = layout
                    return

    def _read_idb(self, endian: str, start: int, blen: int) -> _Interface:
        """Interface Description Block (pcapng 4.2) at ``start``; the stream stays there."""
        s = self._stream
        if blen < 20:
            raise _Damaged(f"interface description block has bad length {blen}", start)
        if not s.fill(16):
            raise self._cut("an interface description block", start, blen)
        linktype, snaplen = struct.unpack_from(endian + "HxxI", s.buf, s.pos + 8)
        tsresol, tsoffset = 6, 0
        if blen > _MAX_META_BLOCK:
            self._warn(f"interface description block at offset {start} too large; options ignored")
            return _interface(linktype, snaplen, tsresol, tsoffset)
        if not s.fill(blen):
            raise self._cut("an interface description block", start, blen)
        p = s.pos + 16
        end = s.pos + blen - 4
        opt = struct.Struct(endian + "HH").unpack_from
        while p + 4 <= end:
            code, size = opt(s.buf, p)
            if code == 0:  # opt_endofopt
                break
            if p + 4 + size > end:
                self._warn(f"malformed options in interface description block at offset {start}")
                break
            if code == _OPT_TSRESOL and size >= 1:
                tsresol = s.buf[p + 4]
            elif code == _OPT_TSOFFSET and size == 8:
                tsoffset = struct.unpack_from(endian + "q", s.buf, p + 4)[0]
            p += 4 + ((size + 3) & ~3)
        return _interface(linktype, snaplen, tsresol, tsoffset)
