"""The ``cxnlp`` command: one verb per job. Each verb parses options, calls one library function,
prints or writes its result, and turns the library's typed errors into exit codes."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from cxnlp.errors import CxnlpError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Classify Chinese customer feedback.")
data_app = typer.Typer(no_args_is_help=True, help="Inspect labeled data.")
app.add_typer(data_app, name="data")
ledger_app = typer.Typer(no_args_is_help=True, help="The root-cause ledger (投诉根源台账).")
app.add_typer(ledger_app, name="ledger")

EXIT_USAGE, EXIT_FAILED = 2, 1


def fail(exc: Exception) -> "typer.Exit":
    typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
    return typer.Exit(EXIT_FAILED)


def _model(path: Optional[Path]):
    from cxnlp.settings import get_settings
    from cxnlp.store import load_model

    return load_model(path or get_settings().model_dir)


def _auto_workers(source: str) -> int:
    """Two processes pay off only when there is enough text to amortize the pool's start-up."""
    if source == "-" or not Path(source).exists() or Path(source).stat().st_size < 300_000:
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


@app.command("classify")
def classify_cli(
    source: Annotated[str, typer.Argument(help="Input .csv/.tsv/.xlsx/.jsonl/.txt, or - for stdin")],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Output .csv/.xlsx/.jsonl (default: JSONL on stdout)")] = None,
    text_column: Annotated[Optional[str], typer.Option(help="Column holding the text (default: guessed)")] = None,
    model: Annotated[Optional[Path], typer.Option(help="Model folder (default: the shipped model)")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Processes (default: all cores for large files)")] = None,
    chunk_size: Annotated[int, typer.Option(help="Rows per chunk")] = 2000,
    ledger: Annotated[bool, typer.Option("--ledger", help="Record every classified row in the root-cause ledger")] = False,
    channel: Annotated[Optional[str], typer.Option(help="Channel recorded in the ledger for rows that name none")] = None,
) -> None:
    """Classify every row of a file; all input columns are kept and the result fields added."""
    from cxnlp.batch import classify_file

    try:
        loaded = _model(model)
        sink = recorder = None
        if ledger:
            from cxnlp.ledger.recording import BatchRecorder

            sink = recorder = BatchRecorder.open(source=source, default_channel=channel)
        progress = _progress_printer() if sys.stderr.isatty() else None
        summary = classify_file(loaded, source, output, text_column=text_column,
                                workers=workers or _auto_workers(source), chunk_size=chunk_size,
                                sink=sink, progress=progress)
        if progress:
            typer.echo("", err=True)
        for example in summary.error_examples[:5]:
            typer.echo(f"warning: {example}", err=True)
        typer.echo(summary.line() + (f"; {recorder.summary_line()}" if recorder else ""), err=True)
    except CxnlpError as exc:
        raise fail(exc) from exc


def _progress_printer():
    def show(rows: int) -> None:
        typer.echo(f"\r{rows} rows classified", nl=False, err=True)
    return show


@app.command("train")
def train_cli(
    config: Annotated[Optional[Path], typer.Option(help="Training recipe (TOML)")] = None,
    data: Annotated[Optional[list[Path]], typer.Option(help="Labeled CSV/XLSX/JSONL file(s); replaces the recipe's data")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output model folder (default: the recipe's output.dir)")] = None,
    overrides: Annotated[Optional[list[str]], typer.Option("--set", help="Recipe override, e.g. classifier.category_C=2")] = None,
    report_json: Annotated[Optional[Path], typer.Option(help="Also write the cross-validation report as JSON")] = None,
    with_ledger: Annotated[bool, typer.Option("--with-ledger", help="Add analyst-corrected ledger records")] = False,
) -> None:
    """Train a model from a recipe (the shipped one by default) and save it with its card."""
    from cxnlp.training import format_report, run_training

    try:
        model, report, data_errors = run_training(config=config, data=data or [], out=out,
                                                  overrides=overrides or [], with_ledger=with_ledger)
    except CxnlpError as exc:
        raise fail(exc) from exc
    for err in data_errors[:50]:
        typer.echo(f"bad row: {err}", err=True)
    if len(data_errors) > 50:
        typer.echo(f"... and {len(data_errors) - 50} more bad rows", err=True)
    typer.echo(format_report(report))
    typer.echo(f"saved {model.version} to {model.path} ({report['train_seconds']} s)")
    if report_json:
        report_json.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")


@app.command("evaluate")
def evaluate_cli(
    data: Annotated[Path, typer.Option(help="Labeled CSV/XLSX/JSONL file")],
    model: Annotated[Optional[Path], typer.Option(help="Model folder (default: the shipped model)")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the report as JSON")] = None,
) -> None:
    """Score a model on a labeled file: per-label P/R/F1, sentiment accuracy and confusion matrix."""
    from cxnlp.dataset import read_labeled_file
    from cxnlp.training import evaluate_model, format_report

    try:
        labeled = read_labeled_file(data, require_sentiment=False)
        report = evaluate_model(_model(model), labeled)
    except CxnlpError as exc:
        raise fail(exc) from exc
    for err in labeled.errors[:50]:
        typer.echo(f"bad row: {err}", err=True)
    typer.echo(format_report(report))
    if json_out:
        json_out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")


@app.command("serve")
def serve_cli(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    model: Annotated[Optional[Path], typer.Option(help="Model folder (default: the shipped model)")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes, forked after the model is loaded")] = 1,
    allow_unauthenticated: Annotated[bool, typer.Option(
        "--allow-unauthenticated", help="Listen beyond loopback without CXNLP_API_KEY (anyone may write)")] = False,
) -> None:
    """Serve the HTTP API (POST /v1/classify, docs at /docs)."""
    from service.runner import serve

    try:
        serve(host=host, port=port, model_dir=model, workers=workers, allow_unauthenticated=allow_unauthenticated)
    except CxnlpError as exc:
        raise fail(exc) from exc


@data_app.command("report")
def data_report_cli(
    files: Annotated[list[Path], typer.Argument(help="Labeled CSV/XLSX/JSONL file(s)")],
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the figures as JSON")] = None,
) -> None:
    """Counts per label, combination, sentiment, industry, channel and length; duplicates and diversity."""
    from cxnlp.datareport import build_report, format_data_report

    try:
        report = build_report(files)
    except CxnlpError as exc:
        raise fail(exc) from exc
    typer.echo(format_data_report(report))
    if json_out:
        json_out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")


def _ledger_session():
    from cxnlp.ledger.db import session_scope
    from cxnlp.settings import get_settings

    return session_scope(get_settings().ledger_url)


def _categories(model: Optional[Path]) -> tuple[str, ...]:
    """The category set of the model in use (from its card; the model itself is not loaded)."""
    from cxnlp.settings import get_settings
    from cxnlp.store import default_model_dir, read_card

    return tuple(read_card(model or get_settings().model_dir or default_model_dir())["categories"])


@ledger_app.command("summary")
def ledger_summary_cli(
    month: Annotated[str, typer.Option(help="Month as YYYY-MM")],
    format: Annotated[str, typer.Option(help="table or json")] = "table",
    model: Annotated[Optional[Path], typer.Option(help="Model folder whose categories are reported")] = None,
) -> None:
    """Totals, negative feedback per category/channel/department, month-over-month change, alerts."""
    from cxnlp.ledger.summary import format_summary, month_summary

    if format not in ("table", "json"):
        raise typer.BadParameter("format must be table or json")
    try:
        with _ledger_session() as session:
            summary = month_summary(session=session, month=month, categories=_categories(model))
    except CxnlpError as exc:
        raise fail(exc) from exc
    typer.echo(json.dumps(summary, ensure_ascii=False, indent=2) if format == "json" else format_summary(summary))


@ledger_app.command("export")
def ledger_export_cli(
    month: Annotated[list[str], typer.Option(help="Month(s) as YYYY-MM; one sheet each")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The .xlsx register to write")],
    model: Annotated[Optional[Path], typer.Option(help="Model folder whose categories are reported")] = None,
) -> None:
    """Write the register (台账) as analysts keep it: one sheet per month plus a summary sheet."""
    from cxnlp.ledger.register import export_register

    try:
        with _ledger_session() as session:
            n = export_register(session=session, months=month, path=output, categories=_categories(model))
    except CxnlpError as exc:
        raise fail(exc) from exc
    typer.echo(f"wrote {n} records to {output}", err=True)


@app.command("review")
def review_cli(
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Write the records to check to this .xlsx")] = None,
    import_file: Annotated[Optional[Path], typer.Option("--import", help="Apply the corrections in this reviewed .xlsx")] = None,
    limit: Annotated[int, typer.Option(help="How many records to export")] = 50,
    reviewer: Annotated[str, typer.Option(help="Name recorded for corrections whose row names no reviewer")] = "analyst",
    model: Annotated[Optional[Path], typer.Option(help="Model folder whose categories are allowed")] = None,
) -> None:
    """Export the least confident ledger records for checking, or import an analyst's corrections."""
    from cxnlp.ledger.register import export_review, import_review

    if (output is None) == (import_file is None):
        raise typer.BadParameter("give either -o FILE (export) or --import FILE")
    try:
        with _ledger_session() as session:
            if output is not None:
                n = export_review(session=session, path=output, limit=limit)
                typer.echo(f"wrote {n} records to review to {output}", err=True)
                return
            result = import_review(session=session, path=import_file, categories=_categories(model),
                                   default_actor=reviewer)
    except CxnlpError as exc:
        raise fail(exc) from exc
    for err in result.errors:
        typer.echo(f"bad row: {err}", err=True)
    typer.echo(f"applied {result.applied} corrections, {result.unchanged} rows unchanged, "
               f"{len(result.errors)} bad rows", err=True)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
