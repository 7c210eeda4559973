"""Pydantic schemas: the HTTP API contract. Result fields mirror ``cxnlp.prediction.Prediction``."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from cxnlp.prediction import MAX_TEXT_CHARS

Sentiment = Literal["negative", "neutral", "positive"]


class EvidenceSpan(BaseModel):
    term: str = Field(description="The words as the customer wrote them")
    start: int = Field(description="Character offset of the first character in the input text")
    end: int = Field(description="Offset one past the last character")


class ClassifyResult(BaseModel):
    categories: list[str] = Field(description="Assigned categories (may be empty)")
    category_scores: dict[str, float] = Field(description="Every category → probability 0..1")
    sentiment: Sentiment | None = Field(description="Overall stance; null when the text could not be classified")
    sentiment_scores: dict[str, float] = Field(description="negative/neutral/positive → probability, summing to 1")
    confidence: float = Field(ge=0, le=1, description="Confidence of the weakest decision for this text")
    needs_review: bool = Field(description="True when a decision is close to its threshold or confidence is low")
    evidence: dict[str, list[EvidenceSpan]] = Field(description="Per assigned category, the words that pushed it most")
    model_version: str
    error: str | None = Field(description="Why this text could not be classified, else null")


class ClassifyRequest(BaseModel):
    texts: list[str] = Field(min_length=1, max_length=1000, description="1 to 1,000 texts, classified in order")

    model_config = {"json_schema_extra": {"examples": [{"texts": ["客服态度特别差，还挂我电话", "等了两个小时没人处理"]}]}}


class ClassifyResponse(BaseModel):
    model_version: str
    results: list[ClassifyResult]


class ModelCard(BaseModel):
    name: str
    version: str
    created: str
    categories: list[str]
    sentiments: list[str]
    thresholds: dict[str, float]
    metrics: dict[str, Any] = {}
    training_data: dict[str, Any] = {}
    library_versions: dict[str, str] = {}


class Health(BaseModel):
    status: Literal["ok", "loading"]
    model_version: str | None = None
    worker: int | None = Field(default=None, description="Which worker answered (0 … workers-1)")
    pid: int | None = Field(default=None, description="Its process id")


class FeedbackCreate(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    source_id: str | None = Field(default=None, max_length=200, description="Your ticket or survey id; unique")
    channel: str | None = Field(default=None, max_length=100)
    received_at: datetime | None = None


class FeedbackUpdate(BaseModel):
    status: Literal["open", "in_progress", "resolved", "closed"] | None = None
    root_cause: str | None = None
    corrected_categories: list[str] | None = None
    corrected_sentiment: Sentiment | None = None
    actor: str = Field(default="analyst", max_length=100, description="Who makes the change (kept in the audit trail)")


class AuditOut(BaseModel):
    at: datetime
    actor: str
    field: str
    old: Any = None
    new: Any = None


class FeedbackOut(BaseModel):
    """A ledger record as the API shows it."""

    model_config = {"from_attributes": True}

    id: int
    source_id: str
    channel: str | None
    received_at: datetime
    text: str = Field(description="The text with personal data masked")
    categories: list[str]
    category_scores: dict[str, float]
    sentiment: str
    sentiment_scores: dict[str, float]
    confidence: float
    evidence: dict[str, list[EvidenceSpan]]
    model_version: str
    severity: str
    department: str | None
    due_at: datetime
    status: str
    root_cause: str | None
    corrected_categories: list[str] | None
    corrected_sentiment: str | None
    corrected_by: str | None
    corrected_at: datetime | None
    effective_categories: list[str]
    effective_sentiment: str
    audit: list[AuditOut] = []


class CategoryShare(BaseModel):
    count: int
    share: float


class LedgerSummary(BaseModel):
    month: str
    total: int
    negative: int
    negative_share: float
    previous: dict[str, Any]
    by_category: dict[str, CategoryShare]
    by_channel: dict[str, CategoryShare]
    by_department: dict[str, CategoryShare]
    change: dict[str, Any]
    top_terms: dict[str, list[str]]
    overdue: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    status: dict[str, int]


class ReloadRequest(BaseModel):
    model_dir: str | None = Field(default=None, max_length=4096,
                                  description="Model folder to load, under CXNLP_MODEL_ROOT (default: the current one)")


class WorkerState(BaseModel):
    worker: int
    pid: int
    generation: int = Field(description="How many reloads this worker has caught up with")
    model_version: str | None
    model_dir: str | None
    error: str | None = Field(description="Why its last reload failed (it keeps serving its model), else null")


class ReloadResult(ModelCard):
    workers: list[WorkerState] = Field(description="Every worker, each serving the new model")
