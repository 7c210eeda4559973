"""Survey exports: header styles, each cleaning rule, the scores, the negative answers and the workbook."""
from __future__ import annotations

import csv
import json
import re
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from typer.testing import CliRunner

from cxnlp.cli import app
from cxnlp.errors import DataError
from cxnlp.surveys import CleaningRules, SurveyOptions, build_survey_report, write_survey_workbook
from cxnlp.surveys.cleaning import DUPLICATE, EMPTY, STRAIGHT_LINING, TOO_FAST, UNREADABLE
from cxnlp.surveys.columns import parse_duration, parse_rating, recognise

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data_samples" / "surveys"
WJX_HEADER = ["序号", "提交答卷时间", "所用时间", "来源", "来自IP", "1、您对客服人员的服务态度是否满意？",
              "2、您对处理的及时性是否满意？", "3、您对工作人员的专业能力是否满意？", "4、总体而言您是否满意？",
              "5、您有多大可能向亲友推荐我们？", "6、您还有什么意见或建议？", "7、办理渠道"]


def wjx_row(n: int, ratings: list[str], *, seconds: str = "125秒", ip: str | None = None,
            at: str = "2026/11/02 10:00:00", nps: str = "8", text: str = "(跳过)", channel: str = "热线") -> list[str]:
    return [str(n), at, seconds, "微信", ip or f"1.2.3.{n}(广东-广州)", *ratings, nps, text, channel]


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    return path


def test_values_as_the_platforms_write_them():
    assert [parse_rating(v) for v in ("非常满意", "不满意", "一般", 4, "5分", "(跳过)", None)] == [5, 2, 3, 4, 5, None, None]
    with pytest.raises(ValueError):
        parse_rating("很好吃")
    assert [parse_duration(v) for v in ("125秒", "2分5秒", "1小时2分", "00:02:05", 95, "")] == [125, 125, 3720, 125, 95, None]
    with pytest.raises(ValueError):
        parse_duration("两分钟左右")


def test_wjx_style_export_is_recognised(tmp_path, small_model):
    rows = [wjx_row(i, ["满意", "一般", "非常满意", "满意"], text="等了很久才有人接电话，态度也不好" if i == 3 else "(跳过)")
            for i in range(1, 8)]
    path = write_csv(tmp_path / "wjx.csv", WJX_HEADER, rows, encoding="gb18030")
    report = build_survey_report(path, small_model, SurveyOptions(group_by=["7、办理渠道"]))
    layout = report["layout"]
    assert layout["meta"] == {"row_id": "序号", "submitted_at": "提交答卷时间", "duration": "所用时间", "source": "来源",
                              "ip": "来自IP"}
    assert list(layout["ratings"].values()) == ["服务态度", "响应速度", "专业能力", "总体满意度"]
    assert layout["overall"] == "4、总体而言您是否满意？" and layout["nps"] == "5、您有多大可能向亲友推荐我们？"
    assert layout["texts"] == ["6、您还有什么意见或建议？"] and layout["groups"] == ["7、办理渠道"]
    assert report["cleaning"]["valid"] == 7
    assert report["scores"]["overall"]["csat"] == 1.0 and report["scores"]["nps"]["nps"] == 0.0
    assert report["groups"]["7、办理渠道"][0]["group"] == "热线"


def test_tencent_style_xlsx_with_numeric_ratings(tmp_path, small_model):
    wb = Workbook()
    ws = wb.active
    ws.append(["编号", "用户ID", "开始答题时间", "结束答题时间", "答题时长", "Q1 服务态度满意度", "Q2 响应速度满意度", "Q3 整体满意度",
               "Q4 意见与建议"])
    for i, (r, text) in enumerate([([2, 1, 2], "客服一直推诿，问题拖了两周没解决"), ([4, 4, 4], ""), ([5, 4, 5], "挺好的")]):
        ws.append([i + 1, f"u{i}", datetime(2026, 11, 3, 8, i), datetime(2026, 11, 3, 8, i + 3), "2分30秒", *r, text])
    wb.save(tmp_path / "tencent.xlsx")
    report = build_survey_report(tmp_path / "tencent.xlsx", small_model)
    assert report["layout"]["meta"]["respondent"] == "用户ID" and report["layout"]["meta"]["duration"] == "答题时长"
    assert report["cleaning"]["valid"] == 3
    dims = {d["dimension"]: d for d in report["scores"]["dimensions"]}
    assert dims["服务态度"]["mean"] == pytest.approx(11 / 3, abs=1e-3) and dims["服务态度"]["distribution"]["2"] == 1
    # Only the answer of the submission rated ≤ 3 overall is negative feedback.
    assert report["negative"]["texts"] == 1
    assert report["negative"]["answers"][0]["text"] == "客服一直推诿，问题拖了两周没解决"


