from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from cxnlp.errors import DataError
from cxnlp.decoding import detect_encoding
from cxnlp.io import XLSX_CELL_LIMIT, AtomicWriter, open_table

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


LINES = ["客服态度特别差，还挂我电话", "快递三天没动静", "前台很热情，房间干净", "退款一周了还没到账"]


def test_one_invalid_byte_in_utf8_makes_one_error_row_not_a_gbk_file(tmp_path):
    path = tmp_path / "f.csv"
    body = "id,text\n" + "".join(f"{i},{t}\n" for i, t in enumerate(LINES * 50))
    raw = body.encode("utf-8")
    bad_at = raw.index("快递".encode()) + 1  # inside row 3's first character
    path.write_bytes(raw[:bad_at] + b"\xff" + raw[bad_at + 2:])
    with open_table(path) as table:
        rows = list(table.rows)
        assert table.encoding == "utf-8" and table.describe() == "encoding utf-8"
    assert rows[1].number == 3 and rows[1].values == {} and "not valid utf-8" in rows[1].problem
    assert [r.values["text"] for r in rows if not r.problem] == [t for i, t in enumerate(LINES * 50) if i != 1]


def test_gbk_file_whose_first_64_kib_are_ascii_decodes_later_rows(tmp_path):
    path = tmp_path / "f.csv"
    ascii_rows = "".join(f"{i},order {i} ok\n" for i in range(8000))  # > 64 KiB
    path.write_bytes(("id,text\n" + ascii_rows + "".join(f"x,{t}\n" for t in LINES)).encode("gbk"))
    assert path.stat().st_size > 2 * 65536
    with open_table(path) as table:
        rows = list(table.rows)
        assert table.encoding == "gb18030"
    assert [r.values["text"] for r in rows[-4:]] == LINES and not any(r.problem for r in rows)


@pytest.mark.parametrize("suffix", [".txt", ".jsonl"])
def test_undecodable_line_is_an_error_row_with_its_number(tmp_path, suffix):
    path = tmp_path / f"f{suffix}"
    lines = [json.dumps({"text": t}, ensure_ascii=False) if suffix == ".jsonl" else t for t in LINES]
    raw = [line.encode("utf-8") for line in lines]
    raw[2] = raw[2][:4] + b"\xc3\x28" + raw[2][4:]  # an invalid two-byte sequence
    path.write_bytes(b"\n".join(raw) + b"\n")
    with open_table(path) as table:
        rows = list(table.rows)
    assert [r.number for r in rows] == [1, 2, 3, 4]
    assert rows[2].problem.startswith("not valid utf-8") and rows[2].values == {}
    assert [r.values["text"] for r in rows if not r.problem] == [LINES[0], LINES[1], LINES[3]]


