"""ORM tables of the ledger. API schemas live in ``service/schemas.py``; these are storage only."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, synonym

STATUSES = ("open", "responded", "in_progress", "resolved", "closed")
SEVERITIES = ("一般", "中度", "重大")
URGENCIES = ("紧急", "一般", "咨询")
KINDS = ("complaint", "praise", "inquiry")


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON}


class SchemaVersion(Base):
    """The numbered schema of releases up to 1.0.x; kept (Alembic's ``alembic_version`` replaces it) so
    that the SQLite write lock taken in ``lock_for_write`` has a table to touch."""

    __tablename__ = "cxnlp_schema"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class FeedbackRecord(Base):
    """One feedback in the root-cause ledger: what was said (PII masked), what the model read, and the fix."""

    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[str] = mapped_column(String(200), unique=True)
    channel: Mapped[str | None] = mapped_column(String(100))
    customer: Mapped[str | None] = mapped_column(String(100))  # the company's customer id, when the export has one
    received_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime)
    text: Mapped[str] = mapped_column(Text)
    categories: Mapped[list[str]] = mapped_column(JSON)
    category_scores: Mapped[dict[str, Any]] = mapped_column(JSON)
    sentiment: Mapped[str] = mapped_column(String(20))
    sentiment_scores: Mapped[dict[str, Any]] = mapped_column(JSON)
    confidence: Mapped[float] = mapped_column(Float)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    model_version: Mapped[str] = mapped_column(String(100))
    severity: Mapped[str] = mapped_column(String(10))
    urgency: Mapped[str] = mapped_column(String(10), server_default="一般")
    kind: Mapped[str] = mapped_column(String(20), server_default="complaint")
    problems: Mapped[list[str]] = mapped_column(JSON, server_default="[]")
    department: Mapped[str | None] = mapped_column(String(100))
    # All times are naive UTC; they are shown in the configured zone (``Settings.timezone``).
    respond_by: Mapped[datetime | None] = mapped_column(DateTime)
    resolve_by: Mapped[datetime | None] = mapped_column(DateTime)  # complaints only
    due_at = synonym("resolve_by")  # the 1.0 name
    first_response_at: Mapped[datetime | None] = mapped_column(DateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime)
    customer_notified_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(20), default="open")
    root_cause: Mapped[str | None] = mapped_column(Text)
    corrected_categories: Mapped[list[str] | None] = mapped_column(JSON)
    corrected_sentiment: Mapped[str | None] = mapped_column(String(20))
    corrected_by: Mapped[str | None] = mapped_column(String(100))
    corrected_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Bumped by every change: an UPDATE carries the version it read, so two analysts changing one record
    # at once cannot both win (compare-and-set; SQLAlchemy raises StaleDataError for the loser).
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    audit: Mapped[list["AuditEntry"]] = relationship(back_populates="record", order_by="AuditEntry.id",
                                                     cascade="all, delete-orphan")
    followups: Mapped[list["FollowUp"]] = relationship(back_populates="record", order_by="FollowUp.round",
                                                       cascade="all, delete-orphan")
    __mapper_args__ = {"version_id_col": version}

    @property
    def effective_categories(self) -> list[str]:
        """What the analyst said where they corrected it, else what the model said."""
        return list(self.corrected_categories) if self.corrected_categories is not None else list(self.categories)

    @property
    def effective_sentiment(self) -> str:
        return self.corrected_sentiment or self.sentiment


class AuditEntry(Base):
    """Every change to a record: who, when, which field, from what, to what."""

    __tablename__ = "feedback_audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feedback_id: Mapped[int] = mapped_column(ForeignKey("feedback.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(100))
    field: Mapped[str] = mapped_column(String(50))
    old: Mapped[Any] = mapped_column(JSON, nullable=True)
    new: Mapped[Any] = mapped_column(JSON, nullable=True)
    record: Mapped[FeedbackRecord] = relationship(back_populates="audit")


class FollowUp(Base):
    """A follow-up call (回访) of a resolved complaint: round 1 due 7 days after resolution; a score of 3
    or less schedules round 2, due 48 h after it."""

    __tablename__ = "followup"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feedback_id: Mapped[int] = mapped_column(ForeignKey("feedback.id", ondelete="CASCADE"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    scheduled_at: Mapped[datetime] = mapped_column(DateTime)
    due_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    done_at: Mapped[datetime | None] = mapped_column(DateTime)
    score: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(100))
    record: Mapped[FeedbackRecord] = relationship(back_populates="followups")


Index("ix_feedback_status_due", FeedbackRecord.status, FeedbackRecord.resolve_by)
Index("ix_feedback_kind_received", FeedbackRecord.kind, FeedbackRecord.received_at)
