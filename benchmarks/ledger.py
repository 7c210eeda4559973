#!/usr/bin/env python3
"""Speed of the root-cause ledger: recording a `cxnlp classify --ledger` run and the month summary.

Sections (pick some with --only):
  write    `cxnlp classify IN.csv -o OUT.csv` over N rows (default 30,000) of the project's feedback
           texts, each with its own id, channel and date, with and without `--ledger` (a fresh SQLite
           ledger per run): the whole command timed from launch to exit (start-up, model load, reading,
           classifying, the ledger rows and their commit, the output file), median of --runs. This
           is the figure of the issue's target (>= 5,000 rows/s with --ledger). Beside it, the ledger
           stage alone in one process, predictions made first: `BatchRecorder.prepare` (masking,
           severity, urgency and problem rules, per 2,000-row chunk; in the command the classifying
           processes do this) and `BatchRecorder.write` + one commit (the INSERTs, in the command's
           main process), each timed apart.
  summary  a ledger of about 15,000 records in one month (and some in the month before), then
           `month_summary` (what `GET /v1/ledger/summary` and `cxnlp ledger summary` return): median
           seconds of --runs calls. With --ledger-records N the month's records are copied into the
           months before it (by SQL, not classified again) until the ledger holds N records, and half of
           the month's complaints are answered, resolved and followed up first.

Figures are printed, never checked. --url points at another ledger database (e.g. PostgreSQL) for the
in-process parts; every run uses a fresh schema or file. Run it from the repository root:

    python benchmarks/ledger.py                      # both sections, SQLite
    python benchmarks/ledger.py --only summary --url postgresql+psycopg://postgres@127.0.0.1:5432/test
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))
from _common import FEEDBACK_CSV, MODEL_DIR, SEED, cxnlp_command, fmt, machine_header, machine_info, markdown_table, median  # noqa: E402

CHANNELS = ("电话", "在线", "APP", "邮件", "")


def feedback_texts() -> list[str]:
    with FEEDBACK_CSV.open(encoding="utf-8-sig", newline="") as fh:
        return [row["text"] for row in csv.DictReader(fh) if row["text"].strip()]


def write_input(path: Path, rows: int, month: str = "2026-11") -> Path:
    """``rows`` rows: id, channel, received_at (spread over ``month``) and a text of the project's data."""
    rnd = random.Random(SEED)
    texts = feedback_texts()
    start = datetime.strptime(month + "-01", "%Y-%m-%d")
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["id", "channel", "received_at", "text"])
        for i in range(rows):
            when = start + timedelta(minutes=rnd.randrange(28 * 24 * 60))
            out.writerow([f"B-{i}", rnd.choice(CHANNELS), when.strftime("%Y-%m-%d %H:%M"), texts[i % len(texts)]])
    return path


def fresh_url(base: str | None, tmp: Path) -> tuple[str, object]:
    """A ledger URL no run has used, and a function that drops it."""
    if base is None or base.startswith("sqlite"):
        path = tmp / f"ledger-{uuid.uuid4().hex[:8]}.db"
        return f"sqlite:///{path}", lambda: None
    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"create schema {schema}"))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f"drop schema {schema} cascade"))

    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}", drop


