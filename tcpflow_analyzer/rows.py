"""Rows: what one tracked connection adds to each result table, as dicts.

Theory of operation
-------------------
``summarize`` turns a tracked ``Connection`` into one flat row (a dict) whose
keys are exactly ``report.CONNECTION_COLUMNS``; the closing facts (who closed,
how, end states) are decided here, from the endpoints' final states and the
order of FINs and RSTs, and nowhere else. The teardown columns (FIN
retransmissions, RST causes, reuse, time spent in CLOSE_WAIT/FIN_WAIT_2/TIME_WAIT)
come from the detectors (``findings.teardown_facts``). ``add_retired`` appends
every table's rows for one finished connection (what ``api.analyze_rows`` keeps),
the same as the per-table functions but reading the connection once.
``RowTexts`` gives the same as text for a streamed analysis: the CSV lines of
a connection's rows, made with no row dicts, and the values of its row the
summary reads.

This is the per-connection part of the report layer, split from ``report.py``
(which builds DataFrames with pandas and writes files, and re-exports all of
this) so that it is compiled with mypyc with the engine (setup.py's COMPILED):
it runs once per connection of a capture. No pandas here. Times in seconds are
made by ``findings.seconds``, which rounds compiled as Python does (the findings
use it for their durations too).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from typing import Any, Final

from librt.strings import StringWriter

from .config import Config
from .csvtext import COMMA, EOL, LineFormat, float_text, int_text, write_int, write_micros
from .findings import (
    Finding,
    TeardownFacts,
    TeardownValues,
    detect,
    detect_with_teardown,
    detect_with_teardown_values,
    seconds,
    teardown_facts,
)
from .segment import addr_text
from .states import Event, State
from .tracker import Connection, TransitionRecord
from .zeek import ZeekConn

__all__ = [
    "LINE_CUTS",
    "RowTexts",
    "add_retired",
    "anomaly_rows",
    "finding_rows",
    "record_rows",
    "summarize",
    "transition_rows",
    "zeek_rows",
]

_DONE: Final = frozenset({State.CLOSED, State.TIME_WAIT})

# The columns of a connection's line that ``RowTexts.made`` gives apart, in column
# order: those that move with a frozen connection's retirement time (freeze.py).
LINE_CUTS: Final = ("client_state_at_end", "server_state_at_end", "time_wait_s")

# The members' texts (_value_) by member: compiled, a dict lookup costs less than
# reading the attribute of an enum member (three per transition row).
_STATE_TEXT: Final = {state: state._value_ for state in State}
_EVENT_TEXT: Final = {event: event._value_ for event in Event}


def _vlan_text(conn: Connection) -> str | None:
    """VLAN IDs outermost first joined by '.'; 'A|B' when the directions differ."""
    if not conn.vlan and conn.reverse_vlan is None:
        return None  # untagged (most captures)
    fwd = ".".join(str(v) for v in conn.vlan)
    if conn.reverse_vlan is not None and conn.reverse_vlan != conn.vlan:
        rev = ".".join(str(v) for v in conn.reverse_vlan)
        first_is_client = conn.first_sender == (conn.client.addr, conn.client.port)
        return f"{fwd}|{rev}" if first_is_client else f"{rev}|{fwd}"
    return fwd or None


def _handshake(conn: Connection) -> str:
    if conn.saw_syn and conn.saw_synack and conn.handshake_acked:
        return "complete"
    if conn.saw_syn or conn.saw_synack:
        return "partial"
    return "none"


def _close(conn: Connection) -> tuple[str, str]:
    """(close_type, active_closer) from the FIN/RST order and the end states."""
    c, s = conn.client, conn.server
    if (
        conn.saw_syn
        and not conn.saw_synack
        and conn.client.isn is not None
        and (
            not conn.handshake_acked
            and s.state in (State.LISTEN, State.CLOSED, State.UNKNOWN)
            and s.fins == 0
        )
    ):
        if s.rsts:
            return "refused", "none"
        if s.pkts == 0:
            return "unanswered", "none"
    if conn.first_rst is not None:
        close_type = "fin_rst" if conn.fin_before_rst else "rst"
    elif conn.first_fin is None:
        return "open", "none"
    elif c.state in _DONE and s.state in _DONE and c.fins and s.fins:
        close_type = "fin"
    else:
        close_type = "closing"
    if conn.simultaneous_close:
        closer = "both"
    elif conn.first_fin is not None:
        closer = conn.first_fin
    else:
        closer = conn.first_rst or "none"
    return close_type, closer


def summarize(
    conn: Connection,
    *,
    prev: Connection | None = None,
    findings: Sequence[Finding] | None = None,
    capture_end_ns: int | None = None,
    config: Config | None = None,
) -> dict[str, Any]:
    """One row of ``connections`` for a tracked connection.

    ``prev`` is the previous incarnation of its 4-tuple (without it the reuse
    gap is unknown); ``findings`` the connection's findings (detected here when
    not given); ``capture_end_ns`` the capture's last segment time (default: the
    connection's own last segment), which ends states still held.
    """
    end_ns = conn.end_ns if capture_end_ns is None else capture_end_ns
    if findings is None:
        findings = detect(conn, prev, config or Config(), end_ns)
    facts = teardown_facts(conn, prev, findings, end_ns)
    teardown = {name: getattr(facts, name) for name in _TEARDOWN_FIELDS}
    zeek = conn.zeek
    return _connection_row(conn, teardown, zeek.conn_state(), zeek.history())


# TeardownFacts' fields: the last columns of ``connections``, in order.
_TEARDOWN_FIELDS: Final = tuple(f.name for f in fields(TeardownFacts))


def _connection_row(
    conn: Connection, teardown: Mapping[str, Any], zeek_state: str, zeek_history: str
) -> dict[str, Any]:
    """``summarize``'s row, its teardown columns and Zeek fields already worked out.

    ``teardown`` maps TeardownFacts' fields, in order, to their values;
    ``zeek_state`` and ``zeek_history`` are the first Zeek record's.
    """
    c, s = conn.client, conn.server
    close_type, closer = _close(conn)
    zeek = conn.zeek
    zeek_orig_is_client = zeek.orig_is_first == (conn.first_sender == (c.addr, c.port))
    anomalies = _anomaly_codes(conn)
    start_ns, end_ns = conn.start_ns, conn.end_ns
    # Hot (one row per connection): plain attribute reads, an enum's text looked up.
    return {
        "conn_id": conn.conn_id,
        "client_ip": addr_text(c.addr),
        "client_port": c.port,
        "server_ip": addr_text(s.addr),
        "server_port": s.port,
        "vlan": _vlan_text(conn),
        "ip_version": 4 if len(c.addr) == 4 else 6,
        "incarnation": conn.incarnation,
        "prev_conn_id": conn.prev_conn_id,
        "roles": conn.roles,
        "first_frame": conn.first_frame,
        "last_frame": conn.last_frame,
        "start_ts": seconds(start_ns),
        "end_ts": seconds(end_ns),
        "duration": seconds(end_ns - start_ns),
        "packets": conn.packets,
        "client_pkts": c.pkts,
        "server_pkts": s.pkts,
        "client_bytes": c.payload_bytes,
        "server_bytes": s.payload_bytes,
        "handshake": _handshake(conn),
        "active_closer": closer,
        "close_type": close_type,
        "half_close": conn.half_close_bytes > 0,
        "half_close_bytes": conn.half_close_bytes,
        "simultaneous_close": conn.simultaneous_close,
        "client_fins": c.fins,
        "server_fins": s.fins,
        "client_rsts": c.rsts,
        "server_rsts": s.rsts,
        "client_bad_checksums": c.bad_checksums,
        "server_bad_checksums": s.bad_checksums,
        "client_state_at_end": _STATE_TEXT[c.state],
        "server_state_at_end": _STATE_TEXT[s.state],
        "conn_state": zeek_state,
        "history": zeek_history,
        "zeek_orig": "client" if zeek_orig_is_client else "server",
        "zeek_records": len(conn.zeek_records),
        "anomalies": anomalies,
        **teardown,
    }


def _anomaly_codes(conn: Connection) -> str:
    """The ``anomalies`` column: the codes in order, each with its count past one."""
    if not conn.anomalies:
        return ""
    codes = Counter(a.code.value for a in conn.anomalies)
    return ";".join(f"{code}" if n == 1 else f"{code}*{n}" for code, n in sorted(codes.items()))


def transition_rows(conns: Iterable[Connection]) -> list[dict[str, Any]]:
    """Rows of ``transitions`` for tracked connections, in order."""
    return [row for conn in conns for row in _transition_rows(conn)]


def _transition_rows(
    conn: Connection, records: Iterable[TransitionRecord] | None = None
) -> list[dict[str, Any]]:
    # Hot (a row per transition): the id boxed once, the enums' texts looked up.
    conn_id: object = conn.conn_id
    states, events = _STATE_TEXT, _EVENT_TEXT
    return [
        {
            "conn_id": conn_id,
            "endpoint": t.endpoint,
            "frame": t.frame,
            "ts": seconds(t.ts_ns),
            "from_state": states[t.from_state],
            "to_state": states[t.to_state],
            "event": events[t.event],
            "rule": t.rule,
        }
        for t in (conn.transitions if records is None else records)
    ]


def record_rows(conn: Connection, records: Iterable[TransitionRecord]) -> list[dict[str, Any]]:
    """Rows of ``transitions`` for some of ``conn``'s transition records."""
    return _transition_rows(conn, records)


