"""decode_frame: frames built with scapy decode to exactly what scapy put in."""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_LSRR, IPOption_RR
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.l2 import (
    ARP,
    LLC,
    SNAP,
    CookedLinux,
    CookedLinuxV2,
    Dot1AD,
    Dot1Q,
    Dot3,
    Ether,
    Loopback,
)
from scapy.packet import Packet, Raw

from tcpflow_analyzer.decode import LINKTYPES, MAX_IPV6_EXT_HEADERS, MAX_LINK_HEADERS, decode_frame
from tcpflow_analyzer.segment import Flags, Segment, SkipReason, TcpOptions

ETHERNET, RAW, SLL, SLL2, NULL, LOOP, FDDI = 1, 101, 113, 276, 0, 108, 10

FULL_OPTIONS: list[tuple[str, Any]] = [
    ("MSS", 1460),
    ("NOP", None),
    ("WScale", 7),
    ("SAckOK", b""),
    ("Timestamp", (123456789, 987654321)),
    ("SAck", (1000, 2000, 3000, 4000)),
]  # 40 bytes: the whole option space
FULL_TCPOPTIONS = TcpOptions(
    mss=1460,
    wscale=7,
    sack_permitted=True,
    sack_blocks=((1000, 2000), (3000, 4000)),
    ts_val=123456789,
    ts_ecr=987654321,
)


MAC_A, MAC_B = "02:00:00:00:00:01", "02:00:00:00:00:02"


def eth(**kw: Any) -> Packet:
    # Explicit addresses: otherwise scapy resolves the destination MAC on the network.
    return Ether(src=MAC_A, dst=MAC_B, **kw)


def tcp(**kw: Any) -> Packet:
    fields: dict[str, Any] = {
        "sport": 40000,
        "dport": 443,
        "seq": 0xDEADBEEF,
        "ack": 0x01020304,
        "flags": "PA",
        "window": 29200,
    }
    fields.update(kw)
    return TCP(**fields)


def v4(**kw: Any) -> Packet:
    return IP(src="192.0.2.1", dst="198.51.100.2", **kw)


def v6(**kw: Any) -> Packet:
    return IPv6(src="2001:db8::1", dst="2001:db8::2", **kw)


def decode(linktype: int, pkt: Packet | bytes, frame: int = 7, ts_ns: int = 42) -> Any:
    return decode_frame(linktype, bytes(pkt), frame, ts_ns)


def seg(linktype: int, pkt: Packet | bytes) -> Segment:
    result = decode(linktype, pkt)
    assert isinstance(result, Segment), result
    return result


def assert_matches_scapy(s: Segment, pkt: Packet) -> None:
    """Every Segment field equals what scapy built (scapy re-parses the built bytes)."""
    built = pkt.__class__(bytes(pkt))
    ip = built[IP] if IP in built else built[IPv6]
    t = built[TCP]
    if IP in built:
        assert s.src == bytes(map(int, ip.src.split(".")))
        assert s.dst == bytes(map(int, ip.dst.split(".")))
        assert s.ip_len == ip.len
    else:
        assert s.src == ipaddress.IPv6Address(ip.src).packed
        assert s.dst == ipaddress.IPv6Address(ip.dst).packed
        assert s.ip_len == 40 + ip.plen
    assert (s.sport, s.dport) == (t.sport, t.dport)
    assert (s.seq, s.ack) == (t.seq, t.ack)
    assert s.flags == int(t.flags)
    assert s.window == t.window
    assert s.payload_len == len(bytes(t.payload))


# --- link layers ------------------------------------------------------------


def test_ethernet_ipv4_all_fields_and_options_roundtrip() -> None:
    pkt = eth() / v4() / tcp(options=FULL_OPTIONS) / Raw(b"x" * 100)
    s = seg(ETHERNET, pkt)
    assert_matches_scapy(s, pkt)
    assert s.options == FULL_TCPOPTIONS
    assert (s.frame, s.ts_ns, s.vlan) == (7, 42, ())
    assert s.payload_len == 100
    assert s.ip_len == 20 + 60 + 100
    assert not s.caplen_short


