"""The figures of a satisfaction survey: per question and per dimension n, mean, distribution and CSAT; NPS.

CSAT is the share of answers that are 满意 (4) or 非常满意 (5). NPS is the share of 9–10 answers minus the
share of 0–6 answers, in points (−100 … 100). Every figure is computed over valid submissions only.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from cxnlp.surveys.cleaning import Submission
from cxnlp.surveys.columns import SCALE, SurveyLayout, question_title

SATISFIED = (4, 5)


def rating_stats(values: list[int]) -> dict[str, Any]:
    """n, mean, the 1–5 distribution and CSAT of a list of ratings."""
    n = len(values)
    dist = Counter(values)
    return {
        "n": n,
        "mean": round(sum(values) / n, 3) if n else None,
        "distribution": {str(k): dist.get(k, 0) for k in range(SCALE[0], SCALE[1] + 1)},
        "csat": round(sum(dist[k] for k in SATISFIED) / n, 4) if n else None,
    }


def nps_stats(values: list[int]) -> dict[str, Any]:
    n = len(values)
    promoters = sum(v >= 9 for v in values)
    detractors = sum(v <= 6 for v in values)
    return {"n": n, "promoters": promoters, "passives": n - promoters - detractors, "detractors": detractors,
            "nps": round(100 * (promoters - detractors) / n, 1) if n else None}


def score_submissions(subs: list[Submission], layout: SurveyLayout) -> dict[str, Any]:
    """Questions, dimensions, overall satisfaction and NPS of the valid submissions."""
    valid = [s for s in subs if s.valid]
    per_question = {col: rating_stats([s.ratings[col] for s in valid if col in s.ratings])
                    for col in layout.ratings}
    pooled: dict[str, list[int]] = defaultdict(list)
    for col, dim in layout.ratings.items():
        pooled[dim].extend(s.ratings[col] for s in valid if col in s.ratings)
    if layout.overall:
        overall = per_question[layout.overall]
        overall_basis = question_title(layout.overall)
    else:
        overall = rating_stats([v for s in valid for v in s.ratings.values()])
        overall_basis = "所有评分题"
    return {
        "questions": [{"column": col, "question": question_title(col), "dimension": layout.ratings[col],
                       **per_question[col]} for col in layout.ratings],
        "dimensions": [{"dimension": dim, "questions": sum(d == dim for d in layout.ratings.values()),
                        **rating_stats(vals)} for dim, vals in pooled.items()],
        "overall": {"basis": overall_basis, **overall},
        "nps": nps_stats([s.nps for s in valid if s.nps is not None]) if layout.nps else None,
    }


def score_groups(subs: list[Submission], layout: SurveyLayout, column: str) -> list[dict[str, Any]]:
    """The same figures per value of a grouping column (channel, region, store …), largest group first."""
    groups: dict[str, list[Submission]] = defaultdict(list)
    for s in subs:
        if s.valid:
            groups[str(s.values.get(column) or "(空)").strip()].append(s)
    out = []
    for name, members in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        scores = score_submissions(members, layout)
        out.append({"group": name, "n": len(members),
                    "overall": scores["overall"],
                    "dimensions": {d["dimension"]: d["mean"] for d in scores["dimensions"]},
                    "nps": scores["nps"]["nps"] if scores["nps"] else None})
    return out


def compare(current: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """Change of each dimension's mean and CSAT, overall CSAT and NPS against a previous survey's scores."""
    def delta(a: float | None, b: float | None, digits: int) -> float | None:
        return round(a - b, digits) if a is not None and b is not None else None

    before = {d["dimension"]: d for d in previous["dimensions"]}
    return {
        "dimensions": [{"dimension": d["dimension"], "mean": d["mean"],
                        "previous_mean": before.get(d["dimension"], {}).get("mean"),
                        "mean_change": delta(d["mean"], before.get(d["dimension"], {}).get("mean"), 3),
                        "csat": d["csat"], "previous_csat": before.get(d["dimension"], {}).get("csat"),
                        "csat_change": delta(d["csat"], before.get(d["dimension"], {}).get("csat"), 4)}
                       for d in current["dimensions"]],
        "overall_csat_change": delta(current["overall"]["csat"], previous["overall"]["csat"], 4),
        "nps_change": delta((current["nps"] or {}).get("nps"), (previous["nps"] or {}).get("nps"), 1),
    }
