"""The TIME_WAIT census: how many connections each host holds in each state, over time.

Theory of operation
-------------------
``netstat -ant | grep TIME_WAIT | wc -l`` for every host of a capture,
rebuilt from packets. Input is the ``connections`` and ``transitions`` tables
of one or more analyses (with a ``capture`` column when there are several;
``(capture, conn_id)`` names a connection). Every endpoint contributes +1 to
its first state when its connection starts, then -1/+1 at each transition;
the running sum per host and state, sampled at the end of each interval,
is the count held then. ``CLOSED`` holds no socket, so an endpoint entering
it leaves the count, and the ``CLOSED`` column instead counts the endpoints
that closed during the interval. A TIME_WAIT whose 2*MSL had not run out at
the capture's end is still held in the last row, which is the capture's end.

Per host, ``hosts`` adds: connections as client and as server, who closed
first, 4-tuple reuse (incarnations after the first) and the share reused
within 2*MSL of the previous incarnation's last segment, ephemeral ports used
against Linux's usual range, and the peak TIME_WAIT count. ``ports`` says who
closes first per server port.

pandas and numpy are imported when a census is made, not with the module (the
package imports it, and ``analyze`` on the command line has no use for them).
The events (two per transition, one per endpoint) are the bulk: they are
numpy columns of integer codes (hosts, states), sorted once by host, state
and time, each (host, state) a slice of them (``_Events``, ``_states_table``);
the per-host summaries are made on the connections' columns, grouped once
(``_hosts_table``). ``tests/census_reference.py`` keeps the census as first
written (frames of strings, ``groupby``, row-wise ``apply``), which these equal.

``of_capture`` (the command line's ``census``) takes the tables from the
streamed analysis of the capture (``stream.analyze_to_csv``, over the cores as
``analyze`` runs it, into a temporary directory) and reads back only the
columns the census needs: memory follows those columns, not every connection
of the capture kept whole.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from .states import State

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from .config import Config
    from .stream import Streamed

__all__ = [
    "CENSUS_STATES",
    "MOST_INTERVALS",
    "TRANSITION_READS",
    "Census",
    "census",
    "of_capture",
    "plot",
    "plot_png",
]

# Column order of the census table: RFC 793's states, then UNKNOWN.
CENSUS_STATES: list[str] = [s.value for s in State]
_STATE_INDEX = {state: i for i, state in enumerate(CENSUS_STATES)}

# The most intervals a census samples (a capture whose times jump by years would
# otherwise ask for billions of rows).
MOST_INTERVALS = 1_000_000

# Linux's default net.ipv4.ip_local_port_range.
EPHEMERAL_LOW, EPHEMERAL_HIGH = 32768, 60999

HOST_COLUMNS: dict[str, str] = {
    "host": "string",
    "connections": "Int64",
    "as_client": "Int64",
    "as_server": "Int64",
    "closed_first": "Int64",  # connections this host's endpoint closed first (FIN or RST)
    "peer_closed_first": "Int64",
    "both_closed": "Int64",  # simultaneous closes
    "reused_tuples": "Int64",  # incarnations > 1 where this host is the client
    "reused_within_2msl": "Int64",
    "reuse_within_2msl_share": "float64",
    "ephemeral_ports_used": "Int64",  # distinct client ports of this host
    "ephemeral_ports_in_range": "Int64",  # of those, inside 32768-60999
    "ephemeral_range_share": "float64",  # in-range ports used / size of the range
    "peak_time_wait": "Int64",
    "peak_time_wait_ts": "float64",
    "time_wait_at_end": "Int64",
    "close_wait_at_end": "Int64",
}

PORT_COLUMNS: dict[str, str] = {
    "host": "string",  # the server
    "server_port": "Int64",
    "connections": "Int64",
    "client_closed_first": "Int64",
    "server_closed_first": "Int64",
    "both": "Int64",
    "none": "Int64",
}


@dataclass
class Census:
    """``states``: one row per host and interval; ``hosts`` and ``ports``: summaries."""

    states: pd.DataFrame
    hosts: pd.DataFrame
    ports: pd.DataFrame


def _key(df: pd.DataFrame) -> pd.Series:
    """What names a connection: its conn_id (a number: no text made per row), or with
    several captures, the capture and the conn_id as text."""
    if "capture" in df.columns:
        return df["capture"].astype(str) + "\x00" + df["conn_id"].astype(str)
    return df["conn_id"]


@dataclass
class _Events:
    """Each endpoint's state changes, as columns: +1 in a state entered, -1 in one left,
    and +1 in its first state when its connection starts (``start``). Hosts and
    states are codes: ``hosts[host[i]]`` (int32), ``CENSUS_STATES[state[i]]`` (int8;
    -1: any other text, counted nowhere); ``delta`` is int8: 1.4 million events
    (a capture of 60,000 connections) take 21 MB."""

    hosts: list[str]
    host: np.ndarray
    ts: np.ndarray
    state: np.ndarray
    delta: np.ndarray
    start: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    @classmethod
    def none(cls) -> _Events:
        import numpy as np

        small = np.zeros(0, dtype=np.int8)
        return cls([], np.zeros(0, dtype=np.int32), np.zeros(0), small, small, small.astype(bool))

    def only(self, host: str) -> _Events:
        """The events of ``host`` alone."""
        keep = self.host == (self.hosts.index(host) if host in self.hosts else -1)
        return _Events(
            self.hosts,
            self.host[keep],
            self.ts[keep],
            self.state[keep],
            self.delta[keep],
            self.start[keep],
        )


def _state_codes(values: pd.Series) -> np.ndarray:
    """Each value's index in CENSUS_STATES, -1 for any other (or none): its few distinct
    texts looked up once."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(values)
    lookup = np.array([_STATE_INDEX.get(str(u), -1) for u in uniques] + [-1], dtype=np.int8)
    return lookup[codes]  # (a missing value's code, -1, takes the last)


