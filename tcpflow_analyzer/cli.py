"""The ``tcpflow-analyzer`` command: argument parsing plus one library call per command.

Exit codes (documented in the README):
  0  analyzed (warnings, such as a truncated capture, are printed on stderr)
  2  bad command line
  3  the capture could not be read (message names the file and what is wrong)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__, ladder
from .api import analyze
from .config import Config
from .reader import CaptureError
from .replay import replay

__all__ = ["main"]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_UNREADABLE = 3


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value


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
        description="Analyze one capture (pcap, pcapng, gzip-compressed, or - for stdin).",
    )
    p.add_argument("capture", help="capture file, or - for standard input")
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
        help="write connections.csv, transitions.csv and anomalies.csv into DIR",
    )
    p = sub.add_parser(
        "show",
        help="draw one connection as a ladder diagram",
        description="Draw one connection: both endpoints as columns, each segment as an arrow "
        "with flags, relative seq/ack and length, each endpoint's state after it, and the "
        "findings beside the frames they rest on.",
    )
    p.add_argument("capture", help="capture file, or - for standard input")
    p.add_argument(
        "--conn",
        required=True,
        metavar="ID",
        help="conn_id from connections.csv, or IP:PORT-IP:PORT (IPv6 in brackets), "
        "with #N for the Nth incarnation of that 4-tuple",
    )
    p.add_argument("--msl", type=_positive_float, default=30.0, metavar="S", help="as for analyze")
    return parser


def _show(args: argparse.Namespace) -> int:
    result = replay(args.capture, Config(msl=args.msl))
    try:
        conn = ladder.select(result.connections, args.conn)
    except ladder.ConnSpecError as exc:
        print(f"tcpflow-analyzer: error: --conn {args.conn}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    notes: dict[int, list[str]] = {}
    for anomaly in conn.anomalies:
        notes.setdefault(anomaly.frame, []).append(f"{anomaly.code.value} ({anomaly.endpoint})")
    sys.stdout.write(ladder.render(conn, notes))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "show":
        try:
            return _show(args)
        except CaptureError as exc:
            print(f"tcpflow-analyzer: error: {exc}", file=sys.stderr)
            return EXIT_UNREADABLE
    try:
        result = analyze(args.capture, msl=args.msl)
    except CaptureError as exc:
        print(f"tcpflow-analyzer: error: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    for warning in result.warnings:
        print(f"tcpflow-analyzer: warning: {warning}", file=sys.stderr)
    sys.stdout.write(result.summary())
    if args.out:
        try:
            paths = result.to_csv(args.out)
        except OSError as exc:
            print(f"tcpflow-analyzer: error: cannot write to {args.out}: {exc}", file=sys.stderr)
            return EXIT_UNREADABLE
        print("wrote " + ", ".join(str(p) for p in paths))
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