def test_ethernet_ipv6_all_fields_and_options_roundtrip() -> None:
    pkt = eth() / v6() / tcp(options=FULL_OPTIONS) / Raw(b"y" * 33)
    s = seg(ETHERNET, pkt)
    assert_matches_scapy(s, pkt)
    assert s.src == bytes.fromhex("20010db8000000000000000000000001")
    assert s.options == FULL_TCPOPTIONS
    assert s.payload_len == 33
    assert s.ip_len == 40 + 60 + 33


def test_ethernet_padding_to_60_bytes_is_not_payload() -> None:
    frame = bytes(eth() / v4() / tcp(flags="A"))
    assert len(frame) == 54
    s = seg(ETHERNET, frame + b"\x00" * 6)
    assert s.payload_len == 0
    assert s.ip_len == 40
    assert not s.caplen_short


def test_ethernet_8023_llc_snap_carries_ip() -> None:
    pkt = (
        Dot3(src=MAC_A, dst=MAC_B)
        / LLC(dsap=0xAA, ssap=0xAA, ctrl=3)
        / SNAP(OUI=0, code=0x0800)
        / v4()
        / tcp()
    )
    assert_matches_scapy(seg(ETHERNET, pkt), pkt)


def test_ethernet_plain_llc_is_not_ip() -> None:
    pkt = Dot3(src=MAC_A, dst=MAC_B) / LLC(dsap=0x42, ssap=0x42, ctrl=3) / Raw(b"\x00" * 35)  # STP
    assert decode(ETHERNET, pkt) is SkipReason.NOT_IP


def test_vlan_8021q_id_recorded() -> None:
    pkt = eth() / Dot1Q(vlan=42) / v4() / tcp()
    s = seg(ETHERNET, pkt)
    assert s.vlan == (42,)
    assert_matches_scapy(s, pkt)


def test_vlan_qinq_ids_outermost_first() -> None:
    pkt = eth() / Dot1AD(vlan=100) / Dot1Q(vlan=200) / v6() / tcp()
    assert bytes(pkt)[12:14] == b"\x88\xa8"
    s = seg(ETHERNET, pkt)
    assert s.vlan == (100, 200)
    assert_matches_scapy(s, pkt)


def test_vlan_tpid_9100_recognised() -> None:
    pkt = eth(type=0x9100) / Dot1Q(vlan=7) / Dot1Q(vlan=8) / v4() / tcp()
    assert seg(ETHERNET, pkt).vlan == (7, 8)


def test_vlan_priority_tag_id_0_kept() -> None:
    assert seg(ETHERNET, eth() / Dot1Q(vlan=0, prio=5) / v4() / tcp()).vlan == (0,)


def _vlan_stack(n: int) -> Packet:
    pkt = eth()
    for i in range(n):
        pkt = pkt / Dot1Q(vlan=i + 1)
    return pkt / v4() / tcp()


def test_vlan_stack_at_bound_decodes() -> None:
    s = seg(ETHERNET, _vlan_stack(MAX_LINK_HEADERS))
    assert s.vlan == tuple(range(1, MAX_LINK_HEADERS + 1))


def test_vlan_stack_over_bound_is_too_many_headers() -> None:
    assert decode(ETHERNET, _vlan_stack(MAX_LINK_HEADERS + 1)) is SkipReason.TOO_MANY_HEADERS


def test_vlan_tag_cut_is_cut_link_header() -> None:
    assert decode(ETHERNET, bytes(eth() / Dot1Q(vlan=5) / v4() / tcp())[:16]) == (
        SkipReason.CUT_LINK_HEADER
    )


def test_linux_sll_decodes() -> None:
    pkt = CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, src=b"\x02" * 6) / v4() / tcp()
    assert bytes(pkt)[14:16] == b"\x08\x00"
    assert_matches_scapy(seg(SLL, pkt), pkt)


