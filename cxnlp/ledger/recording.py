"""Recording batch results in the ledger: `cxnlp classify … --ledger`.

All rows of one run go in one transaction, committed just before the output file is renamed into
place: a run that fails or is interrupted (Ctrl-C, SIGTERM) records nothing, and re-running a file
records nothing twice (each row's source_id comes from its id column, or from the file name, row
number and text). Each chunk is one batched ``INSERT … ON CONFLICT DO NOTHING``, not a statement per row.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from cxnlp.io import Row
from cxnlp.ledger.db import get_engine, lock_for_write
from cxnlp.ledger.records import FeedbackIn, find_record, insert_records, record_feedback, record_rows, utcnow
from cxnlp.ledger.rules import LedgerRules
from cxnlp.ledger.timezone import local_zone
from cxnlp.prediction import MAX_TEXT_CHARS, Prediction
from cxnlp.settings import get_settings

ID_COLUMNS = ("source_id", "id", "ticket_id", "工单编号", "工单号", "编号", "单号", "问卷编号", "session")
CHANNEL_COLUMNS = ("channel", "渠道", "来源")
TIME_COLUMNS = ("received_at", "created_at", "date", "time", "受理时间", "日期", "时间", "提交时间", "创建时间")
CUSTOMER_COLUMNS = ("customer", "customer_id", "客户ID", "客户编号", "客户号", "用户ID", "用户编号")


def _first(values: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = values.get(name)
        if value not in (None, ""):
            return value
    return None


def parse_time(value: Any, zone: tzinfo | None = None) -> datetime | None:
    """A time cell as an aware datetime: a time without an offset is read in ``zone`` (the configured
    zone: exports write local time), one with an offset keeps it."""
    if value is None:
        return None
    zone = zone or local_zone()
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)
    text = str(value).strip().replace("/", "-").replace("T", " ")
    try:  # the usual case, ten times faster than strptime
        parsed = datetime.fromisoformat(text if len(text) > 19 and text[19] in "+-Z" else text[:19])
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)
    except ValueError:
        pass
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(text[:19], fmt).replace(tzinfo=zone)
        except ValueError:
            continue
    return None


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)[:100]


class BatchRecorder:
    """A ledger sink for ``classify_file``: ``write`` per chunk, ``commit`` or ``rollback`` at the end."""

    def __init__(self, *, url: str, rules: LedgerRules, source_name: str, default_channel: str | None) -> None:
        from sqlalchemy.orm import Session

        self.session = Session(get_engine(url), expire_on_commit=False)
        self.url = url
        self.rules = rules
        self.source_name = source_name
        self.default_channel = default_channel
        self.created = 0
        self.existing = 0
        self.skipped = 0
        self.zone = local_zone()

    @classmethod
    def open(cls, *, source: str, default_channel: str | None = None) -> "BatchRecorder":
        settings = get_settings()
        return cls(url=settings.ledger_url, rules=LedgerRules.load(settings.ledger_rules),
                   source_name=Path(source).name if source != "-" else "stdin", default_channel=default_channel)

    def source_id(self, row: Row, text: str) -> str:
        own = _first(row.values, ID_COLUMNS)
        if own is not None:
            return str(own)
        digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]
        return f"{self.source_name}:{row.number}:{digest}"

    def prepare(self, rows: list[Row], preds: list[Prediction], text_column: str) -> tuple[list[dict[str, Any]], int]:
        """The stored columns of a chunk's classified rows (PII masked, severity set) and how many rows
        are not recorded (errors). No I/O: ``classify_file`` runs this in the worker that classified it."""
        items, good = [], []
        for row, pred in zip(rows, preds):
            if pred.error:
                continue
            text = str(row.values[text_column])
            items.append(FeedbackIn(text=text, source_id=self.source_id(row, text),
                                    channel=str(_first(row.values, CHANNEL_COLUMNS) or self.default_channel or "") or None,
                                    received_at=parse_time(_first(row.values, TIME_COLUMNS), self.zone),
                                    customer=_text_or_none(_first(row.values, CUSTOMER_COLUMNS))))
            good.append(pred)
        values = record_rows(items=items, predictions=good, rules=self.rules, now=utcnow())
        return values, len(rows) - len(values)

    def write(self, prepared: tuple[list[dict[str, Any]], int]) -> None:
        """Record one prepared chunk (one batched insert); a source_id reused for another text is a
        ConflictError, and the whole run is then rolled back."""
        values, skipped = prepared
        lock_for_write(self.session)  # the first chunk begins the run's one write transaction
        created = len(insert_records(session=self.session, rows=values))
        self.created += created
        self.existing += len(values) - created
        self.skipped += skipped

    def commit(self) -> None:
        self.session.commit()
        self.session.close()

    def rollback(self) -> None:
        self.session.rollback()
        self.session.close()

    def summary_line(self) -> str:
        from cxnlp.ledger.db import describe

        return (f"ledger {describe(self.url)}: {self.created} recorded, {self.existing} already there, "
                f"{self.skipped} not recorded (errors)")


def classify_and_record(*, session: Any, model: Any, item: FeedbackIn, rules: LedgerRules,
                        max_chars: int = MAX_TEXT_CHARS) -> tuple[Any, bool]:
    """Classify one text and record it (POST /v1/feedback); a known source_id with the same text returns
    the first record without classifying again, with another text it is a ``ConflictError``."""
    from cxnlp.prediction import predict_texts

    lock_for_write(session)  # the look-up and the insert see the same ledger
    existing = find_record(session=session, source_id=item.source_id, text=item.text)
    if existing is not None:
        return existing, False
    prediction = predict_texts(model, [item.text], max_chars=max_chars, keep_tokens=True)[0]
    return record_feedback(session=session, item=item, prediction=prediction, rules=rules)
