"""The ``cxnlp`` command: one verb per job. Each verb parses options, calls one library function,
prints or writes its result, and turns the library's typed errors into exit codes."""
from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from cxnlp.errors import CxnlpError
from cxnlp.io import shorten

# Plain help (no rich panels): flags show as flags (--ledger, not --ledger <bool>) and values by the
# metavars given below rather than Python type names.
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Classify Chinese customer feedback.")
data_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Inspect labeled data.")
app.add_typer(data_app, name="data")
ledger_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="The root-cause ledger (投诉根源台账).")
app.add_typer(ledger_app, name="ledger")
problems_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="The catalogue of high-frequency problems (高频问题).")
ledger_app.add_typer(problems_app, name="problems")
survey_app = typer.Typer(no_args_is_help=True, help="Satisfaction surveys (满意度调查).")
app.add_typer(survey_app, name="survey")

EXIT_USAGE, EXIT_FAILED = 2, 1
EXIT_SIGINT, EXIT_SIGTERM = 130, 143  # 128 + the signal's number, as shells report it
MESSAGE_LIMIT = 1000  # characters of an error message; each echoed value is already cut shorter


def fail(exc: Exception) -> "typer.Exit":
    typer.secho(f"error: {shorten(str(exc), MESSAGE_LIMIT)}", err=True, fg=typer.colors.RED)
    return typer.Exit(EXIT_FAILED)


def _say(prefix: str, message: str) -> None:
    typer.echo(f"{prefix}: {shorten(message, 300)}", err=True)


def _write_json(path: Path, report: object) -> None:
    """A report as JSON beside the printed one: renamed into place whole, an unwritable path one error line."""
    from cxnlp.io import write_text_atomic

    try:
        write_text_atomic(path, json.dumps(report, ensure_ascii=False, indent=2))
    except CxnlpError as exc:
        raise fail(exc) from exc


def _version() -> str:
    """The installed distribution's version, or the source checkout's pyproject.toml (one place)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cxnlp")
    except PackageNotFoundError:
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"cxnlp {_version()}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                          help="Print the version and exit")] = False,
) -> None:
    """Classify Chinese customer feedback."""


class Terminated(BaseException):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so that every cleanup on the way up runs."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


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
    source: Annotated[str, typer.Argument(metavar="FILE", help="Input .csv/.tsv/.xlsx/.jsonl/.txt, or - for stdin")],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", metavar="FILE", help="Output .csv/.tsv/.xlsx/.jsonl (default: JSONL on stdout)")] = None,
    text_column: Annotated[Optional[str], typer.Option(metavar="NAME", help="Column holding the text (default: guessed)")] = None,
    model: Annotated[Optional[Path], typer.Option(metavar="DIR", help="Model folder (default: the shipped model)")] = None,
    workers: Annotated[Optional[int], typer.Option(metavar="N", help="Processes (default: all cores for large files)")] = None,
    chunk_size: Annotated[int, typer.Option(metavar="ROWS", help="Rows per chunk")] = 2000,
    ledger: Annotated[bool, typer.Option("--ledger", help="Record every classified row in the root-cause ledger")] = False,
    channel: Annotated[Optional[str], typer.Option(metavar="NAME", help="Channel recorded in the ledger for rows that name none")] = None,
    encoding: Annotated[Optional[str], typer.Option(metavar="NAME", help="Encoding of a text input, e.g. gb18030 (default: detected from the whole file)")] = None,
    sheet: Annotated[Optional[str], typer.Option(metavar="NAME", help="Read only this sheet of an .xlsx (default: every sheet)")] = None,
) -> None:
    """Classify every row of a file; all input columns are kept and the result fields added."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    progress = None
    try:
        from cxnlp.batch import classify_file

        loaded = _model(model)
        sink = recorder = None
        if ledger:
            from cxnlp.ledger.recording import BatchRecorder

            sink = recorder = BatchRecorder.open(source=source, default_channel=channel)
            _old_default_note(recorder.url)
        progress = _progress_printer() if sys.stderr.isatty() else None
        summary = classify_file(loaded, source, output, text_column=text_column,
                                workers=workers or _auto_workers(source), chunk_size=chunk_size,
                                sink=sink, progress=progress, encoding=encoding, sheet=sheet)
        if progress:
            typer.echo("", err=True)
        for example in summary.error_examples[:5]:
            _say("warning", example)
        typer.echo(summary.line() + (f"; {recorder.summary_line()}" if recorder else ""), err=True)
    except CxnlpError as exc:
        raise fail(exc) from exc
    except (KeyboardInterrupt, Terminated) as exc:
        term = isinstance(exc, Terminated)
        written = "output on stdout is incomplete" if output is None else f"no {output} written"
        typer.echo(("\n" if progress else "") + f"interrupted ({'SIGTERM' if term else 'Ctrl-C'}): {written}"
                   + ("; nothing recorded in the ledger" if ledger else ""), err=True)
        raise typer.Exit(EXIT_SIGTERM if term else EXIT_SIGINT) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _progress_printer():
    def show(rows: int) -> None:
        typer.echo(f"\r{rows} rows classified", nl=False, err=True)
    return show