def zeek_rows(conns: Iterable[Connection]) -> list[dict[str, Any]]:
    """Rows of the Zeek view: the conn.log records each connection makes."""
    return [
        _zeek_row(conn, first, zc, zc.conn_state(), zc.history())
        for conn in conns
        for first, zc in conn.zeek_records
        if zc.start_ns is not None
    ]


def _zeek_row(
    conn: Connection, first: tuple[bytes, int], zc: ZeekConn, zeek_state: str, zeek_history: str
) -> dict[str, Any]:
    """One row of the Zeek view, given the record's conn_state and history."""
    start_ns = zc.start_ns
    assert start_ns is not None  # records that never started make no row
    orig, resp = _zeek_ends(conn, first, zc)
    return {
        "conn_id": conn.conn_id,
        "ts": seconds(start_ns),
        "orig_h": addr_text(orig[0]),
        "orig_p": orig[1],
        "resp_h": addr_text(resp[0]),
        "resp_p": resp[1],
        "duration": seconds(zc.duration_ns),
        "orig_bytes": zc.orig_bytes,
        "resp_bytes": zc.resp_bytes,
        "conn_state": zeek_state,
        "missed_bytes": zc.missed_bytes,
        "history": zeek_history,
        "orig_pkts": zc.orig_pkts,
        "orig_ip_bytes": zc.orig_ip_bytes,
        "resp_pkts": zc.resp_pkts,
        "resp_ip_bytes": zc.resp_ip_bytes,
    }


