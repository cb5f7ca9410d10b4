"""Throwaway conformance driver for ``tcpflow_analyzer.zeek`` (test support only).

Reads a capture with dpkt (pcap) or a small block walker (pcapng, per-interface
link types), decodes Ethernet / VLAN / Linux SLL / FDDI / raw / null link
layers and IPv4/IPv6 + TCP into ``Segment`` records, groups them by 4-tuple
(optionally + VLAN) in capture order and replays each group through
:func:`tcpflow_analyzer.zeek.replay`. Also parses Zeek ``conn.log`` baselines
(``#fields`` header or ``zeek-cut -m`` plain header). Independent of the
project's reader on purpose: it checks the emulation, not the pipeline.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dpkt

from tcpflow_analyzer.segment import Segment
from tcpflow_analyzer.zeek import ZeekConfig, ZeekConn, replay

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def _pcapng_frames(raw: bytes) -> Iterator[tuple[int, int, bytes]]:
    off = 0
    endian = "<"
    ifaces: list[tuple[int, int]] = []  # (linktype, ticks per second)
    while off + 12 <= len(raw):
        btype = struct.unpack_from(endian + "I", raw, off)[0]
        if btype == 0x0A0D0D0A:
            endian = "<" if raw[off + 8 : off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            ifaces = []
        blen = struct.unpack_from(endian + "I", raw, off + 4)[0]
        body = raw[off + 8 : off + blen - 4]
        if btype == 1:  # IDB
            linktype = struct.unpack_from(endian + "H", body, 0)[0]
            tps = 1_000_000
            p = 8
            while p + 4 <= len(body):
                code, olen = struct.unpack_from(endian + "HH", body, p)
                if code == 0:
                    break
                if code == 9:
                    v = body[p + 4]
                    tps = 2 ** (v & 0x7F) if v & 0x80 else 10 ** (v & 0x7F)
                p += 4 + (olen + 3) // 4 * 4
            ifaces.append((linktype, tps))
        elif btype == 6:  # EPB
            iface, hi, lo, caplen = struct.unpack_from(endian + "IIII", body, 0)
            linktype, tps = ifaces[iface]
            ticks = (hi << 32) | lo
            yield linktype, ticks * 1_000_000_000 // tps, body[20 : 20 + caplen]
        elif btype == 3:  # SPB
            linktype, _ = ifaces[0]
            yield linktype, 0, body[4:]
        off += blen


def frames(path: Path) -> Iterator[tuple[int, int, bytes]]:
    """(link type, timestamp ns, frame bytes) in capture order."""
    raw = path.read_bytes()
    if raw[:4] == b"\x0a\x0d\x0d\x0a":
        yield from _pcapng_frames(raw)
        return
    with path.open("rb") as fh:
        reader = dpkt.pcap.Reader(fh)
        linktype = reader.datalink()
        for ts, buf in reader:
            yield linktype, round(float(ts) * 1e9), buf


def _link(linktype: int, d: bytes) -> tuple[int, int, tuple[int, ...]] | None:
    """Return (ethertype-ish version, offset of IP header, vlans)."""
    vlans: list[int] = []
    if linktype == 1:
        etype, off = struct.unpack_from("!H", d, 12)[0], 14
    elif linktype == 113:
        etype, off = struct.unpack_from("!H", d, 14)[0], 16
    elif linktype == 276:
        etype, off = struct.unpack_from("!H", d, 0)[0], 20
    elif linktype == 10:  # FDDI: FC, DA, SA, then 802.2 LLC/SNAP
        if d[13:16] != b"\xaa\xaa\x03":
            return None
        etype, off = struct.unpack_from("!H", d, 19)[0], 21
    elif linktype in (101, 12, 14, 228, 229):
        etype, off = (0x0800 if d[0] >> 4 == 4 else 0x86DD), 0
    elif linktype in (0, 108):
        etype, off = (0x0800 if d[4] >> 4 == 4 else 0x86DD), 4
    else:
        return None
    while etype in (0x8100, 0x88A8, 0x9100):
        vlans.append(struct.unpack_from("!H", d, off)[0] & 0x0FFF)
        etype = struct.unpack_from("!H", d, off + 2)[0]
        off += 4
    if etype not in (0x0800, 0x86DD):
        return None
    return etype, off, tuple(vlans)


@dataclass
class Decoded:
    seg: Segment
    checksum_ok: bool | None  # None when not fully captured


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def decode(frame: int, linktype: int, ts_ns: int, d: bytes) -> Decoded | None:
    link = _link(linktype, d)
    if link is None:
        return None
    etype, off, vlans = link
    if etype == 0x0800:
        if len(d) < off + 20:
            return None
        ihl = (d[off] & 0x0F) * 4
        tot, frag = struct.unpack_from("!H", d, off + 2)[0], struct.unpack_from("!H", d, off + 6)[0]
        proto = d[off + 9]
        if proto != 6 or frag & 0x3FFF:
            return None
        src, dst = d[off + 12 : off + 16], d[off + 16 : off + 20]
        ip_len = tot
        tcp_off = off + ihl
        tcp_total = tot - ihl
        pseudo = src + dst + struct.pack("!BBH", 0, 6, tcp_total)
    else:
        plen = struct.unpack_from("!H", d, off + 4)[0]
        nh = d[off + 6]
        src, dst = d[off + 8 : off + 24], d[off + 24 : off + 40]
        p = off + 40
        while nh in (0, 43, 60):
            nh, hlen = d[p], (d[p + 1] + 1) * 8
            p += hlen
        if nh != 6:
            return None
        ip_len = plen + 40
        tcp_off = p
        tcp_total = plen - (p - off - 40)
        pseudo = src + dst + struct.pack("!IxxxB", tcp_total, 6)
    if len(d) < tcp_off + 20:
        return None
    sport, dport, seq, ack, offr, flags, win = struct.unpack_from("!HHIIBBH", d, tcp_off)
    hlen = (offr >> 4) * 4
    if len(d) < tcp_off + hlen:
        return None  # Zeek ignores a packet whose TCP header the snap length cut
    payload = tcp_total - hlen
    captured = len(d) - tcp_off - hlen
    ok: bool | None = None
    if captured >= payload:
        ok = _checksum(pseudo + d[tcp_off : tcp_off + tcp_total]) == 0xFFFF
    seg = Segment(
        frame=frame,
        ts_ns=ts_ns,
        vlan=vlans,
        src=src,
        dst=dst,
        sport=sport,
        dport=dport,
        seq=seq,
        ack=ack,
        flags=flags,
        window=win,
        payload_len=payload,
        ip_len=ip_len,
        caplen_short=captured < payload,
    )
    return Decoded(seg, ok)


def segments(path: Path) -> list[Decoded]:
    out = []
    for i, (lt, ts, d) in enumerate(frames(path), 1):
        dec = decode(i, lt, ts, d)
        if dec is not None:
            out.append(dec)
    return out


@dataclass
class Row:
    orig_h: str
    orig_p: int
    resp_h: str
    resp_p: int
    conn: ZeekConn

    def get(self, col: str) -> str:
        c = self.conn
        values: dict[str, object] = {
            "conn_state": c.conn_state(),
            "history": c.history() or "-",
            "orig_pkts": c.orig_pkts,
            "resp_pkts": c.resp_pkts,
            "orig_ip_bytes": c.orig_ip_bytes,
            "resp_ip_bytes": c.resp_ip_bytes,
            "orig_bytes": "-" if c.orig_bytes is None else c.orig_bytes,
            "resp_bytes": "-" if c.resp_bytes is None else c.resp_bytes,
            "missed_bytes": c.missed_bytes,
            "duration": "-" if c.duration_ns == 0 else f"{c.duration_ns / 1e9:.6f}",
        }
        return str(values[col])


def zeek_rows(path: Path, by_vlan: bool = False, config: ZeekConfig | None = None) -> list[Row]:
    groups: dict[tuple[object, ...], list[tuple[Segment, bool]]] = {}
    firsts: dict[tuple[object, ...], tuple[bytes, int]] = {}
    order: list[tuple[object, ...]] = []
    for dec in segments(path):
        s = dec.seg
        a, b = (s.src, s.sport), (s.dst, s.dport)
        key: tuple[object, ...] = (min(a, b), max(a, b)) + ((s.vlan,) if by_vlan else ())
        if key not in groups:
            groups[key] = []
            firsts[key] = a
            order.append(key)
        groups[key].append((s, a == firsts[key]))
    rows: list[Row] = []
    for key in order:
        pkts = groups[key]
        conns = replay(pkts, config)
        # Find each connection's first packet to name its endpoints.
        i = 0
        for conn in conns:
            seg = pkts[i][0]
            first = (ipaddress.ip_address(seg.src).compressed, seg.sport)
            second = (ipaddress.ip_address(seg.dst).compressed, seg.dport)
            o, r = (first, second) if conn.orig_is_first else (second, first)
            rows.append(Row(o[0], o[1], r[0], r[1], conn))
            i += conn.orig_pkts + conn.resp_pkts
    return rows


def read_conn_log(path: Path) -> list[dict[str, str]]:
    fields: list[str] | None = None
    rows = []
    for line in path.read_text().splitlines():
        if line.startswith("#fields"):
            fields = line.split("\t")[1:]
            continue
        if line.startswith("#") or not line.strip():
            continue
        if fields is None:
            fields = line.split("\t")
            continue
        rows.append(dict(zip(fields, line.split("\t"), strict=False)))
    return rows


COLUMNS = (
    "conn_state",
    "history",
    "orig_pkts",
    "orig_ip_bytes",
    "resp_pkts",
    "resp_ip_bytes",
    "orig_bytes",
    "resp_bytes",
    "missed_bytes",
    "duration",
)


def compare(pcap: Path, by_vlan: bool = False) -> list[tuple[str, str, str, str]]:
    """(row id, column, expected, got) for every mismatch against ``pcap``.conn.log."""
    log = read_conn_log(Path(str(pcap) + ".conn.log"))
    rows = zeek_rows(pcap, by_vlan=by_vlan)
    mismatches: list[tuple[str, str, str, str]] = []
    pool: dict[tuple[str, str, str, str], list[Row]] = {}
    for r in rows:
        pool.setdefault((r.orig_h, str(r.orig_p), r.resp_h, str(r.resp_p)), []).append(r)
    for n, exp in enumerate(log):
        if "id.orig_p" in exp:
            key = (exp["id.orig_h"], exp["id.orig_p"], exp["id.resp_h"], exp["id.resp_p"])
            cands = pool.get(key, [])
        else:  # a cut log without the originator: match on the responder only
            cands = [
                r
                for k, v in pool.items()
                for r in v
                if (k[2], k[3]) == (exp["id.resp_h"], exp["id.resp_p"])
            ]
            key = ("?", "?", exp["id.resp_h"], exp["id.resp_p"])
        rid = f"{pcap.name}#{n + 1} {'/'.join(key)}"
        if not cands:
            mismatches.append((rid, "row", "present", "missing"))
            continue
        got = cands.pop(0)
        if "id.orig_p" not in exp:
            pool[(got.orig_h, str(got.orig_p), got.resp_h, str(got.resp_p))].remove(got)
        for col in COLUMNS:
            if col in exp and exp[col] != got.get(col):
                mismatches.append((rid, col, exp[col], got.get(col)))
    for key, left in pool.items():
        for _ in left:
            mismatches.append((f"{pcap.name} {'/'.join(map(str, key))}", "row", "absent", "extra"))
    return mismatches


def baselines() -> list[Path]:
    """Every corpus capture that has Zeek's ``NAME.conn.log`` beside it."""
    return sorted(p.parent / p.name.removesuffix(".conn.log") for p in CORPUS.rglob("*.conn.log"))
