#!/usr/bin/env python3
"""Make a large real-kernel capture of many concurrent short HTTP-like connections.

    sudo python3 bench/make_large_capture.py                       # 1.5M packets
    sudo python3 bench/make_large_capture.py --packets 250000 --out bench/data/g1.pcap

Two throw-away network namespaces (``tfa-lg-c`` client 10.50.0.1, ``tfa-lg-s`` server
10.50.0.2) joined by one veth pair with offloads off (so every segment on the wire is
at most one MSS, as on a real NIC capture). The server namespace runs ``--servers``
event-loop processes (epoll, SO_REUSEPORT) listening on 16 ports; the client
namespace runs ``--clients`` event-loop processes that each keep ``--concurrency``
connections in flight. A connection makes 1-3 GET requests (keep-alive); the server
answers each with a 1-16 KB body; then it ends in one of four ways: the client
close()s first (55%), the server close()s first (``Connection: close``, 35%), the
client aborts with SO_LINGER {1,0} (5%, RST from the client), or the server aborts
instead of answering its last request (5%, RST from the server). Every choice comes
from seeded random generators, so 1x/2x/4x captures (``--packets``) have the same
traffic shape: only the length differs.

tcpdump (``-s 0 --immediate-mode -B 262144 -c N``) on the client-side veth stops by
itself after N packets; ``--max-seconds`` bounds the run by time too. The capture is
then read back with a record walk over mmap (struct only) and the packet mix is
printed: SYN/FIN/RST segments, pure ACKs, data segments, connections (client SYNs),
and sequence gaps (a data segment starting past the highest byte seen so far in its
direction: a packet missing from the capture). The truncation at N packets cuts the
last connections short, as in any capture taken off a busy link.

Namespaces ``tfa-lg-*`` only; the processes started here are ended by PID and the
namespaces removed on every exit path (normal end, error, SIGINT/SIGTERM/SIGHUP).
Captures go to bench/data/ (git-ignored): never commit them.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import mmap
import os
import re
import select
import signal
import struct
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "captures"))

import make_captures as mc  # noqa: E402

PREFIX = "tfa-lg-"
NS_C, NS_S = "tfa-lg-c", "tfa-lg-s"
CADDR, SADDR = "10.50.0.1", "10.50.0.2"
PORTS = list(range(8000, 8016))
DEFAULT_OUT = HERE / "data" / "large.pcap"

# One endpoint, run as `ip netns exec NS python3 -c AGENT ROLE CONF_JSON`. Prints JSON
# lines ("ev" key); SIGALRM ends it after conf["life"] s, SIGTERM ends it at once.
AGENT = r"""
import errno, json, random, selectors, signal, socket, struct, sys, time

role, conf = sys.argv[1], json.loads(sys.argv[2])
signal.alarm(int(conf["life"]))
RD, WR = selectors.EVENT_READ, selectors.EVENT_WRITE
LINGER0 = struct.pack("ii", 1, 0)
STATS = {}


def emit(ev, **kw):
    print(json.dumps({"ev": ev, "t": time.time(), **kw}), flush=True)


def count(k, n=1):
    STATS[k] = STATS.get(k, 0) + n


class Stop(Exception):
    pass


def _stop(signum, frame):
    raise Stop()


signal.signal(signal.SIGTERM, _stop)
signal.signal(signal.SIGALRM, _stop)
BODY = bytes(random.Random(1).choices(b"abcdefghijklmnopqrstuvwxyz0123456789\n", k=65536))