@pytest.mark.parametrize("rows, reason", [
    ([wjx_row(1, ["满意"] * 4), wjx_row(2, ["满意"] * 3 + ["一般"], seconds="12秒")], TOO_FAST),
    ([wjx_row(1, ["满意"] * 4), wjx_row(2, ["非常满意"] * 4)], STRAIGHT_LINING),
    ([wjx_row(1, ["满意"] * 4), wjx_row(2, ["非常不满意"] * 4)], STRAIGHT_LINING),
    ([wjx_row(1, ["满意", "一般", "满意", "满意"], ip="5.6.7.8(广东-广州)"),
      wjx_row(2, ["满意", "一般", "满意", "满意"], ip="5.6.7.8(广东-深圳)", at="2026/11/02 10:04:00")], DUPLICATE),
    ([wjx_row(1, ["满意"] * 4), wjx_row(2, ["(跳过)"] * 4, nps="(跳过)")], EMPTY),
    ([wjx_row(1, ["满意"] * 4), wjx_row(2, ["满意", "好吃", "满意", "满意"])], UNREADABLE),
])
def test_each_cleaning_rule_reports_its_row(tmp_path, small_model, rows, reason):
    report = build_survey_report(write_csv(tmp_path / "s.csv", WJX_HEADER, rows), small_model)
    clean = report["cleaning"]
    assert clean["invalid_rows"][0]["row"] == 3 and reason in clean["invalid_rows"][0]["reasons"]
    assert clean["submissions"] == 2 and clean["valid"] == 1 and clean["valid_rate"] == 0.5


def test_same_answers_from_one_address_hours_apart_are_not_duplicates(tmp_path, small_model):
    rows = [wjx_row(1, ["满意", "一般", "满意", "满意"], ip="5.6.7.8"),
            wjx_row(2, ["满意", "一般", "满意", "满意"], ip="5.6.7.8", at="2026/11/02 15:00:00")]
    report = build_survey_report(write_csv(tmp_path / "s.csv", WJX_HEADER, rows), small_model,
                                 SurveyOptions(rules=CleaningRules(duplicate_minutes=10)))
    assert report["cleaning"]["valid"] == 2


def test_overrides_win_and_bad_names_are_reported(tmp_path, small_model):
    header = ["id", "Q1", "Q2", "Q3", "备注"]
    rows = [[str(i), "4", "3", "5", "电话打了好多次没人接，等得太久"] for i in range(5)]
    path = write_csv(tmp_path / "plain.csv", header, rows)
    report = build_survey_report(path, small_model, SurveyOptions(dimensions={"响应速度": "Q2"}))
    assert report["layout"]["ratings"]["Q2"] == "响应速度"
    with pytest.raises(DataError, match="no column 'Q9'"):
        build_survey_report(path, small_model, SurveyOptions(dimensions={"响应速度": "Q9"}))
    with pytest.raises(DataError, match="does not hold 1–5 ratings"):
        build_survey_report(path, small_model, SurveyOptions(dimensions={"响应速度": "备注"}))


def test_an_export_with_nothing_to_score_names_its_columns(tmp_path, small_model):
    path = write_csv(tmp_path / "odd.csv", ["姓名", "城市"], [["张三", "广州"], ["李四", "深圳"]])
    with pytest.raises(DataError, match="no rating question and no open answer recognised.*姓名, 城市"):
        build_survey_report(path, small_model)


def test_the_workbook_has_every_sheet_charts_numbers_and_safe_text(tmp_path, small_model):
    rows = [wjx_row(i, ["不满意", "一般", "不满意", "一般"], text=t)
            for i, t in enumerate(["=HYPERLINK(\"http://x\",\"点我\")", "排队两个小时没人管，工作人员还玩手机"], start=1)]
    rows.append(wjx_row(3, ["满意"] * 4, seconds="5秒"))
    report = build_survey_report(write_csv(tmp_path / "s.csv", WJX_HEADER, rows), small_model)
    out = tmp_path / "满意度得分统计表.xlsx"
    write_survey_workbook(report, out)
    wb = load_workbook(out)
    assert {"汇总", "维度得分", "负面反馈分类", "高频问题", "剔除明细", "明细"} <= set(wb.sheetnames)
    assert len(wb["汇总"]._charts) == 1 and len(wb["维度得分"]._charts) == 1 and len(wb["负面反馈分类"]._charts) == 1
    summary = {r[0]: r[1] for r in wb["汇总"].iter_rows(min_row=2, max_col=2, values_only=True) if r[0]}
    assert summary["提交份数"] == 3 and summary["有效问卷"] == 2 and isinstance(summary["有效率"], float)
    assert wb["维度得分"]["A1"].value == "维度" and wb["维度得分"].freeze_panes == "A2"
    assert isinstance(wb["维度得分"]["D2"].value, (int, float))
    assert [r for r in wb["剔除明细"].iter_rows(min_row=2, values_only=True)][0][:2] == (4, TOO_FAST)
    answers = [r[-4] for r in wb["明细"].iter_rows(min_row=2, values_only=True)]
    assert "'=HYPERLINK(\"http://x\",\"点我\")" in answers
    assert not any(isinstance(a, str) and a.startswith("=") for a in answers)