def _endpoint_events(conns: pd.DataFrame, trans: pd.DataFrame) -> _Events:
    """The events of every endpoint of ``conns``, from ``trans`` (the transitions).

    A connection's key (``_key``) links its transitions to it; each
    endpoint's first state is the ``from_state`` of its earliest transition
    (the first in the table among those at that time), or its state at the end
    if it has none. Integer codes and numpy arrays throughout: the capture's
    transitions are the bulk, and a row of Python strings per event was most of
    a census's memory.
    """
    import numpy as np
    import pandas as pd

    n = len(conns)
    m = len(trans)
    keys = pd.concat([_key(conns), _key(trans)], ignore_index=True) if m else _key(conns)
    key_codes, key_values = pd.factorize(keys)
    ckey, tkey = key_codes[:n], key_codes[n:]
    nkeys = len(key_values)
    host_codes, host_names = pd.factorize(
        pd.concat([conns["client_ip"], conns["server_ip"]], ignore_index=True).astype(str)
    )
    start_ts = conns["start_ts"].to_numpy(dtype=float)
    if m:
        t_ts = trans["ts"].to_numpy(dtype=float)
        t_from = _state_codes(trans["from_state"])
        t_to = _state_codes(trans["to_state"])
    hosts, tss, states, deltas, starts = [], [], [], [], []
    for r, role in enumerate(("client", "server")):
        chost = host_codes[r * n : (r + 1) * n].astype(np.int32)
        initial = _state_codes(conns[f"{role}_state_at_end"])
        if m:
            mine = np.flatnonzero(trans["endpoint"].eq(role).fillna(False).to_numpy(dtype=bool))
            k, ts = tkey[mine], t_ts[mine]
            # Each key's earliest transition (ties: the first in the table).
            order = np.lexsort((mine, ts, k))
            head = np.ones(len(order), dtype=bool)
            head[1:] = k[order][1:] != k[order][:-1]
            firsts = order[head]
            first = np.full(nkeys + 1, -2, dtype=np.int8)  # (the last: no key, -1)
            first[k[firsts]] = t_from[mine[firsts]]
            first[-1] = -2
            known = first[ckey]
            initial = np.where(known != -2, known, initial)
        hosts.append(chost)
        tss.append(start_ts)
        states.append(initial)
        deltas.append(np.ones(n, dtype=np.int8))
        starts.append(np.ones(n, dtype=bool))
        if m:
            # Each transition's host: its connection's (none for a connection not listed).
            host_of_key = np.full(nkeys + 1, -1, dtype=np.int32)  # (the last: no key, -1)
            host_of_key[ckey] = chost
            host_of_key[-1] = -1
            th = host_of_key[k]
            listed = th >= 0
            sel = mine[listed]
            for codes, delta in ((t_from, -1), (t_to, 1)):
                hosts.append(th[listed])
                tss.append(t_ts[sel])
                states.append(codes[sel])
                deltas.append(np.full(len(sel), delta, dtype=np.int8))
                starts.append(np.zeros(len(sel), dtype=bool))
    return _Events(
        [str(h) for h in host_names],
        np.concatenate(hosts),
        np.concatenate(tss),
        np.concatenate(states),
        np.concatenate(deltas),
        np.concatenate(starts),
    )


