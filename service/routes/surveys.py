"""The survey report over HTTP: an uploaded export in, the same report as `cxnlp survey report --format json`."""
from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, UploadFile
from fastapi.exceptions import RequestValidationError

from cxnlp.errors import DataError, InputTooLarge
from cxnlp.surveys import CleaningRules, SurveyOptions, build_survey_report
from service.deps import ModelDep, SettingsDep, WriteAccess
from service.survey_schemas import SurveyReport

router = APIRouter(prefix="/v1", tags=["surveys"])
SURVEY_SUFFIXES = (".csv", ".tsv", ".xlsx")


@router.post("/surveys/report", response_model=SurveyReport, dependencies=[WriteAccess],
             summary="Clean, score and classify a questionnaire export (问卷星 / 腾讯问卷 style CSV or XLSX)")
def survey_report(
    model: ModelDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="The export as the survey platform wrote it")],
    negative_max: Annotated[int, Form(ge=1, le=5)] = 3,
    min_seconds: Annotated[float, Form(ge=0)] = 30.0,
    duplicate_minutes: Annotated[float, Form(ge=0)] = 10.0,
    by: Annotated[list[str] | None, Form(description="Grouping columns")] = None,
    previous: Annotated[UploadFile | None, File(description="The previous survey's export, for the change")] = None,
):
    # A plain function: FastAPI runs it in a worker thread, so a large export never blocks the event loop.
    options = SurveyOptions(group_by=list(by or []), negative_max=negative_max, max_cells=settings.max_survey_cells,
                            rules=CleaningRules(min_seconds=min_seconds, duplicate_minutes=duplicate_minutes))
    with tempfile.TemporaryDirectory(prefix="cxnlp-survey-") as tmp:
        current = _spooled(file, Path(tmp), "current")
        before = _spooled(previous, Path(tmp), "previous") if previous is not None else None
        uploads = {"file": (current, file.filename), "previous": (before, previous and previous.filename)}
        try:
            report = build_survey_report(current, model, options, previous=before)
        except DataError as exc:
            error = _in_http_terms(str(exc), uploads, tmp)
            if isinstance(exc, InputTooLarge):  # too much to read, though within the body's byte limit
                raise HTTPException(status_code=413, detail=error.errors()[0]["msg"]) from None
            raise error from None
    report["source"] = Path(file.filename or "upload").name
    if before is not None:
        report["comparison"]["previous_source"] = Path(previous.filename or "previous").name
    return report


# The library speaks to the command line; over HTTP its advice names form fields, or says what to do
# with the file when the route has no field for it (an encoding, columns named by hand).
_CLI_ADVICE = (
    (re.compile(r"^--by "), "by "),
    (re.compile(r"(; use --encoding|: say its encoding with --encoding .*)$"), "; save the file as UTF-8 and upload it again"),
    (re.compile(r"; if it is UTF-16 text .*$"), "; save the file as UTF-8 and upload it again"),
    (re.compile(r"; name them with --rating-columns / --text-columns\."), "."),
)


def _in_http_terms(message: str, uploads: dict[str, tuple[Path | None, str | None]], folder: str
                   ) -> RequestValidationError:
    """A 422 about an upload, naming it as the client did (never the server's temporary path), the form
    field it came in (``loc``), and advice in HTTP terms."""
    field = "by" if message.startswith("--by ") else None
    for name, (path, filename) in uploads.items():
        if path is not None and str(path) in message:
            message = message.replace(str(path), Path(filename or name).name)
            field = field or name
    message = message.replace(folder, "")
    for pattern, replacement in _CLI_ADVICE:
        message = pattern.sub(replacement, message)
    message = "; ".join(part for part in message.split("; ") if not re.search(r"(^|\s)--[a-z]", part))
    return RequestValidationError([{"type": "invalid", "loc": ("body", field) if field else (), "msg": message}])


def _spooled(upload: UploadFile, folder: Path, stem: str) -> Path:
    """The upload as a file with its own extension (the readers choose the format by it)."""
    suffix = Path(upload.filename or "").suffix.lower()
    if suffix not in SURVEY_SUFFIXES:
        raise DataError(f"{upload.filename or 'the upload'}: the export must be one of {', '.join(SURVEY_SUFFIXES)}")
    path = folder / f"{stem}{suffix}"
    with path.open("wb") as out:
        while chunk := upload.file.read(1 << 20):
            out.write(chunk)
    return path