@app.command("train")
def train_cli(
    config: Annotated[Optional[Path], typer.Option(metavar="FILE", help="Training recipe (TOML)")] = None,
    data: Annotated[Optional[list[Path]], typer.Option(metavar="FILE", help="Labeled CSV/XLSX/JSONL file (repeat for several); added to the recipe's data")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Train on the --data rows alone, without the recipe's data")] = False,
    out: Annotated[Optional[Path], typer.Option(metavar="DIR", help="Output model folder (default: the recipe's output.dir)")] = None,
    overrides: Annotated[Optional[list[str]], typer.Option("--set", metavar="KEY=VALUE", help="Recipe override, e.g. classifier.category_C=2 (repeatable)")] = None,
    report_json: Annotated[Optional[Path], typer.Option(metavar="FILE", help="Also write the cross-validation report as JSON")] = None,
    with_ledger: Annotated[bool, typer.Option("--with-ledger", help="Add analyst-corrected ledger records")] = False,
) -> None:
    """Train a model from a recipe (the shipped one by default) and save it with its card."""
    from cxnlp.training import format_report, run_training

    if with_ledger:
        from cxnlp.ledger.db import describe
        from cxnlp.settings import get_settings

        typer.echo(f"ledger: {describe(get_settings().ledger_url)}", err=True)
    try:
        model, report, data_errors = run_training(config=config, data=data or [], out=out,
                                                  overrides=overrides or [], with_ledger=with_ledger,
                                                  replace=replace, progress=(lambda msg: _say("progress", msg)))
    except CxnlpError as exc:
        raise fail(exc) from exc
    for err in data_errors[:50]:
        _say("bad row", err)
    if len(data_errors) > 50:
        typer.echo(f"... and {len(data_errors) - 50} more bad rows", err=True)
    mode = model.card.get("training_mode")
    if mode:
        typer.echo("your rows were " + ("used alone (--replace)" if mode == "replaced"
                                        else "added to the recipe's data (--replace uses them alone)"), err=True)
    for source, rows in model.card["training_data"]["sources"].items():
        typer.echo(f"  {rows:>7} rows from {source}", err=True)
    typer.echo(format_report(report))
    if "held_out_writers" in report:
        from cxnlp.crossval import format_cv_report

        typer.echo(format_cv_report(report["held_out_writers"]))
    typer.echo(f"saved {model.version} to {model.path} ({report['train_seconds']} s)")
    if report_json:
        _write_json(report_json, report)


@app.command("evaluate")
def evaluate_cli(
    data: Annotated[Optional[list[Path]], typer.Option(metavar="FILE", help="Labeled CSV/XLSX/JSONL file (with --cross-validate: repeatable, replaces the recipe's data)")] = None,
    model: Annotated[Optional[Path], typer.Option(metavar="DIR", help="Model folder (default: the shipped model)")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", metavar="FILE", help="Also write the report as JSON")] = None,
    compare: Annotated[Optional[Path], typer.Option(metavar="DIR", help="Also score this model folder (e.g. models/default) on the same rows, side by side")] = None,
    cross_validate: Annotated[bool, typer.Option("--cross-validate", help="Score a recipe instead of a model: train it on folds that hold out whole writers")] = False,
    group_by: Annotated[str, typer.Option(metavar="COLUMN", help="With --cross-validate: the column whose values are held out whole")] = "writer",
    config: Annotated[Optional[Path], typer.Option(metavar="FILE", help="With --cross-validate: the training recipe (default: the shipped model's)")] = None,
    folds: Annotated[int, typer.Option(metavar="N", help="With --cross-validate: number of folds")] = 5,
    train_fraction: Annotated[float, typer.Option(metavar="SHARE", help="With --cross-validate: share of each fold's training writers kept (learning curve)")] = 1.0,
    overrides: Annotated[Optional[list[str]], typer.Option("--set", metavar="KEY=VALUE", help="With --cross-validate: recipe override (repeatable)")] = None,
) -> None:
    """Score a model on a labeled file (per-label P/R/F1, exact match, sentiment), or cross-validate a recipe."""
    from cxnlp.training import evaluate_model, format_report

    if not cross_validate:
        if len(data or []) != 1:
            raise typer.BadParameter("give one --data FILE (or --cross-validate to score a recipe)")
        if config or overrides:
            raise typer.BadParameter("--config and --set go with --cross-validate")
    elif compare is not None:
        raise typer.BadParameter("--compare scores two models; it does not go with --cross-validate")
    try:
        if cross_validate:
            from cxnlp.crossval import cross_validate as run_cv, format_cv_report
            from cxnlp.training import load_training_data, resolve_recipe

            recipe, root = resolve_recipe(config, data or [], overrides or [], replace=True)
            labeled = load_training_data(recipe, root)
            report = run_cv(labeled, recipe, group_by=group_by, folds=folds, train_fraction=train_fraction,
                            progress=(lambda msg: _say("progress", msg)))
            text = format_cv_report(report)
        else:
            from cxnlp.dataset import read_labeled_file

            labeled = read_labeled_file((data or [])[0], require_sentiment=False)
            if compare is not None:
                from cxnlp.store import load_model
                from cxnlp.training import compare_models, format_comparison

                report = compare_models(_model(model), load_model(compare), labeled)
                text = format_comparison(report)
            else:
                report = evaluate_model(_model(model), labeled)
                text = format_report(report)
    except CxnlpError as exc:
        raise fail(exc) from exc
    for err in labeled.errors[:50]:
        _say("bad row", err)
    typer.echo(text)
    if json_out:
        _write_json(json_out, report)


@app.command("serve")
def serve_cli(
    host: Annotated[str, typer.Option(metavar="ADDRESS", help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="Port")] = 8000,
    model: Annotated[Optional[Path], typer.Option(metavar="DIR", help="Model folder (default: the shipped model)")] = None,
    workers: Annotated[int, typer.Option(metavar="N", help="Worker processes, forked after the model is loaded")] = 1,
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
    files: Annotated[list[Path], typer.Argument(metavar="FILE...", help="Labeled CSV/XLSX/JSONL file(s)")],
    json_out: Annotated[Optional[Path], typer.Option("--json", metavar="FILE", help="Also write the figures as JSON")] = None,
) -> None:
    """Counts per label, combination, sentiment, industry, channel and length; duplicates and diversity."""
    from cxnlp.datareport import build_report, format_data_report

    try:
        report = build_report(files)
    except CxnlpError as exc:
        raise fail(exc) from exc
    typer.echo(format_data_report(report))
    if json_out:
        _write_json(json_out, report)


def _ledger_session():
    """A session on the configured ledger; says which database it is (on stderr), so a command run in
    another folder or with another CXNLP_LEDGER_URL never silently reads or writes another ledger."""
    from cxnlp.ledger.db import describe, session_scope
    from cxnlp.settings import get_settings

    url = get_settings().ledger_url
    typer.echo(f"ledger: {describe(url)}", err=True)
    _old_default_note(url)
    return session_scope(url)


def _old_default_note(url: str) -> None:
    """cxnlp 1.0 kept the ledger in ./cxnlp_ledger.db: say so when one is here and another is used."""
    from cxnlp.settings import default_ledger_url

    if url == default_ledger_url() and Path("cxnlp_ledger.db").exists():
        _say("note", "./cxnlp_ledger.db (where cxnlp 1.0 kept the ledger) is not used; "
                     "CXNLP_LEDGER_URL=sqlite:///cxnlp_ledger.db uses it")


def _categories(model: Optional[Path]) -> tuple[str, ...]:
    """The category set of the model in use (from its card; the model itself is not loaded)."""
    from cxnlp.settings import get_settings
    from cxnlp.store import default_model_dir, read_card

    return tuple(read_card(model or get_settings().model_dir or default_model_dir())["categories"])


@ledger_app.command("summary")
def ledger_summary_cli(
    month: Annotated[str, typer.Option(metavar="YYYY-MM", help="Month as YYYY-MM")],
    format: Annotated[str, typer.Option(metavar="table|json", help="table or json")] = "table",
    model: Annotated[Optional[Path], typer.Option(metavar="DIR", help="Model folder whose categories are reported")] = None,
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


@ledger_app.command("overdue")
def ledger_overdue_cli(
    month: Annotated[Optional[str], typer.Option(metavar="YYYY-MM", help="Only complaints received this month")] = None,
    limit: Annotated[int, typer.Option(metavar="N", help="At most this many")] = 200,
) -> None:
    """Complaints past their resolution deadline and not resolved, oldest deadline first (praise and
    questions have no resolution deadline and never appear here)."""
    from cxnlp.ledger.records import utcnow
    from cxnlp.ledger.summary import overdue_complaints, overdue_table, render_table

    try:
        with _ledger_session() as session:
            rows = overdue_complaints(session, month, utcnow(), limit=limit)
    except CxnlpError as exc:
        raise fail(exc) from exc
    typer.echo(render_table(overdue_table(rows)))


@ledger_app.command("followups")
def ledger_followups_cli(
    output: Annotated[Optional[Path], typer.Option("-o", "--output", metavar="FILE", help="Write the follow-ups to make to this .xlsx")] = None,
    import_file: Annotated[Optional[Path], typer.Option("--import", metavar="FILE", help="Record the scores filled in on this .xlsx")] = None,
    limit: Annotated[int, typer.Option(metavar="N", help="How many follow-ups to list or export")] = 200,
    actor: Annotated[str, typer.Option(metavar="NAME", help="Name recorded for rows that name no caller")] = "analyst",
) -> None:
    """The follow-up calls (回访) to make, earliest due first; export them to a sheet or import the scores
    (1–5; a score of 3 or less schedules a second call within 48 h)."""
    from cxnlp.ledger.followups import list_followups
    from cxnlp.ledger.register import export_followups, import_followups
    from cxnlp.ledger.summary import Table, render_table
    from cxnlp.ledger.timezone import show

    if output is not None and import_file is not None:
        raise typer.BadParameter("give -o FILE (export) or --import FILE, not both")
    try:
        with _ledger_session() as session:
            if output is not None:
                n = export_followups(session=session, path=output, limit=limit)
                typer.echo(f"wrote {n} follow-ups to {output}", err=True)
                return
            if import_file is not None:
                result = import_followups(session=session, path=import_file, default_actor=actor)
            else:
                rows = [[f.id, f.record.id, f.record.source_id, f.round, show(f.due_at), f.record.customer or "",
                         "、".join(f.record.problems or []), f.record.text]
                        for f in list_followups(session=session, limit=limit)]
                typer.echo(render_table(Table(f"待回访（{len(rows)}）", ["回访编号", "记录", "工单号", "轮次", "应回访时间",
                                                                   "客户ID", "问题", "内容"], rows), max_cell=40))
                return
    except CxnlpError as exc:
        raise fail(exc) from exc
    for err in result.errors:
        _say("bad row", err)
    typer.echo(f"recorded {result.applied} follow-ups, {result.unchanged} rows without a score, "
               f"{len(result.errors)} bad rows", err=True)


@problems_app.command("suggest")
def problems_suggest_cli(
    month: Annotated[str, typer.Option(metavar="YYYY-MM", help="Month whose unmatched complaints are read")],
    limit: Annotated[int, typer.Option(metavar="N", help="At most this many proposals")] = 10,
    min_count: Annotated[int, typer.Option(metavar="N", help="Smallest group worth a name")] = 3,
) -> None:
    """Propose new problems from the month's complaints no catalogue problem matched: key phrases
    (jieba TF-IDF) and clusters, each with its count and three masked examples."""
    from cxnlp.ledger.problems import suggest_problems
    from cxnlp.ledger.summary import month_bounds

    try:
        start, end = month_bounds(month)
        with _ledger_session() as session:
            proposals = suggest_problems(session=session, start=start, end=end, max_proposals=limit,
                                         min_count=min_count)
    except CxnlpError as exc:
        raise fail(exc) from exc
    if not proposals:
        typer.echo("no proposals: every complaint of the month matched a problem, or too few are left")
    for i, p in enumerate(proposals, 1):
        typer.echo(f"{i}. {p.phrases[0]}  ({p.count} complaints; key phrases: {'、'.join(p.phrases)}; category {p.category or '-'})")
        for example in p.examples:
            typer.echo(f"     - {shorten(example, 80)}")
        typer.echo(f"   accept: cxnlp ledger problems accept {p.phrases[0]} --category {p.category or 'process'} "
                   f"--cues {','.join(p.phrases)}")


@problems_app.command("accept")
def problems_accept_cli(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The problem's name (a proposal's, or your own)")],
    cues: Annotated[str, typer.Option(metavar="A,B,…", help="Comma-separated cue phrases")],
    category: Annotated[str, typer.Option(metavar="NAME", help="attitude / speed / expertise / process")] = "process",
    department: Annotated[str, typer.Option(metavar="NAME", help="The department that owns it")] = "",
) -> None:
    """Add a problem to your catalogue (read after the shipped one); it applies to complaints recorded
    from now on, under this name every month."""
    from cxnlp.ledger.problems import accept_problem

    try:
        path = accept_problem(name=name, category=category, department=department,
                              cues=[c for c in cues.replace("，", ",").split(",")])
    except CxnlpError as exc:
        raise fail(exc) from exc
    typer.echo(f"added {name!r} to {path}", err=True)


@ledger_app.command("export")
def ledger_export_cli(
    month: Annotated[list[str], typer.Option(metavar="YYYY-MM", help="Month as YYYY-MM (repeat for several); one sheet each")],
    output: Annotated[Path, typer.Option("-o", "--output", metavar="FILE", help="The register to write: .xlsx (a sheet per month and 汇总) or .csv/.tsv (the records as one table)")],
    model: Annotated[Optional[Path], typer.Option(metavar="DIR", help="Model folder whose categories are reported")] = None,
) -> None:
    """Write the register (台账) as analysts keep it: one sheet per month plus a summary sheet (.xlsx), or
    every month's records as one CSV/TSV table."""
    from cxnlp.ledger.register import export_register

    try:
        with _ledger_session() as session:
            n = export_register(session=session, months=month, path=output, categories=_categories(model))
    except CxnlpError as exc:
        raise fail(exc) from exc
    typer.echo(f"wrote {n} records to {output}", err=True)


@app.command("review")
def review_cli(
    output: Annotated[Optional[Path], typer.Option("-o", "--output", metavar="FILE", help="Write the records to check to this .xlsx")] = None,
    import_file: Annotated[Optional[Path], typer.Option("--import", metavar="FILE", help="Apply the corrections in this reviewed .xlsx")] = None,
    limit: Annotated[int, typer.Option(metavar="N", help="How many records to export")] = 50,
    reviewer: Annotated[str, typer.Option(metavar="NAME", help="Name recorded for corrections whose row names no reviewer")] = "analyst",
    model: Annotated[Optional[Path], typer.Option(metavar="DIR", help="Model folder whose categories are allowed")] = None,
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
        _say("bad row", err)
    typer.echo(f"applied {result.applied} corrections, {result.unchanged} rows unchanged, "
               f"{len(result.errors)} bad rows", err=True)


def _split_columns(value: Optional[str]) -> Optional[list[str]]:
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


def _dimension_overrides(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        dim, sep, column = value.partition("=")
        if not sep or not dim.strip() or not column.strip():
            raise typer.BadParameter(f"--dimension takes DIMENSION=COLUMN, e.g. 响应速度=Q3; got {value!r}")
        out[dim.strip()] = column.strip()
    return out


@survey_app.command("report")
def survey_report_cli(
    export: Annotated[Path, typer.Argument(metavar="FILE", help="The survey export (.csv/.tsv/.xlsx) as the platform wrote it")],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", metavar="FILE", help="The .xlsx workbook to write")] = None,
    format: Annotated[str, typer.Option("--format", metavar="xlsx|json", help="xlsx (needs -o) or json (to stdout, or -o FILE.json)")] = "xlsx",
    rating_columns: Annotated[Optional[str], typer.Option(metavar="COLUMNS", help="Comma-separated 1–5 rating columns (default: recognised)")] = None,
    text_columns: Annotated[Optional[str], typer.Option(metavar="COLUMNS", help="Comma-separated open-answer columns (default: recognised)")] = None,
    duration_column: Annotated[Optional[str], typer.Option(metavar="COLUMN", help="Column with the time taken (所用时间)")] = None,
    nps_column: Annotated[Optional[str], typer.Option(metavar="COLUMN", help="Column with the 0–10 recommendation question")] = None,
    dimension: Annotated[Optional[list[str]], typer.Option(metavar="DIMENSION=COLUMN", help="DIMENSION=COLUMN, e.g. 响应速度=Q3 (repeatable)")] = None,
    by: Annotated[Optional[list[str]], typer.Option(metavar="COLUMN", help="Grouping column for scores per group (repeatable)")] = None,
    compare: Annotated[Optional[Path], typer.Option(metavar="FILE", help="The previous survey's export, for the change of each score")] = None,
    negative_max: Annotated[int, typer.Option(metavar="N", help="Answers rated at most this are negative feedback")] = 3,
    min_seconds: Annotated[float, typer.Option(metavar="SECONDS", help="Submissions faster than this are invalid")] = 30.0,
    duplicate_minutes: Annotated[float, typer.Option(metavar="MINUTES", help="Identical answers from one IP within this are duplicates")] = 10.0,
    model: Annotated[Optional[Path], typer.Option(metavar="DIR", help="Model folder (default: the shipped model)")] = None,
    ledger: Annotated[bool, typer.Option("--ledger", help="Record the negative answers in the ledger (channel 问卷)")] = False,
) -> None:
    """Clean a questionnaire export, score each dimension and classify the negative open answers."""
    from cxnlp.surveys import CleaningRules, SurveyOptions, build_survey_report, write_survey_workbook
    from cxnlp.surveys.columns import SurveyLayout

    if format not in ("xlsx", "json"):
        raise typer.BadParameter("--format must be xlsx or json")
    if format == "xlsx" and (output is None or output.suffix.lower() != ".xlsx"):
        raise typer.BadParameter("the workbook needs -o FILE.xlsx (or use --format json)")
    options = SurveyOptions(rating_columns=_split_columns(rating_columns), text_columns=_split_columns(text_columns),
                            duration_column=duration_column, nps_column=nps_column,
                            dimensions=_dimension_overrides(dimension or []), group_by=list(by or []),
                            negative_max=negative_max,
                            rules=CleaningRules(min_seconds=min_seconds, duplicate_minutes=duplicate_minutes))
    try:
        from cxnlp.settings import get_settings

        report = build_survey_report(export, _model(model), options, previous=compare,
                                     ledger_url=get_settings().ledger_url if ledger else None)
        layout = report["layout"]
        for line in SurveyLayout(columns=[], **layout).describe():
            typer.echo(line, err=True)
        if format == "json":
            text = json.dumps(report, ensure_ascii=False, indent=1)
            if output is None:
                typer.echo(text)
            else:
                from cxnlp.io import write_text_atomic

                write_text_atomic(output, text)
        else:
            write_survey_workbook(report, output)
    except CxnlpError as exc:
        raise fail(exc) from exc
    clean, overall, neg = report["cleaning"], report["scores"]["overall"], report["negative"]
    csat = f"{overall['csat']:.1%}" if overall["csat"] is not None else "n/a"
    typer.echo(f"{clean['submissions']} submissions, {clean['valid']} valid ({clean['valid_rate']:.1%}); "
               f"satisfaction {csat}; {neg['texts']} negative answers classified"
               + (f"; wrote {output}" if output else ""), err=True)
    if "ledger" in report:
        rec = report["ledger"]
        typer.echo(f"ledger {rec['database']}: {rec['recorded']} recorded, {rec['already_there']} already there",
                   err=True)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
