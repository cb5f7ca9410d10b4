"""``compact.Trace``'s record as written: six 64-bit words, native where that is the same.

On a 64-bit little-endian machine the words are packed in the native format
(``@nnNNNN``), faster to convert; anywhere else in the standard one. Both must
give the very bytes the record is read back from (``<qqQQQQ``), for any value
each word may hold.
"""

from __future__ import annotations

import struct

import pytest

from tcpflow_analyzer import compact

_STANDARD = struct.Struct("<qqQQQQ")

_EXTREMES = [
    (0, 0, 0, 0, 0, 0),
    (1, 2, 3, 4, 5, 6),
    (2**63 - 1, 2**63 - 1, 2**64 - 1, 2**64 - 1, 2**64 - 1, 2**64 - 1),
    (-(2**63), -1, 2**62, 2**62 - 1, 2**32, 2**32 - 1),
    (123_456, 1_700_000_000_123_456_789, 0xDEADBEEF | 1448 << 32, 7, 2**61 + 5, 9),
]


@pytest.mark.parametrize("words", _EXTREMES)
def test_written_words_are_the_standard_bytes(words: tuple[int, ...]) -> None:
    written = bytearray(2 * compact._SIZE)
    compact._PACK_INTO(written, compact._SIZE, *words)
    assert bytes(written[compact._SIZE :]) == _STANDARD.pack(*words)
    assert bytes(written[: compact._SIZE]) == bytes(compact._SIZE)  # nothing else written


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
    assert compact._SEQ_LEN_ACK.unpack_from(record, compact._SEQ_AT) == (
        f["seq"],
        f["plen"],
        f["ack"],
    )
