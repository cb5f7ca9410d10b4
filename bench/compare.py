#!/usr/bin/env python3
"""Side-by-side benchmark on one capture: our analyzer against tshark, tcptrace and readers.

    python3 bench/compare.py bench/data/large.pcap [--rounds 3] [--md OUT.md]
    python3 bench/compare.py --growth bench/data/g1.pcap bench/data/g2.pcap bench/data/g4.pcap

Default mode runs, in alternating order (ours, tshark, tcptrace, dpkt, mmap; then again,
``--rounds`` times), each tool on the same file under ``/usr/bin/time -v``:

- ours: ``python -m tcpflow_analyzer analyze FILE --out TMPDIR`` (end to end, CSVs
  written; TMPDIR is removed after each run; default ``--jobs``, one worker per core),
  and ours-1job, the same with ``--jobs 1``
- ours-series (only with ``--tools``): ``analyze PART...`` on the same capture split
  into ``--parts`` files of about equal record counts, as tcpdump ``-C`` rotation splits
  it (classic pcap; made once per benchmark in a temporary directory); batch-series:
  ``batch PART... --series --out TMPDIR`` (streamed to its tables since session 13;
  before, every row kept for them); batch-parts: ``batch PART... --out TMPDIR``, the
  parts as that many captures;
  ours-gz: ``analyze FILE.gz`` on a ``gzip -1`` copy of the capture (made once per
  benchmark); ours-gz-series: ``analyze PART.gz...``, the parts each ``gzip -1``
  (as ``tcpdump -C N -z gzip`` leaves a capture); ours-stdin: ``cat FILE | ...
  analyze -`` (a pipe, default --jobs)
- tshark: ``tshark -r FILE -T fields -e frame.number -e tcp.stream -e tcp.flags
  -e tcp.analysis.flags`` (single pass with TCP analysis, output to /dev/null)
- tcptrace: ``tcptrace -n -l FILE`` (output to /dev/null; skipped if not installed)
- dpkt: a ``dpkt.pcap.Reader`` loop that only counts records (no decoding)
- mmap: a Python loop that walks the pcap record headers over mmap with struct

It reports the median wall time, packets/s, peak RSS (``Maximum resident set size`` of
``/usr/bin/time -v``, or the sum over the process tree sampled every ``--sample`` s
(0.1) when that is larger, as with our worker processes; and the tree's summed PSS,
which counts pages that forked workers share once) and the ratios to ours, with the machine (CPU,
cores, RAM, load average before and after), the versions (Python, tshark, tcptrace,
dpkt, our git commit: ours runs from a snapshot of ``tcpflow_analyzer/`` at ``--ref``,
default HEAD, so that commits landing during a run do not change the code measured) and
every exact command, as Markdown (stdout, and ``--md FILE``).

``--growth`` runs only ours on 1x/2x/4x captures of the same traffic (alternating) and
reports time and peak RSS for each: time should grow linearly with the packets and
memory stay flat.

A run is stopped (and recorded as such) past ``--timeout`` seconds or when the process
tree's RSS passes ``--rss-limit-mb``. Before measuring, the script waits (polling every
30 s, at most ``--wait-idle`` seconds) until the 1-minute load average is at most
``--max-load``, and records the load it measured under.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import mmap
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SRC = ROOT  # where `python -m tcpflow_analyzer` is imported from (see snapshot())

DPKT_LOOP = """\
import sys, dpkt
n = 0
with open(sys.argv[1], "rb") as f:
    for _ts, _buf in dpkt.pcap.Reader(f):
        n += 1