def _sample_times(start: float, end: float, interval: float) -> np.ndarray:
    import numpy as np

    n = int(np.floor((end - start) / interval))
    grid = start + interval * np.arange(1, n + 1, dtype=float)
    grid = grid[grid < end]
    return np.append(grid, end)


def _states_table(events: _Events, start: float, end: float, interval: float) -> pd.DataFrame:
    """Per host (in order of name) and interval end, the count held in each state (the
    running sum of its changes up to then), and the endpoints that entered CLOSED
    in the interval."""
    import numpy as np
    import pandas as pd

    times = _sample_times(start, end, interval)
    width = len(CENSUS_STATES) + 1  # a slot per state, and one for other texts
    group = events.host.astype(np.int64) * width + (events.state.astype(np.int64) + 1)
    order = np.lexsort((events.ts, group))  # by host, state, time (stable)
    group, ts = group[order], events.ts[order]
    delta, begun = events.delta[order], events.start[order]
    rows = []
    present = np.unique(events.host).tolist()
    for code in sorted(present, key=lambda c: events.hosts[c]):
        counts: dict[str, np.ndarray] = {}
        for i, state in enumerate(CENSUS_STATES):
            slot = code * width + i + 1
            lo = int(np.searchsorted(group, slot, side="left"))
            hi = int(np.searchsorted(group, slot, side="right"))
            t, d = ts[lo:hi], delta[lo:hi]
            if state == State.CLOSED.value:
                # Endpoints that entered CLOSED during each interval (they hold no socket).
                arrivals = t[(d > 0) & ~begun[lo:hi]]  # (in order of time)
                cum = np.searchsorted(arrivals, times, side="right")
                counts[state] = np.diff(np.concatenate(([0], cum)))
            elif hi == lo:
                counts[state] = np.zeros(len(times), dtype=np.int64)
            else:
                running = np.cumsum(d, dtype=np.int64)
                idx = np.searchsorted(t, times, side="right") - 1
                counts[state] = np.where(idx >= 0, running[np.clip(idx, 0, None)], 0)
        rows.append(pd.DataFrame({"host": events.hosts[code], "ts": times, **counts}))
    columns = {"host": "string", "ts": "float64", **{s: "Int64" for s in CENSUS_STATES}}
    if not rows:
        return pd.DataFrame({c: [] for c in columns}).astype(columns)
    return pd.concat(rows, ignore_index=True)[list(columns)].astype(columns)


