"""The 满意度得分统计表 workbook analysts hand on: summary, dimension scores, negative feedback, cleaning, details.

Drawn from the report dict only (no figure is computed here), with native Excel charts, frozen headers,
numbers stored as numbers and every text cell neutralised against formula injection.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.chart import BarChart, PieChart, Reference
from openpyxl.chart.label import DataLabelList
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from cxnlp.io import save_workbook_atomic, xlsx_cell, xlsx_row
from cxnlp.taxonomy import CATEGORY_NAMES_ZH

HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
PERCENT = "0.0%"


def _sheet_title(title: str) -> str:
    """A title Excel accepts: none of []:*?/\\, at most 31 characters (a group column's name is the
    export's header, which may hold anything)."""
    return re.sub(r"[\[\]:*?/\\]", "", title)[:31].strip("'") or "sheet"


def _sheet(wb: Workbook, title: str, header: list[str], rows: list[list[Any]], widths: list[int],
           percent_columns: tuple[int, ...] = ()) -> Any:
    ws = wb.create_sheet(_sheet_title(title))
    ws.append(xlsx_row(header))  # a header can be a column name from the export: neutralise formulas
    for cell in ws[1]:
        cell.font, cell.fill = Font(bold=True), HEADER_FILL
    for row in rows:
        ws.append(xlsx_row(row))
    ws.freeze_panes = "A2"
    for i, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    for col in percent_columns:
        for (cell,) in ws.iter_rows(min_row=2, min_col=col, max_col=col):
            cell.number_format = PERCENT
    return ws


def _zh(label: str) -> str:
    return CATEGORY_NAMES_ZH.get(label, label)


def write_survey_workbook(report: dict[str, Any], path: str | Path) -> None:
    """Write the workbook atomically (a failed run leaves no half-written file)."""
    wb = Workbook()
    wb.remove(wb.active)
    clean, scores, neg = report["cleaning"], report["scores"], report["negative"]
    overall = scores["overall"]

    summary = [
        ["问卷文件", report["source"]],
        ["提交份数", clean["submissions"]],
        ["有效问卷", clean["valid"]],
        ["无效问卷", clean["invalid"]],
        ["有效率", clean["valid_rate"]],
        ["总体满意度（满意+非常满意占比）", overall["csat"]],
        ["总体满意度依据", overall["basis"]],
        ["平均分（1–5）", overall["mean"]],
    ]
    if scores["nps"]:
        summary.append(["NPS（净推荐值）", scores["nps"]["nps"]])
    summary += [["负面反馈条数（评分≤%d）" % neg["threshold"], neg["texts"]], ["说明", neg["share_note"]],
                ["模型", report["model_version"]]]
    if "comparison" in report:
        summary.append(["对比问卷", report["comparison"]["previous_source"]])
        summary.append(["总体满意度变化", report["comparison"]["overall_csat_change"]])
    ws = _sheet(wb, "汇总", ["指标", "数值"], summary, [34, 60])
    for row in ws.iter_rows(min_row=2, max_col=2):
        if row[0].value in ("有效率", "总体满意度（满意+非常满意占比）", "总体满意度变化"):
            row[1].number_format = PERCENT
        row[1].alignment = Alignment(wrap_text=True, vertical="top")
    dist_row = ws.max_row + 2
    ws.cell(dist_row, 1, "满意度分布").font = Font(bold=True)
    names = ["非常不满意", "不满意", "一般", "满意", "非常满意"]
    for k, name in enumerate(names, start=1):
        ws.cell(dist_row + k, 1, name)
        ws.cell(dist_row + k, 2, overall["distribution"][str(k)])
    pie = PieChart()
    pie.title = "满意度分布"
    pie.add_data(Reference(ws, min_col=2, min_row=dist_row + 1, max_row=dist_row + 5))
    pie.set_categories(Reference(ws, min_col=1, min_row=dist_row + 1, max_row=dist_row + 5))
    pie.dataLabels = DataLabelList()
    pie.dataLabels.showPercent = True
    pie.dataLabels.showVal = pie.dataLabels.showSerName = pie.dataLabels.showCatName = False
    ws.add_chart(pie, "D2")

    dim_rows = [[d["dimension"], d["questions"], d["n"], d["mean"], d["csat"], *d["distribution"].values()]
                for d in scores["dimensions"]]
    ws = _sheet(wb, "维度得分", ["维度", "题数", "回答数", "平均分", "满意度", *names], dim_rows,
                [14, 8, 10, 10, 10, 12, 10, 10, 10, 12], percent_columns=(5,))
    q_start = ws.max_row + 3
    ws.cell(q_start - 1, 1, "各题得分").font = Font(bold=True)
    for i, head in enumerate(["题目", "维度", "回答数", "平均分", "满意度", *names], start=1):
        ws.cell(q_start, i, head).font = Font(bold=True)
    for r, q in enumerate(scores["questions"], start=q_start + 1):
        for i, v in enumerate([q["question"], q["dimension"], q["n"], q["mean"], q["csat"],
                               *q["distribution"].values()], start=1):
            cell = ws.cell(r, i, xlsx_cell(v))
            if i == 5:
                cell.number_format = PERCENT
    if dim_rows:
        bar = BarChart()
        bar.title, bar.y_axis.title = "各维度平均分", "平均分（1–5）"
        bar.add_data(Reference(ws, min_col=4, min_row=1, max_row=1 + len(dim_rows)), titles_from_data=True)
        bar.set_categories(Reference(ws, min_col=1, min_row=2, max_row=1 + len(dim_rows)))
        bar.y_axis.scaling.min, bar.y_axis.scaling.max = 1, 5
        bar.legend = None
        ws.add_chart(bar, "L2")
    if "comparison" in report:
        c_start = ws.max_row + 3
        ws.cell(c_start - 1, 1, f"与 {report['comparison']['previous_source']} 对比").font = Font(bold=True)
        for i, head in enumerate(["维度", "平均分", "上期平均分", "变化", "满意度", "上期满意度", "变化"], start=1):
            ws.cell(c_start, i, head).font = Font(bold=True)
        for r, d in enumerate(report["comparison"]["dimensions"], start=c_start + 1):
            for i, v in enumerate([d["dimension"], d["mean"], d["previous_mean"], d["mean_change"], d["csat"],
                                   d["previous_csat"], d["csat_change"]], start=1):
                ws.cell(r, i, xlsx_cell(v)).number_format = PERCENT if i >= 5 else "General"

    for col, groups in report["groups"].items():
        dims = [d["dimension"] for d in scores["dimensions"]]
        rows = [[g["group"], g["n"], g["overall"]["csat"], g["overall"]["mean"], *(g["dimensions"].get(d) for d in dims),
                 g["nps"]] for g in groups]
        _sheet(wb, f"分组-{col}", [col, "有效问卷", "满意度", "平均分", *dims, "NPS"], rows,
               [16, 10, 10, 10, *([12] * len(dims)), 8], percent_columns=(3,))

    cat_rows = [[_zh(c["category"]), c["count"], c["share"], "\n".join(c["examples"])] for c in neg["categories"]]
    ws = _sheet(wb, "负面反馈分类", ["问题维度", "条数", "占比", "示例"], cat_rows, [14, 8, 10, 90],
                percent_columns=(3,))
    for (cell,) in ws.iter_rows(min_row=2, min_col=4, max_col=4):
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    ws.cell(ws.max_row + 2, 1, neg["share_note"])
    if cat_rows:
        bar = BarChart()
        bar.type, bar.title = "bar", "负面反馈问题维度"
        bar.add_data(Reference(ws, min_col=2, min_row=1, max_row=1 + len(cat_rows)), titles_from_data=True)
        bar.set_categories(Reference(ws, min_col=1, min_row=2, max_row=1 + len(cat_rows)))
        bar.legend = None
        ws.add_chart(bar, "F2")

    problem_rows = [[p["problem"], p["count"], p["share"], "\n".join(p["examples"])] for p in neg["problems"]]
    ws = _sheet(wb, "高频问题", ["高频问题", "条数", "占负面反馈比例", "示例"], problem_rows, [18, 8, 14, 90],
                percent_columns=(3,))
    for (cell,) in ws.iter_rows(min_row=2, min_col=4, max_col=4):
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    ws.cell(ws.max_row + 2, 1, "问题按台账的高频问题目录识别（同一条反馈可属多个问题）；目录外的问题可用 "
                               "cxnlp ledger problems suggest 发现。")

    invalid = [[r["row"], "；".join(r["reasons"]), "；".join(r["problems"]), r["seconds"]]
               for r in clean["invalid_rows"]]
    _sheet(wb, "剔除明细", ["行号", "剔除原因", "无法读取的答案", "答题用时（秒）"], invalid, [8, 30, 50, 14])

    questions = [q["question"] for q in scores["questions"]]
    detail_rows = []
    for d in report["details"]:
        base = [d["row"], *(d["ratings"].get(q) for q in questions), d["nps"]]
        answers = d["answers"] or [None]
        for a in answers:
            detail_rows.append(base + ([a["question"], a["text"], "、".join(map(_zh, a["categories"])), a["sentiment"],
                                        "、".join(a["problems"])] if a else [None] * 5))
    _sheet(wb, "明细", ["行号", *questions, "推荐值", "开放题", "回答", "问题维度", "情感", "高频问题"], detail_rows,
           [8, *([12] * len(questions)), 8, 20, 60, 16, 10, 16])
    save_workbook_atomic(wb, Path(path))
