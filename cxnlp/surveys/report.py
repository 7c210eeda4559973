"""A survey export in, the 满意度得分统计表 out: recognise, clean, score, classify the negative answers.

The report is a plain dict (the JSON of `cxnlp survey report --format json` and of `POST /v1/surveys/report`);
the workbook is drawn from that same dict, so no figure is computed twice.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxnlp.errors import DataError
from cxnlp.io import open_table
from cxnlp.prediction import predict_texts
from cxnlp.surveys.cleaning import CleaningRules, Submission, apply_rules, parse_submission
from cxnlp.surveys.columns import SurveyLayout, question_title, recognise, short
from cxnlp.surveys.scores import compare, score_groups, score_submissions
from cxnlp.text import mask_personal_data

if TYPE_CHECKING:
    from cxnlp.store import LoadedModel

EXAMPLES_PER_CATEGORY = 3
NO_CATEGORY = "(无类别)"
SHARE_NOTE = ("占比 = 带该类别的负面反馈条数 / 负面反馈总条数；一条反馈可带多个类别，各类别占比之和可超过100%。"
              "负面反馈 = 评分不高于阈值的有效问卷中的开放题回答。")


@dataclass
class SurveyOptions:
    """How to read and judge an export; every field has the survey plans' default."""

    rating_columns: list[str] | None = None
    text_columns: list[str] | None = None
    duration_column: str | None = None
    nps_column: str | None = None
    dimensions: dict[str, str] = field(default_factory=dict)
    group_by: list[str] = field(default_factory=list)
    negative_max: int = 3
    rules: CleaningRules = field(default_factory=CleaningRules)
    sheet: str | None = None
    max_cells: int | None = None  # a larger export is refused before it is read in full (the HTTP route's cap)


@dataclass
class SurveyData:
    """The parsed export: its layout and every submission with its verdict."""

    source: str
    layout: SurveyLayout
    submissions: list[Submission]


def read_survey(path: str | Path, options: SurveyOptions) -> SurveyData:
    """Read an export (CSV/TSV in any encoding `classify` reads, or XLSX) and apply the cleaning rules."""
    with open_table(path, need_text=False, max_cells=options.max_cells) as table:
        rows = list(table.rows)
        columns = [str(c) for c in table.columns]
    if not rows:
        raise DataError(f"{path}: the export has a header but no answers")
    broken = [r for r in rows if r.problem]
    if broken and len(broken) == len(rows):
        raise DataError(f"{path}: no row could be read (row {broken[0].number}: {broken[0].problem})")
    layout = recognise(columns, [r.values for r in rows if not r.problem],
                       rating_columns=options.rating_columns, text_columns=options.text_columns,
                       duration_column=options.duration_column, nps_column=options.nps_column,
                       dimensions=options.dimensions)
    for col in options.group_by:
        if col not in columns:
            raise DataError(f"--by {short(col)!r}: no such column; columns are: "
                            + ", ".join(short(c) for c in columns[:30]))
    subs = []
    for r in rows:
        sub = parse_submission(r.number, r.values, layout)
        if r.problem:
            sub.problems.append(r.problem)
        subs.append(sub)
    apply_rules(subs, layout, options.rules)
    return SurveyData(source=str(path), layout=layout, submissions=subs)


def negative_basis(sub: Submission, layout: SurveyLayout) -> int | None:
    """The rating that makes a submission negative: the overall question if the survey has one, else its lowest."""
    if layout.overall and layout.overall in sub.ratings:
        return sub.ratings[layout.overall]
    return min(sub.ratings.values()) if sub.ratings else None


@dataclass
class ClassifiedAnswers:
    """Every open answer of a valid submission, classified once: the report's rows, and what the ledger
    records for the negative ones (the submission, the column and the prediction of each)."""

    rows: list[dict[str, Any]]
    sources: list[tuple[Submission, str, str]]
    predictions: list[Any]


