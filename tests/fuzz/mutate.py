"""Structure-aware mutations of pcap/pcapng captures, and the oracle every mutant must pass.

Shared by ``tests/test_fuzz.py`` (hypothesis, bounded, in CI) and
``tests/fuzz/campaign.py`` (atheris or random, long). A mutation is a list of
operations ``(kind, a, b)``: two integers whose meaning depends on the kind
(reduced modulo whatever size they index), so that hypothesis can shrink them
and a seeded ``random.Random`` can draw them alike.

Record-level operations split the capture into its file header, its whole
records (pcap record header + data, or pcapng block) and whatever tail does
not parse as a record, change the list, and join it again:

* ``length``: overwrite a length field of one record (pcap caplen or wirelen;
  pcapng block length, its trailing copy, or an EPB's captured length) with a
  boundary value or a small offset from the true one;
* ``shuffle``, ``duplicate``, ``drop``: reorder, repeat or remove records;

and byte-level ones work on the joined bytes: ``flip`` (xor one byte), ``cut``
(keep a prefix), ``insert`` (four bytes anywhere), ``u32`` (a boundary value
written over four bytes) and ``gzip`` (compress what there is so far, so that
later byte operations corrupt the gzip stream itself).
"""

from __future__ import annotations

import gzip
import io
import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import tcpflow_analyzer
from tcpflow_analyzer import CaptureError

__all__ = [
    "CAPTURES",
    "KINDS",
    "Op",
    "apply",
    "check",
    "random_ops",
    "seeds",
]

CAPTURES = Path(__file__).resolve().parents[2] / "captures"

Op = tuple[str, int, int]
KINDS = ("flip", "cut", "length", "shuffle", "duplicate", "drop", "insert", "u32", "gzip")

BOUNDARY = (
    0,
    1,
    3,
    4,
    11,
    12,
    16,
    27,
    28,
    32,
    65535,
    65536,
    262144,
    262145,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFFC,
    0xFFFFFFFF,
)
OFFSETS = (-8, -4, -2, -1, 1, 2, 4, 8, 100)

_PCAP_MAGICS = (0xA1B2C3D4, 0xA1B23C4D, 0xA1B2CD34)
_SHB = 0x0A0D0D0A
_EPB = 6


def seeds() -> dict[str, bytes]:
    """The real captures in captures/, by file name."""
    return {p.name: p.read_bytes() for p in sorted(CAPTURES.glob("*.pcap*"))}


@dataclass
class _Layout:
    head: bytes
    records: list[bytes] = field(default_factory=list)
    tail: bytes = b""
    endian: str = "<"
    pcapng: bool = False

    def join(self) -> bytes:
        return self.head + b"".join(self.records) + self.tail


def _split(data: bytes) -> _Layout:
    for endian in ("<", ">"):
        if len(data) >= 24 and struct.unpack_from(endian + "I", data)[0] in _PCAP_MAGICS:
            return _split_pcap(data, endian)
    if len(data) >= 12 and struct.unpack_from("<I", data)[0] == _SHB:
        return _split_pcapng(data)
    return _Layout(head=b"", tail=data)


def _split_pcap(data: bytes, endian: str) -> _Layout:
    hlen = 24 if struct.unpack_from(endian + "I", data)[0] == 0xA1B2CD34 else 16
    out = _Layout(head=data[:24], endian=endian)
    pos = 24
    while pos + hlen <= len(data):
        caplen = struct.unpack_from(endian + "I", data, pos + 8)[0]
        if pos + hlen + caplen > len(data):
            break
        out.records.append(data[pos : pos + hlen + caplen])
        pos += hlen + caplen
    out.tail = data[pos:]
    return out


