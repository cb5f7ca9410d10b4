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


def _endpoint_events(conns: pd.DataFrame, trans: pd.DataFrame) -> pd.DataFrame:
    """Rows (host, ts, state, delta, start): +1/-1 per endpoint per state change.

    ``start`` marks the +1 for an endpoint's first state when its connection starts.
    """
    import pandas as pd

    conns = conns.assign(_key=_key(conns))
    empty_key = str if "capture" in conns.columns else conns["conn_id"].dtype
    trans = (
        trans.assign(_key=_key(trans))
        if len(trans)
        else trans.assign(_key=pd.Series([], dtype=empty_key))
    )
    parts = []
    for role in ("client", "server"):
        ends = conns[["_key", f"{role}_ip", "start_ts", f"{role}_state_at_end"]].rename(
            columns={f"{role}_ip": "host", f"{role}_state_at_end": "end_state"}
        )
        t = trans[trans["endpoint"] == role] if len(trans) else trans
        first = (
            t.sort_values(["ts"], kind="stable").groupby("_key", sort=False).first()["from_state"]
            if len(t)
            else pd.Series(dtype=object)
        )
        ends = ends.assign(initial=ends["_key"].map(first).fillna(ends["end_state"]))
        parts.append(
            pd.DataFrame(
                {
                    "host": ends["host"],
                    "ts": ends["start_ts"],
                    "state": ends["initial"],
                    "delta": 1,
                    "start": True,
                }
            )
        )
        if len(t):
            tt = t.merge(ends[["_key", "host"]], on="_key")
            for col, delta in (("from_state", -1), ("to_state", 1)):
                parts.append(
                    pd.DataFrame(
                        {
                            "host": tt["host"],
                            "ts": tt["ts"],
                            "state": tt[col],
                            "delta": delta,
                            "start": False,
                        }
                    )
                )
    events = pd.concat(parts, ignore_index=True)
    events["host"] = events["host"].astype(str)
    events["state"] = events["state"].astype(str)
    return events


def _sample_times(start: float, end: float, interval: float) -> np.ndarray:
    import numpy as np

    n = int(np.floor((end - start) / interval))
    grid = start + interval * np.arange(1, n + 1, dtype=float)
    grid = grid[grid < end]
    return np.append(grid, end)


def _states_table(events: pd.DataFrame, start: float, end: float, interval: float) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    times = _sample_times(start, end, interval)
    rows = []
    for host, ev in events.groupby("host", sort=True):
        counts: dict[str, np.ndarray] = {}
        for state in CENSUS_STATES:
            se = ev[ev["state"] == state].sort_values("ts", kind="stable")
            ts = se["ts"].to_numpy(dtype=float)
            delta = se["delta"].to_numpy(dtype=np.int64)
            if state == State.CLOSED.value:
                # Endpoints that entered CLOSED during each interval (they hold no socket).
                arrivals = ts[(delta > 0) & ~se["start"].to_numpy(dtype=bool)]
                cum = np.searchsorted(np.sort(arrivals), times, side="right")
                counts[state] = np.diff(np.concatenate(([0], cum)))
            elif len(ts) == 0:
                counts[state] = np.zeros(len(times), dtype=np.int64)
            else:
                running = np.cumsum(delta)
                idx = np.searchsorted(ts, times, side="right") - 1
                counts[state] = np.where(idx >= 0, running[np.clip(idx, 0, None)], 0)
        frame = pd.DataFrame({"host": host, "ts": times, **counts})
        rows.append(frame)
    columns = {"host": "string", "ts": "float64", **{s: "Int64" for s in CENSUS_STATES}}
    if not rows:
        return pd.DataFrame({c: [] for c in columns}).astype(columns)
    return pd.concat(rows, ignore_index=True)[list(columns)].astype(columns)


def _closer_host(row: pd.Series) -> str | None:
    closer = row["active_closer"]
    if closer == "client":
        return str(row["client_ip"])
    if closer == "server":
        return str(row["server_ip"])
    return None


def _hosts_table(conns: pd.DataFrame, states: pd.DataFrame, msl: float) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    conns = conns.assign(_key=_key(conns))
    # Gap from the previous incarnation's last segment to this one's first.
    prev_end = conns.set_index("_key")["end_ts"]
    if "capture" in conns.columns:
        prev_key = conns["capture"].astype(str) + "\x00" + conns["prev_conn_id"].astype(str)
    else:
        prev_key = conns["prev_conn_id"]
    gap = conns["start_ts"] - prev_key.map(prev_end)
    conns = conns.assign(
        _reused=conns["incarnation"] > 1,
        _within=(conns["incarnation"] > 1) & (gap < 2 * msl),
        _closer=conns.apply(_closer_host, axis=1) if len(conns) else pd.Series(dtype=object),
    )
    hosts = sorted(set(conns["client_ip"].astype(str)) | set(conns["server_ip"].astype(str)))
    range_size = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1
    rows = []
    for host in hosts:
        as_c = conns[conns["client_ip"].astype(str) == host]
        as_s = conns[conns["server_ip"].astype(str) == host]
        mine = pd.concat([as_c, as_s])
        closed_first = int((mine["_closer"] == host).sum())
        both = int((mine["active_closer"] == "both").sum())
        peer_first = int(((mine["_closer"].notna()) & (mine["_closer"] != host)).sum())
        ports = set(as_c["client_port"].astype(int))
        in_range = {p for p in ports if EPHEMERAL_LOW <= p <= EPHEMERAL_HIGH}
        reused = int(as_c["_reused"].sum())
        within = int(as_c["_within"].sum())
        hs = states[states["host"] == host]
        tw = hs[State.TIME_WAIT.value].astype(int) if len(hs) else pd.Series([0])
        peak_i = int(tw.to_numpy().argmax()) if len(hs) else 0
        rows.append(
            {
                "host": host,
                "connections": len(mine),
                "as_client": len(as_c),
                "as_server": len(as_s),
                "closed_first": closed_first,
                "peer_closed_first": peer_first,
                "both_closed": both,
                "reused_tuples": reused,
                "reused_within_2msl": within,
                "reuse_within_2msl_share": within / reused if reused else np.nan,
                "ephemeral_ports_used": len(ports),
                "ephemeral_ports_in_range": len(in_range),
                "ephemeral_range_share": len(in_range) / range_size,
                "peak_time_wait": int(tw.max()) if len(hs) else 0,
                "peak_time_wait_ts": (
                    float(hs["ts"].iloc[peak_i]) if len(hs) and int(tw.max()) > 0 else np.nan
                ),
                "time_wait_at_end": int(tw.iloc[-1]) if len(hs) else 0,
                "close_wait_at_end": (int(hs[State.CLOSE_WAIT.value].iloc[-1]) if len(hs) else 0),
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
    import pandas as pd

    if not interval > 0:
        raise ValueError(f"interval must be > 0, not {interval!r}")
    conns = connections
    if conns.empty:
        events = pd.DataFrame({"host": [], "ts": [], "state": [], "delta": [], "start": []})
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
        events = events[events["host"] == host]
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