def server():
    sel = selectors.EpollSelector()
    for port in conf["ports"]:
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        ls.bind((conf["saddr"], port))
        ls.listen(4096)
        ls.setblocking(False)
        sel.register(ls, RD, None)
    emit("ready")
    while True:
        for key, mask in sel.select(1.0):
            c = key.data
            if c is None:  # a listener: accept what is queued
                for _ in range(256):
                    try:
                        s, _ = key.fileobj.accept()
                    except BlockingIOError:
                        break
                    s.setblocking(False)
                    count("accepted")
                    # [socket, request bytes, pending output, close after output]
                    sel.register(s, RD, [s, b"", None, False])
                continue
            s = c[0]
            if mask & WR:
                try:
                    n = s.send(c[2])
                except OSError:
                    count("send_error")
                    sel.unregister(s)
                    s.close()
                    continue
                c[2] = c[2][n:]
                if len(c[2]):
                    continue
                c[2] = None
                if c[3]:  # Connection: close -> the server's FIN comes first
                    sel.unregister(s)
                    s.close()
                    count("server_close")
                else:
                    sel.modify(s, RD, c)
                continue
            try:
                d = s.recv(65536)
            except OSError:
                count("reset_seen")
                sel.unregister(s)
                s.close()
                continue
            if not d:  # the client's FIN came first
                sel.unregister(s)
                s.close()
                count("eof_close")
                continue
            c[1] += d
            out = []
            while b"\r\n\r\n" in c[1]:
                head, _, c[1] = c[1].partition(b"\r\n\r\n")
                path = head.split(b" ", 2)[1]
                size = int(path.split(b"/")[3])
                if b"X-Abort" in head:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
                    sel.unregister(s)
                    s.close()
                    count("server_abort")
                    out = None
                    break
                close = b"Connection: close" in head
                out.append(b"HTTP/1.1 200 OK\r\nServer: tfa-bench\r\nContent-Type: text/plain"
                           b"\r\nContent-Length: %d\r\n%s\r\n" % (
                               size, b"Connection: close\r\n" if close else b""))
                out.append(BODY[:size])
                if close:
                    c[3] = True
                    break
            if not out:
                continue
            data = b"".join(out)
            try:
                n = s.send(data)
            except OSError:
                count("send_error")
                sel.unregister(s)
                s.close()
                continue
            if n < len(data):
                c[2] = memoryview(data)[n:]
                sel.modify(s, WR, c)
            elif c[3]:
                sel.unregister(s)
                s.close()
                count("server_close")


KINDS = ("cc", "sc", "ca", "sa")
KIND_W = (55, 35, 5, 5)


def client():
    rng = random.Random(conf["seed"])
    sel = selectors.EpollSelector()
    ports, saddr = conf["ports"], conf["saddr"]
    target, live, made = conf["concurrency"], 0, 0
    last_emit = time.time()

    def start():
        nonlocal live, made
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        # each 4-tuple once: local ports walk this process's own range, one step per
        # round over the server ports (no reuse within span * 16 connections)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((conf["caddr"], conf["port_base"] + (made // len(ports)) % conf["port_span"]))
        err = s.connect_ex((saddr, ports[made % len(ports)]))
        if err not in (0, errno.EINPROGRESS):
            s.close()
            count("connect_" + errno.errorcode.get(err, str(err)))
            time.sleep(0.001)
            return
        kind = rng.choices(KINDS, KIND_W)[0]
        sizes = [rng.randint(1024, 16384) for _ in range(rng.choice((1, 1, 2, 3)))]
        # [socket, kind, sizes, next request, received bytes, response end or -1]
        sel.register(s, WR, [s, kind, sizes, 0, b"", -1])
        live += 1
        made += 1

    def request(c):
        i = c[3]
        last = i == len(c[2]) - 1
        extra = b""
        if last and c[1] == "sc":
            extra = b"Connection: close\r\n"
        elif last and c[1] == "sa":
            extra = b"X-Abort: 1\r\n"
        return (b"GET /obj/%d/%d HTTP/1.1\r\nHost: %s\r\nUser-Agent: tfa-bench/1.0\r\n"
                b"Accept: */*\r\n%s\r\n" % (made, c[2][i], saddr.encode(), extra))

    def finish(c, how):
        nonlocal live
        sel.unregister(c[0])
        if how == "ca":
            c[0].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
        c[0].close()
        live -= 1
        count(how)

    try:
        emit("ready")
        while True:
            while live < target:
                start()
            for key, mask in sel.select(1.0):
                c = key.data
                s = c[0]
                if mask & WR:  # connect() done
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        count("connect_" + errno.errorcode.get(err, str(err)))
                        finish(c, "failed")
                        continue
                    if c[2][0] % 4:  # delayed ACKs (one per two segments) on 3/4 of them
                        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
                    s.send(request(c))
                    sel.modify(s, RD, c)
                    continue
                try:
                    d = s.recv(262144)
                except OSError:
                    finish(c, "reset_seen" if c[1] == "sa" else "unexpected_reset")
                    continue
                if not d:
                    ok = c[1] == "sc" and c[3] == len(c[2])
                    finish(c, "server_closed" if ok else "unexpected_eof")
                    continue
                c[4] += d
                while True:
                    if c[5] < 0:
                        h = c[4].find(b"\r\n\r\n")
                        if h < 0:
                            break
                        m = c[4].find(b"Content-Length: ", 0, h)
                        n = int(c[4][m + 16:c[4].find(b"\r\n", m)])
                        c[5] = h + 4 + n
                    if len(c[4]) < c[5]:
                        break
                    c[4] = c[4][c[5]:]
                    c[5] = -1
                    c[3] += 1
                    if c[3] < len(c[2]):
                        s.send(request(c))
                    elif c[1] in ("cc", "ca"):
                        finish(c, c[1])
                        break
            now = time.time()
            if now - last_emit > 2:
                last_emit = now
                emit("stats", made=made, live=live, **STATS)
    except Stop:
        pass
    emit("stats", made=made, live=live, final=True, **STATS)


