#!/usr/bin/env python3
"""Time the retirement path (what ``api.analyze_rows`` does per finished connection).

    python3 bench/retire_bench.py bench/data/slice100k.pcap
    python3 bench/retire_bench.py bench/data/slice100k.pcap --against e7dcb2a --rounds 15

The capture is replayed once (``replay`` with ``on_retire`` keeping each retired
connection, its previous incarnation and its end time), then the retire work
alone is timed over all those connections: findings, the connections row, the
transition, anomaly, Zeek and finding rows, all kept as ``analyze_rows`` keeps
them. The garbage collector is off while timing (a full collection lands in
whichever code allocates when it is due), CPU time (``process_time``), best and
median of ``--rounds``.

``--against REF`` also times the package as of git revision REF (extracted with
``git archive`` into a temporary directory as ``tcpflow_ref``), alternating
rounds with the working tree's so that both see the same machine load, and
checks that both make the same rows and findings.

``--pipeline`` times the retire work inside whole ``analyze_rows`` runs instead
(the tracker's ``on_retire`` callback wrapped with a CPU timer), with the garbage
collector on: the time its collections take while a connection is being retired
is shown apart, since where a collection falls is a matter of when it is due.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def setup(package: str, capture: str) -> tuple[Callable[[], Any], int]:
    """Replay ``capture`` with ``package``; return its retire work as a function."""
    config = importlib.import_module(f"{package}.config").Config()
    replay = importlib.import_module(f"{package}.replay").replay
    api = importlib.import_module(f"{package}.api")
    findings = importlib.import_module(f"{package}.findings")
    report = importlib.import_module(f"{package}.report")
    held: list[tuple[Any, Any, int]] = []

    def keep(conn: Any) -> None:
        end_ns = conn.retired_ns if conn.retired_ns is not None else conn.end_ns
        held.append((conn, conn.prev, end_ns))

    replay(capture, config, on_retire=keep)

    def retire_all() -> tuple[dict[str, list[Any]], list[Any]]:
        tables: dict[str, list[Any]] = {name: [] for name in api.TABLES}
        found: list[Any] = []
        for conn, prev, end_ns in held:
            if hasattr(report, "add_retired"):
                found.extend(report.add_retired(tables, conn, prev, config, end_ns))
                continue
            # Before report.add_retired: what api.analyze_rows did per connection.
            mine = findings.detect(conn, prev, config, end_ns)
            found.extend(mine)
            row = report.summarize(conn, prev=prev, findings=mine, capture_end_ns=end_ns)
            tables["connections"].append(row)
            tables["transitions"].extend(report.transition_rows([conn]))
            tables["anomalies"].extend(report.anomaly_rows([conn]))
            tables["zeek_conn"].extend(report.zeek_rows([conn]))
            tables["findings"].extend(report.finding_rows(mine))
        return tables, found

    return retire_all, len(held)


def pipeline(package: str, capture: str) -> Callable[[], tuple[float, float, float]]:
    """A function that runs ``analyze_rows`` on ``capture`` with ``package``.

    It returns CPU seconds: (the whole run, retiring, of which garbage collection).
    """
    replay = importlib.import_module(f"{package}.replay")
    api = importlib.import_module(f"{package}.api")
    config = importlib.import_module(f"{package}.config").Config()
    plain_tracker = replay.Tracker

    def run() -> tuple[float, float, float]:
        spent = [0.0, 0.0]
        inside = [False]
        gc_started = [0.0]

        def on_gc(phase: str, info: dict[str, Any]) -> None:
            if inside[0]:
                if phase == "start":
                    gc_started[0] = time.process_time()
                else:
                    spent[1] += time.process_time() - gc_started[0]

        class TimedTracker(plain_tracker):  # type: ignore[misc, valid-type]
            def __init__(self, cfg: Any = None, on_retire: Any = None, freezer: Any = None) -> None:
                def timed(conn: Any) -> None:
                    inside[0] = True
                    t0 = time.process_time()
                    on_retire(conn)
                    spent[0] += time.process_time() - t0
                    inside[0] = False

                super().__init__(cfg, timed if on_retire is not None else None, freezer)

        replay.Tracker = TimedTracker
        gc.callbacks.append(on_gc)
        try:
            t0 = time.process_time()
            api.analyze_rows(capture, config)
            total = time.process_time() - t0
        finally:
            gc.callbacks.remove(on_gc)
            replay.Tracker = plain_tracker
        return total, spent[0], spent[1]

    return run


def extract(ref: str, into: Path) -> str:
    """The package as of git revision ``ref``, importable as ``tcpflow_ref``."""
    archive = subprocess.run(
        ["git", "archive", ref, "tcpflow_analyzer"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.11.4 and later
            tar.extractall(into, filter="data")
        else:
            tar.extractall(into)  # our own repository's files
    (into / "tcpflow_analyzer").rename(into / "tcpflow_ref")
    sys.path.insert(0, str(into))
    return "tcpflow_ref"


def _finding_key(f: Any) -> tuple[Any, ...]:
    return (f.conn_id, f.code.value, f.endpoint, f.frame, f.evidence_frames, f.detail, f.weight)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("capture")
    parser.add_argument("--against", metavar="REF", help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--pipeline", action="store_true", help="time it inside analyze_rows")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.pipeline:
        main_pipeline(args)
        return
    runs = {"working tree": setup("tcpflow_analyzer", args.capture)}
    with tempfile.TemporaryDirectory() as tmp:
        if args.against:
            runs[args.against] = setup(extract(args.against, Path(tmp)), args.capture)
            (new_t, new_f), (ref_t, ref_f) = (fn() for fn, _ in runs.values())
            assert new_t == ref_t, "the rows differ"
            assert [_finding_key(f) for f in new_f] == [_finding_key(f) for f in ref_f]
        times: dict[str, list[float]] = {name: [] for name in runs}
        gc.disable()
        for _ in range(args.rounds):
            for name, (fn, _) in runs.items():
                t0 = time.process_time()
                fn()
                times[name].append(time.process_time() - t0)
        gc.enable()
    n = next(iter(runs.values()))[1]
    print(f"{args.capture}: {n} connections retired; retire work, CPU s over {args.rounds} rounds")
    for name, ts in times.items():
        ts.sort()
        print(f"  {name:14s} best {ts[0]:.3f}  median {ts[len(ts) // 2]:.3f}")
    if args.against:
        new, ref = (min(ts) for ts in times.values())
        print(f"  {ref / new:.2f}x less time than {args.against} (best of each)")


def main_pipeline(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        runs = {"working tree": pipeline("tcpflow_analyzer", args.capture)}
        if args.against:
            runs[args.against] = pipeline(extract(args.against, Path(tmp)), args.capture)
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, run in runs.items():
                results[name].append(run())
    print(f"{args.capture}: analyze_rows, {args.rounds} runs each; retire CPU s, best run")
    best: dict[str, tuple[float, float]] = {}
    for name, got in results.items():
        with_gc = min(r[1] for r in got)
        without = min(r[1] - r[2] for r in got)
        best[name] = with_gc, without
        print(
            f"  {name:14s} retire {with_gc:.3f} with GC, {without:.3f} without;"
            f" whole run {min(r[0] for r in got):.2f} s CPU"
        )
    if args.against:
        new, ref = best.values()
        print(
            f"  {ref[0] / new[0]:.2f}x less retire time than {args.against} with GC, "
            f"{ref[1] / new[1]:.2f}x without"
        )


if __name__ == "__main__":
    main()
