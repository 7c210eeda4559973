"""Property: whatever customers write comes back from a file exactly as written, in either encoding."""
from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from cxnlp.io import open_table

# Anything a file can hold as text: every code point but surrogates, NUL (a NUL costs its row) and
# U+FEFF (a byte-order mark inside the text is dropped).
ANY = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufeff")
# The 3,755 most used Chinese characters (GB2312 level 1).
COMMON = [bytes([hi, lo]).decode("gb2312") for hi in range(0xB0, 0xD8) for lo in range(0xA1, 0xFF)
          if (hi, lo) < (0xD7, 0xFA)]
CJK = st.sampled_from(COMMON)
# Each text carries a few everyday Chinese characters, as feedback does: a file of a few rare characters
# can be byte for byte valid in both encodings, and then no reader can tell which was meant.
TEXTS = st.lists(st.builds(str.__add__, st.text(CJK, min_size=4, max_size=12), st.text(ANY, max_size=40)),
                 min_size=1, max_size=25)


def _write(path: Path, texts: list[str], encoding: str) -> None:
    with path.open("w", encoding=encoding, newline="") as fh:
        if path.suffix == ".csv":
            writer = csv.writer(fh)
            writer.writerow(["id", "text"])
            writer.writerows([i, t] for i, t in enumerate(texts))
        else:
            fh.writelines(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(texts))


@settings(max_examples=150, deadline=None)
@given(texts=TEXTS, suffix=st.sampled_from([".csv", ".jsonl"]), encoding=st.sampled_from(["utf-8", "gb18030"]))
def test_texts_read_back_identical(texts, suffix, encoding):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"in{suffix}"
        _write(path, texts, encoding)
        with open_table(path) as table:
            rows = list(table.rows)
            assert table.encoding == encoding
    assert [r.problem for r in rows] == [None] * len(texts)
    assert [r.values["text"] for r in rows] == texts