try:
    {"server": server, "client": client}[role]()
except Stop:
    emit("stats", final=True, **STATS)
except Exception as e:
    emit("exception", err=repr(e))
    raise
"""


def log(msg: str) -> None:
    mc.log(msg)


# --------------------------------------------------------------------------- plumbing


def delete_mine(stale: bool = False) -> None:
    """Delete this script's namespaces (and, when stale, kill what runs in them)."""
    mc.delete_namespaces(stale, prefix=PREFIX)


def cleanup() -> None:
    mc.cleanup(PREFIX)


def _on_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def setup() -> None:
    delete_mine()
    for ns in (NS_C, NS_S):
        mc.make_ns(ns, False)
        # enough ports and TIME_WAIT slots for 240k connections in a few minutes, so that
        # no 4-tuple is reused within a capture
        mc.sysctl(
            ns,
            net__ipv4__ip_local_port_range="1024 65535",
            net__ipv4__tcp_max_tw_buckets=1_000_000,
            net__ipv4__tcp_max_syn_backlog=8192,
        )
    mc.veth(NS_C, "c0", mc.mac(0x50, 1), NS_S, "s0", mc.mac(0x50, 2))
    mc.nsx(NS_C, "ip", "addr", "add", f"{CADDR}/24", "dev", "c0")
    mc.nsx(NS_S, "ip", "addr", "add", f"{SADDR}/24", "dev", "s0")
    mc.nsx(NS_C, "ip", "link", "set", "c0", "up")
    mc.nsx(NS_S, "ip", "link", "set", "s0", "up")
    time.sleep(0.3)  # links up


def agent(ns: str, role: str, name: str, **conf: Any) -> mc.Proc:
    return mc.Proc(ns, ["python3", "-c", AGENT, role, json.dumps(conf)], name)