def classify_answers(data: SurveyData, model: "LoadedModel") -> ClassifiedAnswers:
    """Classify the open answers and find the ledger's high-frequency problems in the masked texts."""
    from cxnlp.ledger.problems import configured_catalogue

    items = [(sub, col, text) for sub in data.submissions if sub.valid for col, text in sub.texts.items()]
    preds = predict_texts(model, [text for _, _, text in items], explain=False)
    masked = [mask_personal_data(text) for _, _, text in items]
    problems = configured_catalogue().match(masked) if items else []
    rows = [{"row": sub.row, "question": question_title(col), "text": text,
             "rating": negative_basis(sub, data.layout),
             "categories": pred.categories if pred.error is None else [], "sentiment": pred.sentiment,
             "problems": found, "error": pred.error}
            for (sub, col, _), text, pred, found in zip(items, masked, preds, problems)]
    return ClassifiedAnswers(rows=rows, sources=items, predictions=preds)


def summarise_negative(answers: list[dict[str, Any]], labels: list[str], negative_max: int) -> dict[str, Any]:
    """Counts, shares and examples per category of the answers rated ≤ ``negative_max``."""
    negative = [a for a in answers if a["rating"] is not None and a["rating"] <= negative_max]
    per_category: Counter = Counter()
    examples: dict[str, list[str]] = {}
    for a in negative:
        for label in a["categories"] or [NO_CATEGORY]:
            per_category[label] += 1
            if len(examples.setdefault(label, [])) < EXAMPLES_PER_CATEGORY:
                examples[label].append(a["text"])
    n = len(negative)
    problems: Counter = Counter(name for a in negative for name in a["problems"])
    problem_examples: dict[str, list[str]] = {}
    for a in negative:
        for name in a["problems"]:
            if len(problem_examples.setdefault(name, [])) < EXAMPLES_PER_CATEGORY:
                problem_examples[name].append(a["text"])
    return {
        "threshold": negative_max,
        "texts": n,
        "submissions": len({a["row"] for a in negative}),
        "share_note": SHARE_NOTE,
        "categories": [{"category": c, "count": per_category[c], "share": round(per_category[c] / n, 4) if n else None,
                        "examples": examples.get(c, [])} for c in [*labels, NO_CATEGORY] if per_category[c]],
        "problems": [{"problem": name, "count": count, "share": round(count / n, 4),
                      "examples": problem_examples[name]} for name, count in problems.most_common()],
        "answers": negative,
    }


def build_survey_report(path: str | Path, model: "LoadedModel", options: SurveyOptions | None = None, *,
                        previous: str | Path | None = None, ledger_url: str | None = None) -> dict[str, Any]:
    """The whole report of one export (and its change against a previous export, when given); with
    ``ledger_url``, the negative answers are recorded in the ledger too (all or nothing)."""
    options = options or SurveyOptions()
    data = read_survey(path, options)
    subs = data.submissions
    valid = [s for s in subs if s.valid]
    reasons = Counter(reason for s in subs for reason in s.reasons)
    scores = score_submissions(subs, data.layout)
    classified = classify_answers(data, model)
    answers = classified.rows
    answers_by_row: dict[int, list[dict[str, Any]]] = {}
    for a in answers:
        answers_by_row.setdefault(a["row"], []).append(a)
    report: dict[str, Any] = {
        "source": Path(str(path)).name,
        "layout": data.layout.to_dict(),
        "cleaning": {
            "submissions": len(subs), "valid": len(valid), "invalid": len(subs) - len(valid),
            "valid_rate": round(len(valid) / len(subs), 4),
            "reasons": dict(reasons.most_common()),
            "rules": {"min_seconds": options.rules.min_seconds,
                      "duplicate_minutes": options.rules.duplicate_minutes},
            "invalid_rows": [{"row": s.row, "reasons": s.reasons, "problems": s.problems,
                              "seconds": s.seconds} for s in subs if not s.valid],
        },
        "scores": scores,
        "groups": {col: score_groups(subs, data.layout, col) for col in options.group_by},
        "negative": summarise_negative(answers, list(model.estimator.categories_), options.negative_max),
        "details": [{"row": s.row, "ratings": {question_title(c): v for c, v in s.ratings.items()}, "nps": s.nps,
                     "answers": [a for a in answers_by_row.get(s.row, [])]} for s in valid],
        "model_version": model.version,
    }
    if ledger_url is not None:
        from cxnlp.surveys.recording import record_negative_answers

        report["ledger"] = record_negative_answers(data, classified, negative_max=options.negative_max,
                                                   url=ledger_url)
    if previous is not None:
        before = read_survey(previous, options)
        report["comparison"] = {"previous_source": Path(str(previous)).name,
                                **compare(scores, score_submissions(before.submissions, before.layout))}
    return report
