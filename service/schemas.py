"""Pydantic schemas: the HTTP API contract. Result fields mirror ``cxnlp.prediction.Prediction``."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from cxnlp.errors import DataError
from cxnlp.prediction import MAX_TEXT_CHARS
from cxnlp.taxonomy import parse_categories, parse_sentiment

Sentiment = Literal["negative", "neutral", "positive"]
Urgency = Literal["紧急", "一般", "咨询"]
# Ledger months and dates stay within these years (the pattern says the same), so a deadline or the
# previous/next month is always a real date.
MIN_YEAR, MAX_YEAR = 1900, 2199
MONTH_PATTERN = r"^(19|20|21)\d{2}-(0[1-9]|1[0-2])$"


def _unicode_text(value: str) -> str:
    """Lone surrogates (JSON allows ``\\ud800``) are not text: nothing could store or return them."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"text holds an invalid character at offset {exc.start} (a lone surrogate)") from None
    return value


def _storable_text(value: str) -> str:
    """PostgreSQL text columns cannot hold NUL; refuse it here rather than fail in the database."""
    if "\x00" in value:
        raise ValueError(f"text holds a NUL character at offset {value.index(chr(0))}")
    return value


def _bounded_datetime(value: datetime) -> datetime:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"year must be between {MIN_YEAR} and {MAX_YEAR}")
    return value


def _as_utc(value: datetime) -> datetime:
    """The ledger keeps naive UTC; the API says so, as the schema's ``date-time`` requires an offset."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _categories(value: Any) -> list[str]:
    """Category labels as analysts write them (服务态度 or attitude), parsed as ``review --import`` does."""
    if not isinstance(value, (list, str)):
        raise ValueError("expected a list of category labels")
    try:
        return parse_categories(value)
    except DataError as exc:
        raise ValueError(str(exc)) from None


def _sentiment(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a sentiment name")
    try:
        return parse_sentiment(value)
    except DataError as exc:
        raise ValueError(str(exc)) from None


# Ledger ids the service derives itself: ``idem:<Idempotency-Key>``, and ``auto:<digest>`` for a post
# with no id. A client's source_id cannot start with them, or it could land on another post's record.
RESERVED_ID_PREFIXES = ("idem:", "auto:")


def _client_id(value: str) -> str:
    if value.startswith(RESERVED_ID_PREFIXES):
        raise ValueError(f"a source_id cannot start with {' or '.join(RESERVED_ID_PREFIXES)}: the service "
                         "derives those itself (send the Idempotency-Key header to have one made)")
    return value


def _named(value: str) -> str:
    """An actor as the audit trail keeps it: spaces collapsed, never empty."""
    value = " ".join(value.split())
    if not value:
        raise ValueError("actor must name who makes the change")
    return value


Text = Annotated[str, AfterValidator(_unicode_text)]
StoredText = Annotated[Text, AfterValidator(_storable_text)]
# Who made a change, as the audit trail names it. Without one, the change is put down to "api": the
# API key is the caller's only identity (the dashboard names its signed-in analyst instead).
Actor = Annotated[StoredText, AfterValidator(_named)]
API_ACTOR = "api"
ACTOR_FIELD = {"default": API_ACTOR, "min_length": 1, "max_length": 100,
               "description": 'Who makes the change, kept in the audit trail (default "api": it came through the API)'}
# Free text an analyst types (a root cause, a follow-up note): as much as the dashboard's form takes.
MAX_NOTE_CHARS = 10_000
InDatetime = Annotated[datetime, AfterValidator(_bounded_datetime)]
UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


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
    urgency: Urgency | None = Field(description="Response tier by the ledger rules: 紧急 (1 h), 一般 (4 h), 咨询 (24 h); "
                                                "null when the text could not be classified")
    evidence: dict[str, list[EvidenceSpan]] = Field(description="Per assigned category, the words that pushed it most")
    model_version: str
    error: str | None = Field(description="Why this text could not be classified, else null")


class ClassifyRequest(BaseModel):
    texts: list[Text] = Field(min_length=1, max_length=1000, description="1 to 1,000 texts, classified in order")

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
    thresholds: dict[str, float] = Field(description="Per label: the cut on service feedback (on every text for "
                                         "a model without thresholds_other_text)")
    thresholds_other_text: dict[str, float] | None = Field(
        default=None, description="Per label: the cut on text the model reads as not service feedback (reviews)")
    metrics: dict[str, Any] = {}
    training_data: dict[str, Any] = {}
    library_versions: dict[str, str] = {}


class Health(BaseModel):
    status: Literal["ok", "loading"]
    model_version: str | None = None
    worker: int | None = Field(default=None, description="Which worker answered (0 … workers-1)")
    pid: int | None = Field(default=None, description="Its process id")


class FeedbackCreate(BaseModel):
    text: StoredText = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    source_id: Annotated[StoredText, AfterValidator(_client_id)] | None = Field(
        default=None, max_length=200,
        description="Your ticket or survey id; unique. It names the record: a repeat with the same text returns "
                    "it. Not starting with idem: or auto: (the ids the service derives). With an Idempotency-Key "
                    "header too, both must be the same value (422 otherwise)")
    channel: StoredText | None = Field(default=None, max_length=100)
    customer: StoredText | None = Field(default=None, max_length=100,
                                        description="Your customer id (counts the customers a problem affects)")
    received_at: InDatetime | None = Field(default=None, description="When the customer wrote it (no offset: UTC)")


class FeedbackUpdate(BaseModel):
    """An analyst's change. Unknown fields (``severity`` among them: the rules set it) are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")

    # Not nullable: leaving a field out leaves it as it is; null is no status or sentiment.
    status: Literal["open", "responded", "in_progress", "resolved", "closed"] = Field(  # type: ignore[assignment]
        default=None, description="open → responded → in_progress → resolved → closed (a fix that did not hold goes "
                                  "back to in_progress; a question or praise may close once responded); any other move is a 409")
    customer_notified: Literal[True] = Field(  # type: ignore[assignment]
        default=None, description="true: the customer was told of the fix (resolved or closed records only)")
    root_cause: StoredText | None = Field(default=None, max_length=MAX_NOTE_CHARS)
    corrected_categories: Annotated[list[str], BeforeValidator(_categories)] | None = Field(
        default=None, description="Labels in English or Chinese (attitude or 服务态度), as `review --import` reads them")
    corrected_sentiment: Annotated[Sentiment, BeforeValidator(_sentiment)] = Field(  # type: ignore[assignment]
        default=None, description="negative/neutral/positive, or 负面/中性/正面")
    actor: Actor = Field(**ACTOR_FIELD)