def _by_host(names: np.ndarray) -> dict[str, np.ndarray]:
    """The positions of each name, ascending."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(names)
    order = np.argsort(codes, kind="stable")
    cuts = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    return {str(u): order[cuts[i] : cuts[i + 1]] for i, u in enumerate(uniques)}


def _hosts_table(conns: pd.DataFrame, states: pd.DataFrame, msl: float) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    if conns.empty:
        return pd.DataFrame({c: [] for c in HOST_COLUMNS}).astype(HOST_COLUMNS)
    keyed = conns.assign(_key=_key(conns))
    # Gap from the previous incarnation's last segment to this one's first.
    prev_end = keyed.set_index("_key")["end_ts"]
    if "capture" in conns.columns:
        prev_key = conns["capture"].astype(str) + "\x00" + conns["prev_conn_id"].astype(str)
    else:
        prev_key = conns["prev_conn_id"]
    gap = (conns["start_ts"] - prev_key.map(prev_end)).to_numpy(dtype=float, na_value=np.nan)
    incarnation = conns["incarnation"].to_numpy(dtype=np.int64)
    reused = incarnation > 1
    within = reused & (gap < 2 * msl)
    client = conns["client_ip"].astype(str).to_numpy(dtype=object)
    server = conns["server_ip"].astype(str).to_numpy(dtype=object)
    closer_col = conns["active_closer"]
    # The host whose endpoint closed first (None: both, or neither).
    closer = np.where(
        closer_col.eq("client").fillna(False).to_numpy(dtype=bool),
        client,
        np.where(
            closer_col.eq("server").fillna(False).to_numpy(dtype=bool),
            server,
            np.full(len(conns), None, dtype=object),
        ),
    )
    both_closed = closer_col.eq("both").fillna(False).to_numpy(dtype=bool)
    client_port = conns["client_port"].to_numpy(dtype=np.int64)
    as_client, as_server = _by_host(client), _by_host(server)
    state_rows = _by_host(states["host"].astype(str).to_numpy(dtype=object))
    tw_all = states[State.TIME_WAIT.value].to_numpy(dtype=np.int64, na_value=0)
    cw_all = states[State.CLOSE_WAIT.value].to_numpy(dtype=np.int64, na_value=0)
    ts_all = states["ts"].to_numpy(dtype=float)
    nothing = np.zeros(0, dtype=np.int64)
    range_size = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1
    rows = []
    for host in sorted(set(as_client) | set(as_server)):
        as_c, as_s = as_client.get(host, nothing), as_server.get(host, nothing)
        mine = np.concatenate((as_c, as_s))
        closers = closer[mine]
        known = closers != None  # noqa: E711 - elementwise, on an object array
        ports = np.unique(client_port[as_c])
        in_range = int(((ports >= EPHEMERAL_LOW) & (ports <= EPHEMERAL_HIGH)).sum())
        n_reused = int(reused[as_c].sum())
        n_within = int(within[as_c].sum())
        hs = state_rows.get(host, nothing)
        tw = tw_all[hs]
        peak = int(tw.max()) if len(hs) else 0
        rows.append(
            {
                "host": host,
                "connections": len(mine),
                "as_client": len(as_c),
                "as_server": len(as_s),
                "closed_first": int((closers == host).sum()),
                "peer_closed_first": int((known & (closers != host)).sum()),
                "both_closed": int(both_closed[mine].sum()),
                "reused_tuples": n_reused,
                "reused_within_2msl": n_within,
                "reuse_within_2msl_share": n_within / n_reused if n_reused else np.nan,
                "ephemeral_ports_used": len(ports),
                "ephemeral_ports_in_range": in_range,
                "ephemeral_range_share": in_range / range_size,
                "peak_time_wait": peak,
                "peak_time_wait_ts": float(ts_all[hs][int(tw.argmax())]) if peak > 0 else np.nan,
                "time_wait_at_end": int(tw[-1]) if len(hs) else 0,
                "close_wait_at_end": int(cw_all[hs][-1]) if len(hs) else 0,
            }
        )
    return pd.DataFrame(rows, columns=list(HOST_COLUMNS)).astype(HOST_COLUMNS)


def _ports_table(conns: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    if conns.empty:
        return pd.DataFrame({c: [] for c in PORT_COLUMNS}).astype(PORT_COLUMNS)
    g = conns.assign(host=conns["server_ip"].astype(str)).groupby(["host", "server_port"])
    closer = g["active_closer"]
    df = pd.DataFrame(
        {
            "connections": g.size(),
            "client_closed_first": closer.apply(lambda s: int((s == "client").sum())),
            "server_closed_first": closer.apply(lambda s: int((s == "server").sum())),
            "both": closer.apply(lambda s: int((s == "both").sum())),
            "none": closer.apply(lambda s: int((s == "none").sum())),
        }
    ).reset_index()
    return df[list(PORT_COLUMNS)].astype(PORT_COLUMNS)


def plot_png(states: pd.DataFrame, *, top: int = 6) -> bytes:
    """The plot as PNG bytes (for embedding in the HTML report)."""
    buf = io.BytesIO()
    plot(states, buf, top=top)
    return buf.getvalue()


def census(
    connections: pd.DataFrame,
    transitions: pd.DataFrame,
    *,
    interval: float = 1.0,
    host: str | None = None,
    msl: float = 30.0,
    end_ts: float | None = None,
) -> Census:
    """Per-host state counts every ``interval`` seconds, and per-host summaries.

    ``end_ts`` is the capture's end (default: the last segment of any connection).
    ``ValueError`` when the connections span more than ``MOST_INTERVALS`` intervals.
    """

    if not interval > 0:
        raise ValueError(f"interval must be > 0, not {interval!r}")
    conns = connections
    if conns.empty:
        events = _Events.none()
        start = end = 0.0
    else:
        start = float(conns["start_ts"].min())
        end = float(end_ts if end_ts is not None else conns["end_ts"].max())
        if (end - start) / interval > MOST_INTERVALS:
            raise ValueError(
                f"the connections span {end - start:.0f} s: at an interval of {interval:g} s "
                f"that is more than {MOST_INTERVALS:,} intervals (a row each per host); "
                f"give an interval of at least {(end - start) / MOST_INTERVALS:.3g} s"
            )
        events = _endpoint_events(conns, transitions)
    if host is not None:
        events = events.only(host)
    states = (
        _states_table(events, start, end, interval)
        if len(events)
        else _states_table(events, 0.0, 0.0, interval).iloc[0:0]
    )
    hosts = _hosts_table(conns, states, msl)
    ports = _ports_table(conns)
    if host is not None:
        hosts = hosts[hosts["host"] == host].reset_index(drop=True)
        ports = ports[ports["host"] == host].reset_index(drop=True)
    return Census(states, hosts, ports)


# The columns of the tables the census reads.
_CONNECTION_READS = (
    "conn_id",
    "client_ip",
    "client_port",
    "server_ip",
    "server_port",
    "incarnation",
    "prev_conn_id",
    "start_ts",
    "end_ts",
    "active_closer",
    "client_state_at_end",
    "server_state_at_end",
)
TRANSITION_READS = ("conn_id", "endpoint", "ts", "from_state", "to_state")
"""The columns of the transitions table a census reads."""


def of_capture(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    config: Config,
    *,
    interval: float = 1.0,
    host: str | None = None,
    jobs: int = 1,
) -> tuple[Census, Streamed]:
    """The census of one capture (or a series) and its streamed analysis's account.

    The capture is analyzed by ``stream.analyze_to_csv`` (``jobs`` worker
    processes) into a temporary directory; the columns the census reads are read
    back and the directory removed. Raises what
    ``analyze_to_csv`` raises.
    """
    from .stream import analyze_read_back

    reads = {"connections": _CONNECTION_READS, "transitions": TRANSITION_READS}
    done, tables = analyze_read_back(source, config, reads, jobs=jobs)
    conns, trans = tables["connections"], tables["transitions"]
    # In the order connections retired, not conn_id's: the census does not depend on
    # it (a connection's lines are together and in their order; counts at a time sum
    # every change up to it, whatever their order), so no sorted copy is made.
    end_ts = done.capture_end_ns / 1e9 if len(conns) else None
    made = census(conns, trans, interval=interval, host=host, msl=config.msl, end_ts=end_ts)
    return made, done


# States drawn in the plot, in this order (the ones people count with netstat).
_PLOTTED = (
    State.TIME_WAIT.value,
    State.CLOSE_WAIT.value,
    State.ESTABLISHED.value,
    State.FIN_WAIT_2.value,
    State.FIN_WAIT_1.value,
    State.LAST_ACK.value,
    State.SYN_SENT.value,
    State.SYN_RECEIVED.value,
)


def plot(states: pd.DataFrame, path: str | BinaryIO, *, top: int = 6) -> list[str]:
    """Draw states over time per host (the ``top`` hosts by peak count) into a PNG.

    Returns the hosts drawn. Uses matplotlib's Agg backend (no display needed).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if states.empty:
        hosts: list[str] = []
    else:
        peak = states.groupby("host")[list(_PLOTTED)].max().max(axis=1)
        peak = peak[peak > 0]  # a host that never held a drawn state has nothing to show
        hosts = [str(h) for h in peak.sort_values(ascending=False, kind="stable").index[:top]]
    n = max(1, len(hosts))
    fig, axes = plt.subplots(n, 1, figsize=(11, 2.4 * n + 0.6), sharex=True, squeeze=False)
    t0 = float(states["ts"].min()) if not states.empty else 0.0
    for ax, host in zip(axes[:, 0], hosts, strict=False):
        hs = states[states["host"] == host]
        x = hs["ts"].to_numpy(dtype=float) - t0
        for state in _PLOTTED:
            y = hs[state].to_numpy(dtype=float)
            if y.any():
                ax.step(x, y, where="pre", label=state, linewidth=1.6)
        ax.set_title(f"{host}: connections held per state", fontsize=10, loc="left")
        ax.set_ylabel("connections")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(bottom=0, top=max(1.0, float(hs[list(_PLOTTED)].max().max())) * 1.1)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    if not hosts:
        axes[0, 0].text(0.5, 0.5, "no connections", ha="center", va="center")
    axes[-1, 0].set_xlabel(
        "seconds since the first sample (each count is held at the end of its interval)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return hosts
