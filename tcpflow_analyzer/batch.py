"""Many captures at once: find them, analyze them in worker processes, stack the tables.

Theory of operation
-------------------
``find_captures`` expands the user's PATH arguments (files, directories
searched recursively, glob patterns) into capture files, in a stable order.
``analyze_many`` runs ``analyze`` on each in a pool of worker processes; every
worker returns its tables (or the error that stopped it), so one bad file
never stops the batch: it gets its row in the ``captures`` table with the
message. The per-capture tables are stacked with a leading ``capture`` column;
``conn_id`` stays the capture's own, so ``(capture, conn_id)`` names a
connection.
"""

from __future__ import annotations

import glob
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .api import TABLES, analyze_rows
from .config import Config
from .reader import CaptureError
from .report import typed_frame

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CAPTURE_COLUMNS", "BatchResult", "analyze_many", "analyze_series", "find_captures"]

# File names taken from a directory; anything given by name is taken whatever its name.
_SUFFIXES = (".pcap", ".pcapng", ".cap", ".dmp", ".pcap.gz", ".pcapng.gz", ".cap.gz")

CAPTURE_COLUMNS: dict[str, str] = {
    "capture": "string",
    "status": "string",  # ok | warning | error
    "error": "string",
    "frames": "Int64",
    "segments": "Int64",
    "connections": "Int64",
    "skipped": "Int64",
    "skipped_by_reason": "string",  # reason=count;...
    "findings": "Int64",
    "findings_by_code": "string",  # code=count;...
    "duplicates": "Int64",  # frames captured twice (byte-identical within 1 ms)
    "out_of_order": "Int64",  # frames timed before the previous one of their interface
    "warnings": "string",  # joined by " | "
    "seconds": "float64",  # wall time spent analyzing this capture
}


