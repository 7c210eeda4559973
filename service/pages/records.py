"""台账: the records filtered, sorted and paged by the database; one record with its evidence, scores,
clocks and audit trail; analysts' edits through ``update_record`` (what ``PATCH /v1/feedback/{id}``
calls); the filtered list as an xlsx register (the CLI's columns and safe cells)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, RedirectResponse
from starlette.background import BackgroundTask

from cxnlp.errors import ConflictError, LedgerError
from cxnlp.io import save_workbook_atomic, xlsx_row
from cxnlp.ledger.dashboard import MAX_PER_PAGE, NONE, SORTS, RecordFilter, filter_options, iter_records, list_records
from cxnlp.ledger.models import SEVERITIES, STATUSES
from cxnlp.ledger.records import get_record, update_record
from cxnlp.ledger.register import REGISTER_COLUMNS, register_row
from cxnlp.taxonomy import SENTIMENTS
from service.deps import ModelDep, SessionDep
from service.pages.auth import Actor, CsrfChecked
from service.pages.overview import check_month
from service.pages.render import highlight, page

router = APIRouter(include_in_schema=False)
RecordId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
PER_PAGE = 50


def read_filter(request: Request) -> RecordFilter:
    """The list's filter from the query string; a value outside its set is a 400, not an empty list."""
    q = request.query_params
    flag = lambda name: q.get(name) in ("1", "true", "on")  # noqa: E731
    f = RecordFilter(month=q.get("month") or None, category=q.get("category") or None,
                     problem=(q.get("problem") or "").strip()[:100] or None, kind=(q.get("kind") or "")[:20] or None,
                     urgency=(q.get("urgency") or "")[:10] or None,
                     sentiment=q.get("sentiment") or None, severity=q.get("severity") or None,
                     status=q.get("status") or None, unresolved=flag("unresolved"),
                     department=q.get("department") or None, channel=q.get("channel") or None,
                     overdue=flag("overdue"), needs_review=flag("needs_review"),
                     q=(q.get("q") or "").strip()[:200] or None)
    if f.month:
        check_month(f.month)
    for name, allowed in (("sentiment", SENTIMENTS), ("severity", SEVERITIES), ("status", STATUSES)):
        value = getattr(f, name)
        if value and value not in allowed:
            raise HTTPException(status_code=400, detail=f"{name} 应为 {'、'.join(allowed)} 之一")
    return f


def _sort(request: Request) -> tuple[str, bool]:
    sort = request.query_params.get("sort") or "received_at"
    if sort not in SORTS:
        raise HTTPException(status_code=400, detail=f"无法按 {sort[:30]!r} 排序")
    return sort, request.query_params.get("dir", "desc") != "asc"


@router.get("/ledger")
def ledger_list(request: Request, actor: Actor, session: SessionDep, model: ModelDep,
               page_no: Annotated[int, Query(ge=1, le=1_000_000, alias="page")] = 1):
    filters = read_filter(request)
    sort, descending = _sort(request)
    rows, total = list_records(session=session, filters=filters, min_confidence=model.estimator.min_confidence,
                               sort=sort, descending=descending, page=page_no, per_page=PER_PAGE)
    params = {**filters.as_params(), "sort": sort, "dir": "desc" if descending else "asc"}
    return page(request, "ledger.html", {
        "title": "台账", "rows": rows, "total": total, "page_no": page_no, "pages": max(1, -(-total // PER_PAGE)),
        "filters": filters, "params": params, "filter_params": filters.as_params(), "sort": sort,
        "descending": descending, "options": filter_options(session), "categories": model.estimator.categories_,
        "sentiments": SENTIMENTS, "severities": SEVERITIES, "statuses": STATUSES, "sorts": list(SORTS),
        "none": NONE, "max_per_page": MAX_PER_PAGE})


@router.get("/ledger/export.xlsx")
def ledger_export(request: Request, actor: Actor, session: SessionDep, model: ModelDep):
    """The filtered list as the register's columns (``register_row``), written atomically to a temporary
    file that is removed once sent."""
    from openpyxl import Workbook

    filters = read_filter(request)
    sort, descending = _sort(request)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("台账")
    ws.append(xlsx_row(list(REGISTER_COLUMNS)))
    for r in iter_records(session=session, filters=filters, min_confidence=model.estimator.min_confidence,
                          sort=sort, descending=descending):
        ws.append(xlsx_row(register_row(r)))
    fd, tmp = tempfile.mkstemp(prefix="cxnlp-ledger-", suffix=".xlsx")
    os.close(fd)
    try:
        save_workbook_atomic(wb, Path(tmp))
    except BaseException:
        os.unlink(tmp)
        raise
    name = "cxnlp-ledger" + (f"-{filters.month}" if filters.month else "") + ".xlsx"
    return FileResponse(tmp, filename=name, background=BackgroundTask(os.unlink, tmp),
                        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def _record_page(request: Request, session, model, record_id: int, error: str | None = None, status_code: int = 200):
    record = get_record(session=session, record_id=record_id)
    return page(request, "record.html", {
        "title": f"记录 #{record.id}", "r": record, "text_html": highlight(record.text, record.evidence),
        "categories": model.estimator.categories_, "sentiments": SENTIMENTS, "statuses": STATUSES,
        "error": error, "saved": request.query_params.get("saved") == "1"}, status_code=status_code)


@router.get("/ledger/{record_id}")
def record_view(request: Request, record_id: RecordId, actor: Actor, session: SessionDep, model: ModelDep):
    return _record_page(request, session, model, record_id)


@router.post("/ledger/{record_id}", dependencies=[CsrfChecked])
def record_edit(request: Request, record_id: RecordId, actor: Actor, session: SessionDep, model: ModelDep,
                version: Annotated[int, Form()], status: Annotated[str, Form()] = "",
                root_cause: Annotated[str, Form(max_length=10_000)] = "",
                categories: Annotated[list[str] | None, Form()] = None, sentiment: Annotated[str, Form()] = ""):
    """Only what the analyst changed is sent to ``update_record`` (so an untouched label is no correction)."""
    record = get_record(session=session, record_id=record_id)
    if record.version != version:
        return _record_page(request, session, model, record_id, status_code=409,
                            error="这条记录在你打开之后已被他人修改，请查看最新内容后再改。")
    changes: dict = {}
    if status and status != record.status:
        changes["status"] = status
    cause = root_cause.strip() or None
    if cause != (record.root_cause or None):
        changes["root_cause"] = cause
    chosen = sorted(set(categories or []))
    if chosen != sorted(record.effective_categories):
        changes["corrected_categories"] = chosen
    if sentiment and sentiment != record.effective_sentiment:
        changes["corrected_sentiment"] = sentiment
    if changes:
        try:
            update_record(session=session, record_id=record_id, changes=changes, actor=actor,
                          known_categories=tuple(model.estimator.categories_))
            session.commit()
        except (LedgerError, ConflictError) as exc:
            session.rollback()
            return _record_page(request, session, model, record_id, error=str(exc), status_code=409)
    return RedirectResponse(f"/ledger/{record_id}?saved=1", status_code=303)
