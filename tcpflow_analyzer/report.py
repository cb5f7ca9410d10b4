"""Reports: connection summaries, DataFrames with fixed columns and dtypes, CSV, text.

Theory of operation
-------------------
The rows come from ``rows.py`` (re-exported here): ``summarize`` turns a
tracked ``Connection`` into one flat row (a dict) whose keys are exactly
``CONNECTION_COLUMNS``, ``add_retired`` appends every table's rows for one
finished connection (what ``api.analyze_rows`` keeps). That part runs once
per connection, uses no pandas and is compiled with the engine (see setup.py).
This module declares the tables' columns and dtypes, builds DataFrames
straight from the rows with those dtypes (so an empty analysis still yields
frames with the right columns), writes them as CSV and makes the text
summary. Only this module writes files.

pandas (and numpy) are imported where a frame is made or read, not with the
module: a streamed analysis (``stream.py``) turns rows into lines of CSV
(``line_format``) and into the summary (``SummaryBuilder.add_rows``) with
neither, and the command line's ``analyze --out`` never loads pandas
(tests/test_no_pandas.py).
"""

from __future__ import annotations

import heapq
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from .csvtext import LineFormat, header_line, needs_quotes, quoted
from .findings import Code, Finding
from .rows import (
    add_retired,
    anomaly_rows,
    finding_rows,
    record_rows,
    summarize,
    transition_rows,
    zeek_rows,
)
from .states import State

__all__ = [
    "ANOMALY_COLUMNS",
    "CONNECTION_COLUMNS",
    "FINDING_COLUMNS",
    "TRANSITION_COLUMNS",
    "ZEEK_COLUMNS",
    "SummaryBuilder",
    "add_retired",
    "anomalies_frame",
    "anomaly_rows",
    "connections_frame",
    "finding_rows",
    "findings_frame",
    "frame_csv",
    "record_rows",
    "summarize",
    "text_summary",
    "transition_rows",
    "transitions_frame",
    "typed_frame",
    "write_csv",
    "write_frame",
    "zeek_frame",
    "zeek_rows",
]

# Public vocabulary: names, order and dtypes are documented in the README.
CONNECTION_COLUMNS: dict[str, str] = {
    "conn_id": "Int64",
    "client_ip": "string",
    "client_port": "Int64",
    "server_ip": "string",
    "server_port": "Int64",
    "vlan": "string",
    "ip_version": "Int64",
    "incarnation": "Int64",
    "prev_conn_id": "Int64",
    "roles": "string",
    "first_frame": "Int64",
    "last_frame": "Int64",
    "start_ts": "float64",
    "end_ts": "float64",
    "duration": "float64",
    "packets": "Int64",
    "client_pkts": "Int64",
    "server_pkts": "Int64",
    "client_bytes": "Int64",
    "server_bytes": "Int64",
    "handshake": "string",
    "active_closer": "string",
    "close_type": "string",
    "half_close": "boolean",
    "half_close_bytes": "Int64",
    "simultaneous_close": "boolean",
    "client_fins": "Int64",
    "server_fins": "Int64",
    "client_rsts": "Int64",
    "server_rsts": "Int64",
    "client_bad_checksums": "Int64",
    "server_bad_checksums": "Int64",
    "client_state_at_end": "string",
    "server_state_at_end": "string",
    "conn_state": "string",
    "history": "string",
    "zeek_orig": "string",
    "zeek_records": "Int64",
    "anomalies": "string",
    # Teardown columns (docs/findings.md): from findings.teardown_facts.
    "client_fin_retransmits": "Int64",
    "server_fin_retransmits": "Int64",
    "final_ack_lost": "boolean",
    "final_ack_seen": "boolean",
    "rst_count": "Int64",
    "rst_from": "string",
    "rst_causes": "string",
    "tuple_reused": "boolean",
    "reuse_gap_s": "float64",
    "reuse_within_time_wait": "boolean",
    "stale_segments": "Int64",
    "close_wait_s": "float64",
    "fin_wait_2_s": "float64",
    "time_wait_s": "float64",
}

