#!/usr/bin/env python3
"""Profile `tcpflow_analyzer analyze` on a capture and summarize where the time goes.

    python3 bench/profile_analyze.py bench/data/slice100k.pcap [--md OUT.md]
    python3 bench/profile_analyze.py CAPTURE --engine cprofile
    python3 bench/profile_analyze.py --slice-of bench/data/large.pcap --packets 100000

``--slice-of`` first cuts the first N packets of a big capture with ``editcap -F pcap``
into bench/data/slice<N>.pcap. The analyzer runs end to end (``analyze FILE --out
TMPDIR``) under py-spy (sampling, ``--rate`` per second; the default engine when py-spy
is installed) or cProfile (deterministic, slower and heavier on small functions). The
summary, as Markdown: time by module (self), the top functions by self time and by
inclusive time, each as % of all samples (py-spy) or of the total time (cProfile).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*)\)$")


def module_of(file: str) -> str:
    """A readable module name for a source path."""
    if file == "~":  # cProfile's name for built-in (C) functions
        return "builtins"
    if file.startswith("<frozen"):
        return "importlib (imports)" if "importlib" in file else file
    p = file.replace("\\", "/")
    if "/tcpflow_analyzer/" in p:
        return "tcpflow_analyzer." + p.rsplit("/tcpflow_analyzer/", 1)[1].removesuffix(".py")
    m = re.search(r"/site-packages/([^/]+)", p)
    if m:
        return m.group(1).removesuffix(".py")
    m = re.search(r"/lib/python3\.\d+/(.+)\.py$", p)
    if m:
        return "stdlib " + m.group(1).split("/")[0]
    return p


def short(func: str, file: str) -> str:
    return f"{module_of(file)}:{func}"


def table(title: str, rows: list[tuple[str, float]], n: int) -> list[str]:
    out = [f"**{title}**", "", "| % | where |", "| ---: | --- |"]
    out += [f"| {pct:.1f} | `{name}` |" for name, pct in rows[:n]]
    return [*out, ""]


def pyspy(capture: Path, rate: int) -> tuple[list[str], float]:
    with tempfile.TemporaryDirectory(prefix="tfa-prof-") as tmp:
        raw = Path(tmp) / "raw.txt"
        cmd = [
            "py-spy",
            "record",
            "--format",
            "raw",
            "--nolineno",
            "--full-filenames",
            "-r",
            str(rate),
            "-o",
            str(raw),
            "--",
            sys.executable,
            "-m",
            "tcpflow_analyzer",
            "analyze",
            str(capture),
            "--out",
            str(Path(tmp) / "csv"),
        ]
        t0 = time.perf_counter()
        subprocess.run(
            cmd,
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        wall = time.perf_counter() - t0
        lines = raw.read_text().splitlines()
    self_f: Counter[str] = Counter()
    incl_f: Counter[str] = Counter()
    self_m: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        frames = []
        for fr in stack.split(";"):
            m = FRAME.match(fr)
            frames.append((m.group("func"), m.group("file")) if m else (fr, "?"))
        total += count
        func, file = frames[-1]
        if file == "<string>" and len(frames) > 1:  # generated code (dataclass __init__)
            caller = short(*frames[-2])
            func, file = f"generated {func.rsplit('.', 1)[-1]}, called from {caller}", "<string>"
        self_f[short(func, file)] += count
        self_m[module_of(file)] += count
        if any(f == "_find_and_load" for f, _ in frames):
            incl_f["(imports at start-up)"] += count
        for name in {short(f, fl) for f, fl in frames if "/tcpflow_analyzer/" in fl}:
            incl_f[name] += count
    pct = 100 / max(total, 1)
    md = [f"py-spy, {rate} samples/s, {total} samples, wall {wall:.1f} s under py-spy.", ""]
    md += table("Self time by module", [(k, v * pct) for k, v in self_m.most_common()], 15)
    md += table("Self time by function", [(k, v * pct) for k, v in self_f.most_common()], 25)
    md += table(
        "Inclusive time by function (tcpflow_analyzer only)",
        [(k, v * pct) for k, v in incl_f.most_common()],
        30,
    )
    return md, wall


def cprofile(capture: Path) -> tuple[list[str], float]:
    sys.path.insert(0, str(ROOT))
    from tcpflow_analyzer.cli import main as cli_main

    with tempfile.TemporaryDirectory(prefix="tfa-prof-") as tmp:
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        with open(os.devnull, "w") as null:
            old, sys.stdout = sys.stdout, null
            try:
                prof.runcall(cli_main, ["analyze", str(capture), "--out", str(Path(tmp) / "c")])
            finally:
                sys.stdout = old
        wall = time.perf_counter() - t0
    st = pstats.Stats(prof)
    stats = st.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values()) or 1.0
    self_f: Counter[str] = Counter()
    self_m: Counter[str] = Counter()
    incl_f: Counter[str] = Counter()
    for (file, _line, func), (_cc, _nc, tt, ct, _callers) in stats.items():
        self_f[short(func, file)] += tt
        self_m[module_of(file)] += tt
        incl_f[short(func, file)] = max(incl_f[short(func, file)], ct)
    pct = 100 / total
    md = [f"cProfile, total {total:.1f} s of profiled time (wall {wall:.1f} s).", ""]
    md += table("Self time by module", [(k, v * pct) for k, v in self_m.most_common()], 15)
    md += table("Self time by function", [(k, v * pct) for k, v in self_f.most_common()], 25)
    md += table("Inclusive time by function", [(k, v * pct) for k, v in incl_f.most_common()], 30)
    return md, wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("capture", type=Path, nargs="?")
    ap.add_argument("--slice-of", type=Path, help="cut the first --packets of this capture")
    ap.add_argument("--packets", type=int, default=100_000)
    ap.add_argument(
        "--engine",
        choices=["py-spy", "cprofile"],
        default="py-spy" if shutil.which("py-spy") else "cprofile",
    )
    ap.add_argument("--rate", type=int, default=500, help="py-spy samples/s (default 500)")
    ap.add_argument("--md", type=Path, help="also write the Markdown here")
    args = ap.parse_args()
    capture = args.capture
    if args.slice_of:
        capture = capture or args.slice_of.with_name(f"slice{args.packets // 1000}k.pcap")
        subprocess.run(
            ["editcap", "-F", "pcap", "-r", str(args.slice_of), str(capture), f"1-{args.packets}"],
            check=True,
        )
    if capture is None:
        ap.error("give a capture or --slice-of")
    if args.engine == "py-spy":
        md, _ = pyspy(capture, args.rate)
    else:
        md, _ = cprofile(capture)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "tcpflow_analyzer"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    commit += " with uncommitted changes in tcpflow_analyzer/" if dirty else ""
    head = [
        f"Profile of `python -m tcpflow_analyzer analyze {capture} --out TMPDIR` "
        f"(`python3 bench/profile_analyze.py {' '.join(sys.argv[1:])}`)",
        "",
    ]
    text = "\n".join(head + md)
    print(text)
    if args.md:
        args.md.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