def test_linux_sll_with_vlan_tag_records_it() -> None:
    pkt = CookedLinux(proto=0x8100) / Dot1Q(vlan=9) / v6() / tcp()
    s = seg(SLL, pkt)
    assert s.vlan == (9,)
    assert_matches_scapy(s, pkt)


def test_linux_sll2_decodes() -> None:
    pkt = CookedLinuxV2(proto=0x86DD, ifindex=3, lladdrlen=6) / v6() / tcp(options=FULL_OPTIONS)
    assert len(bytes(pkt)) - len(bytes(pkt[IPv6])) == 20
    s = seg(SLL2, pkt)
    assert_matches_scapy(s, pkt)
    assert s.options == FULL_TCPOPTIONS


@pytest.mark.parametrize("linktype", [101, 12, 14])
@pytest.mark.parametrize("ip", [v4, v6])
def test_raw_ip_linktypes_decode_both_versions(linktype: int, ip: Any) -> None:
    pkt = ip() / tcp() / Raw(b"abc")
    assert_matches_scapy(seg(linktype, pkt), pkt)


def test_linktype_ipv4_228_decodes() -> None:
    pkt = v4() / tcp()
    assert_matches_scapy(seg(228, pkt), pkt)


def test_linktype_ipv6_229_decodes() -> None:
    pkt = v6() / tcp()
    assert_matches_scapy(seg(229, pkt), pkt)


def test_linktype_ipv4_228_with_ipv6_packet_is_bad_ip_header() -> None:
    assert decode(228, v6() / tcp()) is SkipReason.BAD_IP_HEADER


def test_raw_ip_unknown_version_is_bad_ip_header() -> None:
    assert decode(RAW, b"\x50" + bytes(39)) is SkipReason.BAD_IP_HEADER


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize(("family", "ip"), [(2, v4), (24, v6), (28, v6), (30, v6)])
def test_null_family_in_either_byte_order(order: str, family: int, ip: Any) -> None:
    pkt = ip() / tcp()
    assert_matches_scapy(seg(NULL, struct.pack(order + "I", family) + bytes(pkt)), pkt)


def test_null_scapy_loopback_decodes() -> None:
    pkt = Loopback(type=2) / v4() / tcp()
    assert_matches_scapy(seg(NULL, pkt), pkt)


def test_null_unknown_family_is_not_ip() -> None:
    assert decode(NULL, struct.pack("<I", 7) + bytes(v4() / tcp())) is SkipReason.NOT_IP


def test_loop_is_network_byte_order() -> None:
    pkt = v6() / tcp()
    assert_matches_scapy(seg(LOOP, struct.pack(">I", 24) + bytes(pkt)), pkt)
    assert decode(LOOP, struct.pack("<I", 24) + bytes(pkt)) is SkipReason.NOT_IP


def _fddi(payload: bytes) -> bytes:
    return b"\x50" + b"\x00\x00\x00\x00\x00\x01" + b"\x00\x00\x00\x00\x00\x02" + payload


def test_fddi_llc_snap_decodes() -> None:
    pkt = LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=0x0800) / v4() / tcp()
    frame = _fddi(bytes(pkt))
    assert frame[19:21] == b"\x08\x00"
    assert_matches_scapy(seg(FDDI, frame), pkt)


def test_fddi_non_snap_is_not_ip() -> None:
    assert decode(FDDI, _fddi(b"\x42\x42\x03" + bytes(40))) is SkipReason.NOT_IP


@pytest.mark.parametrize(
    ("linktype", "frame"),
    [(ETHERNET, bytes(13)), (SLL, bytes(15)), (SLL2, bytes(19)), (NULL, bytes(3)),
     (LOOP, bytes(3)), (FDDI, bytes(12)), (FDDI, _fddi(b"\xaa\xaa\x03\x00"))],
)  # fmt: skip
def test_frame_ending_in_link_header_is_cut_link_header(linktype: int, frame: bytes) -> None:
    assert decode(linktype, frame) is SkipReason.CUT_LINK_HEADER


