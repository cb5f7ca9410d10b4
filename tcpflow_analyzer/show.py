"""``show``: one connection of a capture drawn, the capture read by one process or several.

Theory of operation
-------------------
``ladder.pick`` finds the connection in one process: the capture replayed with
connections retired as they finish, the others frozen once closed, the replay
stopped once the one named is retired. :func:`draw` does the same over
``jobs`` worker processes as ``analyze --jobs`` does (shard.py; a gzip file
or a capture read once, the parent reads for them all: fanout.py): worker
``k`` replays the flows of shard ``k`` and numbers its connections as a
one-process run does (the ledger).
A connection's segments are all in one shard, so exactly one worker meets the
connection named (a 4-tuple's incarnations too: one address pair); it draws it
at its retirement, while its public ``conn_id`` (and its previous
incarnation's) are in place, and stops. The parent takes the first drawing
that settles the choice and stops the other workers; if none does, it waits
for all of them and chooses among what they matched (none, or several
incarnations of a 4-tuple without ``#N``), with the count of every worker's
connections for the message. A worker that stops early does not say it is
done (``ShardIds.finish``): the others, needing its connections' first frames
past that point to number theirs, wait for it until they are stopped, rather
than number a connection of theirs wrongly (as the one named, it could be).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from .config import Config
from .freeze import SpillError
from .ladder import ConnSpec, Picker, choose, drawing, pick
from .replay import Source
from .shard import Ledger
from .stream import (
    OutputError,
    _no_cycle_collection,
    _parent_reads,
    report,
    run_workers,
    shard_source,
    sharded,
    shared_config,
)

__all__ = ["Drawn", "draw"]


@dataclass
class Drawn:
    """What ``show`` prints: the drawing, and the reader's warnings (of what was read)."""

    text: str
    warnings: list[str]
    stopped: bool = False  # reading stopped once the connection was known


# One worker's account: the connections the name matched, as (conn_id,
# incarnation, drawing), in the order they retired; how many connections retired;
# the reader's warnings; whether it stopped on the one named.
_Account = tuple[list[tuple[int, int, str]], int, list[str], bool]


def draw(
    source: Source | Sequence[str | os.PathLike[str]],
    config: Config,
    spec: ConnSpec,
    jobs: int = 1,
) -> Drawn:
    """The drawing of the connection ``spec`` names (``ladder.drawing``), read by ``jobs``
    processes as ``analyze --jobs`` reads a capture (a gzip file or one read once,
    standard input or a pipe, the parent reads for them: fanout.py). Raises ``ladder.ConnSpecError``
    if the capture does not hold it, ``CaptureError`` if it cannot be read,
    ``OutputError`` if the frozen connections' spill cannot be written (one process:
    ``SpillError``), ``WorkerError`` if a worker fails otherwise or dies."""
    if not sharded(source, jobs):
        shown = pick(source, config, spec)
        return Drawn(drawing(shown.conn, shown.findings), shown.warnings, shown.stopped)
    # What analyze --jobs does: files named by path each worker reads itself; a gzip
    # file the parent inflates, and a capture read once it reads, for all of them.
    _, ring, start = _parent_reads(cast("Any", source), jobs)
    shared = source if ring is None else ring
    args = (shared, shared_config(config, jobs), spec)
    accounts = run_workers(jobs, _worker, args, "show", ring, start, enough=_settled)
    settled = [a for a in accounts if a[3]]
    if settled:  # (the one worker that met it)
        matches, _, warnings, _ = settled[0]
        return Drawn(choose(matches, spec, 0), warnings, True)
    matches = sorted(m for a in accounts for m in a[0])
    text = choose(matches, spec, sum(a[1] for a in accounts))
    return Drawn(text, accounts[0][2])


def _settled(account: _Account) -> bool:
    return account[3]


def _worker(k: int, ledger: Ledger, source: Any, config: Config, spec: ConnSpec, send: Any) -> None:
    """Worker ``k``: replay shard ``k``, drawing what ``spec`` matches; send the account."""
    report(k, send, functools.partial(_account, k, ledger, source, config, spec))


def _account(k: int, ledger: Ledger, source: Any, config: Config, spec: ConnSpec) -> _Account:
    picker = Picker(spec, config, drawing)
    with shard_source(ledger, k, source) as (ids, reader):
        try:
            with _no_cycle_collection():
                result = picker.replay(reader, ids)
        except SpillError as exc:
            raise OutputError(str(exc)) from exc
    # Stopped on the one named, it has not said it is done: the others, which would
    # number their connections past its stop as if it had none, wait until stopped.
    return picker.matches, picker.seen, list(result.stats.warnings), result.stopped