@pytest.mark.parametrize("by", ['=HYPERLINK("x")区域', "[区域]:渠道*?/\\" + "长" * 40])
def test_a_group_column_named_like_a_formula_or_a_bad_title_is_written_safely(tmp_path, small_model, by):
    rows = [wjx_row(i, ["不满意", "一般", "满意", "一般"], channel=["热线", "网点"][i % 2]) for i in range(1, 5)]
    path = write_csv(tmp_path / "s.csv", [*WJX_HEADER[:-1], by], rows)
    report = build_survey_report(path, small_model, SurveyOptions(group_by=[by]))
    out = tmp_path / "by.xlsx"
    write_survey_workbook(report, out)
    wb = load_workbook(out)
    (title,) = [t for t in wb.sheetnames if t.startswith("分组-")]
    assert len(title) <= 31 and not set(title) & set("[]:*?/\\")
    header = wb[title]["A1"].value
    assert header.lstrip("'") == by and not header.startswith("=")


def test_personal_data_in_open_answers_is_masked(tmp_path, small_model):
    rows = [wjx_row(1, ["不满意"] * 3 + ["一般"], text="打了十几次电话没人接，回电13812345678")]
    report = build_survey_report(write_csv(tmp_path / "s.csv", WJX_HEADER, rows), small_model)
    assert "13812345678" not in json.dumps(report, ensure_ascii=False)


def test_cli_writes_the_workbook_and_json_from_the_shipped_sample(tmp_path):
    sample = SAMPLES / "survey_wjx_2026-11.csv"
    out = tmp_path / "report.xlsx"
    result = CliRunner().invoke(app, ["survey", "report", str(sample), "-o", str(out),
                                      "--compare", str(SAMPLES / "survey_wjx_2026-10.csv")])
    assert result.exit_code == 0, result.output
    assert "rating 1–5: 1、您对客服人员的服务态度是否满意？ → 服务态度" in result.stderr
    assert "valid" in result.stderr and out.exists()
    result = CliRunner().invoke(app, ["survey", "report", str(sample), "--format", "json"])
    report = json.loads(result.stdout)
    clean = report["cleaning"]
    assert clean["submissions"] >= 1000 and set(clean["reasons"]) >= {TOO_FAST, STRAIGHT_LINING, DUPLICATE, EMPTY}
    assert report["negative"]["texts"] > 50 and report["negative"]["categories"]


def test_cli_names_a_missing_column(tmp_path):
    result = CliRunner().invoke(app, ["survey", "report", str(SAMPLES / "survey_wjx_2026-11.csv"), "--format", "json",
                                      "--dimension", "响应速度=Q99"])
    assert result.exit_code == 1 and "no column 'Q99'" in result.stderr


def test_http_report_matches_the_library_and_refuses_other_files(small_model, tmp_path):
    from fastapi.testclient import TestClient

    from cxnlp.settings import Settings
    from service.main import create_app

    settings = Settings(ledger_url=f"sqlite:///{tmp_path / 'l.db'}", api_key="k")
    sample, before = SAMPLES / "survey_wjx_2026-11.csv", SAMPLES / "survey_wjx_2026-10.csv"
    with TestClient(create_app(model=small_model, settings=settings), base_url="http://localhost") as client:
        files = {"file": (sample.name, sample.read_bytes(), "text/csv")}
        assert client.post("/v1/surveys/report", files=files).status_code == 401
        response = client.post("/v1/surveys/report", headers={"X-API-Key": "k"}, data={"by": ["9、您所在的区域"]},
                               files={**files, "previous": (before.name, before.read_bytes(), "text/csv")})
        assert response.status_code == 200, response.text
        body = response.json()
        expected = build_survey_report(sample, small_model, SurveyOptions(group_by=["9、您所在的区域"]), previous=before)
        assert body["cleaning"] == expected["cleaning"] and body["scores"] == expected["scores"]
        assert body["negative"]["categories"] == expected["negative"]["categories"]
        assert body["source"] == sample.name and body["comparison"]["previous_source"] == before.name
        assert body["groups"]["9、您所在的区域"]
        bad = client.post("/v1/surveys/report", headers={"X-API-Key": "k"},
                          files={"file": ("x.png", b"\x89PNG\r\n", "image/png")})
        assert bad.status_code == 422 and "must be one of" in bad.json()["detail"][0]["msg"]