def _zeek_ends(
    conn: Connection, first: tuple[bytes, int], zc: ZeekConn
) -> tuple[tuple[bytes, int], tuple[bytes, int]]:
    """A Zeek record's originator and responder (address, port)."""
    peer = (conn.server.addr, conn.server.port)
    if first == peer:
        peer = (conn.client.addr, conn.client.port)
    return (first, peer) if zc.orig_is_first else (peer, first)


def add_retired(
    tables: Mapping[str, list[dict[str, Any]]],
    conn: Connection,
    prev: Connection | None,
    config: Config,
    capture_end_ns: int,
) -> list[Finding]:
    """Append a finished connection's rows to ``tables`` (lists by CSV name); its findings.

    The same as ``findings = detect(conn, prev, config, capture_end_ns)`` with the
    rows of ``summarize(conn, prev=prev, findings=findings, capture_end_ns=...)``,
    ``transition_rows([conn])``, ``anomaly_rows([conn])``, ``zeek_rows([conn])``
    and ``finding_rows(findings)`` appended to "connections", "transitions",
    "anomalies", "zeek_conn" and "findings", for less: the trace is read once for
    the findings and the teardown columns, and the first Zeek record's conn_state
    and history are worked out once for the connection's row and its Zeek row.
    """
    row, found, records = _retired(conn, prev, config, capture_end_ns)
    tables["connections"].append(row)
    tables["transitions"].extend(_transition_rows(conn))
    if conn.anomalies:
        tables["anomalies"].extend(anomaly_rows((conn,)))
    zeek_conn = tables["zeek_conn"]
    for first, zc, state, history in records:
        zeek_conn.append(_zeek_row(conn, first, zc, state, history))
    if found:
        tables["findings"].extend(finding_rows(found))
    return found


