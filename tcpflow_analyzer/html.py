"""A self-contained HTML report: tables, text and pictures in one file, no server needed.

Theory of operation
-------------------
A report is a title plus a list of sections; a section is a heading with any
of: a paragraph, preformatted text (the CLI summary), a DataFrame (rendered
as an HTML table, long tables cut with a note saying how many rows were left
out), and PNG images embedded as ``data:`` URIs. Everything, the style sheet
included, is inside the one file, so it opens in a browser from disk or from
an e-mail attachment.
"""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["Section", "analysis_report", "batch_report", "write_report"]

_STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #1d232a; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #d0d7de; padding-bottom: .2em; }
p.meta { color: #57606a; margin-top: 0; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
table { border-collapse: collapse; font-size: 0.82em; margin: 0.5em 0; }
th, td { border: 1px solid #d0d7de; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; position: sticky; top: 0; }
tr:nth-child(even) td { background: #fbfcfd; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
div.scroll { max-height: 32em; overflow: auto; }
img { max-width: 100%; border: 1px solid #d0d7de; }
p.note { color: #57606a; font-size: 0.85em; }
"""


@dataclass
class Section:
    """One part of the report."""

    heading: str
    text: str = ""
    pre: str = ""
    table: pd.DataFrame | None = None
    images: list[tuple[str, bytes]] = field(default_factory=list)  # (caption, PNG bytes)
    max_rows: int = 500


def _table(df: pd.DataFrame, max_rows: int) -> str:
    shown = df.head(max_rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    numeric = [pd.api.types.is_numeric_dtype(shown[c]) for c in shown.columns]
    rows = []
    for values in shown.itertuples(index=False):
        cells = []
        for value, num in zip(values, numeric, strict=True):
            text = (
                ""
                if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value))
                else str(value)
            )
            cls = ' class="num"' if num else ""
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    out = f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>'
    out += "".join(rows) + "</tbody></table></div>"
    if len(df) > max_rows:
        out += f'<p class="note">{len(df) - max_rows} more rows not shown: see the CSV files.</p>'
    return out


def render(title: str, meta: str, sections: list[Section]) -> str:
    """The report as one HTML document."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">{html.escape(meta)}</p>',
    ]
    for sec in sections:
        parts.append(f"<h2>{html.escape(sec.heading)}</h2>")
        if sec.text:
            parts.append(f"<p>{html.escape(sec.text)}</p>")
        if sec.pre:
            parts.append(f"<pre>{html.escape(sec.pre)}</pre>")
        if sec.table is not None:
            if sec.table.empty:
                parts.append('<p class="note">none</p>')
            else:
                parts.append(_table(sec.table, sec.max_rows))
        for caption, png in sec.images:
            data = base64.b64encode(png).decode("ascii")
            parts.append(
                f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(
    path: str | os.PathLike[str], title: str, meta: str, sections: list[Section]
) -> Path:
    """Write the report to ``path`` and return it."""
    out = Path(path)
    if out.parent != Path():
        out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(title, meta, sections), encoding="utf-8")
    return out


# Connection columns shown in the reports (the CSV has them all).
_CONN_VIEW = [
    "conn_id",
    "client_ip",
    "client_port",
    "server_ip",
    "server_port",
    "incarnation",
    "first_frame",
    "last_frame",
    "handshake",
    "active_closer",
    "close_type",
    "client_state_at_end",
    "server_state_at_end",
    "conn_state",
    "history",
    "rst_causes",
]


def _view(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return df[[c for c in columns if c in df.columns]]


def _census_image(
    connections: pd.DataFrame, transitions: pd.DataFrame, msl: float
) -> list[tuple[str, bytes]]:
    from .census import census, plot_png

    if connections.empty:
        return []
    span = float(connections["end_ts"].max() - connections["start_ts"].min())
    interval = max(span / 200, 0.001)
    cen = census(connections, transitions, interval=interval, msl=msl)
    return [("connections held per state over time, busiest hosts", plot_png(cen.states))]


def _by_code(findings: pd.DataFrame) -> pd.DataFrame:
    """Findings counted per code, most frequent first (the empty table when none)."""
    if findings.empty:
        return findings
    return (
        findings.groupby("code").size().sort_values(ascending=False).rename("count").reset_index()
    )


def analysis_report(result: Any, path: str | os.PathLike[str]) -> Path:
    """The HTML report of one ``api.Analysis``."""
    return capture_report(
        path,
        result.source,
        result.frames,
        result.segments,
        result.summary(),
        result.config.msl,
        result.connections,
        result.transitions,
        result.findings,
    )


def capture_report(
    path: str | os.PathLike[str],
    source: str,
    frames: int,
    segments: int,
    summary: str,
    msl: float,
    connections: pd.DataFrame,
    transitions: pd.DataFrame,
    findings: pd.DataFrame,
) -> Path:
    """The HTML report of one capture: its counts, summary text and tables (in
    ``conn_id`` order)."""
    by_code = _by_code(findings)
    return write_report(
        path,
        f"TCP teardown report: {source}",
        f"{frames} frames, {segments} TCP segments, "
        f"{len(connections)} connections, {len(findings)} findings; "
        f"MSL {msl} s",
        [
            Section("Summary", pre=summary),
            Section("Findings by code", table=by_code),
            Section("Findings", table=findings),
            Section("States over time", images=_census_image(connections, transitions, msl)),
            Section("Connections", table=_view(connections, _CONN_VIEW)),
        ],
    )


def batch_report(result: Any, path: str | os.PathLike[str], msl: float) -> Path:
    """The HTML report of a ``batch.BatchResult``."""
    caps = result.captures
    findings = result.tables.get("findings", pd.DataFrame())
    conns = result.connections
    by_code = _by_code(findings)
    closes = (
        conns.groupby(["close_type", "active_closer"]).size().rename("connections").reset_index()
        if not conns.empty
        else conns
    )
    conns_key = conns.assign(conn_id=conns["capture"] + "#" + conns["conn_id"].astype(str))
    trans = result.transitions
    trans_key = trans.assign(conn_id=trans["capture"] + "#" + trans["conn_id"].astype(str))
    return write_report(
        path,
        "TCP teardown report: batch",
        f"{len(caps)} captures ({result.failed} failed), {len(conns)} connections, "
        f"{len(findings)} findings",
        [
            Section("Captures", table=caps),
            Section("How connections ended (close type, who closed first)", table=closes),
            Section("Findings by code", table=by_code),
            Section(
                "States over time (all captures on one timeline)",
                images=_census_image(
                    conns_key.drop(columns=["capture"]), trans_key.drop(columns=["capture"]), msl
                ),
            ),
            Section("Findings", table=findings),
        ],
    )