def _split_pcapng(data: bytes) -> _Layout:
    endian = ">" if data[8:12] == b"\x1a\x2b\x3c\x4d" else "<"
    blocks: list[bytes] = []
    pos = 0
    while pos + 12 <= len(data):
        btype = struct.unpack_from("<I", data, pos)[0]
        if btype == _SHB and pos + 12 <= len(data):
            endian = ">" if data[pos + 8 : pos + 12] == b"\x1a\x2b\x3c\x4d" else "<"
        blen = struct.unpack_from(endian + "I", data, pos + 4)[0]
        if blen < 12 or blen % 4 or pos + blen > len(data):
            break
        blocks.append(data[pos : pos + blen])
        pos += blen
    if not blocks:
        return _Layout(head=b"", tail=data)
    return _Layout(head=blocks[0], records=blocks[1:], tail=data[pos:], endian=endian, pcapng=True)


def _boundary_or_near(true: int, pick: int) -> int:
    choices = len(BOUNDARY) + len(OFFSETS)
    pick %= choices
    if pick < len(BOUNDARY):
        return BOUNDARY[pick]
    return max(0, min(0xFFFFFFFF, true + OFFSETS[pick - len(BOUNDARY)]))


def _set_length(layout: _Layout, a: int, b: int) -> None:
    if not layout.records:
        return
    i = a % len(layout.records)
    rec = bytearray(layout.records[i])
    e = layout.endian
    if layout.pcapng:
        fields = [4, len(rec) - 4]
        if len(rec) >= 28 and struct.unpack_from(e + "I", rec)[0] == _EPB:
            fields.append(20)
    else:
        fields = [8, 12]
    at = fields[(a // len(layout.records)) % len(fields)]
    true = struct.unpack_from(e + "I", rec, at)[0]
    struct.pack_into(e + "I", rec, at, _boundary_or_near(true, b))
    layout.records[i] = bytes(rec)


def _record_op(data: bytes, kind: str, a: int, b: int) -> bytes:
    layout = _split(data)
    recs = layout.records
    if kind == "length":
        _set_length(layout, a, b)
    elif not recs:
        return data
    elif kind == "shuffle":
        random.Random(a).shuffle(recs)
    elif kind == "duplicate":
        recs.insert(b % (len(recs) + 1), recs[a % len(recs)])
    elif kind == "drop":
        del recs[a % len(recs)]
    return layout.join()


def _byte_op(data: bytes, kind: str, a: int, b: int) -> bytes:
    if kind == "gzip":
        return gzip.compress(data, compresslevel=1 + b % 9, mtime=0)
    if not data:
        return data
    pos = a % len(data)
    if kind == "flip":
        return data[:pos] + bytes([data[pos] ^ (1 + b % 255)]) + data[pos + 1 :]
    if kind == "cut":
        return data[:pos]
    if kind == "insert":
        return data[:pos] + struct.pack("<I", b & 0xFFFFFFFF) + data[pos:]
    # u32: a boundary value over four bytes, in either byte order
    value = BOUNDARY[b % len(BOUNDARY)]
    return data[:pos] + struct.pack("<I" if b & 1 else ">I", value) + data[pos + 4 :]


def apply(data: bytes, ops: Sequence[Op]) -> bytes:
    """``data`` after each operation in turn."""
    for kind, a, b in ops:
        if kind in ("length", "shuffle", "duplicate", "drop"):
            data = _record_op(data, kind, a, b)
        else:
            data = _byte_op(data, kind, a, b)
    return data


def random_ops(rng: random.Random, most: int = 4) -> list[Op]:
    """A random mutation of one to ``most`` operations."""
    return [
        (rng.choice(KINDS), rng.getrandbits(32), rng.getrandbits(32))
        for _ in range(rng.randint(1, most))
    ]


def check(data: bytes) -> None:
    """The oracle: analyze ``data``; only ``CaptureError`` may escape, and the counts add up."""
    try:
        result = tcpflow_analyzer.analyze(io.BytesIO(data))
    except CaptureError:
        return
    skipped = sum(result.skipped.values())
    assert result.frames == result.segments + skipped, (result.frames, result.segments, skipped)
    assert len(result.connections) <= result.segments
    if result.truncated:
        assert result.warnings, "truncated without a warning"
