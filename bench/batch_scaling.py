"""Benchmark: `batch` on 2 worker processes against 1, on the same captures.

Usage: python bench/batch_scaling.py [--copies N] [--runs R]

The workload is the 100 real captures in captures/batch/ (each its own tcpdump run,
a few connections each) plus N copies of captures/crawler/crawler.pcap (300
connections, 3002 frames each), so that there is real work to share. Runs
alternate between 1 and 2 jobs (1, 2, 1, 2, ...) and the median wall time of each
is reported, with the ratio (target: 2 jobs <= 0.6 x 1 job). Timed inside one
Python process with analyze_many(), so interpreter start-up is not counted.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tcpflow_analyzer.batch import analyze_many, find_captures  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=16, help="copies of crawler.pcap (default 16)")
    ap.add_argument("--runs", type=int, default=5, help="runs per job count (default 5)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tfa-bench-") as tmp:
        for i in range(args.copies):
            shutil.copy(ROOT / "captures" / "crawler" / "crawler.pcap", Path(tmp) / f"c{i:03}.pcap")
        paths = [
            p for p in find_captures([ROOT / "captures" / "batch", tmp]) if p.name != "corrupt.pcap"
        ]
        frames = 0
        times: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(args.runs):
            for jobs in (1, 2):
                t0 = time.perf_counter()
                result = analyze_many(paths, jobs=jobs)
                times[jobs].append(time.perf_counter() - t0)
                frames = int(result.captures["frames"].sum())
    one, two = statistics.median(times[1]), statistics.median(times[2])
    py = platform.python_version()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {py}")
    conns = len(result.connections)
    print(f"workload: {len(paths)} captures, {frames} frames, {conns} connections")
    for jobs in (1, 2):
        runs = ", ".join(f"{t:.3f}" for t in times[jobs])
        print(f"jobs={jobs}: median {statistics.median(times[jobs]):.3f} s  (runs: {runs})")
    print(f"ratio 2 jobs / 1 job: {two / one:.2f} (target <= 0.60)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