TRANSITION_COLUMNS: dict[str, str] = {
    "conn_id": "Int64",
    "endpoint": "string",
    "frame": "Int64",
    "ts": "float64",
    "from_state": "string",
    "to_state": "string",
    "event": "string",
    "rule": "string",
}

# One row per conn.log record Zeek would write (Zeek's column names).
ZEEK_COLUMNS: dict[str, str] = {
    "conn_id": "Int64",
    "ts": "float64",
    "orig_h": "string",
    "orig_p": "Int64",
    "resp_h": "string",
    "resp_p": "Int64",
    "duration": "float64",
    "orig_bytes": "Int64",
    "resp_bytes": "Int64",
    "conn_state": "string",
    "missed_bytes": "Int64",
    "history": "string",
    "orig_pkts": "Int64",
    "orig_ip_bytes": "Int64",
    "resp_pkts": "Int64",
    "resp_ip_bytes": "Int64",
}

# One row per finding (findings.py). evidence_frames: frame numbers joined by a
# space, ready for Wireshark's ``frame.number in {12 13 14}``.
FINDING_COLUMNS: dict[str, str] = {
    "conn_id": "Int64",
    "code": "string",
    "endpoint": "string",
    "frame": "Int64",
    "ts": "float64",
    "evidence_frames": "string",
    "rfc": "string",
    "detail": "string",
}

ANOMALY_COLUMNS: dict[str, str] = {
    "conn_id": "Int64",
    "endpoint": "string",
    "frame": "Int64",
    "ts": "float64",
    "state": "string",
    "event": "string",
    "code": "string",
    "detail": "string",
}

# Endpoint states in which a connection is still being torn down.
_TEARDOWN = frozenset(
    {State.FIN_WAIT_1, State.FIN_WAIT_2, State.CLOSE_WAIT, State.CLOSING, State.LAST_ACK}
)


def _column(values: list[Any], dtype: str) -> Any:
    """One typed column built straight from Python values (no object-then-astype pass)."""
    import numpy as np
    import pandas as pd

    if dtype == "float64":
        return np.array(values, dtype=np.float64)  # (None becomes NaN)
    if dtype == "string" and "" in values:
        # An empty text is missing (<NA>), as it reads back from CSV.
        values = [None if v == "" else v for v in values]
    return pd.array(values, dtype=_pandas_dtype(dtype))


@cache
def _pandas_dtype(name: str) -> Any:
    # A dtype given by name is looked up in pandas' registry on every pd.array call.
    import pandas as pd

    return pd.api.types.pandas_dtype(name)


def typed_frame(rows: Sequence[Mapping[str, Any]], columns: Mapping[str, str]) -> pd.DataFrame:
    """A DataFrame with exactly ``columns`` (name -> dtype) from row dicts; empty if no rows."""
    import pandas as pd

    data = {name: _column([row[name] for row in rows], dtype) for name, dtype in columns.items()}
    return pd.DataFrame(data, columns=list(columns))


def connections_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """DataFrame of connection rows (see CONNECTION_COLUMNS)."""
    return typed_frame(rows, CONNECTION_COLUMNS)


def transitions_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """DataFrame of transition rows (see TRANSITION_COLUMNS)."""
    return typed_frame(rows, TRANSITION_COLUMNS)


def zeek_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """DataFrame of the Zeek view (see ZEEK_COLUMNS)."""
    return typed_frame(rows, ZEEK_COLUMNS)


def findings_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """DataFrame of finding rows (see FINDING_COLUMNS)."""
    return typed_frame(rows, FINDING_COLUMNS)


def anomalies_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """DataFrame of anomaly rows (see ANOMALY_COLUMNS)."""
    return typed_frame(rows, ANOMALY_COLUMNS)


# -- CSV ------------------------------------------------------------------


def _distinct_texts(keys: Any, missing: Any, texts: Callable[[Any], list[str]]) -> list[str]:
    """``texts`` of each distinct key, spread over the rows; "" where ``missing``.

    Ids, frame numbers and times repeat from row to row (a connection's
    transitions), so each is formatted once.
    """
    import numpy as np

    distinct, where = np.unique(keys, return_inverse=True)
    out = np.array(texts(distinct), dtype=object)[where]
    out[missing] = ""
    column: list[str] = out.tolist()
    return column