class AuditOut(BaseModel):
    at: UtcDatetime
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
    received_at: UtcDatetime
    text: str = Field(description="The text with personal data masked")
    categories: list[str]
    category_scores: dict[str, float]
    sentiment: str
    sentiment_scores: dict[str, float]
    confidence: float
    evidence: dict[str, list[EvidenceSpan]]
    model_version: str
    customer: str | None = None
    severity: str
    urgency: Urgency
    kind: Literal["complaint", "praise", "inquiry"] = Field(description="Only complaints have a resolution deadline")
    problems: list[str] = Field(description="High-frequency problems found in the text (complaints only)")
    department: str | None
    respond_by: UtcDatetime | None = Field(description="Respond by (received + the urgency's tier)")
    resolve_by: UtcDatetime | None = Field(description="Resolve by (received + the severity's tier); null: not a complaint")
    due_at: UtcDatetime | None = Field(description="The 1.0 name of resolve_by, kept for existing clients")
    first_response_at: UtcDatetime | None
    resolved_at: UtcDatetime | None
    customer_notified_at: UtcDatetime | None
    closed_at: UtcDatetime | None
    status: str
    root_cause: str | None
    corrected_categories: list[str] | None
    corrected_sentiment: str | None
    corrected_by: str | None
    corrected_at: UtcDatetime | None
    effective_categories: list[str]
    effective_sentiment: str
    audit: list[AuditOut] = []


class CategoryShare(BaseModel):
    count: int
    share: float = Field(description="Share of the month's negative feedback texts (shares may add to more than 1)")


class ProblemRank(BaseModel):
    problem: str
    category: str
    department: str
    count: int = Field(description="Complaints of the month with this problem")
    share: float = Field(description="Share of the month's complaints (a complaint may have several problems)")
    customers: int = Field(description="Distinct customers affected (by customer id, where the export has one)")
    channels: int
    previous: int = Field(description="Complaints with this problem the month before")
    change: float | None = Field(description="Month-over-month change; null when the month before had none")
    examples: list[str] = Field(description="Three complaints, personal data masked")


class ServiceNumbers(BaseModel):
    response_within_tier: float | None = Field(description="Answered within the urgency's tier ÷ records due or answered")
    response_rate: float | None
    resolution_within_tier: float | None = Field(description="Complaints resolved within the severity's tier ÷ due or resolved")
    response_by_urgency: dict[str, dict[str, Any]]
    resolution_by_severity: dict[str, dict[str, Any]]
    overdue_by_severity: dict[str, int]
    unanswered_by_urgency: dict[str, int]


class FollowUpNumbers(BaseModel):
    scheduled: int
    made: int
    due: int
    coverage: float | None = Field(description="First follow-ups made ÷ due or made")
    satisfaction: float | None = Field(description="Mean score (1–5) of the first follow-ups")
    second_scheduled: int
    second_made: int
    second_resolved: float | None = Field(description="Second follow-ups scored 4 or 5 ÷ second follow-ups made")


class Alert(BaseModel):
    category: str
    kind: Literal["share", "growth"]
    value: float
    message: str
    message_zh: str


class OverdueComplaint(BaseModel):
    id: int
    source_id: str
    department: str | None
    severity: str
    urgency: str
    resolve_by: str
    status: str
    problems: list[str]


class LedgerSummary(BaseModel):
    """The numbers of `cxnlp ledger summary` and of the register's 汇总 sheet (one function computes them)."""

    month: str
    total: int
    negative: int
    negative_share: float
    kinds: dict[str, int] = Field(description="complaint / praise / inquiry")
    complaints: int
    previous: dict[str, Any]
    by_category: dict[str, CategoryShare]
    shares_note: str
    by_channel: dict[str, CategoryShare]
    by_department: dict[str, CategoryShare]
    change: dict[str, Any]
    service: ServiceNumbers
    followups: FollowUpNumbers
    problems: list[ProblemRank]
    overdue: list[OverdueComplaint]
    alerts: list[Alert]
    status: dict[str, int]


class FollowUpOut(BaseModel):
    """A follow-up call (回访) of a resolved complaint."""

    model_config = {"from_attributes": True}

    id: int
    feedback_id: int
    round: int = Field(description="1, or 2 after a first call scored 3 or less")
    scheduled_at: UtcDatetime
    due_at: UtcDatetime
    done_at: UtcDatetime | None
    score: int | None
    note: str | None
    actor: str | None


class FollowUpRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    score: int = Field(ge=1, le=5, description="Satisfaction 1–5; 3 or less schedules a second call within 48 h")
    note: StoredText | None = Field(default=None, max_length=2000)
    actor: Actor = Field(**ACTOR_FIELD)


class ReloadRequest(BaseModel):
    model_dir: StoredText | None = Field(default=None, max_length=4096,
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
