#!/usr/bin/env python3
"""User-space L2 relay run in the middle namespace by make_captures.py.

    ip netns exec tfa-m python3 captures/relay.py CONF_JSON

This kernel has no 802.1Q module, no NFQUEUE expression in nftables and no
netem, so the "network" between client and server is this relay when a
scenario needs VLAN tags on the wire or a segment delayed in flight.

CONF_JSON: {"links": [[ifA, ifB, vlan_on_B], ...], "life": seconds,
            "hold": {"marker": "hex", "release_after": "hex"} | null,
            "pair_fin": bool}

Each link copies every frame between two interfaces with AF_PACKET sockets.
If vlan_on_B is set, frames sent out of ifB get an 802.1Q tag with that VID
and frames received on ifB lose theirs (the kernel usually has moved the tag
into packet metadata already).  With "hold", the first frame whose bytes
contain ``marker`` is kept back (not forwarded) and is sent later, right after
the first forwarded frame containing ``release_after``: a genuine kernel
segment delivered late, after its retransmission.

With "pair_fin", the first TCP FIN from each side is kept back until the
other side's first FIN has arrived too; then both are sent back to back, so
the two FINs are in flight at the same time and cross (simultaneous close).
"""

from __future__ import annotations

import contextlib
import json
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
PACKET_IGNORE_OUTGOING = 23
SOL_PACKET = 263


def emit(ev: str, **kw: object) -> None:
    print(json.dumps({"ev": ev, **kw}), flush=True)


def tcp_flags(frame: bytes) -> int | None:
    if len(frame) < 54 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
        return None
    ihl = (frame[14] & 0x0F) * 4
    return frame[14 + ihl + 13] if len(frame) > 14 + ihl + 13 else None


def main() -> None:
    conf = json.loads(sys.argv[1])
    signal.alarm(int(conf.get("life", 30)))
    socks: dict[str, socket.socket] = {}
    route: dict[int, tuple[str, str, int | None, bool]] = {}  # fd -> (in, out, vid_out, strip)
    for a, b, vid in conf["links"]:
        for name in (a, b):
            if name not in socks:
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
                s.bind((name, ETH_P_ALL))
                with contextlib.suppress(OSError):  # kernel < 4.20: filtered below anyway
                    s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
                socks[name] = s
        route[socks[a].fileno()] = (a, b, vid, False)
        route[socks[b].fileno()] = (b, a, None, vid is not None)
    hold = conf.get("hold")
    marker = bytes.fromhex(hold["marker"]) if hold else None
    release_after = bytes.fromhex(hold["release_after"]) if hold else None
    held: tuple[str, bytes] | None = None
    held_done = False
    pair_fin = bool(conf.get("pair_fin"))
    fins: dict[str, tuple[str, bytes]] = {}  # src iface -> (dst iface, frame)
    fins_done = False
    emit("ready")
    fds = [s for s in socks.values()]
    end = time.time() + conf.get("life", 30)
    n = 0
    while time.time() < end and n < 100000:
        r, _, _ = select.select(fds, [], [], 0.5)
        for s in r:
            data, addr = s.recvfrom(65535)
            if addr[2] == PACKET_OUTGOING:
                continue
            n += 1
            src, dst, vid, strip = route[s.fileno()]
            if strip and len(data) >= 18 and data[12:14] == b"\x81\x00":
                data = data[:12] + data[16:]
            if vid is not None:
                data = data[:12] + struct.pack("!HH", 0x8100, vid) + data[12:]
            if marker and not held_done and held is None and marker in data:
                held = (dst, data)
                emit("held", at=time.time(), src=src, length=len(data))
                continue
            if pair_fin and not fins_done:
                fl = tcp_flags(data)
                if fl is not None and fl & 0x01 and src not in fins:
                    fins[src] = (dst, data)
                    emit("fin_held", at=time.time(), src=src)
                    if len(fins) == 2:
                        for d, f in fins.values():
                            socks[d].send(f)
                        emit("fins_released", at=time.time())
                        fins_done = True
                    continue
            socks[dst].send(data)
            if held and release_after and release_after in data:
                time.sleep(0.02)
                socks[held[0]].send(held[1])
                emit("released", at=time.time())
                held, held_done = None, True
    emit("done", frames=n)


if __name__ == "__main__":
    main()