def _float_texts(distinct_bits: Any) -> list[str]:
    # repr is what numpy's astype(str), pandas' float formatting in to_csv, gives.
    import numpy as np

    return list(map(repr, distinct_bits.view(np.float64).tolist()))


def _int_texts(distinct: Any) -> list[str]:
    return list(map(str, distinct.tolist()))


def _csv_column(series: pd.Series) -> list[str] | None:
    """Each value of ``series`` as ``to_csv`` writes it; None for a dtype not handled here.

    ``to_csv`` writes a float64 as numpy's ``astype(str)`` (Python's repr), a
    nullable integer, boolean or text as ``str`` of the Python value, missing
    values (NaN, <NA>) as "" (pandas' ``get_values_for_csv``).
    """
    import numpy as np
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype == np.float64:
        values = series.to_numpy()
        # Keyed by bit pattern: -0.0 and 0.0 are equal as numbers, not as text.
        return _distinct_texts(values.view(np.int64), np.isnan(values), _float_texts)
    array = series.array
    if isinstance(dtype, pd.Int64Dtype):
        ints = array.to_numpy(dtype=np.int64, na_value=0)
        return _distinct_texts(ints, array.isna(), _int_texts)
    if isinstance(dtype, pd.BooleanDtype):
        words = np.where(array.to_numpy(dtype=bool, na_value=False), "True", "False")
        out = words.astype(object)
        out[array.isna()] = ""
        column: list[str] = out.tolist()
        return column
    if isinstance(dtype, pd.StringDtype):
        column = array.to_numpy(dtype=object, na_value="").tolist()
        if needs_quotes("".join(column)):
            # Texts repeat (rules, RFC references): each is looked at once.
            marked = {text: quoted(text) for text in set(column) if needs_quotes(text)}
            column = [marked.get(text, text) for text in column]
        return column
    return None


def frame_csv(frame: pd.DataFrame, header: bool) -> str:
    """``frame.to_csv(index=False, header=header)``, the same text, made faster.

    Each column is turned into text at once (numbers formatted once per
    distinct value) and the rows joined, fields quoted where the csv module
    would quote them. That covers the dtypes of the result tables
    (``typed_frame``: Int64, float64, boolean, string); a frame with another
    dtype, a single column or labels other than strings is left to ``to_csv``.
    tests/test_frame_csv.py checks the equality on every table of every capture.
    """
    import pandas as pd

    labels = list(frame.columns)
    if (
        len(labels) < 2  # (a row of one empty field is written quoted)
        or isinstance(frame.columns, pd.MultiIndex)
        or not all(isinstance(label, str) for label in labels)
    ):
        return frame.to_csv(index=False, header=header)
    columns = []
    for _, series in frame.items():
        column = _csv_column(series)
        if column is None:
            return frame.to_csv(index=False, header=header)
        columns.append(column)
    eol = os.linesep
    head = header_line(labels) if header else ""
    if not len(frame):
        return head
    return head + eol.join(map(",".join, zip(*columns, strict=True))) + eol


def csv_field(value: Any, dtype: str) -> str:
    """The text ``frame_csv`` writes for ``value`` in a column of ``dtype`` (any value)."""
    import pandas as pd

    column = _csv_column(pd.Series(_column([value], dtype)))
    assert column is not None  # every dtype of the result tables is handled
    return column[0]


def line_format(columns: Mapping[str, str]) -> LineFormat:
    """Lines of CSV for rows of a table with ``columns``, as ``frame_csv`` writes them."""
    return LineFormat(columns, csv_field)


