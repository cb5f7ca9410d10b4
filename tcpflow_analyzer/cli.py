"""The ``tcpflow-analyzer`` command: argument parsing plus one library call per command.

Exit codes (documented in the README):
  0  analyzed (warnings, such as a truncated capture, are printed on stderr)
  2  bad command line
  3  the capture could not be read (message names the file and what is wrong)
  4  batch: finished, but some captures could not be read (see captures.csv)
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__, ladder
from .config import Config
from .fanout import read_once
from .freeze import SpillError
from .reader import CaptureError, gzip_file
from .stream import OutputError, Streamed, WorkerError, analyze_read_back, analyze_to_csv

if TYPE_CHECKING:
    import pandas as pd

    from .batch import BatchResult, StreamedBatch

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1  # analyze --jobs: a worker process failed or died (not the input's fault)
EXIT_USAGE = 2
EXIT_UNREADABLE = 3
EXIT_SOME_FAILED = 4
AUTO_JOBS_BYTES = 64 << 20  # analyze: from this file size on, one worker per core by default
AUTO_JOBS_MAX = 8  # each worker reads the whole file, so more stop paying


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value


def _thresholds(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--close-wait-linger",
        type=_positive_float,
        default=1.0,
        metavar="S",
        help="report CLOSE_WAIT held longer than S seconds (default 1)",
    )
    p.add_argument(
        "--fin-wait-2-linger",
        type=_positive_float,
        default=1.0,
        metavar="S",
        help="report FIN_WAIT_2 held longer than S seconds (default 1)",
    )
    p.add_argument(
        "--idle-timeout",
        type=_positive_float,
        default=Config().idle_timeout,
        metavar="S",
        help="retire a connection not yet closed after S seconds without a segment (default 300)",
    )
    p.add_argument(
        "--max-connections",
        type=_positive_int,
        default=Config().max_connections,
        metavar="N",
        help="hold at most N connections at once; past that, half-open ones are dropped "
        "and counted (default 50000)",
    )


def _config(args: argparse.Namespace) -> Config:
    defaults = Config()
    return Config(
        msl=args.msl,
        close_wait_linger_s=getattr(args, "close_wait_linger", 1.0),
        fin_wait_2_linger_s=getattr(args, "fin_wait_2_linger", 1.0),
        idle_timeout=getattr(args, "idle_timeout", defaults.idle_timeout),
        max_connections=getattr(args, "max_connections", defaults.max_connections),
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {text}")
    return value


def _captures_argument(p: argparse.ArgumentParser) -> None:
    """CAPTURE...: one capture, or one rotated into several files (``_source``)."""
    p.add_argument(
        "captures",
        nargs="+",
        metavar="CAPTURE",
        help="capture file, or - for standard input; several: one rotated capture",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tcpflow-analyzer",
        description="TCP teardown analyzer: every connection in a capture, both endpoints "
        "replayed through the RFC 793 state machine.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser(
        "analyze",
        help="analyze one capture and print a summary",
        description="Analyze one capture (pcap, pcapng, gzip-compressed, or - for stdin). "
        "Several files are taken as one capture rotated into several files (tcpdump "
        "-C/-G/-W): read in time order as one stream, so a connection spanning files is "
        "one connection.",
    )
    _captures_argument(p)
    p.add_argument(
        "--msl",
        type=_positive_float,
        default=30.0,
        metavar="S",
        help="maximum segment lifetime in seconds; TIME_WAIT lasts 2*MSL (default 30: Linux)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="write connections.csv, findings.csv, transitions.csv, anomalies.csv and "
        "zeek_conn.csv into DIR",
    )
    _thresholds(p)
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="worker processes, each taking a share of the flows (default: the cores, up to "
        f"{AUTO_JOBS_MAX}, for a capture file of {AUTO_JOBS_BYTES >> 20} MiB or more; else 1)",
    )
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    p = sub.add_parser(
        "batch",
        help="analyze many captures into one set of tables",
        description="Analyze many captures in parallel worker processes and write one "
        "connections/transitions/... table for all of them (with a capture column) plus "
        "captures.csv, one row per capture with its status. A bad capture gets its row "
        "with the error and the batch goes on.",
    )
    p.add_argument(
        "paths", nargs="+", metavar="PATH", help="capture files, directories (recursive), globs"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="directory for the tables")
    p.add_argument(
        "--jobs", type=int, default=None, metavar="N", help="worker processes (default: all cores)"
    )
    p.add_argument("--format", choices=("csv", "parquet"), default="csv", help="table format")
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on this Dask cluster (pip install 'tcpflow-analyzer[dask]'); the workers "
        "must be able to read the paths",
    )
    p.add_argument(
        "--series",
        action="store_true",
        help="the inputs are one capture rotated into several files (tcpdump -G/-C/-W): "
        "merge them by time, so a connection spanning files is one connection",
    )
    p.add_argument("--msl", type=_positive_float, default=30.0, metavar="S", help="as for analyze")
    _thresholds(p)
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    p = sub.add_parser(
        "census",
        help="how many connections each host holds in each state, over time",
        description="Replay every endpoint's state over time and count, per host, the "
        "connections it holds in each state at the end of each interval (the netstat "
        "TIME_WAIT count, from packets), with per-host and per-server-port summaries. "
        "Several captures are taken as one rotated series.",
    )
    _captures_argument(p)
    p.add_argument("--host", metavar="IP", help="only this host")
    p.add_argument(
        "--interval", type=_positive_float, default=1.0, metavar="S", help="seconds (default 1)"
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="write census.csv, census_hosts.csv, census_ports.csv and census.png into DIR",
    )
    p.add_argument("--msl", type=_positive_float, default=30.0, metavar="S", help="as for analyze")
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    p = sub.add_parser(
        "show",
        help="draw one connection as a ladder diagram",
        description="Draw one connection: both endpoints as columns, each segment as an arrow "
        "with flags, relative seq/ack and length, each endpoint's state after it, and the "
        "findings beside the frames they rest on.",
    )
    _captures_argument(p)
    p.add_argument(
        "--conn",
        required=True,
        metavar="ID",
        help="conn_id from connections.csv, or IP:PORT-IP:PORT (IPv6 in brackets), "
        "with #N for the Nth incarnation of that 4-tuple",
    )
    p.add_argument("--msl", type=_positive_float, default=30.0, metavar="S", help="as for analyze")
    _thresholds(p)
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="worker processes, each taking a share of the flows, as for analyze",
    )
    return parser


def _show(args: argparse.Namespace) -> int:
    if not _stdin_alone(args.captures):
        return EXIT_USAGE
    from .show import draw

    if args.jobs is not None and args.jobs < 1:
        print("tcpflow-analyzer: error: --jobs must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    jobs = args.jobs if args.jobs is not None else auto_jobs(*args.captures)
    try:
        spec = ladder.parse_spec(args.conn)  # before reading anything
        drawn = draw(_source(args.captures), _config(args), spec, jobs)
    except ladder.ConnSpecError as exc:
        print(f"tcpflow-analyzer: error: --conn {args.conn}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SpillError as exc:  # the frozen connections' spill files (as analyze's)
        return _stream_failed(OutputError(str(exc)))
    except (OutputError, WorkerError) as exc:
        return _stream_failed(exc)
    for warning in drawn.warnings:
        print(f"tcpflow-analyzer: warning: {warning}", file=sys.stderr)
    sys.stdout.write(drawn.text)
    return EXIT_OK


def _batch(args: argparse.Namespace) -> int:
    from .batch import analyze_many, find_captures

    if args.jobs is not None and args.jobs < 1:
        print("tcpflow-analyzer: error: --jobs must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if args.format == "parquet" and importlib.util.find_spec("pyarrow") is None:
        print(
            "tcpflow-analyzer: error: --format parquet needs pyarrow: "
            "pip install 'tcpflow-analyzer[parquet]'",
            file=sys.stderr,
        )
        return EXIT_USAGE
    paths = find_captures(args.paths)
    if not paths:
        print(
            "tcpflow-analyzer: error: no captures found in " + " ".join(args.paths), file=sys.stderr
        )
        return EXIT_USAGE
    bar = None
    if sys.stderr.isatty() and not args.series:  # (a series is one capture)
        from tqdm import tqdm

        bar = tqdm(total=len(paths), unit="capture", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.update(done - bar.n)

    if args.scheduler is not None and not args.series:
        # On a Dask cluster: each capture's tables come back whole (the workers cannot
        # write beside the output), then are written together.
        try:
            result = analyze_many(
                paths, config=_config(args), progress=progress, scheduler=args.scheduler
            )
        except (RuntimeError, OSError) as exc:
            print(f"tcpflow-analyzer: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if bar is not None:
            bar.close()
        written = result.write(args.out, args.format)
        caps = result.captures
        counts = [int((caps["status"] == status).sum()) for status in ("ok", "warning")]
        errors = caps[caps["status"] == "error"]["error"].tolist()
        failed, connections = result.failed, len(result.connections)
        html_result: BatchResult | None = result
    else:
        # Streamed: each capture's lines go to the tables as it is done (batch.py).
        try:
            done, written, html_result = _batch_streamed(args, paths, progress)
        except OutputError as exc:
            print(f"tcpflow-analyzer: error: {exc}", file=sys.stderr)
            return EXIT_UNREADABLE
        finally:
            if bar is not None:
                bar.close()
        counts = [done.count(status) for status in ("ok", "warning")]
        errors = [row["error"] for row in done.rows if row["status"] == "error"]
        failed, connections = done.failed, done.connections
    print(
        f"{sum(counts) + failed} captures: {counts[0]} ok, {counts[1]} with warnings, "
        f"{failed} failed; {connections} connections"
    )
    for error in errors:
        print(f"tcpflow-analyzer: error: {error}", file=sys.stderr)
    print("wrote " + ", ".join(str(p) for p in written))
    if args.html:
        from .html import batch_report

        assert html_result is not None  # made when there is --html
        print(f"wrote {batch_report(html_result, args.html, args.msl)}")
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _batch_streamed(
    args: argparse.Namespace, paths: Sequence[os.PathLike[str]], progress: Any
) -> tuple[StreamedBatch, list[Path], BatchResult | None]:
    """``batch`` on this machine: the tables streamed to CSV (``batch.stream_many``); for
    Parquet, into a directory under the output, then each table made a Parquet file in
    turn. With ``--html``, the tables are read back for the report."""
    import shutil

    from .api import load_tables
    from .batch import BatchResult, csv_to_parquet, stream_many, work_directory

    out = Path(args.out)
    where = work_directory(out, ".csv-") if args.format == "parquet" else out
    try:
        done = stream_many(
            paths,
            where,
            jobs=args.jobs,
            config=_config(args),
            series=args.series,
            progress=progress,
        )
        report = None
        if args.html:
            report = BatchResult(load_tables(where), done.captures(), done.failed)
        written = done.paths
        if args.format == "parquet":
            written = csv_to_parquet(where, out)
    finally:
        if where != out:
            shutil.rmtree(where, ignore_errors=True)
    return done, written, report


def _census(args: argparse.Namespace) -> int:
    from .census import of_capture, plot, plot_png

    # The streamed analysis, over the cores as analyze runs it, its tables read back.
    jobs = auto_jobs(*args.captures)
    config = Config(msl=args.msl)
    try:
        cen, done = of_capture(
            _source(args.captures), config, interval=args.interval, host=args.host, jobs=jobs
        )
    except (OutputError, WorkerError) as exc:
        return _stream_failed(exc)
    except ValueError as exc:  # too many intervals for the --interval given
        print(f"tcpflow-analyzer: error: census: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for warning in done.warnings:
        print(f"tcpflow-analyzer: warning: {warning}", file=sys.stderr)
    print(f"census of {done.source}: {done.connections} connections, {len(cen.hosts)} hosts")
    header = (
        f"  {'host':<40} {'peak TIME_WAIT':>14} {'TIME_WAIT at end':>16} "
        f"{'CLOSE_WAIT at end':>17} {'closed first':>12} {'reused':>6}"
    )
    print(header)
    for h in cen.hosts.itertuples():
        print(
            f"  {h.host:<40} {h.peak_time_wait:>14} {h.time_wait_at_end:>16} "
            f"{h.close_wait_at_end:>17} {h.closed_first:>12} {h.reused_tuples:>6}"
        )
    if args.out:
        from pathlib import Path

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        cen.states.to_csv(out / "census.csv", index=False)
        cen.hosts.to_csv(out / "census_hosts.csv", index=False)
        cen.ports.to_csv(out / "census_ports.csv", index=False)
        plot(cen.states, str(out / "census.png"))
        print(f"wrote {out}/census.csv, census_hosts.csv, census_ports.csv, census.png")
    if args.html:
        from .html import Section, write_report

        last = cen.states.groupby("host", sort=True).tail(1)
        path = write_report(
            args.html,
            "TCP state census",
            f"{done.source}: {done.connections} connections, interval {args.interval} s, "
            f"MSL {args.msl} s",
            [
                Section(
                    "States over time",
                    images=[
                        (
                            "connections held per state, busiest hosts",
                            plot_png(cen.states),
                        )
                    ],
                ),
                Section("Hosts", table=cen.hosts),
                Section("At the capture's end", table=last),
                Section("Who closes first, per server port", table=cen.ports),
            ],
        )
        print(f"wrote {path}")
    return EXIT_OK


def _analyze(args: argparse.Namespace) -> int:
    from .census import TRANSITION_READS

    if args.jobs is not None and args.jobs < 1:
        print("tcpflow-analyzer: error: --jobs must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if not _stdin_alone(args.captures):
        return EXIT_USAGE
    # Streamed: rows go to the CSV files as connections retire (memory stays flat).
    jobs = args.jobs if args.jobs is not None else auto_jobs(*args.captures)
    config = _config(args)
    source = _source(args.captures)
    shown: dict[str, pd.DataFrame] = {}
    try:
        if args.html:
            # The tables the report shows read back (into --out, or a scratch directory);
            # of the transitions, the census's columns, for its states over time.
            reads = {"connections": None, "transitions": TRANSITION_READS, "findings": None}
            result, shown = analyze_read_back(source, config, reads, args.out, jobs=jobs)
        else:
            result = analyze_to_csv(source, config, args.out, jobs=jobs)
    except (OutputError, WorkerError) as exc:
        return _stream_failed(exc)
    for warning in result.warnings:
        print(f"tcpflow-analyzer: warning: {warning}", file=sys.stderr)
    sys.stdout.write(result.summary)
    if args.out:
        print("wrote " + ", ".join(str(p) for p in result.paths))
    if args.html:
        print(f"wrote {_capture_report(args.html, result, config, shown)}")
    return EXIT_OK


def _stream_failed(exc: OutputError | WorkerError) -> int:
    """Say why a streamed analysis stopped; the exit status."""
    if isinstance(exc, WorkerError):
        print(f"tcpflow-analyzer: error: a worker process failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"tcpflow-analyzer: error: {exc}", file=sys.stderr)
    return EXIT_UNREADABLE


def _stdin_alone(captures: list[str]) -> bool:
    """False (and the error said) when standard input is given among other captures."""
    if len(captures) > 1 and "-" in captures:
        print("tcpflow-analyzer: error: standard input (-) is read alone", file=sys.stderr)
        return False
    return True


def _source(captures: list[str]) -> str | list[str]:
    """One capture, or a rotated series (a list: see ``replay.Series``)."""
    return captures[0] if len(captures) == 1 else captures


def auto_jobs(*captures: str) -> int:
    """``analyze``'s default worker count: the cores (at most AUTO_JOBS_MAX) for a big
    capture (the files of a series together; a gzip file by its data: ``_data_size``)
    and for one read once only (standard input, a pipe: its size is not known, and
    the workers cost little more than one process on a small one: fanout.py).

    A small capture file takes less time than starting the workers saves.
    """
    if len(captures) == 1 and read_once(captures[0]):
        big = True
    else:
        try:
            size = sum(_data_size(c) for c in captures if c != "-")
        except OSError:
            return 1  # the reader reports what is wrong with it
        big = size >= AUTO_JOBS_BYTES and "-" not in captures
    if not big:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(cores or 1, AUTO_JOBS_MAX)


def _data_size(path: str) -> int:
    """The file's size; for a gzip file, at least the size its last member gives for its
    data (RFC 1952 ISIZE, modulo 4 GiB: the whole file's, for one member below that)."""
    size = os.path.getsize(path)
    if size < 18 or not gzip_file(path):
        return size
    with open(path, "rb") as f:
        f.seek(size - 4)
        return max(size, int.from_bytes(f.read(4), "little"))


def _capture_report(
    path: str, done: Streamed, config: Config, shown: dict[str, pd.DataFrame]
) -> Path:
    """``analyze --html``'s report, of the tables read back. A connection's rows are
    together and in order: a stable sort by conn_id gives the order of the library's
    tables, and so its report."""
    from .html import capture_report

    tables = {
        name: frame.sort_values("conn_id", kind="stable", ignore_index=True)
        for name, frame in shown.items()
    }
    return capture_report(
        path,
        done.source,
        done.frames,
        done.segments,
        done.summary,
        config.msl,
        tables["connections"],
        tables["transitions"],
        tables["findings"],
    )


_COMMANDS = {"analyze": _analyze, "batch": _batch, "census": _census, "show": _show}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    # numpy (imported by the pcap fast path, fastread.py) starts OpenBLAS's thread
    # pool, whose threads spin on the other cores for a while; nothing here uses BLAS.
    # One thread: 0.2-0.4 s less wall time for analyze --jobs 2 on the 1.5M-packet
    # benchmark capture. Set before numpy is imported; a value the user set is kept.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except CaptureError as exc:  # batch reports its unreadable captures itself
        print(f"tcpflow-analyzer: error: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
