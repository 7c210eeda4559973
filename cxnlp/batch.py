"""Batch classification of a file: stream rows in chunks, classify them (on several processes when
the input is large), and write every input row back with the contract fields added.

The model and jieba are loaded once in the parent before worker processes fork, so workers share
their memory pages and start at once. Workers also format their chunks' output, so the parent only
reads rows and appends text. Output goes through an AtomicWriter: a run that fails or is
interrupted leaves no partial file behind.
"""
from __future__ import annotations

import multiprocessing as mp
import signal
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from itertools import chain
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from cxnlp.io import XLSX_CELL_LIMIT, AtomicWriter, Row, RowFormatter, open_table
from cxnlp.prediction import RESULT_FIELDS, Prediction, predict_texts
from cxnlp.store import LoadedModel

DEFAULT_CHUNK = 2000


class ResultSink(Protocol):
    """Something that keeps results besides the output file (the ledger): one transaction per run.

    ``prepare`` runs where a chunk was classified (a worker process, or this one) and does no I/O, so
    the per-row work (masking, rules, serialization) is spread over the workers; ``write`` gets what
    it returned, in input order, in this process."""

    def prepare(self, rows: list[Row], preds: list[Prediction], text_column: str) -> Any: ...
    def write(self, prepared: Any) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...

ProgressHook = Callable[[int], None]


@dataclass
class BatchSummary:
    rows: int = 0
    errors: int = 0
    per_category: Counter = field(default_factory=Counter)
    per_sentiment: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    error_examples: list[str] = field(default_factory=list)
    cut_cells: int = 0  # XLSX cells cut to Excel's limit (the row's error says which)
    input: str = ""  # what was read: the encoding, or the sheets of a workbook

    def add(self, preds: list[Prediction]) -> None:
        for p in preds:
            self.rows += 1
            if p.error:
                self.errors += 1
                if len(self.error_examples) < 20:
                    self.error_examples.append(p.error)
            else:
                self.per_category.update(p.categories)
                self.per_sentiment[p.sentiment] += 1

    def merge(self, other: "BatchSummary") -> None:
        self.rows += other.rows
        self.errors += other.errors
        self.per_category.update(other.per_category)
        self.per_sentiment.update(other.per_sentiment)
        self.cut_cells += other.cut_cells
        self.error_examples.extend(other.error_examples[: 20 - len(self.error_examples)])

    def line(self) -> str:
        cats = ", ".join(f"{k} {v}" for k, v in sorted(self.per_category.items())) or "none"
        sents = ", ".join(f"{k} {v}" for k, v in sorted(self.per_sentiment.items()))
        rate = self.rows / self.seconds if self.seconds else 0.0
        cut = f"; {self.cut_cells} XLSX cells cut to {XLSX_CELL_LIMIT:,} characters" if self.cut_cells else ""
        read = f"; {self.input}" if self.input else ""
        return (f"{self.rows} rows, {self.errors} errors; categories: {cats}; sentiment: {sents}{cut}{read}; "
                f"{self.seconds:.1f} s ({rate:.0f} rows/s)")


@dataclass
class ChunkResult:
    """A classified chunk as the writing process needs it: the formatted output, its tally, and what
    the sink (the ledger) prepared from its predictions, when there is a sink."""

    output: str | list[list[Any]]
    tally: BatchSummary
    prepared: Any = None


SinkPrepare = Callable[[list[Row], list[Prediction], str], Any]


def _rows_to_texts(rows: list[Row], text_column: str) -> list[Any]:
    return [None if r.problem and not r.values else r.values.get(text_column) for r in rows]


def _classify_chunk(model: LoadedModel, rows: list[Row], text_column: str,
                    keep_tokens: bool = False) -> list[Prediction]:
    preds = predict_texts(model, _rows_to_texts(rows, text_column), keep_tokens=keep_tokens)
    for row, pred in zip(rows, preds):
        if row.problem:  # a row with no values (undecodable, invalid JSON) has no text: its problem says it all
            reason = f"{row.where}: {row.problem}"
            pred.error = reason if pred.error is None or not row.values else f"{reason}; {pred.error}"
        elif pred.error:
            pred.error = f"{row.where}: {pred.error}"
    return preds


def _input_key(key: str) -> str:
    return f"input_{key}" if key in RESULT_FIELDS else key


def output_row(row: Row, pred: Prediction) -> dict[str, Any]:
    """The input row's own fields, then the contract fields (an input column of the same name is kept
    as ``input_<name>``)."""
    out = {_input_key(k): v for k, v in row.values.items()}
    out.update(pred.to_dict())
    return out


def output_columns(rows: list[Row], input_columns: list[str]) -> list[str]:
    """The output header: the first rows' fields as ``output_row`` names them, in order of appearance
    (the input's own columns when there are no rows), with the contract fields after the first row's."""
    seen: dict[str, None] = dict.fromkeys(map(_input_key, input_columns)) if rows else {}
    for row in rows or [Row(0, dict.fromkeys(input_columns))]:
        seen.update(dict.fromkeys(map(_input_key, row.values)))
        seen.update(dict.fromkeys(RESULT_FIELDS))
    return list(seen)