@pytest.mark.parametrize("linktype", [2, 9, 105, 127, 65535])
def test_unknown_linktype_is_unsupported(linktype: int) -> None:
    assert linktype not in LINKTYPES
    assert decode(linktype, eth() / v4() / tcp()) is SkipReason.UNSUPPORTED_LINKTYPE


def test_arp_is_not_ip() -> None:
    assert decode(ETHERNET, eth() / ARP()) is SkipReason.NOT_IP


# --- IP layer ---------------------------------------------------------------


def test_udp_is_not_tcp() -> None:
    assert decode(ETHERNET, eth() / v4() / UDP() / Raw(b"q")) is SkipReason.NOT_TCP


def test_icmp_is_not_tcp() -> None:
    assert decode(RAW, v4() / ICMP()) is SkipReason.NOT_TCP


def test_icmpv6_is_not_tcp() -> None:
    assert decode(RAW, v6() / ICMPv6EchoRequest()) is SkipReason.NOT_TCP


def test_ipv4_options_respect_ihl() -> None:
    pkt = v4(options=[b"\x94\x04\x00\x00"]) / tcp() / Raw(b"12345")  # router alert
    assert IP(bytes(pkt)).ihl == 6
    s = seg(RAW, pkt)
    assert_matches_scapy(s, pkt)
    assert s.payload_len == 5


def test_ipv4_more_fragments_is_ip_fragment() -> None:
    assert decode(RAW, v4(flags="MF") / tcp() / Raw(b"z" * 16)) is SkipReason.IP_FRAGMENT


def test_ipv4_nonzero_fragment_offset_is_ip_fragment() -> None:
    pkt = v4(frag=3, proto=6) / Raw(b"z" * 24)
    assert decode(RAW, pkt) is SkipReason.IP_FRAGMENT


def test_ipv4_dont_fragment_alone_is_not_a_fragment() -> None:
    assert isinstance(decode(RAW, v4(flags="DF") / tcp()), Segment)


def test_ipv4_udp_fragment_is_not_tcp() -> None:
    assert decode(RAW, v4(flags="MF") / UDP() / Raw(b"z" * 16)) is SkipReason.NOT_TCP


def test_ipv4_cut_inside_header_is_cut_ip_header() -> None:
    assert decode(RAW, bytes(v4() / tcp())[:19]) is SkipReason.CUT_IP_HEADER


def test_ipv4_cut_inside_options_is_cut_ip_header() -> None:
    frame = bytes(v4(options=[b"\x94\x04\x00\x00"]) / tcp())
    assert decode(RAW, frame[:22]) is SkipReason.CUT_IP_HEADER


def test_ipv4_ihl_below_5_is_bad_ip_header() -> None:
    frame = bytearray(bytes(v4() / tcp()))
    frame[0] = 0x44
    assert decode(RAW, bytes(frame)) is SkipReason.BAD_IP_HEADER


def test_ethertype_ipv4_carrying_ipv6_is_bad_ip_header() -> None:
    assert decode(ETHERNET, eth(type=0x0800) / v6() / tcp()) is SkipReason.BAD_IP_HEADER


def test_ipv4_total_length_zero_falls_back_to_captured_length() -> None:
    # TSO: the sender's capture sees the unsegmented datagram with total length 0.
    frame = bytearray(bytes(eth() / v4() / tcp() / Raw(b"d" * 3000)))
    frame[16:18] = b"\x00\x00"
    s = seg(ETHERNET, bytes(frame))
    assert s.payload_len == 3000
    assert s.ip_len == 3040
    assert not s.caplen_short


