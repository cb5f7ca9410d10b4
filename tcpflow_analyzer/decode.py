"""Frame decoder: one captured frame (link type + bytes) to a Segment or a SkipReason.

Theory of operation
-------------------
Decoding is three short walks over the same ``bytes`` object, never copying it
and never building a per-layer object (``struct.unpack_from`` at offsets):

1. **Link layer** (:data:`_LINK_DECODERS`, keyed by the capture's link type):
   find where the network-layer packet starts and what it is. Ethernet, Linux
   cooked (SLL, SLL2) and FDDI end in an EtherType, which may be followed by a
   stack of VLAN tags (802.1Q 0x8100, 802.1ad 0x88a8, legacy 0x9100) or, for
   802.3 lengths / FDDI, by an 802.2 LLC + SNAP header carrying the EtherType
   (RFC 1042). Raw-IP link types read the IP version nibble; BSD null/loopback
   read an address family. A link type not in the table is
   ``UNSUPPORTED_LINKTYPE``; a link payload that is not IPv4/IPv6 is ``NOT_IP``.
2. **Network layer**: IPv4 (RFC 791) with options, or IPv6 (RFC 8200) with its
   extension-header chain. The IP *length fields* define the TCP segment length,
   not the number of captured bytes: Ethernet pads short frames to 60 bytes and
   snap lengths cut long ones, and either would otherwise corrupt sequence-space
   accounting. Fragments are not reassembled (``IP_FRAGMENT``). For non-TCP
   traffic ``NOT_TCP`` wins over ``IP_FRAGMENT`` so that the fragment count only
   counts TCP data the analyzer lost.
3. **TCP header** (RFC 9293 3.1) and the options the analyzer uses (RFC 9293
   3.2 MSS, RFC 7323 window scale and timestamps, RFC 2018 SACK).

Checksums
---------
``Segment.checksum_ok`` covers the IPv4 header checksum and the TCP checksum
with its pseudo-header (RFC 9293 3.1; RFC 8200 8.1 for IPv6). Both are the
ones' complement of the ones' complement sum of 16-bit words (RFC 1071), and a
packet is intact when that sum over everything, checksum included, is 0xFFFF.
Because 2^16 = 1 (mod 0xFFFF), the ones' complement sum of a byte string is
congruent to ``int.from_bytes(data, "big") % 0xFFFF`` (an odd-length string
is first padded with one zero byte, i.e. the integer shifted by 8 bits); so
"intact" is "the big integer is divisible by 0xFFFF", computed in C in a single
pass with no per-word Python loop. (The sum could only be +0 rather than -0 if
every word were zero, which the pseudo-header's protocol number 6 and the IPv4
version nibble rule out.) For IPv4 the header and the segment are contiguous and
each sums to zero on its own, so one pass over both checks both; errors in the
two that cancel out slip through with the same 1-in-65535 chance that one
checksum has anyway. The TCP checksum is checked only when the whole datagram
was captured and its length field was trusted; otherwise ``checksum_ok`` is
``None``, or ``False`` if the IPv4 header checksum alone already fails.

Decisions worth knowing
-----------------------
* Stacks are bounded: at most :data:`MAX_LINK_HEADERS` VLAN tags / SNAP headers
  and :data:`MAX_IPV6_EXT_HEADERS` IPv6 extension headers; one more is
  ``TOO_MANY_HEADERS``. VLAN IDs are recorded as on the wire, including the
  priority-only ID 0, outermost first.
* IPv4 total length 0 (or smaller than the header) happens on the sending host
  with TCP segmentation offload; IPv6 payload length 0 happens with TSO and
  jumbograms (RFC 2675). Both fall back to the captured length instead of
  failing; with that fallback a link-layer trailer (FCS) would count as payload.
* A TCP header whose options were cut by the snap length still yields a segment
  (``options=None``, ``caplen_short=True``); fewer than 20 captured TCP bytes is
  ``CUT_TCP_HEADER``. A TCP header the IP length cannot hold is ``BAD_TCP_HEADER``.
* Option parsing stops at the first malformed option (bad length, overrun) and
  keeps what was parsed before it. ``options`` is ``None`` when none of MSS,
  window scale, SACK-permitted, SACK or timestamps is present. The window-scale
  shift is kept raw (values above 14 are clamped by the consumer, RFC 7323 2.3).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TypeAlias

from .segment import Segment, SkipReason, TcpOptions

__all__ = [
    "LINKTYPES",
    "MAX_IPV6_EXT_HEADERS",
    "MAX_LINK_HEADERS",
    "decode_frame",
]

MAX_LINK_HEADERS = 8  # VLAN tags and LLC/SNAP headers after the first EtherType
MAX_IPV6_EXT_HEADERS = 8  # RFC 8200 4.1 sets no limit; real traffic uses 0-3

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
_VLAN_TPIDS = frozenset((0x8100, 0x88A8, 0x9100))
_SNAP_OUIS = frozenset((b"\x00\x00\x00", b"\x00\x00\xf8"))  # RFC 1042, 802.1H

# IPv6 extension headers sharing the RFC 6564 layout (next header, length in
# 8-octet units not counting the first): hop-by-hop, routing, destination
# options (RFC 8200 4.3-4.6), mobility (RFC 6275), HIP (RFC 7401), shim6 (RFC 5533).
_IPV6_EXT_GENERIC = frozenset((0, 43, 60, 135, 139, 140))
_IPV6_FRAGMENT = 44
_IPV6_AH = 51  # RFC 4302 2.2: length in 4-octet units minus 2
_IPV6_CHAIN = _IPV6_EXT_GENERIC | {_IPV6_FRAGMENT, _IPV6_AH}
_TCP = 6
_IPV6_ROUTING = 43
_IPV4_SOURCE_ROUTES = (b"\x83", b"\x89")  # LSRR, SSRR option types (RFC 791 3.1)
_ONES = 0xFFFF  # ones' complement sums are congruent modulo 2^16 - 1 (RFC 1071)

_U16 = struct.Struct("!H").unpack_from
_U32_BE = struct.Struct("!I").unpack_from
_U32_LE = struct.Struct("<I").unpack_from
_VLAN_TAG = struct.Struct("!HH").unpack_from
_IPV4_HDR = struct.Struct("!BxHxxHxB2x4s4s").unpack_from
_IPV6_HDR = struct.Struct("!IHB").unpack_from
_TCP_HDR = struct.Struct("!HHIIBBH").unpack_from
_TWO_U32 = struct.Struct("!II").unpack_from
_NOP_NOP_TS = b"\x01\x01\x08\x0a"

# Address families in the null/loopback header (values from BSD socket.h).
_AF_INET = 2
_AF_INET6 = frozenset((24, 28, 30))  # NetBSD/OpenBSD, FreeBSD, Darwin

# (EtherType-like network protocol, offset of the network header, VLAN IDs)
_Link: TypeAlias = tuple[int, int, tuple[int, ...]]
_LinkResult: TypeAlias = _Link | SkipReason


def decode_frame(linktype: int, data: bytes, frame: int, ts_ns: int) -> Segment | SkipReason:
    """Decode one captured frame; return the TCP segment or why it was skipped.

    ``linktype`` is the capture's LINKTYPE_* value (see :data:`LINKTYPES`),
    ``data`` the captured bytes, ``frame`` the 1-based frame number and
    ``ts_ns`` the capture time in integer nanoseconds; the last two are only
    copied into the segment.
    """
    link = _LINK_DECODERS.get(linktype)
    if link is None:
        return SkipReason.UNSUPPORTED_LINKTYPE
    found = link(data)
    if isinstance(found, SkipReason):
        return found
    proto, off, vlan = found
    if proto == ETH_IPV4:
        return _ipv4(data, off, vlan, frame, ts_ns)
    if proto == ETH_IPV6:
        return _ipv6(data, off, vlan, frame, ts_ns)
    return SkipReason.NOT_IP


# --- link layer -------------------------------------------------------------


def _after_ethertype(data: bytes, etype: int, off: int) -> _LinkResult:
    """Follow VLAN tags and LLC/SNAP from an EtherType whose payload starts at ``off``."""
    vlan: tuple[int, ...] = ()
    depth = 0
    while True:
        if etype in (ETH_IPV4, ETH_IPV6):
            return etype, off, vlan
        if etype in _VLAN_TPIDS:
            # IEEE 802.1Q 9.6: TCI (PCP, DEI, 12-bit VID) then the inner EtherType.
            if len(data) < off + 4:
                return SkipReason.CUT_LINK_HEADER
            tci, etype = _VLAN_TAG(data, off)
            vlan += (tci & 0x0FFF,)
            off += 4
        elif etype <= 1500:
            # IEEE 802.3 length field (or an SLL protocol below 0x0600): an 802.2
            # LLC header follows; only SNAP (AA AA 03) with an EtherType OUI carries IP.
            llc = _llc_snap(data, off)
            if isinstance(llc, SkipReason):
                return llc
            etype, off = llc
        else:
            return etype, off, vlan
        depth += 1
        if depth > MAX_LINK_HEADERS:
            return SkipReason.TOO_MANY_HEADERS


def _llc_snap(data: bytes, off: int) -> tuple[int, int] | SkipReason:
    """802.2 LLC + SNAP at ``off`` (RFC 1042): return (EtherType, payload offset)."""
    if len(data) < off + 3:
        return SkipReason.CUT_LINK_HEADER
    if data[off : off + 3] != b"\xaa\xaa\x03":
        return SkipReason.NOT_IP  # plain LLC (STP, NetBIOS, ...)
    if len(data) < off + 8:
        return SkipReason.CUT_LINK_HEADER
    if data[off + 3 : off + 6] not in _SNAP_OUIS:
        return SkipReason.NOT_IP  # vendor protocol (CDP, ...)
    return _U16(data, off + 6)[0], off + 8


def _ethernet(data: bytes) -> _LinkResult:
    # IEEE 802.3 / Ethernet II: dst(6) src(6) EtherType-or-length(2).
    if len(data) < 14:
        return SkipReason.CUT_LINK_HEADER
    return _after_ethertype(data, _U16(data, 12)[0], 14)


def _linux_sll(data: bytes) -> _LinkResult:
    # LINKTYPE_LINUX_SLL: pkttype(2) hatype(2) halen(2) addr(8) protocol(2).
    if len(data) < 16:
        return SkipReason.CUT_LINK_HEADER
    return _after_ethertype(data, _U16(data, 14)[0], 16)


def _linux_sll2(data: bytes) -> _LinkResult:
    # LINKTYPE_LINUX_SLL2: protocol(2) reserved(2) ifindex(4) hatype(2)
    # pkttype(1) halen(1) addr(8).
    if len(data) < 20:
        return SkipReason.CUT_LINK_HEADER
    return _after_ethertype(data, _U16(data, 0)[0], 20)


def _fddi(data: bytes) -> _LinkResult:
    # LINKTYPE_FDDI (ANSI X3.139): frame control(1) dst(6) src(6), then 802.2 LLC.
    if len(data) < 13:
        return SkipReason.CUT_LINK_HEADER
    llc = _llc_snap(data, 13)
    if isinstance(llc, SkipReason):
        return llc
    return _after_ethertype(data, llc[0], llc[1])


def _raw_ip(data: bytes) -> _LinkResult:
    # LINKTYPE_RAW and the DLT_RAW values 12/14: the IP version nibble decides.
    if not data:
        return SkipReason.CUT_IP_HEADER
    version = data[0] >> 4
    if version == 4:
        return ETH_IPV4, 0, ()
    if version == 6:
        return ETH_IPV6, 0, ()
    return SkipReason.BAD_IP_HEADER


def _raw_ipv4(data: bytes) -> _LinkResult:
    return ETH_IPV4, 0, ()


def _raw_ipv6(data: bytes) -> _LinkResult:
    return ETH_IPV6, 0, ()


def _family(family: int) -> int | None:
    if family == _AF_INET:
        return ETH_IPV4
    if family in _AF_INET6:
        return ETH_IPV6
    return None


def _null(data: bytes) -> _LinkResult:
    # LINKTYPE_NULL: 4-byte address family in the *writer's* byte order, so
    # try both (a valid family in one order is never valid in the other).
    if len(data) < 4:
        return SkipReason.CUT_LINK_HEADER
    proto = _family(_U32_LE(data, 0)[0])
    if proto is None:
        proto = _family(_U32_BE(data, 0)[0])
    if proto is None:
        return SkipReason.NOT_IP
    return proto, 4, ()


def _loop(data: bytes) -> _LinkResult:
    # LINKTYPE_LOOP (OpenBSD loopback): like NULL but always network byte order.
    if len(data) < 4:
        return SkipReason.CUT_LINK_HEADER
    proto = _family(_U32_BE(data, 0)[0])
    if proto is None:
        return SkipReason.NOT_IP
    return proto, 4, ()


_LINK_DECODERS: dict[int, Callable[[bytes], _LinkResult]] = {
    0: _null,  # LINKTYPE_NULL
    1: _ethernet,  # LINKTYPE_ETHERNET
    10: _fddi,  # LINKTYPE_FDDI
    12: _raw_ip,  # DLT_RAW on most BSDs/Linux, found as-is in some files
    14: _raw_ip,  # DLT_RAW on OpenBSD
    101: _raw_ip,  # LINKTYPE_RAW
    108: _loop,  # LINKTYPE_LOOP
    113: _linux_sll,  # LINKTYPE_LINUX_SLL
    228: _raw_ipv4,  # LINKTYPE_IPV4
    229: _raw_ipv6,  # LINKTYPE_IPV6
    276: _linux_sll2,  # LINKTYPE_LINUX_SLL2
}

LINKTYPES: frozenset[int] = frozenset(_LINK_DECODERS)
"""The link types :func:`decode_frame` understands."""


# --- network layer ----------------------------------------------------------


def _ipv4(
    data: bytes, off: int, vlan: tuple[int, ...], frame: int, ts_ns: int
) -> Segment | SkipReason:
    cap = len(data) - off
    if cap < 20:
        return SkipReason.CUT_IP_HEADER
    # RFC 791 3.1: version/IHL, TOS, total length, id, flags/fragment offset,
    # TTL, protocol, checksum, source, destination.
    vihl, total, frag, proto, src, dst = _IPV4_HDR(data, off)
    ihl = (vihl & 0x0F) * 4
    if vihl >> 4 != 4 or ihl < 20:
        return SkipReason.BAD_IP_HEADER
    if cap < ihl:
        return SkipReason.CUT_IP_HEADER
    # Pseudo-header words (RFC 9293 3.1): source, destination, zero + protocol;
    # the TCP length is added by _tcp. None: the TCP checksum cannot be checked.
    pseudo: int | None = int.from_bytes(data[off + 12 : off + 20], "big") + _TCP
    if total < ihl:
        # Total length 0 (TSO on the capturing sender) or nonsense: trust the
        # captured bytes rather than drop the segment.
        total = cap
        pseudo = None
    elif ihl > 20 and any(o in data[off + 20 : off + ihl] for o in _IPV4_SOURCE_ROUTES):
        # A source route puts the final destination in the pseudo-header
        # (RFC 9293 3.1). The byte test can also match inside another option;
        # that only costs a check that is skipped, never a wrong verdict.
        pseudo = None
    if proto != _TCP:
        return SkipReason.NOT_TCP
    if frag & 0x3FFF:  # MF flag or a nonzero fragment offset
        return SkipReason.IP_FRAGMENT
    return _tcp(
        data,
        off + ihl,
        total - ihl,
        min(cap, total) - ihl,
        total,
        cap < total,
        src,
        dst,
        vlan,
        frame,
        ts_ns,
        off,
        pseudo,
    )


def _ipv6(
    data: bytes, off: int, vlan: tuple[int, ...], frame: int, ts_ns: int
) -> Segment | SkipReason:
    cap = len(data) - off
    if cap < 40:
        return SkipReason.CUT_IP_HEADER
    # RFC 8200 3: version/class/flow label, payload length, next header, hop
    # limit, source, destination.
    vtcfl, plen, nh = _IPV6_HDR(data, off)
    if vtcfl >> 28 != 6:
        return SkipReason.BAD_IP_HEADER
    # Pseudo-header words (RFC 8200 8.1): source, destination, next header 6;
    # the upper-layer length is added by _tcp.
    pseudo: int | None = int.from_bytes(data[off + 8 : off + 40], "big") + _TCP
    if plen == 0:
        plen = cap - 40  # TSO or a jumbogram (RFC 2675): use what was captured
        pseudo = None
    ip_len = 40 + plen
    end = off + ip_len  # end of the datagram per the length field
    cap_end = off + cap  # end of the captured bytes
    p = off + 40
    count = 0
    while nh != _TCP:
        if nh not in _IPV6_CHAIN:
            return SkipReason.NOT_TCP  # UDP, ICMPv6, ESP, No Next Header (59), ...
        if count == MAX_IPV6_EXT_HEADERS:
            return SkipReason.TOO_MANY_HEADERS
        need = 8 if nh == _IPV6_FRAGMENT else 2
        if p + need > end:
            return SkipReason.BAD_IP_HEADER
        if p + need > cap_end:
            return SkipReason.CUT_IP_HEADER
        if nh == _IPV6_FRAGMENT:
            # RFC 8200 4.5: next header, reserved, offset(13 bits) res(2) M(1), id.
            nh, offlag = data[p], _U16(data, p + 2)[0]
            if offlag & 0xFFF9:  # offset != 0 or M set; offset 0 M 0 is atomic (RFC 6946)
                if nh == _TCP or nh in _IPV6_CHAIN:
                    return SkipReason.IP_FRAGMENT
                return SkipReason.NOT_TCP
            p += 8
        elif nh == _IPV6_AH:
            nh, p = data[p], p + (data[p + 1] + 2) * 4
        else:
            if nh == _IPV6_ROUTING and p + 4 <= cap_end and data[p + 3]:
                # Segments left: the pseudo-header holds the final destination,
                # not the one in the header (RFC 8200 8.1).
                pseudo = None
            nh, p = data[p], p + (data[p + 1] + 1) * 8
        count += 1
    if p > end:
        return SkipReason.BAD_IP_HEADER
    if p > cap_end:
        return SkipReason.CUT_IP_HEADER
    return _tcp(
        data,
        p,
        end - p,
        min(end, cap_end) - p,
        ip_len,
        cap < ip_len,
        data[off + 8 : off + 24],
        data[off + 24 : off + 40],
        vlan,
        frame,
        ts_ns,
        p,  # IPv6 has no header checksum: only the segment is summed
        pseudo,
    )


# --- transport layer --------------------------------------------------------


def _tcp(
    data: bytes,
    off: int,
    tcp_len: int,
    tcp_cap: int,
    ip_len: int,
    caplen_short: bool,
    src: bytes,
    dst: bytes,
    vlan: tuple[int, ...],
    frame: int,
    ts_ns: int,
    sum_from: int,
    pseudo: int | None,
) -> Segment | SkipReason:
    """TCP header at ``off``; ``tcp_len`` per the IP length, ``tcp_cap`` captured.

    Checksums are verified over ``data[sum_from : off + tcp_len]`` (the IPv4
    header and the segment, or the segment alone); ``pseudo`` is the
    pseudo-header sum without the TCP length, ``None`` when it is not known.
    """
    if tcp_len < 20:
        return SkipReason.BAD_TCP_HEADER  # the IP length cannot hold a TCP header
    if tcp_cap < 20:
        return SkipReason.CUT_TCP_HEADER
    # RFC 9293 3.1: ports, sequence, acknowledgment, data offset, flags, window.
    sport, dport, seq, ack, doff, flags, window = _TCP_HDR(data, off)
    hlen = (doff >> 4) * 4
    if hlen < 20 or hlen > tcp_len:
        return SkipReason.BAD_TCP_HEADER
    options = None
    if hlen > 20 and tcp_cap >= hlen:  # options cut by the snap length are dropped
        options = _tcp_options(data, off + 20, off + hlen)
    checksum_ok: bool | None = None
    if pseudo is not None and tcp_cap >= tcp_len:
        words = int.from_bytes(data[sum_from : off + tcp_len], "big")
        if tcp_len & 1:
            words <<= 8  # pad to a whole 16-bit word (RFC 9293 3.1)
        checksum_ok = (pseudo + tcp_len + words) % _ONES == 0
    elif sum_from < off and int.from_bytes(data[sum_from:off], "big") % _ONES:
        checksum_ok = False  # the IPv4 header alone is already wrong
    return Segment(
        frame=frame,
        ts_ns=ts_ns,
        vlan=vlan,
        src=src,
        dst=dst,
        sport=sport,
        dport=dport,
        seq=seq,
        ack=ack,
        flags=flags,
        window=window,
        payload_len=tcp_len - hlen,
        ip_len=ip_len,
        options=options,
        caplen_short=caplen_short,
        checksum_ok=checksum_ok,
    )


def _tcp_options(data: bytes, p: int, end: int) -> TcpOptions | None:
    """Parse TCP options in ``data[p:end]`` (RFC 9293 3.2); stop at the first malformed one."""
    if end - p == 12 and data.startswith(_NOP_NOP_TS, p):
        # Fast path: the layout of nearly every non-SYN segment with timestamps
        # (RFC 7323 appendix A).
        val, ecr = _TWO_U32(data, p + 4)
        return TcpOptions(ts_val=val, ts_ecr=ecr)
    mss: int | None = None
    wscale: int | None = None
    sack_permitted = False
    sack_blocks: tuple[tuple[int, int], ...] = ()
    ts_val: int | None = None
    ts_ecr: int | None = None
    while p < end:
        kind = data[p]
        if kind == 0:  # End of Option List
            break
        if kind == 1:  # No-Operation
            p += 1
            continue
        if p + 2 > end:
            break  # no room for the length octet
        size = data[p + 1]
        if size < 2 or p + size > end:
            break
        if kind == 2:  # MSS (RFC 9293 3.2)
            if size != 4:
                break
            mss = _U16(data, p + 2)[0]
        elif kind == 3:  # Window Scale (RFC 7323 2.2)
            if size != 3:
                break
            wscale = data[p + 2]
        elif kind == 4:  # SACK-Permitted (RFC 2018 2)
            if size != 2:
                break
            sack_permitted = True
        elif kind == 5:  # SACK (RFC 2018 3): 1-4 blocks of left/right edges
            if size == 2 or (size - 2) % 8:
                break
            sack_blocks = tuple(_TWO_U32(data, q) for q in range(p + 2, p + size, 8))
        elif kind == 8:  # Timestamps (RFC 7323 3.2)
            if size != 10:
                break
            ts_val, ts_ecr = _TWO_U32(data, p + 2)
        p += size
    if mss is None and wscale is None and ts_val is None and not sack_permitted and not sack_blocks:
        return None
    return TcpOptions(
        mss=mss,
        wscale=wscale,
        sack_permitted=sack_permitted,
        sack_blocks=sack_blocks,
        ts_val=ts_val,
        ts_ecr=ts_ecr,
    )
