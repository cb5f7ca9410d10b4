"""tcpflow-analyzer: who closed this TCP connection, and how.

``analyze(path)`` replays every TCP segment of a capture through the RFC 793
state machine for both endpoints and returns pandas DataFrames;
``analyze_many(paths)`` does it for many captures in worker processes;
``census(connections, transitions)`` counts the states each host holds over time.
"""

from typing import TYPE_CHECKING, Any

from .api import Analysis, analyze, load_tables
from .census import Census, census
from .config import Config
from .findings import Code, Finding
from .reader import CaptureError
from .states import Anomaly, Event, State

__all__ = [
    "Analysis",
    "Anomaly",
    "BatchResult",
    "CaptureError",
    "Census",
    "Code",
    "Config",
    "Event",
    "Finding",
    "State",
    "analyze",
    "analyze_many",
    "census",
    "load_tables",
]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from .batch import BatchResult, analyze_many


def __getattr__(name: str) -> Any:
    # The batch module (process pools: concurrent.futures, multiprocessing) is
    # imported when first asked for, not by every command-line run.
    if name in ("BatchResult", "analyze_many"):
        from . import batch

        return getattr(batch, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
