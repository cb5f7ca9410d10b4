"""Scapy-crafted captures for tests: exact TCP conversations written to pcap files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

CLIENT = ("10.1.0.1", 40000)
SERVER = ("10.1.0.2", 80)


@dataclass
class Conversation:
    """Builds one TCP conversation packet by packet, tracking seq/ack per side."""

    client: tuple[str, int] = CLIENT
    server: tuple[str, int] = SERVER
    t0: float = 1_700_000_000.0
    step: float = 0.001
    cseq: int = 1000
    sseq: int = 5000
    packets: list[Any] = field(default_factory=list)
    _t: float = 0.0

    def _pkt(
        self,
        from_client: bool,
        flags: str,
        data: bytes,
        seq: int | None,
        ack: int | None,
        at: float | None,
    ) -> Any:
        src, dst = (self.client, self.server) if from_client else (self.server, self.client)
        my = self.cseq if from_client else self.sseq
        peer = self.sseq if from_client else self.cseq
        tcp = TCP(
            sport=src[1],
            dport=dst[1],
            flags=flags,
            seq=my if seq is None else seq,
            ack=(peer if "A" in flags else 0) if ack is None else ack,
            window=65535,
        )
        # Explicit MACs: without them scapy resolves the destination on the network.
        eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        pkt = eth / IP(src=src[0], dst=dst[0]) / tcp / data
        self._t = self._t + self.step if at is None else at
        pkt.time = self.t0 + self._t
        self.packets.append(pkt)
        used = len(data) + ("S" in flags) + ("F" in flags)
        if seq is None:
            if from_client:
                self.cseq = (self.cseq + used) % 2**32
            else:
                self.sseq = (self.sseq + used) % 2**32
        return pkt

    def c(
        self,
        flags: str,
        data: bytes = b"",
        seq: int | None = None,
        ack: int | None = None,
        at: float | None = None,
    ) -> Any:
        """A segment from the client."""
        return self._pkt(True, flags, data, seq, ack, at)

    def s(
        self,
        flags: str,
        data: bytes = b"",
        seq: int | None = None,
        ack: int | None = None,
        at: float | None = None,
    ) -> Any:
        """A segment from the server."""
        return self._pkt(False, flags, data, seq, ack, at)

    def handshake(self) -> Conversation:
        self.c("S")
        self.s("SA")
        self.c("A")
        return self

    def client_close(self) -> Conversation:
        """Four-segment close, client first."""
        self.c("FA")
        self.s("A")
        self.s("FA")
        self.c("A")
        return self

    def write(self, path: Path) -> Path:
        wrpcap(str(path), self.packets)
        return path


def clean_close_pcap(path: Path) -> Path:
    """Handshake, a request and response, client-first four-segment close."""
    conv = Conversation().handshake()
    conv.c("PA", b"GET / HTTP/1.0\r\n\r\n")
    conv.s("PA", b"HTTP/1.0 200 OK\r\n\r\nhello")
    conv.c("A")
    return conv.client_close().write(path)