def test_encoding_can_be_given(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes("服務態度很差，一直沒人回覆\n".encode("big5"))
    with open_table(path, encoding="big5") as table:
        assert [r.values["text"] for r in table.rows] == ["服務態度很差，一直沒人回覆"]
        assert table.describe() == "encoding big5"
    with pytest.raises(DataError, match="unknown encoding"):
        open_table(path, encoding="no-such-codec")


def test_stdin_gbk_is_decided_on_its_first_text_and_kept():
    data = ("hello\n" * 10 + "\n".join(LINES) + "\n").encode("gb18030")
    table = open_table("-", stdin=io.BytesIO(data))
    rows = list(table.rows)
    assert table.encoding == "gb18030" and [r.values["text"] for r in rows[-4:]] == LINES


def _workbook(path, sheets):
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
    wb.save(path)


def test_every_sheet_of_a_workbook_is_read_and_rows_say_their_sheet(tmp_path):
    path = tmp_path / "w.xlsx"
    _workbook(path, {"一月": [["编号", "评价"], [1, "快递太慢"]], "二月": [["编号", "评价"], [2, "客服很好"], [3, "退款慢"]],
                     "空": []})
    with open_table(path) as table:
        rows = list(table.rows)
        assert table.columns[0] == "sheet" and table.text_column == "评价"
        assert table.describe() == "sheets 一月, 二月; skipped sheet 空 (empty)"
    assert [(r.sheet, r.number, r.values["评价"]) for r in rows] == [("一月", 2, "快递太慢"), ("二月", 2, "客服很好"),
                                                                    ("二月", 3, "退款慢")]
    assert rows[0].values["sheet"] == "一月" and rows[1].where == "sheet 二月 row 2"


def test_one_named_sheet_and_an_unknown_one(tmp_path):
    path = tmp_path / "w.xlsx"
    _workbook(path, {"一月": [["评价"], ["快递太慢"]], "二月": [["评价"], ["客服很好"]]})
    with open_table(path, sheet="二月") as table:
        assert [r.values for r in table.rows] == [{"评价": "客服很好"}] and table.describe() == "sheets 二月"
    with pytest.raises(DataError, match="sheets are: 一月, 二月"):
        open_table(path, sheet="三月")


def test_sheet_without_the_text_column_is_skipped_and_said(tmp_path):
    path = tmp_path / "w.xlsx"
    _workbook(path, {"数据": [["评价"], ["快递太慢"]], "说明": [["字段", "含义"], ["评价", "客户的话"]]})
    with open_table(path) as table:
        assert [r.values["评价"] for r in table.rows] == ["快递太慢"]
        assert table.describe() == "sheets 数据; skipped sheet 说明 (no column '评价')"


@pytest.mark.parametrize("name, content, needle", [
    ("img.csv", b"\x89PNG\r\n\x1a\n" + bytes(200), "looks like a PNG image"),
    ("data.txt", b"abc\x00\x01\x02" * 50, "looks like a binary file"),
    ("doc.jsonl", b"%PDF-1.7\n...", "looks like a PDF document"),
])
def test_binary_files_are_named_as_such(tmp_path, name, content, needle):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=needle):
        open_table(path)


def test_a_workbook_named_csv_and_a_csv_named_xlsx(tmp_path):
    _workbook(tmp_path / "real.xlsx", {"s": [["text"], ["快递太慢"]]})
    (tmp_path / "real.xlsx").rename(tmp_path / "wrong.csv")
    with pytest.raises(DataError, match=r"looks like an Excel workbook \(.xlsx\).*rename it to .xlsx"):
        open_table(tmp_path / "wrong.csv")
    (tmp_path / "wrong.xlsx").write_text("text\n快递太慢\n", encoding="utf-8")
    with pytest.raises(DataError, match="not an Excel workbook.*rename it to .csv"):
        open_table(tmp_path / "wrong.xlsx")