def find_captures(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files named, captures found under directories (recursively), and glob matches."""
    found: list[Path] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            found.append(p)

    for raw in paths:
        text = os.fspath(raw)
        p = Path(text)
        if p.is_dir():
            for sub in sorted(p.rglob("*")):
                if sub.is_file() and sub.name.lower().endswith(_SUFFIXES):
                    add(sub)
        elif p.exists() or not glob.has_magic(text):
            add(p)  # a missing file is reported as that capture's error
        else:
            for match in sorted(glob.glob(text, recursive=True)):
                mp = Path(match)
                if mp.is_file():
                    add(mp)
    return found


@dataclass
class BatchResult:
    """Stacked tables of many captures, plus one row per capture in ``captures``."""

    tables: dict[str, pd.DataFrame]
    captures: pd.DataFrame
    failed: int = 0

    @property
    def connections(self) -> pd.DataFrame:
        """Every capture's connections, with a leading ``capture`` column."""
        return self.tables["connections"]

    @property
    def transitions(self) -> pd.DataFrame:
        """Every capture's transitions, with a leading ``capture`` column."""
        return self.tables["transitions"]

    def write(self, directory: str | os.PathLike[str], fmt: str = "csv") -> list[Path]:
        """Write every table and captures as ``NAME.csv`` (or ``.parquet``)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, df in {**self.tables, "captures": self.captures}.items():
            path = out / f"{name}.{fmt}"
            if fmt == "parquet":
                df.to_parquet(path, index=False)
            else:
                df.to_csv(path, index=False)
            paths.append(path)
        return paths


@dataclass
class _Outcome:
    row: dict[str, Any]
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _joined(counts: dict[str, int]) -> str:
    return ";".join(f"{k}={v}" for k, v in sorted(counts.items()))


def _one(path: str | list[str], config: Config) -> _Outcome:
    """Analyze one capture (or one series) in a worker; never raises."""
    start = time.perf_counter()
    row: dict[str, Any] = {name: None for name in CAPTURE_COLUMNS}
    row["capture"] = path if isinstance(path, str) else " + ".join(path)
    try:
        result = analyze_rows(path, config)
    except CaptureError as exc:
        row.update(status="error", error=str(exc))
    except Exception as exc:  # a bug must not stop the batch; say what it was
        row.update(
            status="error", error=f"{row['capture']}: internal error: {type(exc).__name__}: {exc}"
        )
    else:
        by_code = dict(Counter(f.code.value for f in result.finding_records))
        row.update(
            status="warning" if result.warnings else "ok",
            error=None,
            frames=result.frames,
            segments=result.segments,
            connections=len(result.tables["connections"]),
            skipped=sum(result.skipped.values()),
            skipped_by_reason=_joined(result.skipped),
            findings=sum(by_code.values()),
            findings_by_code=_joined(by_code),
            duplicates=result.duplicates,
            out_of_order=result.out_of_order,
            warnings=" | ".join(result.warnings),
        )
        row["seconds"] = time.perf_counter() - start
        return _Outcome(row, result.tables)
    row["seconds"] = time.perf_counter() - start
    return _Outcome(row)


def analyze_many(
    sources: Sequence[str | os.PathLike[str]],
    *,
    jobs: int | None = None,
    msl: float = 30.0,
    config: Config | None = None,
    progress: Callable[[int, int], None] | None = None,
    scheduler: str | None = None,
) -> BatchResult:
    """Analyze every capture in ``sources`` with ``jobs`` worker processes (default: all cores).

    ``progress(done, total)`` is called as captures finish. Tables come back in
    the order of ``sources`` whatever order the workers finish in. With
    ``scheduler`` (a Dask scheduler address, ``pip install 'tcpflow-analyzer[dask]'``)
    the captures are analyzed on that Dask cluster instead: each worker must be
    able to read the paths.
    """
    paths = [os.fspath(p) for p in sources]
    cfg = config if config is not None else Config(msl=msl)
    jobs = max(1, jobs or os.cpu_count() or 1)
    outcomes: list[_Outcome | None] = [None] * len(paths)
    if scheduler is not None:
        _on_dask(scheduler, paths, cfg, outcomes, progress)
    elif jobs == 1 or len(paths) <= 1:
        for i, path in enumerate(paths):
            outcomes[i] = _one(path, cfg)
            if progress:
                progress(i + 1, len(paths))
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures: dict[Future[_Outcome], int] = {
                pool.submit(_one, path, cfg): i for i, path in enumerate(paths)
            }
            for done, fut in enumerate(as_completed(futures), 1):
                outcomes[futures[fut]] = fut.result()
                if progress:
                    progress(done, len(paths))
    return _stack([o for o in outcomes if o is not None])


def _on_dask(
    scheduler: str,
    paths: list[str],
    cfg: Config,
    outcomes: list[_Outcome | None],
    progress: Callable[[int, int], None] | None,
) -> None:
    """Run ``_one`` for every path on a Dask cluster, filling ``outcomes`` in order."""
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError as exc:
        raise RuntimeError(
            "a Dask scheduler needs the dask extra: pip install 'tcpflow-analyzer[dask]'"
        ) from exc
    with Client(scheduler) as client:  # type: ignore[no-untyped-call]
        futures = client.map(_one, paths, config=cfg, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        for done, fut in enumerate(dask_completed(futures), 1):  # type: ignore[no-untyped-call]
            outcomes[index[fut.key]] = fut.result()
            if progress:
                progress(done, len(paths))


def analyze_series(
    sources: Sequence[str | os.PathLike[str]], *, config: Config | None = None
) -> BatchResult:
    """One capture rotated into several files, analyzed as one stream (``batch --series``)."""
    outcome = _one([os.fspath(p) for p in sources], config or Config())
    return _stack([outcome])


def _stack(outcomes: Sequence[_Outcome]) -> BatchResult:
    import pandas as pd

    captures = pd.DataFrame([o.row for o in outcomes], columns=list(CAPTURE_COLUMNS)).astype(
        CAPTURE_COLUMNS
    )
    # Rows from every capture, each with its capture, then one typed frame per table.
    tables: dict[str, pd.DataFrame] = {}
    for name, columns in TABLES.items():
        rows = [
            {"capture": o.row["capture"], **r} for o in outcomes for r in o.tables.get(name, ())
        ]
        tables[name] = typed_frame(rows, {"capture": "string", **columns})
    failed = int((captures["status"] == "error").sum())
    return BatchResult(tables, captures, failed)