def start_tcpdump(path: Path, packets: int) -> subprocess.Popen[bytes]:
    path.unlink(missing_ok=True)
    argv = [
        "tcpdump",
        "-i",
        "c0",
        "-w",
        str(path),
        "-s",
        "0",
        "-n",
        "-Z",
        "root",
        "-B",
        "262144",
        "--immediate-mode",
        "-c",
        str(packets),
        "tcp",
    ]
    p = subprocess.Popen(
        ["ip", "netns", "exec", NS_C, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    mc.PROCS.append(p)
    assert p.stderr
    fd, buf, end = p.stderr.fileno(), b"", time.time() + 10
    while b"listening on" not in buf and time.time() < end:
        if select.select([fd], [], [], 0.1)[0]:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
    if b"listening on" not in buf:
        mc.kill_proc(p)
        raise RuntimeError(f"tcpdump did not start: {buf!r}")
    time.sleep(0.2)
    return p


# --------------------------------------------------------------------------- read back


def census(path: Path) -> dict[str, Any]:
    """Packet mix of an Ethernet/IPv4 pcap, with struct over mmap (no dpkt)."""
    c: Counter[str] = Counter()
    top: dict[tuple[bytes, int], int] = {}  # (ip pair, ports) -> highest seq end
    syns: set[tuple[bytes, int]] = set()
    unpack = struct.unpack_from
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        magic = unpack("<I", m, 0)[0]
        if magic not in (0xA1B2C3D4, 0xA1B23C4D):
            raise RuntimeError(f"{path}: not a little-endian classic pcap")
        linktype = unpack("<I", m, 20)[0]
        if linktype != 1:
            raise RuntimeError(f"{path}: link type {linktype}, expected Ethernet")
        scale = 1e6 if magic == 0xA1B2C3D4 else 1e9
        off, size = 24, len(m)
        first = last = None
        while off + 16 <= size:
            ts, frac, incl, _ = unpack("<IIII", m, off)
            p = off + 16
            off = p + incl
            if first is None:
                first = ts + frac / scale
            last = ts + frac / scale
            c["packets"] += 1
            if m[p + 12 : p + 14] != b"\x08\x00" or m[p + 23] != 6:
                c["other"] += 1
                continue
            ihl = (m[p + 14] & 15) * 4
            tot = unpack("!H", m, p + 16)[0]
            t = p + 14 + ihl
            seq = unpack("!I", m, t + 4)[0]
            doff = (m[t + 12] >> 4) * 4
            flags = m[t + 13]
            payload = tot - ihl - doff
            if flags & 0x07:  # FIN, SYN, RST
                c["syn_fin_rst"] += 1
                if flags & 0x12 == 0x02:
                    c["connections"] += 1
                    tup = (m[p + 26 : p + 34], unpack("!I", m, t)[0])
                    if tup in syns:  # a client SYN for a 4-tuple seen before
                        c["tuple_reuse"] += 1
                    syns.add(tup)
                if flags & 0x04:
                    c["rst"] += 1
            elif payload > 0:
                c["data"] += 1
            elif flags & 0x10:
                c["pure_ack"] += 1
            else:
                c["other"] += 1
            if payload > 0:
                key = (m[p + 26 : p + 34], unpack("!I", m, t)[0])
                end = (seq + payload) & 0xFFFFFFFF
                prev = top.get(key)
                if prev is not None:
                    d = (seq - prev) & 0xFFFFFFFF
                    if 0 < d < 0x80000000:
                        c["seq_gaps"] += 1
                    if 0 < (end - prev) & 0xFFFFFFFF < 0x80000000:
                        top[key] = end
                else:
                    top[key] = end
            if flags & 0x02:  # the SYN's byte; data starts at ISN + 1
                top[(m[p + 26 : p + 34], unpack("!I", m, t)[0])] = (seq + 1) & 0xFFFFFFFF
    n = c["packets"] or 1
    return {
        "packets": c["packets"],
        "bytes": path.stat().st_size,
        "seconds": round(last - first, 2) if first is not None and last is not None else 0,
        "connections": c["connections"],
        "syn_fin_rst_pct": round(100 * c["syn_fin_rst"] / n, 1),
        "pure_ack_pct": round(100 * c["pure_ack"] / n, 1),
        "data_pct": round(100 * c["data"] / n, 1),
        "other": c["other"],
        "rst": c["rst"],
        "seq_gaps": c["seq_gaps"],
        "tuple_reuse": c["tuple_reuse"],
    }


# --------------------------------------------------------------------------- main


def make(args: argparse.Namespace) -> dict[str, Any]:
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    setup()
    life = int(args.max_seconds) + 30
    servers = [
        agent(NS_S, "server", f"server{i}", saddr=SADDR, ports=PORTS, life=life)
        for i in range(args.servers)
    ]
    for s in servers:
        s.wait_event("ready", 10)
    tcpdump = start_tcpdump(tmp, args.packets)
    t0 = time.time()
    span = 64000 // args.clients
    clients = [
        agent(
            NS_C,
            "client",
            f"client{i}",
            saddr=SADDR,
            caddr=CADDR,
            ports=PORTS,
            life=life,
            concurrency=args.concurrency,
            seed=args.seed * 1000 + i,
            port_base=1024 + i * span,
            port_span=span,
        )
        for i in range(args.clients)
    ]
    deadline = t0 + args.max_seconds
    next_log = t0 + 10
    while tcpdump.poll() is None and time.time() < deadline:
        for c in clients:
            if c.p.poll() is not None:
                raise RuntimeError(f"{c.name} exited: {c.events[-3:]} {c.err[-500:]!r}")
        if time.time() >= next_log:
            next_log += 10
            made = sum((c.ev("stats") or [{}])[-1].get("made", 0) for c in clients)
            log(f"  {time.time() - t0:5.0f} s: {made} connections started")
        time.sleep(0.2)
    timed_out = tcpdump.poll() is None
    if timed_out:
        log(f"  --max-seconds {args.max_seconds} reached: stopping tcpdump early")
        tcpdump.send_signal(signal.SIGINT)
    try:
        _, err = tcpdump.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        mc.kill_proc(tcpdump)
        err = b""
    with contextlib.suppress(ValueError):
        mc.PROCS.remove(tcpdump)
    took = time.time() - t0
    for p in clients + servers:
        p.stop()
    time.sleep(0.1)
    text = err.decode(errors="replace")
    dropped = re.search(r"(\d+) packets? dropped by kernel", text)
    stats: Counter[str] = Counter()
    for c in clients:
        last = (c.ev("stats") or [{}])[-1]
        for k, v in last.items():
            if isinstance(v, int) and not isinstance(v, bool) and k != "t":
                stats[k] += v
    cleanup()
    log(f"  tcpdump stopped after {took:.1f} s; reading the capture back")
    info = census(tmp)
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)
    return {
        "file": str(out),
        "make_seconds": round(took, 1),
        "stopped_by": "time limit" if timed_out else "packet count",
        "tcpdump_dropped_by_kernel": int(dropped.group(1)) if dropped else None,
        "client_stats": dict(stats),
        **info,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--packets", type=int, default=1_500_000, help="stop after N packets")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    ap.add_argument("--max-seconds", type=float, default=900, help="time bound (default 900)")
    ap.add_argument("--clients", type=int, default=2, help="client processes (default 2)")
    ap.add_argument("--servers", type=int, default=1, help="server processes (default 1)")
    ap.add_argument(
        "--concurrency",
        type=int,
        default=64,
        help="connections in flight per client process (default 64)",
    )
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument(
        "--census",
        type=Path,
        metavar="PCAP",
        help="only print the packet mix of an existing capture",
    )
    args = ap.parse_args()
    if args.census:
        print(json.dumps(census(args.census), indent=2))
        return 0
    if os.geteuid() != 0:
        log("must run as root (network namespaces, tcpdump)")
        return 2
    if not mc.HAVE_ETHTOOL:
        # With offloads on, the veth carries (and tcpdump records) 64 KB super-segments
        # and tcpdump drops packets: another capture, fewer data segments, twice the bytes.
        log("ethtool is needed to turn the veth's offloads off (apt-get install ethtool)")
        return 2
    atexit.register(cleanup)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)
    delete_mine(stale=True)
    try:
        result = make(args)
    finally:
        cleanup()
        with contextlib.suppress(OSError):
            args.out.with_name(args.out.name + ".part").unlink()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