def write_csv(frames: Mapping[str, pd.DataFrame], directory: str | os.PathLike[str]) -> list[Path]:
    """Write each frame as ``NAME.csv`` in ``directory`` (created); return the paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, df in frames.items():
        path = out / f"{name}.csv"
        write_frame(path, df)
        paths.append(path)
    return paths


def write_frame(path: Path, frame: pd.DataFrame, *, append: bool = False) -> None:
    """Write ``frame`` to ``path`` as ``to_csv`` would, or append its rows (no header)."""
    # newline="": the text's line ends are to_csv's own (os.linesep).
    with path.open("a" if append else "w", encoding="utf-8", newline="") as f:
        f.write(frame_csv(frame, not append))


# -- text ------------------------------------------------------------------


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _worth_a_look(row: Mapping[str, Any]) -> list[str]:
    why = []
    if row["close_type"] not in ("fin", "open"):
        why.append(f"close {row['close_type']}")
    for side in ("client", "server"):
        state = row[f"{side}_state_at_end"]
        if state in _TEARDOWN:
            why.append(f"{side} stuck in {state}")
    if row["simultaneous_close"]:
        why.append("simultaneous close")
    if row["half_close"]:
        why.append(f"half-close ({row['half_close_bytes']} bytes after FIN)")
    if row["incarnation"] > 1:
        why.append(f"4-tuple reused (incarnation {row['incarnation']})")
    for side, other in (("client", "server"), ("server", "client")):
        if not row[f"{side}_pkts"] and row[f"{other}_pkts"]:
            why.append(f"one direction only: no {side} packets in the capture")
    bad = (row.get("client_bad_checksums") or 0) + (row.get("server_bad_checksums") or 0)
    if bad:
        why.append(f"{bad} bad checksum(s) (offloaded on the capturing host?)")
    if row["anomalies"]:
        why.append(f"anomalies: {row['anomalies']}")
    return why


def _flagged_line(row: Mapping[str, Any], why: list[str]) -> str:
    """The summary's line for a connection worth a look (``why``: what ``_worth_a_look`` says)."""
    return (
        f"  #{row['conn_id']} {_endpoint(row['client_ip'], row['client_port'])} -> "
        f"{_endpoint(row['server_ip'], row['server_port'])}"
        f"  frames {row['first_frame']}-{row['last_frame']}"
        f"  closer={row['active_closer']}"
        f"  end={row['client_state_at_end']}/{row['server_state_at_end']}"
        f"  [{row['history']}]: {'; '.join(why)}"
    )


_SUMMARY_COUNTED = (
    "close_type",
    "active_closer",
    "client_state_at_end",
    "server_state_at_end",
    "conn_state",
)


# The columns _worth_a_look and SummaryBuilder's line for a flagged connection read.
_FLAGGED_READS = (
    "conn_id",
    "client_ip",
    "client_port",
    "server_ip",
    "server_port",
    "first_frame",
    "last_frame",
    "active_closer",
    "history",
    "close_type",
    "client_state_at_end",
    "server_state_at_end",
    "simultaneous_close",
    "half_close",
    "half_close_bytes",
    "incarnation",
    "client_pkts",
    "server_pkts",
    "client_bad_checksums",
    "server_bad_checksums",
    "anomalies",
)


def _finding_order(f: Finding) -> tuple[float, int, int]:
    return (-f.weight, f.conn_id, f.frame if f.frame is not None else 0)


def _may_be_worth_a_look(frame: pd.DataFrame) -> Any:
    """Rows ``_worth_a_look`` may flag, by whole columns: every row it flags, and more.

    Each of its tests, loosened (a missing value counts as a yes);
    tests/test_stream.py checks the superset on every capture.
    """

    def yes(mask: Any) -> Any:
        return mask.fillna(True).to_numpy(dtype=bool)

    teardown = [state.value for state in _TEARDOWN]
    return (
        ~frame["close_type"].isin(["fin", "open"]).to_numpy(dtype=bool)
        | frame["client_state_at_end"].isin(teardown).to_numpy(dtype=bool)
        | frame["server_state_at_end"].isin(teardown).to_numpy(dtype=bool)
        | yes(frame["simultaneous_close"])
        | yes(frame["half_close"])
        | yes(frame["incarnation"] > 1)
        | yes(frame["client_pkts"] == 0)
        | yes(frame["server_pkts"] == 0)
        | yes(frame["client_bad_checksums"] != 0)
        | yes(frame["server_bad_checksums"] != 0)
        | yes(frame["anomalies"].fillna("") != "")
    )


