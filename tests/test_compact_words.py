"""``compact.Trace``'s record as written: six little-endian 64-bit words.

They are written with ``librt.strings.write_i64_le`` (native when compiled),
which takes signed words: a word whose top bit is set (a made-up length from
2**31 on) is written as the signed word of the same bytes. Either way the
bytes must be the ones the record is read back from (``<qqQQQQ``), for any
value each field may hold.
"""

from __future__ import annotations

import struct

import pytest

from tcpflow_analyzer import compact
from tcpflow_analyzer.segment import Segment, TcpOptions
from tcpflow_analyzer.states import State

_STANDARD = struct.Struct("<qqQQQQ")
_CLIENT = (bytes([10, 0, 0, 1]), 40000)
_SERVER = (bytes([10, 0, 0, 2]), 80)

# frame, ts_ns, seq, ack, flags, window, payload_len, ip_len, ts_val, ts_ecr, checksum_ok
_EXTREMES = [
    (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, False),
    (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, True),
    (
        2**63 - 1,
        2**63 - 1,
        2**32 - 1,
        2**32 - 1,
        255,
        65535,
        2**32 - 1,
        2**32 - 1,
        2**32 - 1,
        2**32 - 1,
        None,
    ),
    (2**63 - 1, -(2**63), 2**32 - 1, 0, 0x18, 1, 2**31, 2**31 - 1, 0, 2**32 - 1, None),
    (123_456, 1_700_000_000_123_456_789, 0xDEADBEEF, 7, 0x10, 502, 1448, 1500, 9, 11, True),
]


@pytest.mark.parametrize("fields", _EXTREMES)
@pytest.mark.parametrize("from_client", [True, False])
def test_written_words_are_the_standard_bytes(fields: tuple, from_client: bool) -> None:
    frame, ts, seq, ack, flags, window, plen, ip_len, tsv, tse, ok = fields
    src, dst = (_CLIENT, _SERVER) if from_client else (_SERVER, _CLIENT)
    seg = Segment(
        frame,
        ts,
        (),
        src[0],
        dst[0],
        src[1],
        dst[1],
        seq,
        ack,
        flags,
        window,
        plen,
        ip_len,
        TcpOptions(ts_val=tsv, ts_ecr=tse),
        True,
        ok,
    )
    trace = compact.Trace(_CLIENT, _SERVER, ())
    trace.add(seg, from_client, State.TIME_WAIT, State.LAST_ACK)
    bits = (compact._FROM_CLIENT if from_client else 0) | compact._CAPLEN_SHORT
    check = 0xFF if ok is None else int(ok)
    cs = compact._STATE_INDEX[State.TIME_WAIT]
    ss = compact._STATE_INDEX[State.LAST_ACK]
    words = (
        frame,
        ts,
        seq | plen << compact._HIGH,
        ack | ip_len << compact._HIGH,
        tsv
        | (flags | window << compact._HIGH_WINDOW | bits << compact._HIGH_BITS) << compact._HIGH,
        tse
        | (
            cs
            | ss << compact._HIGH_SERVER_STATE
            | check << compact._HIGH_CHECKSUM
            | compact._TIMESTAMPS_ONLY << compact._HIGH_KIND
        )
        << compact._HIGH,
    )
    assert trace.dump()[4] == _STANDARD.pack(*words)
    assert trace[0].seg == seg  # and it reads back
    assert trace.seq_ack_len(0) == (seq, ack, plen)  # (a negative word's too)


def test_the_record_reads_what_the_words_hold() -> None:
    """Each field sits where ``_RECORD`` (and the strided and word reads) look for it."""
    fields = dict(
        frame=7,
        ts=11,
        seq=0xFFFFFFFE,
        plen=1448,
        ack=0x80000001,
        ip_len=1500,
        tsv=0xFFFFFFFF,
        flags=0x18,
        window=0xFFFF,
        bits=5,
        tse=3,
        cs=1,
        ss=2,
        ck=0xFF,
        kind=2,
    )
    f = fields
    words = (
        f["frame"],
        f["ts"],
        f["seq"] | f["plen"] << compact._HIGH,
        f["ack"] | f["ip_len"] << compact._HIGH,
        f["tsv"]
        | (f["flags"] | f["window"] << compact._HIGH_WINDOW | f["bits"] << compact._HIGH_BITS)
        << compact._HIGH,
        f["tse"]
        | (
            f["cs"]
            | f["ss"] << compact._HIGH_SERVER_STATE
            | f["ck"] << compact._HIGH_CHECKSUM
            | f["kind"] << compact._HIGH_KIND
        )
        << compact._HIGH,
    )
    record = _STANDARD.pack(*words)
    expected = [*fields.values()]
    expected[13] = -1  # the checksum verdict reads back as a signed byte
    assert list(compact._RECORD.unpack(record)) == expected
    assert record[compact._FLAGS_AT] == f["flags"]
    assert record[compact._BITS_AT] == f["bits"]
    # The word reads (seq_ack_len, a step rebuilt) take the same fields from the words.
    side = {0: (1460, 7, True, (), None, None)}
    trace = compact.Trace.load((_CLIENT, _SERVER, (), (), record, 1, side))
    assert trace.seq_ack_len(0) == (f["seq"], f["ack"], f["plen"])
    step = trace[0]
    seg = step.seg
    assert (seg.frame, seg.ts_ns, seg.seq, seg.payload_len, seg.ack, seg.ip_len) == (
        f["frame"],
        f["ts"],
        f["seq"],
        f["plen"],
        f["ack"],
        f["ip_len"],
    )
    assert (seg.flags, seg.window, seg.options) == (f["flags"], f["window"], TcpOptions(*side[0]))
    assert step.from_client and seg.caplen_short and seg.checksum_ok is None  # bits 5, ck -1
    assert (seg.src, seg.sport, seg.dst, seg.dport) == (*_CLIENT, *_SERVER)
    assert (step.client_state, step.server_state) == (compact._STATES[1], compact._STATES[2])