def test_ipv6_payload_length_zero_falls_back_to_captured_length() -> None:
    frame = bytearray(bytes(v6() / tcp() / Raw(b"d" * 70)))
    frame[4:6] = b"\x00\x00"
    s = seg(RAW, bytes(frame))
    assert (s.payload_len, s.ip_len) == (70, 130)


def _ah(nh: int) -> bytes:
    # RFC 4302 2: next header, payload length (4-octet units - 2), reserved, SPI,
    # sequence, 12-byte ICV: 24 bytes -> length field 4.
    return bytes([nh, 4, 0, 0]) + struct.pack("!II", 0x1000, 1) + bytes(12)


def test_ipv6_extension_headers_are_walked() -> None:
    inner = tcp(options=[("MSS", 1220)]) / Raw(b"p" * 11)
    exts = IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting() / IPv6ExtHdrDestOpt(nh=51)
    pkt = v6(nh=0) / exts / Raw(_ah(6) + bytes(inner))
    s = seg(RAW, pkt)
    assert s.payload_len == 11
    assert s.ip_len == len(bytes(pkt))
    assert (s.seq, s.ack, s.flags, s.window) == (0xDEADBEEF, 0x01020304, 0x18, 29200)
    assert s.options == TcpOptions(mss=1220)


def test_ipv6_atomic_fragment_decodes() -> None:
    pkt = v6() / IPv6ExtHdrFragment(offset=0, m=0, id=9) / tcp() / Raw(b"a" * 5)
    s = seg(RAW, pkt)
    assert s.payload_len == 5
    assert (s.sport, s.dport) == (40000, 443)


def test_ipv6_first_fragment_is_ip_fragment() -> None:
    pkt = v6() / IPv6ExtHdrFragment(offset=0, m=1) / tcp() / Raw(b"a" * 16)
    assert decode(RAW, pkt) is SkipReason.IP_FRAGMENT


def test_ipv6_later_fragment_is_ip_fragment() -> None:
    pkt = v6() / IPv6ExtHdrFragment(offset=100, m=0, nh=6) / Raw(b"a" * 16)
    assert decode(RAW, pkt) is SkipReason.IP_FRAGMENT


def test_ipv6_udp_fragment_is_not_tcp() -> None:
    pkt = v6() / IPv6ExtHdrFragment(offset=100, m=0, nh=17) / Raw(b"a" * 16)
    assert decode(RAW, pkt) is SkipReason.NOT_TCP


def _dest_opts_chain(n: int) -> Packet:
    pkt = v6()
    for _ in range(n):
        pkt = pkt / IPv6ExtHdrDestOpt()
    return pkt / tcp()


def test_ipv6_chain_at_bound_decodes() -> None:
    assert isinstance(decode(RAW, _dest_opts_chain(MAX_IPV6_EXT_HEADERS)), Segment)


def test_ipv6_chain_over_bound_is_too_many_headers() -> None:
    pkt = _dest_opts_chain(MAX_IPV6_EXT_HEADERS + 1)
    assert decode(RAW, pkt) is SkipReason.TOO_MANY_HEADERS


def test_ipv6_cut_inside_fixed_header_is_cut_ip_header() -> None:
    assert decode(RAW, bytes(v6() / tcp())[:39]) is SkipReason.CUT_IP_HEADER


def test_ipv6_cut_inside_extension_header_is_cut_ip_header() -> None:
    frame = bytes(v6() / IPv6ExtHdrDestOpt() / tcp())
    assert decode(RAW, frame[:44]) is SkipReason.CUT_IP_HEADER


def test_ipv6_extension_header_beyond_payload_length_is_bad_ip_header() -> None:
    frame = bytearray(bytes(v6() / IPv6ExtHdrDestOpt() / tcp()))
    frame[4:6] = struct.pack("!H", 4)  # payload length smaller than the 8-byte ext header
    assert decode(RAW, bytes(frame)) is SkipReason.BAD_IP_HEADER


def test_ipv6_no_next_header_is_not_tcp() -> None:
    assert decode(RAW, v6(nh=59)) is SkipReason.NOT_TCP