def test_a_huge_headerless_line_gives_a_short_message(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text(",".join(f"客户反馈{i}" for i in range(1_000_000)) + "\n", encoding="utf-8")
    assert path.stat().st_size > 10_000_000
    with pytest.raises(DataError) as info:
        open_table(path)
    message = str(info.value)
    assert len(message) < 600 and "more)" in message
    with pytest.raises(DataError) as info:
        open_table(path, "x" * 100_000)
    assert len(str(info.value)) < 600


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


def test_xlsx_cell_over_the_limit_is_cut_with_a_note_and_counted(tmp_path):
    long = "慢" * (XLSX_CELL_LIMIT + 10)
    writer = AtomicWriter(tmp_path / "out.xlsx")
    writer.write([{"text": long, "error": None}, {"text": "短", "error": None}])
    writer.commit()
    assert writer.cut_cells == 1
    with open_table(tmp_path / "out.xlsx", "text") as table:
        rows = list(table.rows)
    assert len(rows[0].values["text"]) == XLSX_CELL_LIMIT and "cut: 32,777 characters" in rows[0].values["text"]
    assert "cell text cut to fit XLSX" in rows[0].values["error"] and rows[1].values.get("error") in (None, "")
    for suffix in (".csv", ".jsonl"):
        writer = AtomicWriter(tmp_path / f"out{suffix}")
        writer.write([{"text": long}])
        writer.commit()
        assert writer.cut_cells == 0
        with open_table(tmp_path / f"out{suffix}", "text") as table:
            assert next(table.rows).values["text"] == long


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".xlsx"])
def test_formula_cells_are_written_as_text(tmp_path, suffix):
    from cxnlp.io import from_spreadsheet

    texts = ["=HYPERLINK(\"http://x\",\"点我\")", "=cmd|' /C calc'!A0", "+1+2", "-2+3", "@SUM(A1)", "\t=1", "\r=1",
             "普通的反馈", "a=b"]
    writer = AtomicWriter(tmp_path / f"out{suffix}")
    writer.write([{"text": t, "n": -1} for t in texts])
    writer.commit()
    if suffix == ".xlsx":
        from openpyxl import load_workbook

        cells = [row[0] for row in load_workbook(tmp_path / "out.xlsx").active.iter_rows(min_row=2)]
        assert all(c.data_type == "s" for c in cells)
        got = [c.value for c in cells]
    else:
        import csv

        with (tmp_path / f"out{suffix}").open(encoding="utf-8-sig", newline="") as fh:
            got = [r[0] for r in csv.reader(fh, delimiter="\t" if suffix == ".tsv" else ",")][1:]
    assert all(g.startswith("'") for g in got[:7]) and got[7:] == texts[7:]
    round_trip = [(from_spreadsheet(g), t) for g, t in zip(got, texts)]
    assert all(back == t for back, t in round_trip if not (suffix == ".xlsx" and "\r" in t))  # XML reads CR as LF