# A Zeek record of a connection with a row: where it started, the record, its
# conn_state and history.
_ZeekRecord = tuple[tuple[bytes, int], ZeekConn, str, str]


def _retired(
    conn: Connection, prev: Connection | None, config: Config, capture_end_ns: int
) -> tuple[dict[str, Any], list[Finding], list[_ZeekRecord]]:
    """``add_retired``'s connection row and findings, and the Zeek records with a row."""
    found, teardown = detect_with_teardown(conn, prev, config, capture_end_ns)
    zeek = conn.zeek
    state, history = zeek.conn_state(), zeek.history()
    row = _connection_row(conn, teardown, state, history)
    return row, found, _zeek_records(conn, state, history)


def _zeek_records(conn: Connection, state: str, history: str) -> list[_ZeekRecord]:
    """The connection's Zeek records with a row; ``state`` and ``history`` are the first's."""
    zeek = conn.zeek
    records: list[_ZeekRecord] = []
    for first, zc in conn.zeek_records:
        if zc.start_ns is not None:
            if zc is zeek:
                records.append((first, zc, state, history))
            else:
                records.append((first, zc, zc.conn_state(), zc.history()))
    return records


class RowTexts:
    """The CSV text of a retired connection's rows, most of it made with no row dict.

    For a streamed analysis (``stream.py``), which writes lines, not frames.
    ``retired`` gives what ``add_retired`` appends, but as the connection's row
    (a dict), the text of its rows of the other tables (``texts``: lines
    joined by ``csvtext.EOL``, tables without rows left out) and its findings.
    ``made`` (what the streamed analysis uses) gives the same with no row dict
    at all: the values of the row the summary reads and the row's line, cut
    around the fields that can change when the freezer holds it. The
    ``connections``, ``transitions`` and ``zeek_conn`` lines (all but a few) are
    made straight from the connection, each written to a ``StringWriter`` (its
    numbers a digit at a time, with no text made for them): each field is the
    text ``LineFormat`` makes of the value the row dict holds (values of the
    types the rows hold: no fallback). A transition's last four
    fields (from_state, to_state, event, rule) take few distinct values: their
    text is kept per value, found by the rule (the last text made for each
    rule, its states and event compared) or else by all four. Findings and
    anomalies (few) go through their row dicts and ``LineFormat.line``.
    tests/test_row_texts.py and tests/test_row_made.py check the texts against
    ``LineFormat.line`` of the row dicts on every capture.
    """

    def __init__(self, formats: Mapping[str, LineFormat], config: Config | None = None) -> None:
        self._formats = formats
        self._config = config  # made_retired's
        self._format = formats["transitions"]  # its text(): any string column's field
        # (from_state, to_state, event, rule) -> their fields; the rules are a
        # fixed table, so few (a limit all the same, as the other caches have).
        self._suffixes: dict[tuple[State, State, Event, str], str] = {}
        # rule -> the last of those with the rule, and its fields.
        self._by_rule: dict[str, tuple[State, State, Event, str]] = {}

    def retired(
        self, conn: Connection, prev: Connection | None, config: Config, capture_end_ns: int
    ) -> tuple[dict[str, Any], dict[str, str], list[Finding]]:
        """The connection's row, the texts of its other rows by table, its findings."""
        row, found, records = _retired(conn, prev, config, capture_end_ns)
        return row, self._texts(conn, found, records), found

    def made(
        self, conn: Connection, prev: Connection | None, config: Config, capture_end_ns: int
    ) -> tuple[tuple[Any, ...], list[str], dict[str, str], list[Finding]]:
        """``retired`` with no row dict: the values of the row's columns the summary
        reads (``report.SUMMARY_READS``), in column order; its line (``connections``)
        cut around the fields of ``LINE_CUTS``: parts that joined make the line, with
        those fields (alone) at the odd places; the texts of its other rows by table;
        its findings."""
        found, teardown = detect_with_teardown_values(conn, prev, config, capture_end_ns)
        zeek = conn.zeek
        state, history = zeek.conn_state(), zeek.history()
        summary, fields = self._connection(conn, teardown, state, history)
        texts = self._texts(conn, found, _zeek_records(conn, state, history))
        return summary, fields, texts, found

    def made_retired(
        self, conn: Connection
    ) -> tuple[tuple[Any, ...], list[str], dict[str, str], list[Finding]]:
        """``made`` with the previous incarnation held and the config given, as of the
        connection's retirement (``retired_ns``; else its last segment), as
        ``api.connection_rows`` makes its rows; the trace's steps are freed after.
        (``freeze.MadeFn``.)"""
        config = self._config
        assert config is not None, "RowTexts made without a config"
        end_ns = conn.retired_ns if conn.retired_ns is not None else conn.end_ns
        made = self.made(conn, conn.prev, config, end_ns)
        conn.trace.release()
        return made

    def _texts(
        self, conn: Connection, found: list[Finding], records: list[_ZeekRecord]
    ) -> dict[str, str]:
        texts: dict[str, str] = {}
        if conn.transitions:
            texts["transitions"] = self.transitions(conn)
        if conn.anomalies:
            texts["anomalies"] = self._lines("anomalies", anomaly_rows((conn,)))
        if records:
            out = StringWriter()
            for f, zc, s, h in records:
                if len(out):
                    out.write(EOL)
                self._zeek_line(out, conn, f, zc, s, h)
            texts["zeek_conn"] = out.getvalue()
        if found:
            texts["findings"] = self._lines("findings", finding_rows(found))
        return texts

    def _connection(
        self, conn: Connection, teardown: TeardownValues, zeek_state: str, zeek_history: str
    ) -> tuple[tuple[Any, ...], list[str]]:
        """The values of ``_connection_row(...)`` the summary reads (see ``made``), and
        its line cut around the fields of ``LINE_CUTS`` (see ``made``), made straight
        from the connection."""
        c, s = conn.client, conn.server
        close_type, closer = _close(conn)
        zeek_orig_is_client = conn.zeek.orig_is_first == (conn.first_sender == (c.addr, c.port))
        anomalies = _anomaly_codes(conn)
        client_ip, server_ip = addr_text(c.addr), addr_text(s.addr)
        client_state, server_state = _STATE_TEXT[c.state], _STATE_TEXT[s.state]
        vlan = _vlan_text(conn)
        start_ns, end_ns = conn.start_ns, conn.end_ns
        (
            client_fin_retransmits,
            server_fin_retransmits,
            final_ack_lost,
            final_ack_seen,
            rst_count,
            rst_from,
            rst_causes,
            tuple_reused,
            reuse_gap_s,
            reuse_within_time_wait,
            stale_segments,
            close_wait_s,
            fin_wait_2_s,
            time_wait_s,
        ) = teardown
        fmt = self._format
        # Each field as LineFormat makes it of the row's value, written with its comma
        # (numbers with no text made for them). The addresses' texts, the VLAN IDs
        # (digits, "." and "|"), the fixed words (enum values, roles, close types) and
        # Zeek's conn_state codes and history (letters and "^") hold nothing to
        # quote: they are their own field.
        out = StringWriter()
        _put_int(out, conn.conn_id)
        _put(out, client_ip)
        _put_int(out, c.port)
        _put(out, server_ip)
        _put_int(out, s.port)
        _put(out, "" if vlan is None else vlan)
        _put(out, "4" if len(c.addr) == 4 else "6")
        _put_int(out, conn.incarnation)
        _put_maybe_int(out, conn.prev_conn_id)
        _put(out, fmt.text(conn.roles))
        _put_int(out, conn.first_frame)
        _put_int(out, conn.last_frame)
        _put_ns(out, start_ns)
        _put_ns(out, end_ns)
        _put_ns(out, end_ns - start_ns)
        _put_int(out, conn.packets)
        _put_int(out, c.pkts)
        _put_int(out, s.pkts)
        _put_int(out, c.payload_bytes)
        _put_int(out, s.payload_bytes)
        _put(out, _handshake(conn))
        _put(out, closer)
        _put(out, close_type)
        _put(out, _bool_text(conn.half_close_bytes > 0))
        _put_int(out, conn.half_close_bytes)
        _put(out, _bool_text(conn.simultaneous_close))
        _put_int(out, c.fins)
        _put_int(out, s.fins)
        _put_int(out, c.rsts)
        _put_int(out, s.rsts)
        _put_int(out, c.bad_checksums)
        _put_int(out, s.bad_checksums)
        # client_state_at_end and server_state_at_end: cut out
        cut = len(out)
        out.append(COMMA)
        _put(out, zeek_state)
        _put(out, zeek_history)
        _put(out, "client" if zeek_orig_is_client else "server")
        _put_int(out, len(conn.zeek_records))
        _put(out, fmt.text(anomalies))
        _put_int(out, client_fin_retransmits)
        _put_int(out, server_fin_retransmits)
        _put(out, _bool_text(final_ack_lost))
        _put(out, "" if final_ack_seen is None else _bool_text(final_ack_seen))
        _put_int(out, rst_count)
        _put(out, fmt.text(rst_from))
        _put(out, fmt.text(rst_causes))
        _put(out, _bool_text(tuple_reused))
        _put(out, _maybe_float(reuse_gap_s))
        _put(out, "" if reuse_within_time_wait is None else _bool_text(reuse_within_time_wait))
        _put_int(out, stale_segments)
        _put(out, _maybe_float(close_wait_s))
        _put(out, _maybe_float(fin_wait_2_s))
        # time_wait_s (the last field): cut out
        line = out.getvalue()
        fields = [
            line[:cut],
            client_state,
            ",",
            server_state,
            line[cut:],
            _maybe_float(time_wait_s),
            "",
        ]
        summary = (
            conn.conn_id,
            client_ip,
            c.port,
            server_ip,
            s.port,
            conn.incarnation,
            conn.first_frame,
            conn.last_frame,
            c.pkts,
            s.pkts,
            closer,
            close_type,
            conn.half_close_bytes > 0,
            conn.half_close_bytes,
            conn.simultaneous_close,
            c.bad_checksums,
            s.bad_checksums,
            client_state,
            server_state,
            zeek_state,
            zeek_history,
            anomalies,
        )
        return summary, fields

    def _lines(self, table: str, rows: list[dict[str, Any]]) -> str:
        line = self._formats[table].line
        return EOL.join([line(row) for row in rows])

    def transitions(
        self, conn: Connection, records: Iterable[TransitionRecord] | None = None
    ) -> str:
        """The lines of ``record_rows(conn, records)`` (of all its transitions: None)."""
        conn_id = int_text(conn.conn_id)
        fmt, by_rule = self._format, self._by_rule
        # All the lines written to one writer, each with no text made for its numbers.
        # Each line is its endpoint's first fields (conn_id, endpoint: made once per
        # endpoint), frame, time, suffix.
        out = StringWriter()
        client = server = ""
        for t in conn.transitions if records is None else records:
            hit = by_rule.get(t.rule)
            if (
                hit is not None
                and hit[0] is t.from_state
                and hit[1] is t.to_state
                and hit[2] is t.event
            ):
                suffix = hit[3]
            else:
                suffix = self._suffix(t)
            endpoint = t.endpoint
            if endpoint == "client":
                if not client:
                    client = f"{conn_id},{fmt.text(endpoint)},"
                head = client
            elif endpoint == "server":
                if not server:
                    server = f"{conn_id},{fmt.text(endpoint)},"
                head = server
            else:
                head = f"{conn_id},{fmt.text(endpoint)},"
            if len(out):
                out.write(EOL)
            out.write(head)
            frame = t.frame
            if frame is not None:
                write_int(out, frame)
            out.append(COMMA)
            _write_ns(out, t.ts_ns)
            out.append(COMMA)
            out.write(suffix)
        return out.getvalue()

    def _suffix(self, t: TransitionRecord) -> str:
        """The fields of ``t``'s from_state, to_state, event and rule."""
        key = (t.from_state, t.to_state, t.event, t.rule)
        suffixes = self._suffixes
        suffix = suffixes.get(key)
        if suffix is None:
            values = (_STATE_TEXT[t.from_state], _STATE_TEXT[t.to_state], _EVENT_TEXT[t.event])
            suffix = ",".join([self._format.text(v) for v in (*values, t.rule)])
            if len(suffixes) >= _SUFFIXES_KEPT:
                suffixes.clear()
                self._by_rule.clear()
            suffixes[key] = suffix
        self._by_rule[t.rule] = (t.from_state, t.to_state, t.event, suffix)
        return suffix

    def _zeek_line(
        self,
        out: StringWriter,
        conn: Connection,
        first: tuple[bytes, int],
        zc: ZeekConn,
        zeek_state: str,
        zeek_history: str,
    ) -> None:
        """Write the line of ``_zeek_row(conn, first, zc, zeek_state, zeek_history)``
        (its texts, as ``_connection``'s, hold nothing to quote)."""
        start_ns = zc.start_ns
        assert start_ns is not None  # records that never started make no row
        (orig_h, orig_p), (resp_h, resp_p) = _zeek_ends(conn, first, zc)
        write_int(out, conn.conn_id)
        out.append(COMMA)
        _write_ns(out, start_ns)
        out.append(COMMA)
        out.write(addr_text(orig_h))
        out.append(COMMA)
        write_int(out, orig_p)
        out.append(COMMA)
        out.write(addr_text(resp_h))
        out.append(COMMA)
        write_int(out, resp_p)
        out.append(COMMA)
        _write_ns(out, zc.duration_ns)
        out.append(COMMA)
        _write_maybe_int(out, zc.orig_bytes)
        out.append(COMMA)
        _write_maybe_int(out, zc.resp_bytes)
        out.append(COMMA)
        out.write(zeek_state)
        out.append(COMMA)
        write_int(out, zc.missed_bytes)
        out.append(COMMA)
        out.write(zeek_history)
        for value in (zc.orig_pkts, zc.orig_ip_bytes, zc.resp_pkts, zc.resp_ip_bytes):
            out.append(COMMA)
            write_int(out, value)