def time_command(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds of the command, and the CPU seconds (user + system) of it and its worker processes:
    the CPU figure says what the machine's other load does not."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr[-2000:]}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def load_model():
    from cxnlp.store import load_model as load

    return load(MODEL_DIR)


def predictions(model, rows: list[dict]) -> list:
    """As `classify --ledger` makes them: with the model's tokens kept for the ledger rules (where this
    cxnlp can)."""
    import inspect

    from cxnlp.prediction import predict_texts

    keep = {"keep_tokens": True} if "keep_tokens" in inspect.signature(predict_texts).parameters else {}
    return predict_texts(model, [r["text"] for r in rows], **keep)


def read_rows(path: Path) -> list:
    from cxnlp.io import Row

    with path.open(encoding="utf-8", newline="") as fh:
        return [Row(i + 2, row) for i, row in enumerate(csv.DictReader(fh))]


def record(url: str, rows: list, preds: list, chunk: int = 2000) -> dict[str, float]:
    """Wall seconds of this process to prepare and to write ``rows`` in one run (chunks of ``chunk``, one
    commit), as `classify --ledger` does, and the CPU seconds of both (they say what the machine's other
    load does not)."""
    from cxnlp.ledger.recording import BatchRecorder
    from cxnlp.ledger.rules import LedgerRules

    recorder = BatchRecorder(url=url, rules=LedgerRules.load(), source_name="bench.csv", default_channel=None)
    prepare = write = 0.0
    cpu = time.process_time()
    for i in range(0, len(rows), chunk):
        t0 = time.perf_counter()
        if hasattr(recorder, "prepare"):
            prepared = recorder.prepare(rows[i:i + chunk], preds[i:i + chunk], "text")
            t1 = time.perf_counter()
            recorder.write(prepared)
        else:  # cxnlp 1.0.0, for the "before" figures (rows prepared inside write)
            t1 = t0
            recorder.write(rows[i:i + chunk], preds[i:i + chunk], "text")
        prepare, write = prepare + t1 - t0, write + time.perf_counter() - t1
    t0 = time.perf_counter()
    recorder.commit()
    write += time.perf_counter() - t0
    return {"prepare": prepare, "write": write, "cpu": time.process_time() - cpu}


def section_write(args, tmp: Path) -> dict:
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    source = write_input(tmp / "in.csv", args.rows)
    base = [*cxnlp_command(args.cxnlp), "classify", str(source), "-o", str(tmp / "out.csv")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    plain, ledger, plain_cpu, ledger_cpu = [], [], [], []
    for _ in range(args.runs):
        wall, cpu = time_command(base, env)
        plain.append(wall)
        plain_cpu.append(cpu)
        url, drop = fresh_url(None, tmp)
        wall, cpu = time_command(base + ["--ledger"], {**env, "CXNLP_LEDGER_URL": url})
        ledger.append(wall)
        ledger_cpu.append(cpu)
        drop()
    model = load_model()
    rows = read_rows(source)
    preds = predictions(model, [r.values for r in rows])
    alone = []
    for _ in range(args.runs):
        url, drop = fresh_url(args.url, tmp)
        alone.append(record(url, rows, preds))
        drop()
    stage = {k: median([a[k] for a in alone]) for k in ("prepare", "write", "cpu")}
    both = median([a["prepare"] + a["write"] for a in alone])
    return {"load": load, "load_after": " / ".join(f"{x:.1f}" for x in os.getloadavg()), "rows": args.rows,
            "classify_s": median(plain), "classify_ledger_s": median(ledger),
            "classify_rows_per_s": args.rows / median(plain), "classify_ledger_rows_per_s": args.rows / median(ledger),
            "classify_cpu_s": median(plain_cpu), "classify_ledger_cpu_s": median(ledger_cpu),
            "prepare_s": stage["prepare"], "prepare_rows_per_s": args.rows / stage["prepare"],
            "write_s": stage["write"], "write_rows_per_s": args.rows / stage["write"],
            "recorder_s": both, "recorder_rows_per_s": args.rows / both,
            "recorder_cpu_s": stage["cpu"], "recorder_rows_per_cpu_s": args.rows / stage["cpu"],
            "recorder_url": (args.url or "sqlite").split("://")[0]}


def play_and_grow(url: str, total: int) -> None:
    """Half the month's complaints through the cycle (with follow-ups), then copies of the month's records
    in earlier months until the ledger holds ``total`` records."""
    from sqlalchemy import func, select, text
    from sqlalchemy.orm import Session

    from cxnlp.ledger.db import get_engine
    from cxnlp.ledger.followups import record_followup
    from cxnlp.ledger.models import FeedbackRecord
    from cxnlp.ledger.records import update_record

    engine = get_engine(url)
    with Session(engine) as session:
        ids = session.scalars(select(FeedbackRecord.id).where(FeedbackRecord.kind == "complaint")
                              .order_by(FeedbackRecord.id)).all()[::2]
        for rid in ids:
            for status in ("responded", "resolved"):
                update_record(session=session, record_id=rid, changes={"status": status}, actor="bench")
            rec = session.get(FeedbackRecord, rid)
            record_followup(session=session, followup_id=rec.followups[0].id, score=rid % 5 + 1)
        session.commit()
        columns = [c.name for c in FeedbackRecord.__table__.columns if c.name not in ("id", "source_id", "received_at")]
        base = session.scalar(select(func.count()).select_from(FeedbackRecord))
        shift = ("datetime(received_at, '-{k} months')" if engine.dialect.name == "sqlite"
                 else "received_at - interval '{k} months'")
        k = 1
        while base < total:
            cols = ", ".join(columns)
            session.execute(text(f"INSERT INTO feedback (source_id, received_at, {cols}) SELECT source_id || '-c{k}', "
                                 f"{shift.format(k=k + 1)}, {cols} FROM feedback WHERE source_id NOT LIKE '%-c%' "
                                 f"LIMIT {total - base}"))
            base = session.scalar(select(func.count()).select_from(FeedbackRecord))
            k += 1
        session.commit()


def section_summary(args, tmp: Path) -> dict:
    from sqlalchemy.orm import Session

    from cxnlp.ledger.db import get_engine
    from cxnlp.ledger.summary import month_summary

    month_rows = read_rows(write_input(tmp / "month.csv", args.summary_rows))
    before_rows = read_rows(write_input(tmp / "before.csv", args.summary_rows // 5, month="2026-10"))
    for r in before_rows:
        r.values["id"] = "A-" + r.values["id"]
    model = load_model()
    url, drop = fresh_url(args.url, tmp)
    record(url, month_rows, predictions(model, [r.values for r in month_rows]))
    record(url, before_rows, predictions(model, [r.values for r in before_rows]))
    if args.ledger_records:
        play_and_grow(url, args.ledger_records)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    categories = tuple(model.estimator.categories_)
    times = []
    with Session(get_engine(url)) as session:
        month_summary(session=session, month="2026-11", categories=categories)  # warm
        for _ in range(args.runs):
            start = time.perf_counter()
            s = month_summary(session=session, month="2026-11", categories=categories)
            times.append(time.perf_counter() - start)
            session.rollback()
    get_engine(url).dispose()
    drop()
    return {"load": load, "records": s["total"], "previous_month": s["previous"]["total"], "summary_s": median(times),
            "ledger_records": args.ledger_records or s["total"] + s["previous"]["total"],
            "summary_url": (args.url or "sqlite").split("://")[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="write,summary", help="sections: write, summary")
    parser.add_argument("--rows", type=int, default=30_000, help="rows of the classify runs")
    parser.add_argument("--summary-rows", type=int, default=15_000, help="records in the summarized month")
    parser.add_argument("--ledger-records", type=int, default=0,
                        help="grow the ledger to this many records before timing the summary (e.g. 200000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (the median is printed)")
    parser.add_argument("--url", default=None, help="ledger database for the in-process parts (default: SQLite)")
    parser.add_argument("--cxnlp", default=None, help="command that runs cxnlp (default: python -m cxnlp)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    only = set(args.only.split(","))
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        if "write" in only:
            out["write"] = section_write(args, Path(tmp))
        if "summary" in only:
            out["summary"] = section_summary(args, Path(tmp))
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return
    print(machine_header(machine_info()))
    if "write" in out:
        w = out["write"]
        print(f"\n## Recording a run ({w['rows']:,} rows, median of {args.runs})\n")
        print(f"load average before: {w['load']}; after: {w['load_after']}\n")
        print(markdown_table(["what", "seconds", "rows/s"], [
            ["cxnlp classify (no ledger): whole command, launch to exit", fmt(w["classify_s"], 2),
             fmt(w["classify_rows_per_s"], 0)],
            ["cxnlp classify --ledger (SQLite): whole command, launch to exit", fmt(w["classify_ledger_s"], 2),
             fmt(w["classify_ledger_rows_per_s"], 0)],
            ["cxnlp classify (no ledger): CPU seconds of the command and its workers", fmt(w["classify_cpu_s"], 2),
             fmt(args.rows / w["classify_cpu_s"], 0)],
            ["cxnlp classify --ledger (SQLite): CPU seconds of the command and its workers",
             fmt(w["classify_ledger_cpu_s"], 2), fmt(args.rows / w["classify_ledger_cpu_s"], 0)],
            [f"ledger stage alone ({w['recorder_url']}), one process: rows prepared (masking, rules)",
             fmt(w["prepare_s"], 2), fmt(w["prepare_rows_per_s"], 0)],
            [f"ledger stage alone ({w['recorder_url']}), one process: write (INSERTs + commit)",
             fmt(w["write_s"], 2), fmt(w["write_rows_per_s"], 0)],
            [f"ledger stage alone ({w['recorder_url']}), one process: prepare + write", fmt(w["recorder_s"], 2),
             fmt(w["recorder_rows_per_s"], 0)],
            [f"ledger stage alone ({w['recorder_url']}), CPU time of that process", fmt(w["recorder_cpu_s"], 2),
             fmt(w["recorder_rows_per_cpu_s"], 0)],
        ]))
    if "summary" in out:
        s = out["summary"]
        print(f"\n## Month summary ({s['records']:,} records in the month, {s['previous_month']:,} the month "
              f"before, {s['ledger_records']:,} in the ledger; {s['summary_url']}; median of {args.runs})\n")
        print(f"load average before: {s['load']}\n")
        print(markdown_table(["what", "seconds"], [["month_summary", fmt(s["summary_s"], 3)]]))


if __name__ == "__main__":
    main()