print(n)
"""

MMAP_WALK = """\
import mmap, struct, sys
with open(sys.argv[1], "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
    u = struct.Struct("<I").unpack_from
    off, size, n = 24, len(m), 0
    while off + 16 <= size:
        off += 16 + u(m, off + 8)[0]
        n += 1
print(n)
"""


PARTS: list[Path] = []  # the capture split for ours-series (split_pcap)
GZ: list[Path] = []  # the capture gzipped for ours-gz
GZPARTS: list[Path] = []  # the parts gzipped for ours-gz-series
# The connection `show` draws (and tshark-stream filters, by its stream index): the
# middle one of the benchmark capture's 60,531.
SHOW_CONN = "30000"
SAMPLE_S = 0.1  # --sample


@dataclass
class Tool:
    name: str
    # {file}, {out} filled in per run; {parts}: the PARTS; {gz}: GZ[0]; {gzparts}: GZPARTS
    argv: list[str]
    what: str
    stdout_devnull: bool = True


@dataclass
class Run:
    wall: float
    rss_kb: int | None
    rc: int
    status: str  # "ok", "exit N", "timeout", "rss limit"
    tail: str = ""
    other_cpu: float = 0.0  # cores busy with other processes during the run (mean)
    pss_kb: int | None = None  # peak of the process tree's summed PSS (sampled)
    cached: float | None = None  # fraction of the capture in the page cache as it started


@dataclass
class Result:
    tool: Tool
    file: Path
    runs: list[Run] = field(default_factory=list)

    def ok_runs(self) -> list[Run]:
        return [r for r in self.runs if r.status == "ok"]

    def median_wall(self) -> float | None:
        ok = self.ok_runs()
        return statistics.median(r.wall for r in ok) if ok else None

    def peak_rss_mb(self) -> float | None:
        rss = [r.rss_kb for r in self.ok_runs() if r.rss_kb]
        return statistics.median(rss) / 1024 if rss else None

    def peak_pss_mb(self) -> float | None:
        pss = [r.pss_kb for r in self.ok_runs() if r.pss_kb]
        return statistics.median(pss) / 1024 if pss else None


def _ours(name: str, args: list[str], what: str) -> Tool:
    """Our analyzer run with ``args`` (its summary kept: the report shows it)."""
    return Tool(name, [PY, "-m", "tcpflow_analyzer", *args], what, stdout_devnull=False)


def tools(selected: list[str]) -> list[Tool]:
    all_tools = [
        _ours(
            "ours",
            ["analyze", "{file}", "--out", "{out}"],
            "tcpflow_analyzer analyze, end to end, CSVs written (default --jobs: one per core)",
        ),
        _ours(
            "ours-1job",
            ["analyze", "{file}", "--out", "{out}", "--jobs", "1"],
            "the same in one process",
        ),
        _ours(
            "ours-series",
            ["analyze", "{parts}", "--out", "{out}"],
            "the same capture rotated into --parts files, analyze PART... (default --jobs)",
        ),
        _ours(
            "batch-series",
            ["batch", "{parts}", "--series", "--out", "{out}"],
            "the same parts, batch --series (its tables, with the capture column)",
        ),
        _ours(
            "batch-parts",
            ["batch", "{parts}", "--out", "{out}"],
            "the same parts as that many captures, batch PART... (one per worker process)",
        ),
        _ours(
            "census",
            ["census", "{file}", "--out", "{out}"],
            "census FILE --out TMPDIR (the TIME_WAIT census, its tables and plot)",
        ),
        _ours(
            "show",
            ["show", "{file}", "--conn", SHOW_CONN],
            f"show FILE --conn {SHOW_CONN} (one connection's ladder, to /dev/null)",
        ),
        _ours(
            "ours-gz",
            ["analyze", "{gz}", "--out", "{out}"],
            "the capture gzip-compressed (gzip -1), analyze FILE.gz (default --jobs)",
        ),
        _ours(
            "ours-gz-series",
            ["analyze", "{gzparts}", "--out", "{out}"],
            "the parts each gzip-compressed (gzip -1), analyze PART.gz... (default --jobs)",
        ),
        Tool(
            "ours-stdin",
            [
                "sh",
                "-c",
                f'cat "$0" | {shlex.quote(PY)} -m tcpflow_analyzer analyze - --out "$1"',
                "{file}",
                "{out}",
            ],
            "the capture through a pipe, analyze - (default --jobs)",
            stdout_devnull=False,
        ),
        Tool(
            "tshark",
            [
                "tshark",
                "-r",
                "{file}",
                "-T",
                "fields",
                "-e",
                "frame.number",
                "-e",
                "tcp.stream",
                "-e",
                "tcp.flags",
                "-e",
                "tcp.analysis.flags",
            ],
            "tshark single pass with TCP analysis, fields to /dev/null",
        ),
        Tool(
            "tshark-stream",
            [
                "tshark",
                "-r",
                "{file}",
                "-Y",
                f"tcp.stream eq {int(SHOW_CONN) - 1}",
                "-T",
                "fields",
                "-e",
                "frame.number",
                "-e",
                "tcp.flags",
                "-e",
                "tcp.analysis.flags",
            ],
            "tshark's view of that connection (its stream index, 0-based in first-seen "
            "order) with TCP analysis, fields to /dev/null",
        ),
        Tool("tcptrace", ["tcptrace", "-n", "-l", "{file}"], "tcptrace -n -l, to /dev/null"),
        Tool("dpkt", [PY, "-c", DPKT_LOOP, "{file}"], "dpkt.pcap.Reader loop, no decoding"),
        Tool("mmap", [PY, "-c", MMAP_WALK, "{file}"], "record-header walk over mmap"),
    ]
    out = []
    for t in all_tools:
        if t.name not in selected:
            continue
        if shutil.which(t.argv[0]) is None:
            print(f"note: {t.argv[0]} not installed: {t.name} skipped", file=sys.stderr)
            continue
        out.append(t)
    return out


# --------------------------------------------------------------------------- running


def _tree(pid: int) -> list[int]:
    """pid and its descendants (from /proc)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        with contextlib.suppress(OSError, ValueError):
            for task in Path(f"/proc/{p}/task").iterdir():
                with contextlib.suppress(OSError):
                    todo += [int(c) for c in (task / "children").read_text().split()]
    return found


def _field_kb(path: str, name: str) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(path).read_text().splitlines():
            if line.startswith(name):
                return int(line.split()[1])
    return 0


def tree_memory_kb(pid: int) -> tuple[int, int]:
    """Sums of VmRSS and of Pss over pid and its descendants.

    In PSS a page shared by n processes counts 1/n in each. Forked workers share the
    parent's pages (libraries, imported modules) until they write them: RSS counts
    those pages once per process, PSS once in all.
    """
    pids = _tree(pid)
    rss = sum(_field_kb(f"/proc/{p}/status", "VmRSS:") for p in pids)
    pss = sum(_field_kb(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids)
    return rss, pss


def busy_seconds() -> float:
    """CPU seconds spent by the whole machine (all cores, not idle) since boot."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / os.sysconf("SC_CLK_TCK")


def run_once(
    tool: Tool, file: Path, timeout: float, rss_limit_mb: float, sample_s: float = 0.1
) -> Run:
    out = Path(tempfile.mkdtemp(prefix="tfa-cmp-"))
    tfile = out / "time.txt"
    gz = str(GZ[0]) if GZ else "{gz}"
    parts, gzparts = [str(p) for p in PARTS], [str(p) for p in GZPARTS]
    argv = expand(tool.argv, str(file), str(out / "csv"), parts, gz, gzparts)
    stdout_path = out / "stdout.txt"
    env = dict(os.environ, PYTHONPATH=str(SRC))
    killed = ""
    try:
        with open(os.devnull, "wb") if tool.stdout_devnull else stdout_path.open("wb") as so:
            busy0 = busy_seconds()
            t0 = time.perf_counter()
            p = subprocess.Popen(
                ["/usr/bin/time", "-v", "-o", str(tfile), *argv],
                cwd=SRC,
                env=env,
                stdout=so,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            err_chunks: list[bytes] = []
            reader = threading.Thread(
                target=lambda: err_chunks.append(p.stderr.read() if p.stderr else b""),
                daemon=True,
            )
            reader.start()
            done = threading.Event()

            tree_peak = pss_peak = 0

            def watchdog() -> None:
                nonlocal killed, tree_peak, pss_peak
                while not done.wait(sample_s):
                    tree, pss = tree_memory_kb(p.pid)
                    tree_peak = max(tree_peak, tree)
                    pss_peak = max(pss_peak, pss)
                    if time.perf_counter() - t0 > timeout:
                        killed = "timeout"
                    elif rss_limit_mb and tree > rss_limit_mb * 1024:
                        killed = "rss limit"
                    if killed:
                        with contextlib.suppress(ProcessLookupError):
                            os.killpg(p.pid, signal.SIGKILL)  # its own session: time + tool
                        return

            dog = threading.Thread(target=watchdog, daemon=True)
            dog.start()
            p.wait()  # blocking waitpid: the wall time is not rounded to a poll interval
            wall = time.perf_counter() - t0
            busy = busy_seconds() - busy0
            done.set()
            dog.join(5)
            reader.join(5)
        text = tfile.read_text() if tfile.exists() else ""
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
        ms = re.search(r"Exit status: (\d+)", text)
        rc = int(ms.group(1)) if ms else p.returncode
        status = killed or ("ok" if rc == 0 else f"exit {rc}")
        cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", text))
        other = max(0.0, (busy - cpu) / wall) if wall > 0 else 0.0
        tail = b"".join(err_chunks).decode(errors="replace")[-2000:]
        if not tool.stdout_devnull and stdout_path.exists():
            tail = stdout_path.read_text(errors="replace")[:3000] + tail
        # /usr/bin/time gives the largest single process; a tool with worker processes
        # uses their sum, sampled every --sample s (RSS counts pages the workers share once
        # per process, so the sum is an upper bound). The larger of the two is reported,
        # and beside it the sampled PSS sum (shared pages split between the sharers).
        peak = max(int(m.group(1)) if m else 0, tree_peak) or None
        return Run(wall, peak, rc, status, tail, other, pss_peak or None)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def expand(
    argv: list[str], file: str, out: str, parts: list[str], gz: str, gzparts: list[str]
) -> list[str]:
    """``argv`` with its placeholders filled in: ``{file}``, ``{out}`` and ``{gz}`` within
    an argument, a ``{parts}`` (``{gzparts}``) argument by the parts (gzipped), one
    argument each."""
    return [
        x
        for a in argv
        for x in (
            parts
            if a == "{parts}"
            else gzparts
            if a == "{gzparts}"
            else [a.replace("{file}", file).replace("{out}", out).replace("{gz}", gz)]
        )
    ]


def split_pcap(file: Path, n: int, directory: Path) -> list[Path]:
    """``file`` (classic pcap) split into ``n`` files of about equal record counts, each
    with the file header, as tcpdump ``-C``/``-W`` rotation writes a long capture."""
    records = count_packets(file)
    per = -(-records // n)
    parts: list[Path] = []
    with file.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        if struct.unpack_from("<I", m, 0)[0] not in (0xA1B2C3D4, 0xA1B23C4D):
            raise SystemExit(f"{file}: --tools ours-series needs a little-endian classic pcap")
        head, off, size = m[:24], 24, len(m)
        while off + 16 <= size:
            start, count = off, 0
            while off + 16 <= size and count < per:
                off += 16 + struct.unpack_from("<I", m, off + 8)[0]
                count += 1
            part = directory / f"part-{len(parts):03d}.pcap"
            with part.open("wb") as out:
                out.write(head)
                out.write(m[start : min(off, size)])
            parts.append(part)
    return parts


def count_packets(file: Path) -> int:
    with file.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        magic = struct.unpack_from("<I", m, 0)[0]
        if magic == 0x0A0D0D0A and m[8:12] == b"\x4d\x3c\x2b\x1a":
            # little-endian pcapng: packet blocks (obsolete, simple, enhanced)
            off, size, n = 0, len(m), 0
            while off + 8 <= size:
                btype, blen = struct.unpack_from("<II", m, off)
                n += btype in (2, 3, 6)
                off += max(blen, 12)
            return n
        if magic not in (0xA1B2C3D4, 0xA1B23C4D):
            raise SystemExit(f"{file}: not a little-endian classic pcap or pcapng")
        off, size, n = 24, len(m), 0
        while off + 16 <= size:
            off += 16 + struct.unpack_from("<I", m, off + 8)[0]
            n += 1
    return n


def warm(file: Path) -> float | None:
    """Read the file so that the next run starts with it in the page cache; the
    fraction of its pages then in the cache (``resident``).

    Done before every run, not once: this kernel's proactive reclaim (DAMON,
    ``kdamond``) takes a file's pages back from the cache after they have been left
    alone for a while, for instance during tshark's minute, and a run that
    then reads the file from the disk measures the disk.
    """
    with file.open("rb") as f:
        while f.read(1 << 24):
            pass
    return resident(file)


def resident(file: Path) -> float | None:
    """The fraction of ``file``'s pages in the page cache (``mincore`` over a private
    mapping of it, as util-linux ``fincore`` does), or None if that cannot be asked."""
    try:
        size = file.stat().st_size
        if not size:
            return 1.0
        libc = ctypes.CDLL(None, use_errno=True)
        page = mmap.PAGESIZE
        pages = (size + page - 1) // page
        vec = (ctypes.c_ubyte * pages)()
        with file.open("rb") as f:
            m = mmap.mmap(
                f.fileno(), size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE
            )
            try:
                start = ctypes.c_char.from_buffer(m)
                rc = libc.mincore(
                    ctypes.c_void_p(ctypes.addressof(start)), ctypes.c_size_t(size), vec
                )
                del start  # (a buffer still exported keeps the map from closing)
            finally:
                m.close()
        if rc != 0:
            return None
        return sum(b & 1 for b in bytes(vec)) / pages
    except (OSError, ValueError, AttributeError):
        return None


# --------------------------------------------------------------------------- machine


def sh(cmd: list[str]) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (p.stdout + p.stderr).strip()


def load1() -> float:
    return os.getloadavg()[0]


def busy_processes() -> str:
    out = sh(["ps", "-eo", "pcpu,pid,args", "--sort=-pcpu", "--no-headers"])
    rows = [ln.strip()[:110] for ln in out.splitlines()[:3]]
    return "; ".join(rows)


def wait_idle(max_load: float, limit: float) -> tuple[float, float]:
    """Poll every 30 s until the 1-min load is <= max_load (at most `limit` s)."""
    t0 = time.time()
    while load1() > max_load and time.time() - t0 < limit:
        print(f"load {load1():.2f} > {max_load}: waiting ({busy_processes()})", file=sys.stderr)
        time.sleep(30)
    return load1(), time.time() - t0


CODE = "?"  # what SRC holds: a commit, or the work tree's state


def snapshot(ref: str, build: str) -> None:
    """Export the package at `ref` into a temporary directory and run ours from there.

    Other people edit and commit in this work tree while a benchmark runs for minutes:
    a snapshot keeps every run of ours on the same, named code. ``--ref WORKTREE`` runs
    the live work tree instead (and says whether it had uncommitted changes). With
    ``build`` "compiled" the snapshot is installed as ``pip install .`` installs it
    (the engine compiled by mypyc, see setup.py) and ours runs that; "pure" runs the
    Python source.
    """
    global SRC, CODE
    if ref == "WORKTREE":
        dirty = sh(["git", "status", "--porcelain", "--untracked-files=no", "tcpflow_analyzer"])
        head = sh(["git", "rev-parse", "--short", "HEAD"])
        src = ROOT
        CODE = f"work tree at {head}" + (" with uncommitted changes" if dirty else "")
    else:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", ref],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        src = Path(tempfile.mkdtemp(prefix="tfa-cmp-src-"))
        files = ["tcpflow_analyzer", "pyproject.toml", "README.md"]
        if build == "compiled":
            files.append("setup.py")
        archive = subprocess.run(
            ["git", "archive", sha, *files], cwd=ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
        subj = sh(["git", "log", "-1", "--format=%s", sha])
        CODE = f"{sha} ({subj[:70]})"
    SRC = src
    if build == "compiled":
        site = Path(tempfile.mkdtemp(prefix="tfa-cmp-site-"))
        print(f"building the compiled package from {src} ...", file=sys.stderr)
        subprocess.run(
            [PY, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(src)],
            check=True,
        )
        if not list((site / "tcpflow_analyzer").glob("tracker.*.so")):
            sys.exit("compare: the build compiled nothing (see pip's output)")
        SRC = site  # the working directory of the runs: the compiled package, not the source
    CODE += f"; {build} build"


def machine() -> dict[str, str]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        kb = int(re.findall(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[0])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    dpkt_v = sh([PY, "-c", "import dpkt; print(dpkt.__version__)"])
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "tshark": sh(["tshark", "--version"]).splitlines()[0] if shutil.which("tshark") else "-",
        "tcptrace": (
            re.sub(r"\s+", " ", sh(["tcptrace", "-v"]).splitlines()[0])
            if shutil.which("tcptrace")
            else "not installed"
        ),
        "dpkt": dpkt_v,
        "commit": CODE,
    }


def cmdline(tool: Tool, file: Path) -> str:
    argv = expand(tool.argv, str(file), "TMPDIR", ["PART..."], "FILE.gz", ["PART.gz..."])
    if argv[0] == PY:
        argv[0] = "python3"
    if len(argv) > 2 and argv[1] == "-c":
        argv[2] = {"dpkt": "DPKT_LOOP", "mmap": "MMAP_WALK"}.get(tool.name, argv[2])
    redirect = " > /dev/null" if tool.stdout_devnull else ""
    return "/usr/bin/time -v " + shlex.join(argv) + redirect


def run_json(r: Run) -> dict[str, Any]:
    """One run's figures as the ``--json`` file keeps them."""
    return {
        "wall": r.wall,
        "rss_kb": r.rss_kb,
        "pss_kb": r.pss_kb,
        "status": r.status,
        "other_cpu": r.other_cpu,
        "cached": r.cached,
    }


