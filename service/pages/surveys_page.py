"""问卷: a survey export uploaded, its report (``build_survey_report``, as ``POST /v1/surveys/report`` and
`cxnlp survey report`) shown with the workbook's three charts: dimension means, the satisfaction
distribution and the negative answers' categories."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile

from cxnlp.errors import DataError
from cxnlp.surveys import CleaningRules, SurveyOptions, build_survey_report
from service.deps import ModelDep
from service.pages.auth import Actor, CsrfChecked
from service.pages.render import page, zh_category
from service.routes.surveys import _spooled

router = APIRouter(include_in_schema=False)
SATISFACTION = ("非常不满意", "不满意", "一般", "满意", "非常满意")


def survey_charts(report: dict) -> dict:
    """The workbook's charts, drawn from the same report dict."""
    scores, neg = report["scores"], report["negative"]
    return {
        "dimensions": {"names": [d["dimension"] for d in scores["dimensions"]],
                       "means": [d["mean"] for d in scores["dimensions"]]},
        "satisfaction": [{"name": name, "value": scores["overall"]["distribution"][str(k)]}
                         for k, name in enumerate(SATISFACTION, start=1)],
        "negative": {"names": [zh_category(c["category"]) for c in neg["categories"]],
                     "counts": [c["count"] for c in neg["categories"]]},
    }


@router.get("/surveys")
def surveys_form(request: Request, actor: Actor):
    return page(request, "surveys.html", {"title": "问卷", "report": None, "error": None})


@router.post("/surveys", dependencies=[CsrfChecked])
def surveys_upload(request: Request, actor: Actor, model: ModelDep, file: Annotated[UploadFile, File()],
                   negative_max: Annotated[int, Form(ge=1, le=5)] = 3):
    options = SurveyOptions(negative_max=negative_max, rules=CleaningRules())
    try:
        with tempfile.TemporaryDirectory(prefix="cxnlp-survey-") as tmp:
            report = build_survey_report(_spooled(file, Path(tmp), "current"), model, options)
    except DataError as exc:
        return page(request, "surveys.html", {"title": "问卷", "report": None, "error": str(exc)}, status_code=422)
    report["source"] = Path(file.filename or "upload").name
    return page(request, "surveys.html", {"title": "问卷", "report": report, "error": None,
                                          "charts": survey_charts(report)})