# --- checksums --------------------------------------------------------------


def _flip(frame: bytes, at: int, mask: int = 0x01) -> bytes:
    out = bytearray(frame)
    out[at] ^= mask
    return bytes(out)


@pytest.mark.parametrize("size", [0, 1, 2, 3, 1447])
@pytest.mark.parametrize("ip", [v4, v6], ids=["ipv4", "ipv6"])
def test_checksum_ok_for_scapy_packets_of_any_parity(ip: Any, size: int) -> None:
    assert seg(ETHERNET, eth() / ip() / tcp() / Raw(b"\xff" * size)).checksum_ok is True


def test_checksum_ok_with_ipv4_options_and_ipv6_extension_headers() -> None:
    assert seg(RAW, v4(options=[IPOption_RR()]) / tcp() / Raw(b"o" * 5)).checksum_ok is True
    exts = IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / IPv6ExtHdrFragment(offset=0, m=0)
    assert seg(RAW, v6() / exts / tcp() / Raw(b"e" * 9)).checksum_ok is True


@pytest.mark.parametrize("ip", [v4, v6], ids=["ipv4", "ipv6"])
def test_flipped_payload_byte_is_bad_checksum_and_still_decodes(ip: Any) -> None:
    frame = bytes(eth() / ip() / tcp() / Raw(b"payload!"))
    s = seg(ETHERNET, _flip(frame, len(frame) - 3))
    assert s.checksum_ok is False
    assert s.payload_len == 8


def test_bad_ipv4_header_checksum_is_bad_checksum() -> None:
    frame = bytes(eth() / v4() / tcp())
    assert seg(ETHERNET, _flip(frame, 14 + 8)).checksum_ok is False  # TTL


def test_offloaded_tcp_checksum_is_bad_not_dropped() -> None:
    # Sender-side capture with checksum offload: the field holds only the
    # pseudo-header sum (or zero); the segment is analyzed all the same.
    frame = bytearray(bytes(eth() / v4() / tcp(flags="S")))
    frame[14 + 20 + 16 : 14 + 20 + 18] = b"\x00\x00"
    s = seg(ETHERNET, bytes(frame))
    assert s.checksum_ok is False
    assert s.flags == Flags.SYN


def test_checksum_not_verifiable_when_payload_cut_by_snaplen() -> None:
    frame = bytes(eth() / v4() / tcp() / Raw(b"x" * 100))
    s = seg(ETHERNET, frame[:-10])
    assert s.caplen_short and s.checksum_ok is None


def test_cut_frame_with_bad_ipv4_header_is_still_bad_checksum() -> None:
    frame = _flip(bytes(eth() / v4() / tcp() / Raw(b"x" * 100)), 14 + 8)
    assert seg(ETHERNET, frame[:-10]).checksum_ok is False


def test_checksum_not_verifiable_when_length_field_guessed() -> None:
    v4frame = bytearray(bytes(v4() / tcp() / Raw(b"d" * 70)))
    v4frame[2:4] = b"\x00\x00"  # TSO: total length 0 (header checksum recomputed below)
    v4frame[10:12] = b"\x00\x00"
    v4frame[10:12] = struct.pack("!H", _ones_complement(bytes(v4frame[:20])))
    assert seg(RAW, bytes(v4frame)).checksum_ok is None
    v6frame = bytearray(bytes(v6() / tcp() / Raw(b"d" * 70)))
    v6frame[4:6] = b"\x00\x00"
    assert seg(RAW, bytes(v6frame)).checksum_ok is None