# The columns of a connection row ``SummaryBuilder.add_rows`` reads: a row may hold
# these alone (a frozen connection's, in ``freeze.py``).
SUMMARY_READS = tuple(dict.fromkeys(("conn_id", "incarnation", *_SUMMARY_COUNTED, *_FLAGGED_READS)))
_TEARDOWN_TEXTS = frozenset(state.value for state in _TEARDOWN)
# The text columns among _FLAGGED_READS: where a typed frame holds an empty text as missing.
_FLAGGED_TEXTS = frozenset(c for c in _FLAGGED_READS if CONNECTION_COLUMNS[c] == "string")
_counted_values = itemgetter(*_SUMMARY_COUNTED)


def _may_flag(row: Mapping[str, Any]) -> bool:
    """``_may_be_worth_a_look`` for one row dict: its tests, loosened, on raw values."""
    return (
        row["close_type"] not in ("fin", "open")
        or row["client_state_at_end"] in _TEARDOWN_TEXTS
        or row["server_state_at_end"] in _TEARDOWN_TEXTS
        or row["simultaneous_close"] is not False
        or row["half_close"] is not False
        or row["incarnation"] is None
        or row["incarnation"] > 1
        or not row["client_pkts"]
        or not row["server_pkts"]
        or row["client_bad_checksums"] != 0
        or row["server_bad_checksums"] != 0
        or row["anomalies"] not in ("", None)
    )


def _as_typed(row: Mapping[str, Any]) -> dict[str, Any]:
    """The values of ``_FLAGGED_READS`` in ``row`` as the typed frame's records hold them.

    ``typed_frame([row], CONNECTION_COLUMNS).to_dict("records")`` without pandas: an
    empty text is missing (None); a connection row's other values (int, bool, str,
    None) come back as they are. tests/test_summary.py checks the equality, value and
    type, on every connection of every capture.
    """
    typed = {c: row[c] for c in _FLAGGED_READS}
    for c in _FLAGGED_TEXTS:
        if typed[c] == "":
            typed[c] = None
    return typed


