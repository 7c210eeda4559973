"""Spreadsheets analysts work with: the monthly register (台账) and the review sheet they correct."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from cxnlp.errors import CxnlpError, DataError
from cxnlp.io import AtomicWriter, from_spreadsheet, open_table, save_workbook_atomic, xlsx_row
from cxnlp.ledger.followups import list_followups, record_followup
from cxnlp.ledger.models import FeedbackRecord
from cxnlp.ledger.records import review_queue, update_record
from cxnlp.ledger.summary import STATUS_ZH, month_records, month_summary, summary_tables
from cxnlp.ledger.timezone import show
from cxnlp.taxonomy import CATEGORY_NAMES_ZH, SENTIMENT_NAMES_ZH, parse_categories, parse_sentiment

REGISTER_COLUMNS = ("编号", "日期", "渠道", "客户ID", "内容", "类型", "问题维度", "高频问题", "情感", "紧急程度", "应响应时间",
                    "首次响应", "严重程度", "责任部门", "解决时限", "解决时间", "状态", "根因说明")
KIND_ZH = {"complaint": "投诉", "praise": "表扬", "inquiry": "咨询"}
FOLLOWUP_COLUMNS = ("followup_id", "record_id", "source_id", "round", "due", "customer", "text", "problems",
                    "resolved_at", "score", "note", "actor")
REVIEW_COLUMNS = ("id", "source_id", "text", "predicted_categories", "predicted_sentiment", "confidence",
                  "corrected_categories", "corrected_sentiment", "root_cause", "reviewer")
_NO_CATEGORY_WORDS = {"none", "无", "[]", "-"}


def _append(ws: Any, cells: list[Any]) -> None:
    """A row as text a spreadsheet will not run (customer words and notes may start with = + - @), each
    cell within Excel's limit (a longer one is cut with a note saying so)."""
    ws.append(xlsx_row(cells))


def register_row(r: FeedbackRecord) -> list[Any]:
    """A record as the register shows it, times in the configured zone."""
    cats = "、".join(CATEGORY_NAMES_ZH.get(c, c) for c in r.effective_categories) or "无"
    return [r.source_id, show(r.received_at), r.channel or "", r.customer or "", r.text, KIND_ZH.get(r.kind, r.kind),
            cats, "、".join(r.problems or []), SENTIMENT_NAMES_ZH.get(r.effective_sentiment, r.effective_sentiment),
            r.urgency, show(r.respond_by), show(r.first_response_at), r.severity, r.department or "",
            show(r.resolve_by) or "—（非投诉）", show(r.resolved_at), STATUS_ZH.get(r.status, r.status),
            r.root_cause or ""]


REGISTER_TYPES = (".xlsx", ".csv", ".tsv")


def export_register(*, session: Session, months: list[str], path: Path, categories: tuple[str, ...]) -> int:
    """One sheet per month plus a 汇总 (summary) sheet; returns the number of records written.

    A ``.csv``/``.tsv`` path gets the records of every month as one table instead (UTF-8 with a BOM,
    formulas neutralised, like every CSV cxnlp writes): the month's numbers are ``ledger summary``'s.
    """
    months = list(dict.fromkeys(months))  # a month named twice is one sheet, its records written once
    suffix = path.suffix.lower()
    if suffix not in REGISTER_TYPES:
        raise DataError(f"{path}: the register is written as {', '.join(REGISTER_TYPES)}; "
                        f"not {suffix or 'a file without an extension'}")
    if suffix != ".xlsx":
        return _export_register_table(session, months, path)
    from openpyxl import Workbook

    wb = Workbook()
    summary_ws = wb.active
    summary_ws.title = "汇总"
    written = 0
    for month in months:
        ws = wb.create_sheet(month)
        _append(ws, list(REGISTER_COLUMNS))
        for r in month_records(session, month):
            _append(ws, register_row(r))
            written += 1
        write_summary_sheet(summary_ws, month_summary(session=session, month=month, categories=categories))
        for col, width in zip("ABCDEFGHIJKLMNOPQR", (18, 17, 8, 12, 60, 6, 16, 20, 6, 8, 17, 17, 8, 14, 17, 17, 8, 30)):
            ws.column_dimensions[col].width = width
    save_workbook_atomic(wb, path)
    return written


def _export_register_table(session: Session, months: list[str], path: Path) -> int:
    writer = AtomicWriter(path)
    writer.open(list(REGISTER_COLUMNS))
    written = 0
    try:
        for month in months:
            rows = [dict(zip(REGISTER_COLUMNS, register_row(r))) for r in month_records(session, month)]
            writer.write(rows)
            written += len(rows)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return written


def write_summary_sheet(ws: Any, s: dict[str, Any]) -> None:
    """The month's ``summary_tables`` one under another: the numbers of ``cxnlp ledger summary``, with
    fractions stored as numbers shown as percentages."""
    for table in summary_tables(s):
        _append(ws, [f"{s['month']} {table.title}"])
        _append(ws, list(table.headers))
        for row in table.rows:
            _append(ws, row)
            for i in table.percent:
                if isinstance(row[i], (int, float)):
                    ws.cell(row=ws.max_row, column=i + 1).number_format = "0.0%"
        if table.note:
            _append(ws, [f"注：{table.note}"])
        _append(ws, [])
    ws.column_dimensions["A"].width = 22
    ws.column_dimensions["B"].width = 16


def export_followups(*, session: Session, path: Path, limit: int = 1000) -> int:
    """The follow-ups to make, earliest due first, with empty score / note / actor columns to fill in."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "回访"
    _append(ws, list(FOLLOWUP_COLUMNS))
    followups = list_followups(session=session, limit=limit)
    for f in followups:
        r = f.record
        _append(ws, [f.id, r.id, r.source_id, f.round, show(f.due_at), r.customer or "", r.text,
                     "、".join(r.problems or []), show(r.resolved_at), "", "", ""])
    ws.column_dimensions["G"].width = 60
    save_workbook_atomic(wb, path)
    return len(followups)


def import_followups(*, session: Session, path: Path, default_actor: str = "analyst") -> ImportResult:
    """Record the follow-ups filled in on a sheet written by ``export_followups``: a row with a score is
    recorded (a bad row is reported and the rest recorded), a row without one is left for later."""
    result = ImportResult()
    with open_table(path, "text") as table:
        if "followup_id" not in table.columns:
            raise DataError(f"{path}: a follow-up sheet needs a 'followup_id' column; columns are: {', '.join(table.columns)}")
        for row in table.rows:
            v = row.values
            if row.problem:  # a cell read as empty may be a score or note that was meant
                result.errors.append(f"{path}: {row.where}: {row.problem}")
                continue
            raw = str(v.get("score") or "").strip()
            if not raw:
                result.unchanged += 1
                continue
            try:
                score = float(raw)
                if score != int(score):
                    raise ValueError(f"score {raw!r} is not a whole number")
                with session.begin_nested():
                    record_followup(session=session, followup_id=int(v["followup_id"]), score=int(score),
                                    note=str(from_spreadsheet(v.get("note")) or "").strip() or None,
                                    actor=str(v.get("actor") or default_actor))
                result.applied += 1
            except (CxnlpError, ValueError, TypeError) as exc:
                result.errors.append(f"{path}: row {row.number}: {exc}")
    return result


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
            if row.problem:  # a cell read as empty would pass for "no correction"
                result.errors.append(f"{path}: {row.where}: {row.problem}")
                continue
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
