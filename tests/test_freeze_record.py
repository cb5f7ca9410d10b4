"""The freezer's spill record: words kept as numbers, texts as a tuple, read back the same.

(The whole record is checked end to end by tests/test_stream.py, which freezes
every closed connection of every capture; here the two encodings' edges: a word
list that is full, texts of a table the tuple has no place for.)
"""

from __future__ import annotations

from tcpflow_analyzer import freeze
from tcpflow_analyzer.freeze import RowFreezer


def _freezer() -> RowFreezer:
    def unused(*args: object) -> None:
        raise AssertionError("not called")

    return RowFreezer(unused, None, None, unused)  # type: ignore[arg-type]


def test_words_read_back_also_past_a_full_list() -> None:
    fz = _freezer()
    words = [f"word{i}" for i in range(freeze._WORDS_KEPT + 100)]
    held = [fz._number(w) for w in words]
    assert [fz._word(h) for h in held] == words
    # Numbered while the list has room, the same number again; then the word itself.
    assert held[: freeze._WORDS_KEPT] == list(range(freeze._WORDS_KEPT))
    assert fz._number("word0") == 0
    assert held[freeze._WORDS_KEPT :] == words[freeze._WORDS_KEPT :]
    fz.close()


def test_texts_read_back_as_the_dict() -> None:
    cases: list[dict[str, str]] = [
        {},
        {"transitions": "a"},
        {"transitions": "a", "zeek_conn": "b", "findings": "c"},
        {"anomalies": "x", "findings": "y"},
        {"transitions": "a", "other": "z"},  # a table with no place: the dict itself
        {"transitions": ""},  # (no table's text is empty; kept all the same)
    ]
    for texts in cases:
        held = freeze._text_values(texts)
        assert freeze._texts_of(held) == texts
        assert isinstance(held, tuple) == (
            set(texts) <= set(freeze._TEXT_TABLES) and all(texts.values())
        )


def test_a_batch_is_handed_over_when_full() -> None:
    fulls: list[int] = []
    batch = freeze.Batch(("a", "b"), 3, lambda: fulls.append(len(batch.rows)))
    batch.add({"conn_id": 1}, {"a": "x"}, [])
    batch.add({"conn_id": 2}, {"a": "y", "b": "z"}, [])
    assert fulls == []
    batch.add({"conn_id": 3}, {}, [])
    assert fulls == [3]
    assert batch.lines == {"a": ["x", "y"], "b": ["z"]}
    batch.clear()
    assert (batch.rows, batch.lines, batch.findings) == ([], {"a": [], "b": []}, [])
    batch.close()  # the callback dropped: nothing is handed over any more
    for i in range(4):
        batch.add({"conn_id": i}, {}, [])
    assert fulls == [3]