def test_output_files_get_the_users_mode(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        for suffix in (".csv", ".xlsx", ".jsonl"):
            writer = AtomicWriter(tmp_path / f"out{suffix}")
            writer.write([{"text": "a"}])
            writer.commit()
            assert (tmp_path / f"out{suffix}").stat().st_mode & 0o777 == 0o644
        os.umask(0o027)
        writer = AtomicWriter(tmp_path / "new.csv")
        writer.write([{"text": "a"}])
        writer.commit()
        assert (tmp_path / "new.csv").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


def _csv_with_rows(path: Path, n: int, broken: dict[int, str]) -> Path:
    lines = ["id,text"] + [broken.get(i, f"T{i},第{i}条反馈") for i in range(1, n + 1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_an_unclosed_quote_that_swallows_the_rest_is_an_error_row_named_in_the_summary(tmp_path):
    source = _csv_with_rows(tmp_path / "q.csv", 2000, {6: 'T6,"客服态度差'})
    table = open_table(source)
    rows = list(table.rows)
    (bad,) = [r for r in rows if r.problem]
    assert bad.number == 7 and not bad.values
    assert 'unclosed quote (") starts on line 7 and runs to line 2001: 1995 lines' in bad.problem
    assert "row 7: an unclosed quote" in table.describe()


def test_a_long_quoted_text_of_many_lines_is_not_an_unclosed_quote(tmp_path):
    long_text = '"' + "\n".join(f"第{i}点：等太久" for i in range(40)) + '"'
    source = _csv_with_rows(tmp_path / "ok.csv", 50, {6: f"T6,{long_text}"})
    table = open_table(source)
    rows = list(table.rows)
    assert len(rows) == 50 and not any(r.problem for r in rows) and table.describe() == "encoding utf-8"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_a_byte_order_mark_inside_the_file_is_dropped(tmp_path, encoding):
    path = tmp_path / "f.csv"  # two exports pasted together: the second one's BOM is mid-file
    path.write_bytes("id,text\n1,快递三天没动静\n".encode(encoding)
                     + "\ufeff2,客服态度\ufeff特别差\n".encode("gb18030" if encoding == "gb18030" else "utf-8-sig"))
    with open_table(path) as table:
        rows = list(table.rows)
    assert [(r.values["id"], r.values["text"], r.problem) for r in rows] == [
        ("1", "快递三天没动静", None), ("2", "客服态度特别差", None)]


def test_a_jsonl_key_written_twice_is_an_error_row(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_text('{"text": "快递三天没动静", "time": "10:00"}\n'  # a colon in a value is no second key
                    '{"text": "客服态度差", "text": "很满意"}\n'
                    '{"text": "前台很热情", "meta": {"a": 1, "a": 2}}\n'
                    '{"\\u0074ext": "退款", "text": "一周了还没到账"}\n'
                    '{"text": "房间干净", "meta": {"a": 1, "b": [{"c": 1}]}}\n', encoding="utf-8")
    with open_table(path) as table:
        rows = list(table.rows)
    assert [r.number for r in rows if r.problem] == [2, 3, 4]
    assert rows[1].problem == "the key 'text' appears twice in one object; which value is meant cannot be told"
    assert rows[1].values == {} and "'a'" in rows[2].problem
    assert [r.values["text"] for r in rows if not r.problem] == ["快递三天没动静", "房间干净"]


def test_jsonl_repeated_keys_are_found_cheaply_in_usual_lines_and_surely_in_odd_ones(tmp_path, monkeypatch):
    from cxnlp import io as cio

    usual = ['{"text": "快递三天没动静", "time": "10:00", "meta": {"channel": "app", "tags": [{"a": 1}]}}',
             '{"text":"客服态度差","meta":{"at":"2026-11-03 10:00:00"}}']
    odd = ['{"text": "前台很热情", "meta": {"a": 1, "a" : 2}}',  # white space before a colon
           '{"text": "退款", "meta": {"a": "x\\":", "a":2}}']    # a quote and colon inside a string
    path = tmp_path / "f.jsonl"
    path.write_text("\n".join(usual) + "\n", encoding="utf-8")
    monkeypatch.setattr(cio, "_unique_pairs", lambda pairs: pytest.fail("a usual line was parsed twice"))
    with open_table(path) as table:
        assert [r.problem for r in table.rows] == [None, None]
    monkeypatch.undo()
    path.write_text("\n".join(odd) + "\n", encoding="utf-8")
    with open_table(path) as table:
        assert [r.problem for r in table.rows] == ["the key 'a' appears twice in one object; which value is meant "
                                                   "cannot be told"] * 2


@pytest.mark.parametrize("depth", [1, 300, 1000, 3000])
def test_jsonl_nested_too_deeply_or_with_a_huge_number_is_an_error_row_not_a_traceback(tmp_path, depth):
    nested = "[" * depth + "]" * depth  # orjson reads 1,000 levels that the standard parser cannot
    path = tmp_path / "f.jsonl"
    path.write_text(f'{{"text": "退款", "a": {nested}}}\n{{"text": "快递三天没动静"}}\n'
                    f'{{"text": "客服态度差", "n": {"9" * 5000}}}\n{{"text": "前台很热情", "a": {nested}}}\n',
                    encoding="utf-8")
    with open_table(path) as table:
        rows = list(table.rows)
        assert table.columns == (["text", "a"] if depth < 1000 else [])
    problems = [r.problem for r in rows]
    nested_problem = None if depth == 1 else f"invalid JSON: nested {'too deeply' if depth > 1000 else 'more than 100 levels deep'}"
    assert problems == [nested_problem, None, "invalid JSON: a number too long to read", nested_problem]
    assert rows[1].values == {"text": "快递三天没动静"}


@pytest.mark.parametrize("suffix", [".csv", ".txt", ".jsonl"])
def test_a_stray_nul_byte_costs_its_row_not_the_file(tmp_path, suffix):
    path = tmp_path / f"f{suffix}"
    lines = [json.dumps({"text": t}, ensure_ascii=False) if suffix == ".jsonl" else t for t in LINES]
    if suffix == ".csv":
        lines = ["text"] + lines
    raw = [line.encode("utf-8") for line in lines]
    cut = 3 if suffix != ".jsonl" else 10  # after the first character
    raw[2] = raw[2][:cut] + b"\x00" + raw[2][cut:]
    path.write_bytes(b"\n".join(raw) + b"\n")
    with open_table(path) as table:
        rows = list(table.rows)
    bad = [r for r in rows if r.problem]
    assert [r.number for r in bad] == [3] and bad[0].values == {}
    if suffix != ".jsonl":  # JSON itself refuses a raw control character, with its own message
        assert bad[0].problem == "a NUL byte at character 2 of line 3; the row was not read"
    assert len(rows) == 4 and all("\x00" not in str(r.values) for r in rows)


def test_a_nul_in_the_header_and_a_file_full_of_nuls(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(b"te\x00xt,id\n1,2\n")
    with pytest.raises(DataError, match=r"the header \(row 1\): a NUL byte at character 3 of line 1$"):
        open_table(path)
    path.write_bytes(("text\n" + "快递三天没动静\n" * 20).encode("utf-8") + bytes(40))
    with pytest.raises(DataError, match="looks like a binary file"):
        open_table(path)


def _with_saved_value(path, cell: str, saved: str) -> None:
    """Give one formula cell of a workbook openpyxl wrote the text value Excel would have saved."""
    import re
    import zipfile

    with zipfile.ZipFile(path) as zf:
        parts = {name: zf.read(name) for name in zf.namelist()}
    sheet = "xl/worksheets/sheet1.xml"
    parts[sheet] = re.sub(rb'<c r="' + cell.encode() + rb'"><f>(.*?)</f><v\s*/>',
                          lambda m: b'<c r="' + cell.encode() + b'" t="str"><f>' + m[1] + b"</f><v>"
                          + saved.encode() + b"</v>", parts[sheet])
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in parts.items():
            zf.writestr(name, data)


def test_formula_without_a_saved_value_is_reported_not_read_as_empty(tmp_path):
    path = tmp_path / "w.xlsx"
    _workbook(path, {"s": [["id", "text", "score"], [1, "快递太慢", 1], [2, '="客服"&"态度差"', 2],
                           [3, "还行", "=1+1"], [4, '="房间"&"干净"', 5]]})
    _with_saved_value(path, "B5", "房间干净")  # as Excel saves it: the formula and its value
    with open_table(path) as table:
        rows = list(table.rows)
        summary = table.describe()
    assert [(r.number, r.problem) for r in rows if r.problem] == [
        (3, "formula without a saved value in B3 (read as empty): open and save the file in Excel, then run again"),
        (4, "formula without a saved value in C4 (read as empty): open and save the file in Excel, then run again")]
    assert rows[3].values["text"] == "房间干净" and rows[3].problem is None
    assert summary == ("sheets s; 2 formula cells without a saved value (rows 3, 4): "
                       "open and save the file in Excel")


TRADITIONAL = ["服務態度很差，一直沒人回覆", "快遞三天沒到，客服也不回", "房間乾淨，前台很熱情", "退款一週了還沒到賬"]


def test_a_big5_file_is_read_as_big5_not_as_gb18030_garbage(tmp_path):
    path = tmp_path / "f.csv"  # nearly every Big5 byte pair is valid GB18030 too, as rare characters
    path.write_bytes(("id,text\n" + "".join(f"{i},{t}\n" for i, t in enumerate(TRADITIONAL))).encode("big5"))
    with open_table(path) as table:
        rows = list(table.rows)
        assert table.encoding == "big5"
    assert [r.values["text"] for r in rows] == TRADITIONAL


@pytest.mark.parametrize("text", ["★★★★☆ 服务很好，①号技师手法专业，温度25℃刚好", "服務態度很差，一直沒人回覆，房間乾淨",
                                  "快递三天没到，客服也不回，退款一周了还没到账"])
def test_gbk_files_of_simplified_traditional_or_symbols_stay_gb18030(tmp_path, text):
    path = tmp_path / "f.csv"
    path.write_bytes(f"id,text\n1,{text}\n2,{text}\n".encode("gbk"))
    with open_table(path) as table:
        assert [r.values["text"] for r in table.rows] == [text, text] and table.encoding == "gb18030"


@pytest.mark.parametrize("rows", [
    ["快递太慢了,Иванов Сергей Петрович", "客服态度差,Смирнова Анна Владимировна", "退款很快,Кузнецов Дмитрий"],
    ["屏幕坏了,ソニー ブラビア テレビ", "不制冷,パナソニック 冷蔵庫", "很好用,シャープ エアコン"],
    ["参数α=0.05 β=0.2 γ=1.5 δ=3,好", "λ=2.4 μ=0.1 σ=1.2,差"],
    ["┌──────┐,│ 服务差 │", "└──────┘,╰──╯"],
])
def test_gbk_files_with_names_or_symbols_of_other_scripts_stay_gb18030(tmp_path, rows):
    # GBK's rows of kana, Greek, Cyrillic and box drawing are Big5's most common characters: they
    # must not make a GBK file read as Big5 (the file would be silently garbled)
    path = tmp_path / "f.csv"
    path.write_bytes(("text,name\n" + "".join(f"{r}\n" for r in rows)).encode("gbk"))
    with open_table(path) as table:
        assert [f"{r.values['text']},{r.values['name']}" for r in table.rows] == rows
        assert table.encoding == "gb18030"


def test_a_big5_file_whose_gb18030_reading_is_half_common_is_read_as_big5(tmp_path):
    text = "謝謝你們的服務，這次購買的產品質量很好，物流也很快。"  # its GB18030 reading: 50% common characters
    path = tmp_path / "f.csv"
    path.write_bytes(f"id,text\n1,{text}\n2,{text}\n".encode("big5"))
    with open_table(path) as table:
        assert [r.values["text"] for r in table.rows] == [text, text] and table.encoding == "big5"


def test_a_file_no_chinese_reading_fits_is_refused_with_a_hint(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes("id,text\n1,サービスの態度がとても悪いです。電話しても誰も出ません\n2,配達が三日遅れました\n"
                     .encode("shift_jis"))
    with pytest.raises(DataError, match=r"f\.csv: the text is not UTF-8, and read as GB18030 or Big5 it is mostly "
                                        r"rare characters .*--encoding"):
        open_table(path)
    with open_table(path, encoding="shift_jis") as table:
        assert list(table.rows)[1].values["text"] == "配達が三日遅れました"


def test_a_narrow_file_is_never_judged_utf16(tmp_path):
    path = tmp_path / "f.csv"  # an even number of bytes that are neither UTF-8 nor GB18030
    path.write_bytes(b"te\xffxt,id\n1,2\n")
    with pytest.raises(DataError, match=r"the header \(row 1\): not valid utf-8 text .*use --encoding"):
        open_table(path)


def test_a_workbook_over_the_cell_cap_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    import openpyxl

    from cxnlp.errors import InputTooLarge

    path = tmp_path / "w.xlsx"
    _workbook(path, {"一月": [["id", "text", "score"]] + [[i, "快递太慢", 1] for i in range(200)],
                     "二月": [["id", "text", "score"]] + [[i, "客服很好", 5] for i in range(200)]})
    with open_table(path, max_cells=1206) as table:  # 2 × 201 rows of 3 cells
        assert len(list(table.rows)) == 400
    monkeypatch.setattr(openpyxl, "load_workbook", lambda *a, **k: pytest.fail("the workbook was parsed"))
    with pytest.raises(InputTooLarge, match=r"w\.xlsx: more than 1,205 cells; split the workbook"):
        open_table(path, max_cells=1205)


def _rewritten(src, dst, change):
    """A copy of a workbook with some parts renamed or edited: ``change(name, data) -> (name, data)``."""
    import zipfile

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(*change(info.filename, zin.read(info.filename)))


def _moved_sheet(name, data):  # the sheet where the workbook's relationships say, not in xl/worksheets/
    if name == "xl/worksheets/sheet1.xml":
        return "xl/data/s.xml", data
    return name, data.replace(b"/xl/worksheets/sheet1.xml", b"/xl/data/s.xml").replace(
        b"worksheets/sheet1.xml", b"data/s.xml")


def _spaced_cells(name, data):  # any white space may follow a tag's name: <c\nr="A1">
    return name, data.replace(b"<c r=", b"<c\nr=") if name == "xl/worksheets/sheet1.xml" else data


@pytest.mark.parametrize("change", [_moved_sheet, _spaced_cells])
def test_the_cell_cap_counts_the_cells_openpyxl_reads_wherever_and_however_written(tmp_path, change):
    from cxnlp.errors import InputTooLarge

    plain, path = tmp_path / "plain.xlsx", tmp_path / "w.xlsx"
    _workbook(plain, {"s": [["id", "text", "score"]] + [[i, "快递太慢", 1] for i in range(200)]})
    _rewritten(plain, path, change)
    with open_table(path) as table:  # openpyxl reads the rewritten workbook as it is
        assert len(list(table.rows)) == 200
    with pytest.raises(InputTooLarge, match=r"more than 600 cells"):
        open_table(path, max_cells=600)


def test_sheet_xml_without_row_edges_comes_in_bounded_pieces(tmp_path, monkeypatch):
    import zipfile

    from cxnlp import io as cio

    path = tmp_path / "w.zip"  # a crafted sheet: no row edge in megabytes of it
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("s.xml", b"<worksheet><sheetData><row r='1'>" + b" " * (5 << 20) + b"<c r='A1'/>")
    monkeypatch.setattr(cio, "_MAX_PIECE", 2 << 20, raising=False)
    with zipfile.ZipFile(path) as zf:
        pieces = [len(p) for p in cio._sheet_xml(zf, "s.xml")]
    assert max(pieces) <= (3 << 20) and sum(pieces) == (5 << 20) + 44


def test_a_cell_left_open_does_not_take_the_cells_after_it(tmp_path):
    import zipfile

    from cxnlp.io import _unsaved_formulas

    class Sheet:
        _worksheet_path = "s.xml"

    path = tmp_path / "w.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("s.xml", b'<worksheet><sheetData><row r="2"><c r="A2"><f>1+1</f><c r="B2"><f>2+2</f></c>'
                             b'</row></sheetData></worksheet>')
    assert _unsaved_formulas(path, Sheet()) == {2: ["B2"]}


def test_a_text_file_over_the_cell_cap_stops_where_it_passes_it(tmp_path):
    from cxnlp.errors import InputTooLarge

    path = tmp_path / "f.csv"
    path.write_text("id,text\n" + "".join(f"{i},快递太慢\n" for i in range(100)), encoding="utf-8")
    with open_table(path, max_cells=200) as table:
        assert len(list(table.rows)) == 100
    with open_table(path, max_cells=199) as table:
        with pytest.raises(InputTooLarge, match=r"more than 199 cells \(over 99 rows of 2 columns\)"):
            list(table.rows)


def test_a_disk_that_fills_up_mid_run_is_one_error_naming_the_output(tmp_path):
    import errno

    class FullDisk:
        def write(self, _text):
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self):
            pass

    writer = AtomicWriter(tmp_path / "out.csv")
    writer.open(["text"])
    writer._fh.close()
    writer._fh = FullDisk()
    with pytest.raises(DataError, match=r"out\.csv: cannot write the output there \(No space left on device\)$"):
        writer.write([{"text": "快递三天没动静"}])
    writer.abort()
    assert list(tmp_path.iterdir()) == []