def _typed_texts(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """Values of text columns as a typed frame holds them: an empty text is missing (None)."""
    return tuple(None if v == "" else v for v in values)


def _na_as_none(values: list[Any]) -> list[Any]:
    """A typed frame's text column (``tolist``) with its missing values (``<NA>``) None."""
    return [v if isinstance(v, str) else None for v in values]


def _count(counts: dict[Any, list[Any]], key: Any, count: int, first: int, *more: Any) -> None:
    """Add ``count`` connections, the lowest conn_id ``first``, to ``counts[key]``.

    An entry is [connections, lowest conn_id, *more] (``more`` kept from the first).
    """
    seen = counts.get(key)
    if seen is None:
        counts[key] = [count, first, *more]
    else:
        seen[0] += count
        if first < seen[1]:
            seen[1] = first


class SummaryBuilder:
    """What ``text_summary`` prints, gathered batch by batch.

    A streamed analysis (``stream.py``) hands each batch of connection rows and
    findings to ``add_rows`` and forgets them: the builder keeps, per distinct
    combination of the columns the summary counts, how many connections had it
    and the lowest ``conn_id`` among them (value counts list ties in the order
    of first appearance in ``conn_id`` order), the first ``limit`` connections
    worth a look (by ``conn_id``), and per finding code a count and the
    ``examples`` worst findings. ``text`` then gives exactly what
    ``text_summary`` gives for all the rows at once, with no pandas.
    """

    def __init__(self, limit: int = 20, examples: int = 3) -> None:
        self.limit = limit
        self.examples = examples
        self._n = 0
        # Raw values of _SUMMARY_COUNTED -> [connections, lowest conn_id, the values
        # as shown: a missing one None].
        self._ends: dict[tuple[Any, ...], list[Any]] = {}
        self._reused = 0
        self._flagged: list[tuple[int, str]] = []  # heap of (-conn_id, line)
        self._n_flagged = 0
        self._finding_count: Counter[Code] = Counter()
        self._finding_worst: dict[Code, list[Finding]] = {}

    @property
    def connections(self) -> int:
        return self._n

    @property
    def findings(self) -> int:
        return sum(self._finding_count.values())

    @property
    def findings_by_code(self) -> dict[str, int]:
        """How many findings of each code (its value), for the codes found."""
        return {code.value: n for code, n in self._finding_count.items() if n}

    def add(self, connections: pd.DataFrame, findings: Iterable[Finding] = ()) -> None:
        """Take one batch of typed connection rows and findings."""
        if len(connections):
            counted = [_na_as_none(connections[col].tolist()) for col in _SUMMARY_COUNTED]
            self._tally(connections["conn_id"].tolist(), zip(*counted, strict=True), tuple)
            self._reused += int((connections["incarnation"] > 1).sum())
            # Rows made dicts only where _worth_a_look may say something (to_dict of
            # every row cost as much as writing the CSV), of the columns it and the
            # line below read.
            read = [c for c in _FLAGGED_READS if c in connections.columns]
            self._flag_rows(connections[read][_may_be_worth_a_look(connections)].to_dict("records"))
        self._add_findings(findings)

    def add_rows(self, rows: Sequence[Mapping[str, Any]], findings: Iterable[Finding] = ()) -> None:
        """``add(typed_frame(rows, CONNECTION_COLUMNS), findings)``, without the frame.

        The few rows ``_worth_a_look`` may flag (``_may_flag``) are given to it as
        the typed frame would (``_as_typed``).
        """
        self._tally([row["conn_id"] for row in rows], map(_counted_values, rows), _typed_texts)
        candidates = [row for row in rows if _may_flag(row)]
        # (A reused 4-tuple, incarnation > 1, is among the candidates.)
        for row in candidates:
            incarnation = row["incarnation"]
            if incarnation is not None and incarnation > 1:
                self._reused += 1
        self._flag_rows(map(_as_typed, candidates))
        self._add_findings(findings)

    def _tally(
        self,
        ids: list[int],
        counted: Iterable[tuple[Any, ...]],
        shown: Callable[[tuple[Any, ...]], tuple[Any, ...]],
    ) -> None:
        """Count each connection's counted values; ``shown`` makes them as the summary shows
        them (the first time a combination is seen). ``_count`` for each, inlined."""
        ends = self._ends
        for conn_id, values in zip(ids, counted, strict=True):
            seen = ends.get(values)
            if seen is None:
                ends[values] = [1, conn_id, shown(values)]
            else:
                seen[0] += 1
                if conn_id < seen[1]:
                    seen[1] = conn_id
        self._n += len(ids)

    def _flag_rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Take the rows (typed values) ``_worth_a_look`` flags."""
        for row in rows:
            why = _worth_a_look(row)
            if why:
                self._n_flagged += 1
                self._flag((-int(row["conn_id"]), _flagged_line(row, why)))

    def _add_findings(self, findings: Iterable[Finding]) -> None:
        for f in findings:
            self._finding_count[f.code] += 1
            self._keep_worst(f.code, (f,))

    def merge(self, other: SummaryBuilder) -> None:
        """Take what ``other`` gathered (another part of the same capture's connections)."""
        for values, (count, first, shown) in other._ends.items():
            _count(self._ends, values, count, first, shown)
        self._n += other._n
        self._reused += other._reused
        self._n_flagged += other._n_flagged
        for item in other._flagged:
            self._flag(item)
        self._finding_count.update(other._finding_count)
        for code, found in other._finding_worst.items():
            self._keep_worst(code, found)

    def _flag(self, item: tuple[int, str]) -> None:
        """Keep ``item`` (-conn_id, line) if it is among the ``limit`` lowest conn_ids."""
        if len(self._flagged) < self.limit:
            heapq.heappush(self._flagged, item)
        elif self.limit and item > self._flagged[0]:
            heapq.heapreplace(self._flagged, item)

    def _keep_worst(self, code: Code, found: Iterable[Finding]) -> None:
        """Add findings of ``code``; keep at least the ``examples`` worst seen (in bounds)."""
        worst = self._finding_worst.setdefault(code, [])
        worst.extend(found)
        if len(worst) > 2 * self.examples + 8:
            worst.sort(key=_finding_order)
            del worst[self.examples :]

    def _counts(self, column: str) -> str:
        """The values of counted ``column`` with their counts, most frequent first.

        What pandas' ``fillna("-").value_counts()`` of the column in ``conn_id``
        order lists: a missing value is "-", ties in the order the values first
        appear (tests/test_summary.py compares the two on every capture).
        """
        at = _SUMMARY_COUNTED.index(column)
        by_value: dict[Any, list[Any]] = {}
        for count, first, shown in self._ends.values():
            value = shown[at]
            _count(by_value, "-" if value is None else value, count, first)
        order = sorted(by_value.items(), key=lambda kv: (-kv[1][0], kv[1][1]))
        return ", ".join(f"{value} {count}" for value, (count, _) in order) or "-"

    def _findings_text(self) -> list[str]:
        """Findings grouped by code (most frequent first), each with its worst examples."""
        total = self.findings
        if not total:
            return ["findings: none"]
        order = list(Code)
        groups = sorted(self._finding_count.items(), key=lambda kv: (-kv[1], order.index(kv[0])))
        lines = [
            f"findings: {total} ("
            + ", ".join(f"{code.value} {count}" for code, count in groups)
            + ")"
        ]
        examples = self.examples
        for code, count in groups:
            lines.append(f"  {code.value}: {count}")
            for f in sorted(self._finding_worst[code], key=_finding_order)[:examples]:
                where = f"frame {f.frame}" if f.frame is not None else "no frame"
                lines.append(f"    #{f.conn_id} {where}: {f.detail}")
            if count > examples:
                lines.append(f"    ... and {count - examples} more (see findings.csv)")
        return lines

    def text(
        self,
        name: str,
        skipped: Mapping[str, int],
        frames: int,
        segments: int,
        warnings: Sequence[str],
        duplicates: int = 0,
    ) -> str:
        """The readable summary ``tcpflow-analyzer analyze`` prints."""
        lines = [f"capture: {name}"]
        skipped_total = sum(skipped.values())
        skip_text = ", ".join(f"{k} {v}" for k, v in sorted(skipped.items()))
        lines.append(
            f"frames: {frames}  tcp segments: {segments}  skipped: {skipped_total}"
            + (f" ({skip_text})" if skip_text else "")
        )
        for w in warnings:
            lines.append(f"warning: {w}")
        if duplicates:
            lines.append(
                f"duplicate frames: {duplicates} (byte-identical to a frame just before: "
                "captured twice; analyzed, not taken for retransmissions)"
            )
        n = self._n
        reused = self._reused
        lines.append(f"connections: {n}" + (f" ({reused} on reused 4-tuples)" if reused else ""))
        if n == 0:
            return "\n".join(lines) + "\n"
        lines.append(f"  how they ended:  {self._counts('close_type')}")
        lines.append(f"  who closed first: {self._counts('active_closer')}")
        lines.append(f"  client end state: {self._counts('client_state_at_end')}")
        lines.append(f"  server end state: {self._counts('server_state_at_end')}")
        lines.append(f"  zeek conn_state:  {self._counts('conn_state')}")
        if self._n_flagged:
            lines.append(f"connections worth a look: {self._n_flagged}")
            lines.extend(line for _, line in sorted(self._flagged, reverse=True))
            if self._n_flagged > self.limit:
                lines.append(f"  ... and {self._n_flagged - self.limit} more (see connections.csv)")
        else:
            lines.append("connections worth a look: none")
        lines.extend(self._findings_text())
        return "\n".join(lines) + "\n"


def text_summary(
    name: str,
    connections: pd.DataFrame,
    skipped: Mapping[str, int],
    frames: int,
    segments: int,
    warnings: Sequence[str],
    limit: int = 20,
    findings: Sequence[Finding] = (),
    examples: int = 3,
    duplicates: int = 0,
) -> str:
    """The readable summary ``tcpflow-analyzer analyze`` prints.

    ``findings`` are listed grouped by code with their count and the
    ``examples`` worst of each (by ``Finding.weight``).
    """
    builder = SummaryBuilder(limit, examples)
    builder.add(connections, findings)
    return builder.text(name, skipped, frames, segments, warnings, duplicates)