def fmt_cached(x: float | None) -> str:
    return "?" if x is None else f"{100 * x:.1f}%"


def fmt(x: float | None, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def _cached_text(runs: list[Run]) -> str:
    """The page-cache residency of the capture as the runs started (see ``warm``)."""
    cached = [r.cached for r in runs if r.cached is not None]
    if not cached:
        return "Capture read again before every run; how much of it was cached: not known"
    return (
        "Capture read again before every run (this kernel's proactive reclaim takes cold "
        f"file pages back): in the page cache as each run started, {fmt_cached(min(cached))} "
        f"of it at least ({fmt_cached(statistics.mean(cached))} on average)"
    )


def header(
    m: dict[str, str], load_before: float, load_after: float, waited: float, runs: list[Run]
) -> list[str]:
    other = [r.other_cpu for r in runs]
    return [
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['ram']} RAM, Linux {m['kernel']}",
        f"- Load average (1 min) before: {load_before:.2f} (waited {waited:.0f} s for it), "
        f"after: {load_after:.2f}; CPU used by other processes during the runs (machine busy "
        f"time less the run's own user+system time): mean {statistics.mean(other or [0]):.2f} "
        f"cores, worst run {max(other or [0]):.2f} cores",
        f"- {_cached_text(runs)}",
        f"- The process tree's RSS and PSS read every {SAMPLE_S:g} s during each run "
        "(--sample; the reads are part of the other processes' CPU above)",
        f"- Versions: Python {m['python']}; {m['tshark']}; tcptrace: {m['tcptrace']}; "
        f"dpkt {m['dpkt']}; tcpflow-analyzer: {m['commit']}",
    ]


