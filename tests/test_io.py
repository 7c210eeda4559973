from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from cxnlp.errors import DataError
from cxnlp.io import AtomicWriter, detect_encoding, open_table

EXAMPLES = Path(__file__).resolve().parent.parent / "data_samples" / "examples"


def test_gbk_csv_with_chinese_header():
    with open_table(EXAMPLES / "tickets_gbk.csv") as table:
        assert table.text_column == "投诉内容"
        rows = list(table.rows)
    assert rows[0].number == 2 and rows[0].values["投诉内容"] == "客服态度特别差，还挂我电话"
    assert len(rows) == 12


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_encodings_are_detected(tmp_path, encoding):
    path = tmp_path / "f.csv"
    path.write_text("反馈内容,评分\n快递三天没动静,1\n", encoding=encoding)
    with open_table(path) as table:
        assert [r.values["反馈内容"] for r in table.rows] == ["快递三天没动静"]


def test_detect_encoding_tolerates_a_cut_multibyte_character():
    sample = "客服".encode("utf-8")[:-1]
    assert detect_encoding(sample) == "utf-8"


def test_xlsx_skips_blank_rows_and_numbers_rows_as_excel_does():
    with open_table(EXAMPLES / "survey.xlsx") as table:
        assert table.text_column == "评价"
        rows = list(table.rows)
    assert rows[2].number == 4 and "態度" in rows[2].values["评价"]


def test_jsonl_bad_line_is_reported_with_its_number_and_the_rest_kept():
    with open_table(EXAMPLES / "chat.jsonl") as table:
        rows = list(table.rows)
    bad = [r for r in rows if r.problem]
    assert [r.number for r in bad] == [5] and "invalid JSON" in bad[0].problem
    assert rows[-1].values["session"] == "C-88126"


def test_unknown_text_column_lists_the_columns(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(DataError, match="Columns are: a, b"):
        open_table(path)


def test_csv_row_with_missing_cells_is_flagged(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("id,text,extra\n1,太慢了,x\n2,好\n", encoding="utf-8")
    with open_table(path) as table:
        rows = list(table.rows)
    assert rows[1].number == 3 and "2 cells" in rows[1].problem


def test_stdin_jsonl_and_plain_lines():
    table = open_table("-", stdin=io.BytesIO('{"text": "不错"}\n'.encode()))
    assert [r.values["text"] for r in table.rows] == ["不错"]
    table = open_table("-", stdin=io.BytesIO("第一行\n第二行\n".encode()))
    assert [r.values["text"] for r in table.rows] == ["第一行", "第二行"]


def test_writer_abort_leaves_no_file(tmp_path):
    target = tmp_path / "out.csv"
    writer = AtomicWriter(target)
    writer.write([{"text": "a", "categories": ["speed"]}])
    writer.abort()
    assert not target.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".jsonl"])
def test_writer_formats(tmp_path, suffix):
    target = tmp_path / f"out{suffix}"
    writer = AtomicWriter(target)
    writer.write([{"text": "a", "categories": ["speed", "process"], "evidence": {"speed": []}}])
    writer.commit()
    if suffix == ".csv":
        raw = target.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")  # BOM, so Excel reads UTF-8
        assert "speed|process" in raw.decode("utf-8-sig")
    elif suffix == ".jsonl":
        assert json.loads(target.read_text())["categories"] == ["speed", "process"]
    else:
        with open_table(target, "text") as table:
            assert next(table.rows).values["categories"] == "speed|process"