def test_checksum_not_verifiable_with_a_pending_source_route() -> None:
    # The pseudo-header then holds the final destination (RFC 8200 8.1, RFC 9293 3.1).
    routed = IPv6ExtHdrRouting(addresses=["2001:db8::9"], segleft=1)
    assert seg(RAW, v6() / routed / tcp()).checksum_ok is None
    done = IPv6ExtHdrRouting(addresses=["2001:db8::9"], segleft=0)
    assert seg(RAW, v6() / done / tcp()).checksum_ok is True
    lsrr = IPOption_LSRR(routers=["192.0.2.9"])
    assert seg(RAW, v4(options=[lsrr]) / tcp()).checksum_ok is None


def _ones_complement(data: bytes) -> int:
    """RFC 1071 the slow way: an independent reference to fill in a checksum."""
    total = sum(struct.unpack(f"!{len(data) // 2}H", data[: len(data) & ~1]))
    if len(data) & 1:
        total += data[-1] << 8
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@settings(max_examples=100, deadline=None)
@given(
    ipv6=st.booleans(),
    payload=st.binary(max_size=300),
    at=st.integers(0, 10_000),
    mask=st.integers(1, 255),
)
def test_any_single_byte_change_in_the_segment_is_caught(
    ipv6: bool, payload: bytes, at: int, mask: int
) -> None:
    frame = bytes((v6() if ipv6 else v4()) / tcp() / Raw(payload))
    ihl = 40 if ipv6 else 20
    # Any byte of the segment but the data offset (which changes what is a header).
    pos = ihl + at % (len(frame) - ihl - 1)
    pos += pos >= ihl + 12
    s = seg(RAW, _flip(frame, pos, mask))
    assert s.checksum_ok is False


# --- TCP layer --------------------------------------------------------------


def test_tcp_all_eight_flags_decoded() -> None:
    s = seg(RAW, v4() / tcp(flags="FSRPAUEC"))
    assert s.flags == 0xFF
    assert Flags(s.flags) == Flags.FIN | Flags.SYN | Flags.RST | Flags.PSH | Flags.ACK | (
        Flags.URG | Flags.ECE | Flags.CWR
    )
    assert s.seg_len == 2


def test_tcp_cut_below_20_bytes_is_cut_tcp_header() -> None:
    assert decode(RAW, bytes(v4() / tcp())[: 20 + 19]) is SkipReason.CUT_TCP_HEADER


def test_tcp_options_cut_by_snaplen_give_segment_without_options() -> None:
    pkt = v4() / tcp(flags="S", options=FULL_OPTIONS)
    s = seg(RAW, bytes(pkt)[: 20 + 30])
    assert s.options is None
    assert s.caplen_short
    assert s.payload_len == 0
    assert (s.seq, s.flags) == (0xDEADBEEF, 0x02)


def test_payload_cut_by_snaplen_keeps_ip_length_and_sets_caplen_short() -> None:
    pkt = eth() / v6() / tcp() / Raw(b"w" * 1000)
    s = seg(ETHERNET, bytes(pkt)[:96])
    assert s.payload_len == 1000
    assert s.ip_len == 40 + 20 + 1000
    assert s.caplen_short


def test_tcp_data_offset_below_5_is_bad_tcp_header() -> None:
    assert decode(RAW, v4() / tcp(dataofs=4)) is SkipReason.BAD_TCP_HEADER


def test_tcp_data_offset_beyond_ip_payload_is_bad_tcp_header() -> None:
    assert decode(RAW, v4() / tcp(dataofs=15)) is SkipReason.BAD_TCP_HEADER


def test_ip_length_too_short_for_tcp_header_is_bad_tcp_header() -> None:
    pkt = v4(len=20 + 12) / tcp()
    assert decode(RAW, pkt) is SkipReason.BAD_TCP_HEADER


def test_no_options_is_none() -> None:
    assert seg(RAW, v4() / tcp()).options is None


def test_only_nop_and_eol_options_is_none() -> None:
    assert (
        seg(RAW, v4() / tcp(options=[("NOP", None), ("NOP", None), ("EOL", None)])).options is None
    )


