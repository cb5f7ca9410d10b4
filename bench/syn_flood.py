"""Benchmark: memory stays bounded on a flood of SYNs from spoofed sources.

Usage: python bench/syn_flood.py [--syns N] [--keep FILE]

Writes a pcap of N SYNs (default 2,000,000), each from its own spoofed source
address and port to one server (10.200.0.1:80), 10 us apart (Ethernet/IPv4/TCP with
MSS and timestamp options, as Linux sends them), into a temporary file (not kept
unless --keep), then runs `tcpflow-analyzer analyze` on it under /usr/bin/time -v
and reports wall time, peak RSS and what the analysis says it dropped. Also runs a
100,000-SYN flood the same way, to show that memory does not grow with the flood.
"""

from __future__ import annotations

import argparse
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def write_flood(path: Path, syns: int) -> None:
    """N spoofed SYNs as a classic pcap (microsecond timestamps)."""
    dst = bytes([10, 200, 0, 1])
    eth = bytes.fromhex("0200000000020200000000010800")
    opts = struct.pack("!BBH", 2, 4, 1460) + struct.pack("!BBII", 8, 10, 0, 0) + b"\x01\x01"
    t0 = 1_700_000_000
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        buf = bytearray()
        for i in range(syns):
            src = struct.pack("!I", 0x0B000000 + i)  # 11.x.x.x: spoofed, one per SYN
            sport = 1024 + i % 64000
            tcp = (
                struct.pack(
                    "!HHIIBBHHH",
                    sport,
                    80,
                    (i * 2654435761) & 0xFFFFFFFF,
                    0,
                    (5 + len(opts) // 4) << 4,
                    0x02,
                    64240,
                    0,
                    0,
                )
                + opts
            )
            pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
            tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo + tcp)) + tcp[18:]
            ip = struct.pack(
                "!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i & 0xFFFF, 0x4000, 64, 6, 0, src, dst
            )
            ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
            frame = eth + ip + tcp
            us = i * 10
            buf += (
                struct.pack("<IIII", t0 + us // 1_000_000, us % 1_000_000, len(frame), len(frame))
                + frame
            )
            if len(buf) > 1 << 22:
                f.write(buf)
                buf.clear()
        f.write(buf)


def measure(pcap: Path) -> dict[str, str]:
    cmd = [sys.executable, "-m", "tcpflow_analyzer", "analyze", str(pcap)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env, check=False
    )
    wall = time.perf_counter() - t0
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    dropped = re.search(r"(\d+) half-open connection\(s\)", proc.stderr)
    conns = re.search(r"^connections: (\d+)", proc.stdout, re.M)
    return {
        "exit": str(proc.returncode),
        "wall_s": f"{wall:.1f}",
        "peak_rss_mb": f"{int(rss.group(1)) / 1024:.0f}" if rss else "?",
        "dropped": dropped.group(1) if dropped else "0",
        "connections": conns.group(1) if conns else "?",
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--syns", type=int, default=2_000_000)
    ap.add_argument("--keep", type=Path, help="keep the generated capture here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tfa-flood-") as tmp:
        for n in (100_000, args.syns):
            pcap = args.keep if (args.keep and n == args.syns) else Path(tmp) / f"flood-{n}.pcap"
            t0 = time.perf_counter()
            write_flood(pcap, n)
            made = time.perf_counter() - t0
            size = pcap.stat().st_size / 1e6
            r = measure(pcap)
            print(
                f"{n} SYNs ({size:.0f} MB, written in {made:.1f} s): "
                + ", ".join(f"{k}={v}" for k, v in r.items())
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