def _classify_and_format(model: LoadedModel, rows: list[Row], text_column: str, formatter: RowFormatter,
                         prepare: SinkPrepare | None) -> ChunkResult:
    preds = _classify_chunk(model, rows, text_column, keep_tokens=prepare is not None)  # the sink reads them
    tally = BatchSummary()
    tally.add(preds)
    output, tally.cut_cells = formatter.format_counted([output_row(r, p) for r, p in zip(rows, preds)])
    return ChunkResult(output, tally, prepare(rows, preds, text_column) if prepare is not None else None)


# Worker processes get the parent's model through fork; this holds it in each child.
_WORKER: dict[str, Any] = {}


def _worker_init(model: LoadedModel, text_column: str, formatter: RowFormatter, prepare: SinkPrepare | None) -> None:
    # Ctrl-C and SIGTERM are the parent's to handle (it cleans up, then ends the pool): no worker tracebacks
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _WORKER.update(model=model, column=text_column, formatter=formatter, prepare=prepare)


def _worker_run(rows: list[Row]) -> ChunkResult:
    w = _WORKER
    return _classify_and_format(w["model"], rows, w["column"], w["formatter"], w["prepare"])


def classify_rows(model: LoadedModel, chunks: Iterator[list[Row]], text_column: str, formatter: RowFormatter, *,
                  workers: int = 1, prepare: SinkPrepare | None = None) -> Iterator[tuple[list[Row], ChunkResult]]:
    """Classified and formatted chunks, in input order, on ``workers`` processes in all.

    The calling process is one of them: ``workers - 1`` forked processes take chunks (and format their
    output) while each has fewer than two in hand, and the calling process classifies a chunk itself
    only when they are all that busy. So it takes the share that reading, writing and recording leave
    it time for (a fixed share made the workers wait for it when a ledger write was added), and one
    process fewer than cores means one copy fewer of the model's private memory.
    """
    if workers <= 1:
        for rows in chunks:
            yield rows, _classify_and_format(model, rows, text_column, formatter, prepare)
        return
    model.warm_up()  # segmenter and lookup tables loaded once, before fork
    ctx = mp.get_context("fork")
    pending: deque[tuple[list[Row], Any]] = deque()
    with ctx.Pool(workers - 1, initializer=_worker_init,
                  initargs=(model, text_column, formatter, prepare)) as pool:
        for rows in chunks:
            if sum(not _done(result) for _, result in pending) < 2 * (workers - 1):
                pending.append((rows, pool.apply_async(_worker_run, (rows,))))
            else:
                pending.append((rows, _classify_and_format(model, rows, text_column, formatter, prepare)))
            # hand back what is done, in order; at most a few chunks per process in flight
            while pending and (len(pending) > 2 * workers or _done(pending[0][1])):
                rows_done, result = pending.popleft()
                yield rows_done, _result(result)
        while pending:
            rows_done, result = pending.popleft()
            yield rows_done, _result(result)


def _done(result: Any) -> bool:
    return isinstance(result, ChunkResult) or result.ready()


def _result(result: Any) -> ChunkResult:
    return result if isinstance(result, ChunkResult) else result.get()


def classify_file(
    model: LoadedModel,
    source: str | Path,
    output: str | Path | None,
    *,
    text_column: str | None = None,
    workers: int = 1,
    chunk_size: int = DEFAULT_CHUNK,
    sink: ResultSink | None = None,
    progress: ProgressHook | None = None,
    stdin: IO[bytes] | None = None,
    stdout: IO[str] | None = None,
    encoding: str | None = None,
    sheet: str | None = None,
) -> BatchSummary:
    """Classify every row of ``source`` into ``output`` (JSONL on stdout when None); returns a summary.

    ``encoding`` overrides the detected one and ``sheet`` names the one worksheet to read (see
    ``open_table``). ``sink`` (the ledger) prepares every chunk where it was classified and records it
    here. It commits just before the output file is renamed into place; any failure before that rolls
    both back.
    """
    summary = BatchSummary()
    start = time.perf_counter()
    writer = AtomicWriter(output, stdout=stdout)
    with open_table(source, text_column, stdin=stdin, encoding=encoding, sheet=sheet) as table:
        column = table.text_column or "text"
        try:
            chunks = table.chunks(chunk_size)
            first = next(chunks, [])
            formatter = writer.open(output_columns(first, table.columns))
            results = classify_rows(model, chain([first] if first else [], chunks), column, formatter,
                                    workers=workers, prepare=sink.prepare if sink is not None else None)
            for rows, result in results:
                writer.write_formatted(result.output)
                if sink is not None:
                    sink.write(result.prepared)
                summary.merge(result.tally)
                if progress is not None:
                    progress(summary.rows)
            if sink is not None:
                sink.commit()
            writer.commit()
        except BaseException:
            if sink is not None:
                sink.rollback()
            writer.abort()
            raise
        summary.input = table.describe()
    summary.seconds = time.perf_counter() - start
    return summary
