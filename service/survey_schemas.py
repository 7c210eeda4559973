"""The survey report's contract over HTTP (the same fields as `cxnlp survey report --format json`)."""
from __future__ import annotations

from pydantic import BaseModel, Field


class Layout(BaseModel):
    meta: dict[str, str] = Field(description="Metadata role → column (row_id, submitted_at, duration, ip …)")
    ratings: dict[str, str] = Field(description="Rating column → the dimension it scores")
    overall: str | None = Field(description="The overall-satisfaction question, if the survey has one")
    nps: str | None = Field(description="The 0–10 recommendation question, if any")
    texts: list[str] = Field(description="Open-answer columns")
    groups: list[str] = Field(description="Columns fit for --by grouping")
    ignored: list[str]


class InvalidRow(BaseModel):
    row: int = Field(description="Row number as the spreadsheet shows it (the header is row 1)")
    reasons: list[str]
    problems: list[str] = Field(description="Answers that could not be read, with their column")
    seconds: float | None


class Cleaning(BaseModel):
    submissions: int
    valid: int
    invalid: int
    valid_rate: float
    reasons: dict[str, int]
    rules: dict[str, float]
    invalid_rows: list[InvalidRow]


class RatingStats(BaseModel):
    n: int
    mean: float | None
    distribution: dict[str, int] = Field(description="Count of each answer 1–5")
    csat: float | None = Field(description="Share of 满意 (4) and 非常满意 (5)")


class QuestionScore(RatingStats):
    column: str
    question: str
    dimension: str


class DimensionScore(RatingStats):
    dimension: str
    questions: int


class OverallScore(RatingStats):
    basis: str = Field(description="The question the overall satisfaction comes from")


class NPS(BaseModel):
    n: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None


class Scores(BaseModel):
    questions: list[QuestionScore]
    dimensions: list[DimensionScore]
    overall: OverallScore
    nps: NPS | None


class GroupScore(BaseModel):
    group: str
    n: int
    overall: OverallScore
    dimensions: dict[str, float | None]
    nps: float | None


class Answer(BaseModel):
    row: int
    question: str
    text: str = Field(description="The open answer, personal data masked")
    rating: int | None
    categories: list[str]
    sentiment: str | None
    problems: list[str] = Field(description="High-frequency problems of the ledger's catalogue found in it")
    error: str | None


class CategoryCount(BaseModel):
    category: str
    count: int
    share: float | None
    examples: list[str]


class ProblemCount(BaseModel):
    problem: str
    count: int
    share: float = Field(description="Share of the negative answers that name this problem")
    examples: list[str]


class Negative(BaseModel):
    threshold: int
    texts: int
    submissions: int
    share_note: str
    categories: list[CategoryCount]
    problems: list[ProblemCount]
    answers: list[Answer]


class Detail(BaseModel):
    row: int
    ratings: dict[str, int]
    nps: int | None
    answers: list[Answer]


class DimensionChange(BaseModel):
    dimension: str
    mean: float | None
    previous_mean: float | None
    mean_change: float | None
    csat: float | None
    previous_csat: float | None
    csat_change: float | None


class Comparison(BaseModel):
    previous_source: str
    dimensions: list[DimensionChange]
    overall_csat_change: float | None
    nps_change: float | None


class SurveyReport(BaseModel):
    source: str
    layout: Layout
    cleaning: Cleaning
    scores: Scores
    groups: dict[str, list[GroupScore]]
    negative: Negative
    details: list[Detail]
    model_version: str
    comparison: Comparison | None = None
