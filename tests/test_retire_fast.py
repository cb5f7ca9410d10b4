"""The fast retirement path: the same results as the plain functions, shortcuts included.

``report.retired_rows`` (what ``api.analyze_rows`` runs for each finished
connection) reads a connection's trace once for the findings and the teardown
columns; the detectors skip what a connection provably lacks (no FIN, no RST, no
data after a FIN, no state held past its threshold). Each test here sets the
fast answer against the plain, unshortened computation, on captures where the
detector does fire, so that a wrong shortcut fails.
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tcpflow_analyzer.segment import addr_text


@given(st.binary(min_size=4, max_size=4) | st.binary(min_size=16, max_size=16))
def test_addr_text_is_ipaddress_text(addr: bytes) -> None:
    assert addr_text(addr) == str(ipaddress.ip_address(addr))
    assert addr_text(addr) == str(ipaddress.ip_address(addr))  # again, from the cache


@pytest.mark.parametrize("bad", [b"", b"\x01\x02\x03", b"\x00" * 5, b"\x00" * 17])
def test_addr_text_rejects_other_lengths(bad: bytes) -> None:
    with pytest.raises(ValueError):
        addr_text(bad)
