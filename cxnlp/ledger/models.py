"""ORM tables of the ledger. API schemas live in ``service/schemas.py``; these are storage only."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

STATUSES = ("open", "in_progress", "resolved", "closed")
SEVERITIES = ("一般", "中度", "重大")


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON}


class SchemaVersion(Base):
    __tablename__ = "cxnlp_schema"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class FeedbackRecord(Base):
    """One feedback in the root-cause ledger: what was said (PII masked), what the model read, and the fix."""

    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[str] = mapped_column(String(200), unique=True)
    channel: Mapped[str | None] = mapped_column(String(100))
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
    department: Mapped[str | None] = mapped_column(String(100))
    due_at: Mapped[datetime] = mapped_column(DateTime)
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


Index("ix_feedback_status_due", FeedbackRecord.status, FeedbackRecord.due_at)