# --------------------------------------------------------------------------- modes


def run_rounds(
    args: argparse.Namespace, ts: list[Tool], file: Path, results: dict[str, Result]
) -> None:
    """``args.rounds`` rounds, each running every tool once, in order."""
    for rnd in range(1, args.rounds + 1):
        for t in ts:
            cached = warm(file)
            warmed = {"{parts}": PARTS, "{gz}": GZ, "{gzparts}": GZPARTS}
            for part in (p for key, files in warmed.items() if key in t.argv for p in files):
                warm(part)
            r = run_once(t, file, args.timeout, args.rss_limit_mb, SAMPLE_S)
            r.cached = cached
            results[t.name].runs.append(r)
            rss = f"{r.rss_kb / 1024:.0f} MB" if r.rss_kb else "?"
            rss += f" (PSS {r.pss_kb / 1024:.0f} MB)" if r.pss_kb else ""
            print(
                f"round {rnd} {t.name:12s} {r.wall:8.2f} s  peak RSS {rss:>20s}  {r.status}"
                f"  (others: {r.other_cpu:.2f} cores; cached {fmt_cached(r.cached)})",
                file=sys.stderr,
            )
            if r.status != "ok":
                print(r.tail[-1500:], file=sys.stderr)


def compare(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    file: Path = args.file.resolve()
    packets = count_packets(file)
    ts = tools(args.tools)
    load_before, waited = wait_idle(args.max_load, args.wait_idle)
    results = {t.name: Result(t, file) for t in ts}
    scratch = Path(tempfile.mkdtemp(prefix="tfa-parts-"))
    try:
        if any("{parts}" in t.argv or "{gzparts}" in t.argv for t in ts):
            PARTS[:] = split_pcap(file, args.parts, scratch)
        if any("{gzparts}" in t.argv for t in ts):
            for part in PARTS:
                gzpart = part.with_name(part.name + ".gz")
                with gzpart.open("wb") as out:
                    subprocess.run(["gzip", "-1", "-c", str(part)], stdout=out, check=True)
                GZPARTS.append(gzpart)
        if any("{gz}" in t.argv for t in ts):
            gz = scratch / (file.name + ".gz")
            with gz.open("wb") as out:
                subprocess.run(["gzip", "-1", "-c", str(file)], stdout=out, check=True)
            GZ[:] = [gz]
        run_rounds(args, ts, file, results)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        PARTS.clear()
        GZ.clear()
        GZPARTS.clear()
    load_after = load1()
    m = machine()
    ours = results.get("ours")
    our_t = ours.median_wall() if ours else None
    our_m = ours.peak_rss_mb() if ours else None
    size = file.stat().st_size
    lines = [
        f"Capture: `{file.relative_to(ROOT) if file.is_relative_to(ROOT) else file}`, "
        f"{packets:,} packets, {size / 1e9:.2f} GB; {args.rounds} rounds, tools alternating "
        f"in each round.",
        "",
        *header(m, load_before, load_after, waited, [r for x in results.values() for r in x.runs]),
        "",
        "| tool | what | median wall (s) | packets/s | peak RSS (MB) | peak PSS (MB) "
        "| time ÷ ours | RSS ÷ ours | runs (s) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for t in ts:
        res = results[t.name]
        w, mb = res.median_wall(), res.peak_rss_mb()
        runs = ", ".join(
            f"{r.wall:.2f}" + ("" if r.status == "ok" else f" ({r.status})") for r in res.runs
        )
        lines.append(
            f"| {t.name} | {t.what} | {fmt(w, '.2f')} | "
            f"{fmt(packets / w if w else None, ',.0f')} | {fmt(mb, ',.0f')} | "
            f"{fmt(res.peak_pss_mb(), ',.0f')} | "
            f"{fmt(w / our_t if w and our_t else None, '.3f')} | "
            f"{fmt(mb / our_m if mb and our_m else None, '.2f')} | {runs} |"
        )
    lines += ["", "Commands (TMPDIR: a fresh temporary directory per run):", "", "```"]
    lines += [cmdline(t, file) for t in ts]
    lines += ["```"]
    if "dpkt" in results or "mmap" in results:
        lines += ["", "DPKT_LOOP / MMAP_WALK are these `python3 -c` programs:", "", "```python"]
        lines += [DPKT_LOOP.rstrip(), "", MMAP_WALK.rstrip(), "```"]
    if ours and ours.runs:
        out = ours.runs[-1].tail
        lines += ["", "Our analyzer's summary (last run, first lines):", "", "```"]
        lines += [*out.splitlines()[:9], "```"]
    raw = {
        "file": str(file),
        "packets": packets,
        "machine": m,
        "load_before": load_before,
        "load_after": load_after,
        "results": {n: [run_json(r) for r in res.runs] for n, res in results.items()},
    }
    return "\n".join(lines) + "\n", raw


def growth(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    files = [f.resolve() for f in args.growth]
    packets = {f: count_packets(f) for f in files}
    ours = tools(["ours"])[0]
    load_before, waited = wait_idle(args.max_load, args.wait_idle)
    results = {f: Result(ours, f) for f in files}
    for rnd in range(1, args.rounds + 1):
        for f in files:
            cached = warm(f)
            r = run_once(ours, f, args.timeout, args.rss_limit_mb, SAMPLE_S)
            r.cached = cached
            results[f].runs.append(r)
            rss = f"{r.rss_kb / 1024:.0f} MB" if r.rss_kb else "?"
            rss += f" (PSS {r.pss_kb / 1024:.0f} MB)" if r.pss_kb else ""
            print(
                f"round {rnd} {f.name:24s} {r.wall:8.2f} s  peak RSS {rss:>20s}  {r.status}"
                f"  (others: {r.other_cpu:.2f} cores; cached {fmt_cached(r.cached)})",
                file=sys.stderr,
            )
            if r.status != "ok":
                print(r.tail[-1500:], file=sys.stderr)
    load_after = load1()
    m = machine()
    base = files[0]
    bw, bm = results[base].median_wall(), results[base].peak_rss_mb()
    lines = [
        f"Growth check: ours only, {args.rounds} rounds, captures alternating in each round.",
        "",
        *header(m, load_before, load_after, waited, [r for x in results.values() for r in x.runs]),
        "",
        "| capture | packets | × packets | median wall (s) | × time | µs/packet "
        "| peak RSS (MB) | peak PSS (MB) | × RSS | runs (s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for f in files:
        res = results[f]
        w, mb = res.median_wall(), res.peak_rss_mb()
        runs = ", ".join(
            f"{r.wall:.2f}" + ("" if r.status == "ok" else f" ({r.status})") for r in res.runs
        )
        name = f.relative_to(ROOT) if f.is_relative_to(ROOT) else f
        lines.append(
            f"| `{name}` | {packets[f]:,} | {packets[f] / packets[base]:.1f} | {fmt(w, '.2f')} | "
            f"{fmt(w / bw if w and bw else None, '.2f')} | "
            f"{fmt(w / packets[f] * 1e6 if w else None, '.1f')} | {fmt(mb, ',.0f')} | "
            f"{fmt(res.peak_pss_mb(), ',.0f')} | "
            f"{fmt(mb / bm if mb and bm else None, '.2f')} | {runs} |"
        )
    lines += ["", "Command:", "", "```", cmdline(ours, Path("CAPTURE")), "```"]
    raw = {
        "packets": {str(f): n for f, n in packets.items()},
        "machine": m,
        "load_before": load_before,
        "load_after": load_after,
        "results": {str(f): [run_json(r) for r in res.runs] for f, res in results.items()},
    }
    return "\n".join(lines) + "\n", raw


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "file",
        type=Path,
        nargs="?",
        help="capture (classic pcap; pcapng with --tools ours ours-1job tshark tcptrace)",
    )
    ap.add_argument(
        "--growth",
        type=Path,
        nargs="+",
        metavar="PCAP",
        help="1x, 2x, 4x captures of the same traffic: ours only",
    )
    ap.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    ap.add_argument(
        "--tools",
        nargs="+",
        default=["ours", "ours-1job", "tshark", "tcptrace", "dpkt", "mmap"],
        choices=[
            "ours",
            "ours-1job",
            "ours-series",
            "batch-series",
            "batch-parts",
            "census",
            "show",
            "tshark-stream",
            "ours-gz",
            "ours-gz-series",
            "ours-stdin",
            "tshark",
            "tcptrace",
            "dpkt",
            "mmap",
        ],
    )
    ap.add_argument(
        "--parts",
        type=int,
        default=12,
        help="files the capture is split into for ours-series, batch-series and batch-parts "
        "(default 12)",
    )
    ap.add_argument("--timeout", type=float, default=1800, help="per run, s (default 1800)")
    ap.add_argument(
        "--sample",
        type=float,
        default=0.1,
        metavar="S",
        help="read the process tree's RSS and PSS every S seconds (default 0.1); the reads "
        "take CPU beside the tool's, which costs a tool that keeps every core busy",
    )
    ap.add_argument(
        "--rss-limit-mb",
        type=float,
        default=16000,
        help="stop a run whose process tree passes this RSS (default 16000)",
    )
    ap.add_argument(
        "--max-load",
        type=float,
        default=0.5,
        help="wait until the 1-min load average is at most this (default 0.5)",
    )
    ap.add_argument(
        "--wait-idle",
        type=float,
        default=1200,
        help="wait at most this long for it, s (default 1200)",
    )
    ap.add_argument(
        "--ref",
        default="HEAD",
        help="run our analyzer as committed at this revision (default HEAD), "
        "from a snapshot; WORKTREE: the live work tree",
    )
    ap.add_argument(
        "--build",
        choices=("compiled", "pure"),
        default="compiled",
        help="ours as pip install . builds it (default), or the Python source",
    )
    ap.add_argument("--md", type=Path, help="also write the Markdown here")
    ap.add_argument("--json", type=Path, help="also write the raw runs here")
    args = ap.parse_args()
    if not shutil.which("/usr/bin/time"):
        print("/usr/bin/time is needed (apt-get install time)", file=sys.stderr)
        return 2
    global SAMPLE_S
    SAMPLE_S = args.sample
    snapshot(args.ref, args.build)
    try:
        probe = subprocess.run(
            [PY, "-c", "import tcpflow_analyzer; print(tcpflow_analyzer.__file__)"],
            cwd=SRC,
            env=dict(os.environ, PYTHONPATH=str(SRC)),
            capture_output=True,
            text=True,
        )
        if not probe.stdout.startswith(str(SRC)):
            print(f"ours would not run from {SRC}: {probe.stdout}{probe.stderr}", file=sys.stderr)
            return 2
        if args.growth:
            md, raw = growth(args)
        elif args.file:
            md, raw = compare(args)
        else:
            ap.error("give a capture, or --growth PCAP...")
    finally:
        if SRC != ROOT:
            shutil.rmtree(SRC, ignore_errors=True)
    md = f"Command: `python3 bench/compare.py {shlex.join(sys.argv[1:])}`\n\n" + md
    print(md)
    if args.md:
        args.md.write_text(md)
    if args.json:
        args.json.write_text(json.dumps(raw, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