def test_malformed_option_stops_parsing_and_keeps_segment() -> None:
    # MSS, then a timestamp option claiming length 0: stop there, keep MSS.
    opts = b"\x02\x04\x05\xb4" + b"\x08\x00" + bytes(6)
    pkt = v4() / tcp(dataofs=8, options=[]) / Raw(opts)
    frame = bytes(pkt)
    s = seg(RAW, frame)
    assert s.options == TcpOptions(mss=1460)
    assert s.payload_len == 0


def test_option_with_wrong_length_stops_parsing() -> None:
    opts = b"\x03\x03\x08" + b"\x02\x03\x05" + b"\x00\x00"  # WS ok, then MSS of length 3
    s = seg(RAW, bytes(v4() / tcp(dataofs=7, options=[]) / Raw(opts)))
    assert s.options == TcpOptions(wscale=8)


def test_option_overrunning_header_stops_parsing() -> None:
    opts = b"\x04\x02" + b"\x05\x0a" + bytes(4)  # SACK-permitted, then SACK overrunning
    s = seg(RAW, bytes(v4() / tcp(dataofs=7, options=[]) / Raw(opts)))
    assert s.options == TcpOptions(sack_permitted=True)


def test_nop_nop_timestamp_layout_decodes() -> None:
    opts = [("NOP", None), ("NOP", None), ("Timestamp", (7, 2**32 - 1))]
    assert seg(RAW, v4() / tcp(options=opts)).options == TcpOptions(ts_val=7, ts_ecr=2**32 - 1)


def test_timestamp_then_nops_decodes_the_same() -> None:
    opts = [("Timestamp", (7, 9)), ("NOP", None), ("NOP", None)]
    assert seg(RAW, v4() / tcp(options=opts)).options == TcpOptions(ts_val=7, ts_ecr=9)


def test_frame_and_timestamp_are_copied() -> None:
    s = decode_frame(RAW, bytes(v4() / tcp()), 123456, 1_700_000_000_123_456_789)
    assert isinstance(s, Segment)
    assert (s.frame, s.ts_ns) == (123456, 1_700_000_000_123_456_789)


_U32 = st.integers(0, 2**32 - 1)
_U16 = st.integers(0, 2**16 - 1)


@settings(max_examples=150, deadline=None)
@given(
    ipv6=st.booleans(),
    sport=_U16,
    dport=_U16,
    seq=_U32,
    ack=_U32,
    flags=st.integers(0, 255),
    window=_U16,
    payload=st.binary(max_size=64),
    mss=st.none() | _U16,
    wscale=st.none() | st.integers(0, 14),
    sack_permitted=st.booleans(),
    ts=st.none() | st.tuples(_U32, _U32),
    vlans=st.lists(st.integers(0, 4095), max_size=3),
)
def test_roundtrip_against_scapy(
    ipv6: bool,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    window: int,
    payload: bytes,
    mss: int | None,
    wscale: int | None,
    sack_permitted: bool,
    ts: tuple[int, int] | None,
    vlans: list[int],
) -> None:
    options: list[tuple[str, Any]] = []
    if mss is not None:
        options.append(("MSS", mss))
    if wscale is not None:
        options.append(("WScale", wscale))
    if sack_permitted:
        options.append(("SAckOK", b""))
    if ts is not None:
        options.append(("Timestamp", ts))
    link = eth()
    for vid in vlans:
        link = link / Dot1Q(vlan=vid)
    t = TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, window=window,
            options=options)  # fmt: skip
    pkt = link / (v6() if ipv6 else v4()) / t / Raw(payload)
    s = seg(ETHERNET, pkt)
    assert_matches_scapy(s, pkt)
    assert s.vlan == tuple(vlans)
    assert s.payload_len == len(payload)
    assert s.checksum_ok is True
    expected = (
        TcpOptions(
            mss=mss,
            wscale=wscale,
            sack_permitted=sack_permitted,
            ts_val=ts[0] if ts else None,
            ts_ecr=ts[1] if ts else None,
        )
        if options
        else None
    )
    assert s.options == expected
