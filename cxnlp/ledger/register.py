"""Spreadsheets analysts work with: the monthly register (台账) and the review sheet they correct."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from cxnlp.errors import CxnlpError, DataError
from cxnlp.io import from_spreadsheet, open_table, save_workbook_atomic, xlsx_row
from cxnlp.ledger.models import FeedbackRecord
from cxnlp.ledger.records import review_queue, update_record
from cxnlp.ledger.summary import month_records, month_summary
from cxnlp.taxonomy import CATEGORY_NAMES_ZH, SENTIMENT_NAMES_ZH, parse_categories, parse_sentiment

REGISTER_COLUMNS = ("编号", "日期", "渠道", "内容", "问题维度", "情感", "严重程度", "责任部门", "整改时限", "状态", "根因说明")
STATUS_ZH = {"open": "待处理", "in_progress": "处理中", "resolved": "已解决", "closed": "已关闭"}
REVIEW_COLUMNS = ("id", "source_id", "text", "predicted_categories", "predicted_sentiment", "confidence",
                  "corrected_categories", "corrected_sentiment", "root_cause", "reviewer")
_NO_CATEGORY_WORDS = {"none", "无", "[]", "-"}


def _append(ws: Any, cells: list[Any]) -> None:
    """A row as text a spreadsheet will not run (customer words and notes may start with = + - @), each
    cell within Excel's limit (a longer one is cut with a note saying so)."""
    ws.append(xlsx_row(cells))


def register_row(r: FeedbackRecord) -> list[Any]:
    cats = "、".join(CATEGORY_NAMES_ZH.get(c, c) for c in r.effective_categories) or "无"
    return [r.source_id, r.received_at.strftime("%Y-%m-%d %H:%M"), r.channel or "", r.text, cats,
            SENTIMENT_NAMES_ZH.get(r.effective_sentiment, r.effective_sentiment), r.severity, r.department or "",
            r.due_at.strftime("%Y-%m-%d %H:%M"), STATUS_ZH.get(r.status, r.status), r.root_cause or ""]


def export_register(*, session: Session, months: list[str], path: Path, categories: tuple[str, ...]) -> int:
    """One sheet per month plus a 汇总 (summary) sheet; returns the number of records written."""
    from openpyxl import Workbook

    wb = Workbook()
    summary_ws = wb.active
    summary_ws.title = "汇总"
    _append(summary_ws, ["月份", "总数", "负面", "问题维度", "负面数", "占负面比例", "上月", "环比", "高频词", "预警"])
    written = 0
    for month in months:
        ws = wb.create_sheet(month)
        _append(ws, list(REGISTER_COLUMNS))
        for r in month_records(session, month):
            _append(ws, register_row(r))
            written += 1
        s = month_summary(session=session, month=month, categories=categories)
        alerts = {a["category"]: a["message"] for a in s["alerts"]}
        for c, v in s["by_category"].items():
            ch = s["change"][c]["change"]
            _append(summary_ws, [month, s["total"], s["negative"], CATEGORY_NAMES_ZH.get(c, c), v["count"],
                               round(v["share"], 4), s["change"][c]["previous"],
                               "" if ch is None else round(ch, 4), "、".join(s["top_terms"][c]), alerts.get(c, "")])
        for col, width in zip("ABCDEFGHIJK", (18, 17, 10, 60, 16, 6, 8, 14, 17, 8, 30)):
            ws.column_dimensions[col].width = width
    save_workbook_atomic(wb, path)
    return written


def export_review(*, session: Session, path: Path, limit: int) -> int:
    """The least confident records not yet reviewed, with empty columns for the analyst's corrections."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "review"
    _append(ws, list(REVIEW_COLUMNS))
    records = review_queue(session=session, limit=limit)
    for r in records:
        _append(ws, [r.id, r.source_id, r.text, "|".join(r.categories), r.sentiment, round(r.confidence, 3),
                   "", "", r.root_cause or "", ""])
    ws.column_dimensions["C"].width = 60
    save_workbook_atomic(wb, path)
    return len(records)


@dataclass
class ImportResult:
    applied: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)


def import_review(*, session: Session, path: Path, categories: tuple[str, ...], default_actor: str = "analyst"
                  ) -> ImportResult:
    """Apply the corrections typed into a review sheet; a bad row is reported and the rest applied.

    An empty ``corrected_categories`` cell means "no correction"; write ``none`` (or 无) to say the
    text has no category.
    """
    result = ImportResult()
    with open_table(path, "text") as table:
        if "id" not in table.columns:
            raise DataError(f"{path}: a review sheet needs an 'id' column; columns are: {', '.join(table.columns)}")
        for row in table.rows:
            v = row.values
            changes: dict[str, Any] = {}
            try:
                raw_cats = str(v.get("corrected_categories") or "").strip()
                if raw_cats:
                    changes["corrected_categories"] = [] if raw_cats.lower() in _NO_CATEGORY_WORDS \
                        else parse_categories(raw_cats)
                raw_sent = str(v.get("corrected_sentiment") or "").strip()
                if raw_sent:
                    changes["corrected_sentiment"] = parse_sentiment(raw_sent)
                root = str(from_spreadsheet(v.get("root_cause")) or "").strip()
                if root:
                    changes["root_cause"] = root
                if not changes:
                    result.unchanged += 1
                    continue
                with session.begin_nested():
                    update_record(session=session, record_id=int(v["id"]), changes=changes,
                                  actor=str(v.get("reviewer") or default_actor), known_categories=categories)
                result.applied += 1
            except (CxnlpError, ValueError, TypeError) as exc:
                result.errors.append(f"{path}: row {row.number}: {exc}")
    return result