def test_http_errors_name_the_upload_and_the_form_field_never_a_server_path(small_model, tmp_path):
    from fastapi.testclient import TestClient

    from cxnlp.settings import Settings
    from service.main import create_app

    sample = SAMPLES / "survey_wjx_2026-11.csv"
    cases = [({"file": ("导出.csv", b"te\xffxt,id\n1,2\n")}, {}, "file", "导出.csv: the header (row 1): not valid "
              "utf-8 text (byte 0xff at byte 3 of the line); save the file as UTF-8 and upload it again"),
             ({"file": ("w.xlsx", b"a,b\n1,2\n")}, {}, "file", "w.xlsx: not an Excel workbook"),
             ({"file": (sample.name, sample.read_bytes()), "previous": ("上月.csv", b"")}, {}, "previous",
              "上月.csv: the file is empty"),
             ({"file": (sample.name, sample.read_bytes())}, {"by": "区域"}, "by", "by '区域': no such column")]
    with TestClient(create_app(model=small_model, settings=Settings(ledger_url=f"sqlite:///{tmp_path / 'l.db'}")),
                    base_url="http://localhost") as client:
        for files, form, field, start in cases:
            r = client.post("/v1/surveys/report", files=files, data=form)
            assert r.status_code == 422, r.text
            (error,) = r.json()["detail"]
            assert error["loc"] == ["body", field] and error["msg"].startswith(start), error
            assert "cxnlp-survey" not in error["msg"] and tempfile.gettempdir() not in error["msg"]
            assert not re.search(r"--[a-z]", error["msg"]), error
        boundary = "b0undary"
        r = client.post("/v1/surveys/report", content=f"--{boundary}\r\n-6.25e+16--{boundary}--\r\n",
                        headers={"content-type": f"multipart/form-data; boundary={boundary}"})
        assert r.status_code == 422 and r.json()["detail"][0]["msg"].startswith("the form cannot be read"), r.text


def test_http_refuses_an_export_over_the_cell_cap_with_413(small_model, tmp_path):
    from fastapi.testclient import TestClient

    from cxnlp.settings import Settings
    from service.main import create_app

    sample = SAMPLES / "survey_tencent_2026-11.xlsx"
    settings = Settings(ledger_url=f"sqlite:///{tmp_path / 'l.db'}", max_survey_cells=1000)
    with TestClient(create_app(model=small_model, settings=settings), base_url="http://localhost") as client:
        for name in (sample.name, "survey_wjx_2026-11.csv"):
            r = client.post("/v1/surveys/report", files={"file": (f"大.{name.rsplit('.', 1)[1]}",
                                                                  (SAMPLES / name).read_bytes())})
            assert r.status_code == 413, r.text
            assert r.json()["detail"].startswith("大.") and "more than 1,000 cells" in r.json()["detail"]


def test_negative_answers_name_their_problems_and_reach_the_ledger_once(tmp_path, small_model, monkeypatch):
    from sqlalchemy import select

    from cxnlp.ledger.db import session_scope
    from cxnlp.ledger.models import FeedbackRecord

    rows = [wjx_row(1, ["不满意", "一般", "不满意", "不满意"], text="电话转了好几次都没人处理，退款也一直没到账"),
            wjx_row(2, ["满意"] * 3 + ["非常满意"], text="小王很耐心，一次就办好了")]
    path = write_csv(tmp_path / "s.csv", WJX_HEADER, rows)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    report = build_survey_report(path, small_model, ledger_url=url)
    problems = {p["problem"] for p in report["negative"]["problems"]}
    assert problems and problems <= set(report["negative"]["answers"][0]["problems"])
    assert report["ledger"]["recorded"] == 1  # only the answer rated ≤ 3
    again = build_survey_report(path, small_model, ledger_url=url)
    assert again["ledger"] == {**report["ledger"], "recorded": 0, "already_there": 1}
    with session_scope(url) as session:
        records = session.scalars(select(FeedbackRecord)).all()
    assert [(r.channel, r.source_id) for r in records] == [("问卷", "s.csv:2:您还有什么意见或建议？")]
    wb_path = tmp_path / "r.xlsx"
    write_survey_workbook(report, wb_path)
    sheet = load_workbook(wb_path)["高频问题"]
    assert {r[0] for r in sheet.iter_rows(min_row=2, max_row=1 + len(problems), values_only=True)} == problems