_SUFFIXES_KEPT: Final = 1 << 12


def _maybe_float(value: float | None) -> str:
    return "" if value is None else float_text(value)


def _bool_text(value: bool) -> str:
    return "True" if value else "False"


# _ns_text: the nanoseconds below which a time's double is under 4e9 (micros_text's range).
_MICROS_NS_LAST: Final = 4_000_000_000_000_000_000


def _ns_text(ns: int) -> str:
    """``float_text(seconds(ns))``; from the whole microseconds, when ``ns`` is some."""
    out = StringWriter()
    _write_ns(out, ns)
    return out.getvalue()


def _write_ns(out: StringWriter, ns: int) -> None:
    """Write ``_ns_text(ns)`` to ``out``."""
    if 0 < ns < _MICROS_NS_LAST and ns % 1000 == 0:
        write_micros(out, ns // 1000)
    else:
        out.write(float_text(seconds(ns)))


def _write_maybe_int(out: StringWriter, value: int | None) -> None:
    if value is not None:
        write_int(out, value)


# A field of the connection's line written with the comma after it.
def _put(out: StringWriter, text: str) -> None:
    out.write(text)
    out.append(COMMA)


def _put_int(out: StringWriter, value: int) -> None:
    write_int(out, value)
    out.append(COMMA)


def _put_maybe_int(out: StringWriter, value: int | None) -> None:
    _write_maybe_int(out, value)
    out.append(COMMA)


def _put_ns(out: StringWriter, ns: int) -> None:
    _write_ns(out, ns)
    out.append(COMMA)


def finding_rows(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    """Rows of ``findings`` (see report.FINDING_COLUMNS), in the order given."""
    return [
        {
            "conn_id": f.conn_id,
            "code": f.code._value_,
            "endpoint": f.endpoint,
            "frame": f.frame,
            "ts": seconds(f.ts_ns),
            "evidence_frames": " ".join(str(n) for n in f.evidence_frames),
            "rfc": f.rfc,
            "detail": f.detail,
        }
        for f in findings
    ]


def anomaly_rows(conns: Iterable[Connection]) -> list[dict[str, Any]]:
    """Rows of ``anomalies`` for tracked connections, in order."""
    return [
        {
            "conn_id": conn.conn_id,
            "endpoint": a.endpoint,
            "frame": a.frame,
            "ts": seconds(a.ts_ns),
            "state": _STATE_TEXT[a.state],
            "event": a.event,
            "code": a.code._value_,
            "detail": a.detail,
        }
        for conn in conns
        for a in conn.anomalies
    ]
