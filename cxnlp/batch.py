"""Batch classification of a file: stream rows in chunks, classify them (on several processes when
the input is large), and write every input row back with the contract fields added.

The model and jieba are loaded once in the parent before worker processes fork, so workers share
their memory pages and start at once. Output goes through an AtomicWriter: a run that fails or is
interrupted leaves no partial file behind.
"""
from __future__ import annotations

import multiprocessing as mp
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from cxnlp.io import AtomicWriter, Row, open_table
from cxnlp.prediction import RESULT_FIELDS, Prediction, predict_texts
from cxnlp.store import LoadedModel

DEFAULT_CHUNK = 2000


class ResultSink(Protocol):
    """Something that keeps results besides the output file (the ledger): one transaction per run."""

    def write(self, rows: list[Row], preds: list[Prediction], text_column: str) -> None: ...
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

    def line(self) -> str:
        cats = ", ".join(f"{k} {v}" for k, v in sorted(self.per_category.items())) or "none"
        sents = ", ".join(f"{k} {v}" for k, v in sorted(self.per_sentiment.items()))
        rate = self.rows / self.seconds if self.seconds else 0.0
        return (f"{self.rows} rows, {self.errors} errors; categories: {cats}; sentiment: {sents}; "
                f"{self.seconds:.1f} s ({rate:.0f} rows/s)")


def _rows_to_texts(rows: list[Row], text_column: str) -> list[Any]:
    return [None if r.problem and not r.values else r.values.get(text_column) for r in rows]


def _classify_chunk(model: LoadedModel, rows: list[Row], text_column: str) -> list[Prediction]:
    preds = predict_texts(model, _rows_to_texts(rows, text_column))
    for row, pred in zip(rows, preds):
        if row.problem:
            reason = f"row {row.number}: {row.problem}"
            pred.error = reason if pred.error is None else f"{reason}; {pred.error}"
        elif pred.error:
            pred.error = f"row {row.number}: {pred.error}"
    return preds


def output_row(row: Row, pred: Prediction) -> dict[str, Any]:
    """The input row's own fields, then the contract fields (an input column of the same name is kept
    as ``input_<name>``)."""
    out = {(f"input_{k}" if k in RESULT_FIELDS else k): v for k, v in row.values.items()}
    out.update(pred.to_dict())
    return out


# Worker processes get the parent's model through fork; this holds it in each child.
_WORKER: dict[str, Any] = {}


def _worker_init(model: LoadedModel, text_column: str) -> None:
    _WORKER["model"], _WORKER["column"] = model, text_column


def _worker_run(rows: list[Row]) -> list[Prediction]:
    return _classify_chunk(_WORKER["model"], rows, _WORKER["column"])


def classify_rows(model: LoadedModel, chunks: Iterator[list[Row]], text_column: str, *, workers: int = 1
                  ) -> Iterator[tuple[list[Row], list[Prediction]]]:
    """Predictions per chunk, in input order; ``workers`` > 1 spreads chunks over forked processes."""
    if workers <= 1:
        for rows in chunks:
            yield rows, _classify_chunk(model, rows, text_column)
        return
    model.warm_up()  # segmenter and lookup tables loaded once, before fork
    ctx = mp.get_context("fork")
    pending: list[list[Row]] = []
    with ctx.Pool(workers, initializer=_worker_init, initargs=(model, text_column)) as pool:
        def tagged() -> Iterator[list[Row]]:
            for rows in chunks:
                pending.append(rows)
                yield rows
        # imap keeps order and bounds memory to a few chunks in flight per worker.
        for preds in pool.imap(_worker_run, tagged(), chunksize=1):
            yield pending.pop(0), preds


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
) -> BatchSummary:
    """Classify every row of ``source`` into ``output`` (JSONL on stdout when None); returns a summary.

    ``sink`` sees every chunk's rows and predictions (the ledger records them). It commits just before
    the output file is renamed into place; any failure before that rolls both back.
    """
    summary = BatchSummary()
    start = time.perf_counter()
    writer = AtomicWriter(output, stdout=stdout)
    with open_table(source, text_column, stdin=stdin) as table:
        column = table.text_column or "text"
        try:
            for rows, preds in classify_rows(model, table.chunks(chunk_size), column, workers=workers):
                writer.write([output_row(r, p) for r, p in zip(rows, preds)])
                if sink is not None:
                    sink.write(rows, preds, column)
                for p in preds:
                    summary.rows += 1
                    if p.error:
                        summary.errors += 1
                        if len(summary.error_examples) < 20:
                            summary.error_examples.append(p.error)
                    else:
                        summary.per_category.update(p.categories)
                        summary.per_sentiment[p.sentiment] += 1
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
    summary.seconds = time.perf_counter() - start
    return summary
