"""The decoded TCP segment: the record that crosses from the reader to the tracker.

Theory of operation
-------------------
The reader (``reader.py``) walks a capture file and hands out raw frames; the
decoder turns each frame into either a :class:`Segment` or a skip reason (a
:class:`SkipReason` value). Everything after decoding (flow table, state
tracker, detectors, reports) sees only ``Segment`` records, never bytes.

Addresses are kept packed (4 or 16 bytes) so that flow keys hash fast; the
report layer turns them into text. ``payload_len`` is the TCP payload length
derived from the IP header's length fields, not from the captured bytes, so
that frames cut by the snap length still account for every sequence number.
``ts_ns`` always fits a signed 64-bit integer (the reader skips frames whose
timestamp does not), so it converts to ``datetime64[ns]`` without overflow.

``checksum_ok`` says whether the IPv4 header checksum (RFC 791 3.1) and the
TCP checksum over the pseudo-header (RFC 9293 3.1, RFC 8200 8.1) were right;
``None`` when they could not be checked (frame cut by the snap length, a
length field that had to be guessed, or a source route that changes the
pseudo-header's destination). A wrong checksum does not drop the segment:
captures taken on the sending host with checksum offload show checksums the
network card had not filled in yet.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, fields
from enum import IntFlag, StrEnum
from typing import Any, Final

__all__ = ["Bit", "Flags", "Segment", "SkipReason", "TcpOptions", "addr_text", "by_fields"]


class Flags(IntFlag):
    """TCP header flags (RFC 9293 3.1, RFC 3168 for ECE/CWR)."""

    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK = 0x10
    URG = 0x20
    ECE = 0x40
    CWR = 0x80


class Bit:
    """The TCP flag bits as plain ints, for the hot path (``IntFlag`` operations are slow)."""

    FIN: Final = 0x01
    SYN: Final = 0x02
    RST: Final = 0x04
    PSH: Final = 0x08
    ACK: Final = 0x10
    URG: Final = 0x20
    ECE: Final = 0x40
    CWR: Final = 0x80


class SkipReason(StrEnum):
    """Why a frame was not analyzed. Public vocabulary: documented in the README."""

    NOT_IP = "not_ip"  # link payload is not IPv4/IPv6 (ARP, LLDP, ...)
    NOT_TCP = "not_tcp"  # IP packet whose transport is not TCP (UDP, ICMP, ...)
    IP_FRAGMENT = "ip_fragment"  # IPv4/IPv6 fragment (not reassembled)
    CUT_IP_HEADER = "cut_ip_header"  # frame ends inside the IP header
    CUT_TCP_HEADER = "cut_tcp_header"  # frame ends inside the TCP header (snap length)
    BAD_IP_HEADER = "bad_ip_header"  # IP version/IHL/length fields inconsistent
    BAD_TCP_HEADER = "bad_tcp_header"  # TCP data offset < 5 or beyond the IP payload
    UNSUPPORTED_LINKTYPE = "unsupported_linktype"  # link type we do not decode
    CUT_LINK_HEADER = "cut_link_header"  # frame ends inside the link-layer header
    TOO_MANY_HEADERS = "too_many_headers"  # VLAN stack / IPv6 extension chain too deep


# Records made once per segment are plain slotted dataclasses, not frozen ones: a
# frozen dataclass's __init__ sets each field through object.__setattr__, six
# times slower for a 16-field record. Nothing changes them once made.
#
# Their __init__ is written out (init=False) rather than generated: the one
# @dataclass generates is Python source made at import time, interpreted even in
# the compiled build, where a written one is compiled with the class (setup.py):
# building a step's Segment and Step (compact.Trace) takes half the time. The
# compiled class calls that __init__ from its __new__, so copy and pickle, which
# make the object first and fill it in after, need __reduce__ (by_fields): the
# object is made again from its fields. The signatures are those @dataclass would
# generate.


def by_fields(record: Any) -> tuple[type[Any], tuple[object, ...]]:
    """``__reduce__`` of a dataclass with a written ``__init__``: made again from its fields."""
    return type(record), tuple([getattr(record, f.name) for f in fields(record)])


@dataclass(slots=True, init=False)
class TcpOptions:
    """The TCP options the analyzer uses (RFC 9293 3.2, RFC 7323, RFC 2018)."""

    mss: int | None = None
    wscale: int | None = None
    sack_permitted: bool = False
    sack_blocks: tuple[tuple[int, int], ...] = ()
    ts_val: int | None = None
    ts_ecr: int | None = None

    def __init__(
        self,
        mss: int | None = None,
        wscale: int | None = None,
        sack_permitted: bool = False,
        sack_blocks: tuple[tuple[int, int], ...] = (),
        ts_val: int | None = None,
        ts_ecr: int | None = None,
    ) -> None:
        self.mss = mss
        self.wscale = wscale
        self.sack_permitted = sack_permitted
        self.sack_blocks = sack_blocks
        self.ts_val = ts_val
        self.ts_ecr = ts_ecr

    def __reduce__(self) -> tuple[type[Any], tuple[object, ...]]:
        return by_fields(self)


@dataclass(slots=True, init=False)
class Segment:
    """One decoded TCP segment as seen at the capture point (not changed once made, but
    by a reader that reuses it: ``CaptureReader(reuse=True)``)."""

    frame: int  # 1-based capture order, as Wireshark's frame.number
    ts_ns: int  # capture timestamp, integer nanoseconds since the epoch
    vlan: tuple[int, ...]  # VLAN IDs outermost first; () when untagged
    src: bytes  # packed source address (4 bytes IPv4, 16 bytes IPv6)
    dst: bytes  # packed destination address
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int  # the 8 TCP flag bits (see Flags)
    window: int  # raw window field (unscaled)
    payload_len: int  # TCP payload length from the IP length fields
    ip_len: int  # IP datagram length on the wire (header + payload), for Zeek's *_ip_bytes
    options: TcpOptions | None = None  # None when the segment carries no options
    caplen_short: bool = False  # True when the snap length cut the payload
    checksum_ok: bool | None = None  # IPv4 header + TCP checksums; None: not verifiable

    def __init__(
        self,
        frame: int,
        ts_ns: int,
        vlan: tuple[int, ...],
        src: bytes,
        dst: bytes,
        sport: int,
        dport: int,
        seq: int,
        ack: int,
        flags: int,
        window: int,
        payload_len: int,
        ip_len: int,
        options: TcpOptions | None = None,
        caplen_short: bool = False,
        checksum_ok: bool | None = None,
    ) -> None:
        self.frame = frame
        self.ts_ns = ts_ns
        self.vlan = vlan
        self.src = src
        self.dst = dst
        self.sport = sport
        self.dport = dport
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.window = window
        self.payload_len = payload_len
        self.ip_len = ip_len
        self.options = options
        self.caplen_short = caplen_short
        self.checksum_ok = checksum_ok

    def __reduce__(self) -> tuple[type[Any], tuple[object, ...]]:
        return by_fields(self)

    @property
    def seg_len(self) -> int:
        """Sequence space used (RFC 9293 3.4): payload plus one each for SYN and FIN."""
        # SYN is bit 1 and FIN bit 0 (Bit.SYN, Bit.FIN): plain int arithmetic, hot path.
        return self.payload_len + ((self.flags >> 1) & 1) + (self.flags & 1)


# addr_text's cache: a plain dict (a compiled call of addr_text then costs a lookup;
# one through functools.lru_cache makes a tuple of the arguments), emptied when full.
_ADDR_TEXTS: Final[dict[bytes, str]] = {}
_ADDR_TEXTS_KEPT: Final = 1 << 16


def addr_text(addr: bytes) -> str:
    """Packed IPv4/IPv6 address to its usual text form.

    Reports ask for the same few addresses again and again, hence the cache;
    dotted decimal for IPv4 is what ``ipaddress`` writes too.
    """
    text = _ADDR_TEXTS.get(addr)
    if text is None:
        text = socket.inet_ntoa(addr) if len(addr) == 4 else str(ipaddress.ip_address(addr))
        if len(_ADDR_TEXTS) >= _ADDR_TEXTS_KEPT:
            _ADDR_TEXTS.clear()
        _ADDR_TEXTS[addr] = text
    return text
