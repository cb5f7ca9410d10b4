"""The census as it was first written (pandas all the way), kept as the reference the
lean census (``tcpflow_analyzer.census``: integer codes and numpy arrays) must equal.

The functions are the module's of commit 0a9f975 that the lean census replaced,
unchanged; the constants and the functions it kept (``_key``, ``_sample_times``,
``_ports_table``) are the module's own.
"""
# ruff: noqa

from __future__ import annotations

import numpy as np
import pandas as pd

from tcpflow_analyzer.census import (
    CENSUS_STATES,
    EPHEMERAL_HIGH,
    EPHEMERAL_LOW,
    HOST_COLUMNS,
    MOST_INTERVALS,
    PORT_COLUMNS,
    Census,
    _key,
    _ports_table,
    _sample_times,
)
from tcpflow_analyzer.states import State


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
