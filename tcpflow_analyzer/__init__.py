"""tcpflow-analyzer: who closed this TCP connection, and how.

``analyze(path)`` replays every TCP segment of a capture through the RFC 793
state machine for both endpoints and returns pandas DataFrames.
"""

from .api import Analysis, analyze
from .config import Config
from .reader import CaptureError
from .states import Anomaly, Event, State

__all__ = ["Analysis", "Anomaly", "CaptureError", "Config", "Event", "State", "analyze"]
__version__ = "0.1.0"
