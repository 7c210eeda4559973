"""Reading the files analysts export (CSV/TSV/XLSX/JSONL/TXT, or stdin) and writing results atomically.

Readers stream rows in chunks with their row numbers as a person sees them: for CSV, TSV and XLSX
the header is row 1, so the first data row is row 2; for JSONL and TXT the row is the line number.
A row that cannot be parsed is still yielded, with ``problem`` set, so callers report it and go on.
Writers put everything in a temporary file beside the target and rename it into place on
``commit``: an interrupted run leaves no half-written output.
"""
from __future__ import annotations

import codecs
import csv
import io
import json

import orjson
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cxnlp.errors import DataError

TEXT_COLUMN_CANDIDATES = ("text", "内容", "反馈内容", "意见", "投诉内容", "评价", "评论", "反馈", "留言",
                          "content", "comment", "feedback", "review", "问题描述", "用户反馈", "评价内容")
SUPPORTED_INPUTS = (".csv", ".tsv", ".xlsx", ".jsonl", ".txt")
SUPPORTED_OUTPUTS = (".csv", ".tsv", ".xlsx", ".jsonl")
csv.field_size_limit(sys.maxsize)


def dumps(value: Any) -> str:
    """JSON text of a value, non-ASCII kept as is (orjson: several times faster than json on hot paths)."""
    return orjson.dumps(value, default=str).decode("utf-8")


@dataclass
class Row:
    number: int
    values: dict[str, Any]
    problem: str | None = None


@dataclass
class Table:
    """An open input: its columns (as far as known), the chosen text column, and a row stream."""

    source: str
    columns: list[str]
    rows: Iterator[Row]
    text_column: str | None = None
    _closers: list[Any] = field(default_factory=list)

    def chunks(self, size: int) -> Iterator[list[Row]]:
        chunk: list[Row] = []
        for row in self.rows:
            chunk.append(row)
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def close(self) -> None:
        for closer in self._closers:
            closer.close()

    def __enter__(self) -> "Table":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def detect_encoding(sample: bytes) -> str:
    """utf-8-sig, utf-8 or gb18030 (a superset of GBK), from the first bytes of a file."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        return "gb18030"


def choose_text_column(columns: list[str], wanted: str | None, source: str) -> str:
    if wanted:
        if wanted not in columns:
            raise DataError(f"{source}: no column {wanted!r}; columns are: {', '.join(map(str, columns))}")
        return wanted
    lowered = {str(c).strip().lower(): c for c in columns}
    for name in TEXT_COLUMN_CANDIDATES:
        if name in lowered:
            return lowered[name]
    raise DataError(f"{source}: cannot tell which column holds the text; pass --text-column. "
                    f"Columns are: {', '.join(map(str, columns))}")


def open_table(path: str | Path, text_column: str | None = None, *, need_text: bool = True,
               stdin: IO[bytes] | None = None) -> Table:
    """Open an input file (or ``-`` for stdin) and choose its text column."""
    source = str(path)
    if source == "-":
        table = _open_stdin(stdin or sys.stdin.buffer)
    else:
        p = Path(path)
        if not p.exists():
            raise DataError(f"{p}: no such file")
        suffix = p.suffix.lower()
        if suffix in (".csv", ".tsv"):
            fh = p.open("rb")
            table = _open_delimited(fh, source, "\t" if suffix == ".tsv" else None)
        elif suffix == ".xlsx":
            table = _open_xlsx(p)
        elif suffix == ".jsonl":
            fh = p.open("rb")
            table = _open_jsonl(fh, source)
        elif suffix == ".txt":
            fh = p.open("rb")
            table = _open_txt(fh, source)
        else:
            raise DataError(f"{p}: unsupported input type {suffix or '(none)'}; use one of {', '.join(SUPPORTED_INPUTS)}")
    if need_text:
        table.text_column = choose_text_column(table.columns, text_column, source) if table.columns or text_column \
            else (text_column or "text")
    return table


def _text_stream(fh: IO[bytes]) -> io.TextIOWrapper:
    buffered = fh if hasattr(fh, "peek") else io.BufferedReader(fh)  # type: ignore[arg-type]
    sample = buffered.peek(65536)[:65536]
    return io.TextIOWrapper(buffered, encoding=detect_encoding(sample), errors="replace", newline="")


def _open_delimited(fh: IO[bytes], source: str, delimiter: str | None) -> Table:
    text = _text_stream(fh)
    if delimiter is None:
        head = text.buffer.peek(8192)[:8192].decode(text.encoding, errors="ignore")  # type: ignore[attr-defined]
        first = head.splitlines()[0] if head else ""
        delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.reader(text, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"{source}: the file is empty") from None
    header = [h.strip() or f"column_{i + 1}" for i, h in enumerate(header)]

    def rows() -> Iterator[Row]:
        number = 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                number += 1
                yield Row(number, {}, f"unreadable CSV row: {exc}")
                continue
            number += 1
            if not any(c.strip() for c in cells):
                continue
            values = dict(zip(header, cells))
            problem = None
            if len(cells) > len(header):
                values["extra_cells"] = json.dumps(cells[len(header):], ensure_ascii=False)
                problem = f"row has {len(cells)} cells, the header has {len(header)}"
            elif len(cells) < len(header):
                problem = f"row has {len(cells)} cells, the header has {len(header)}"
            yield Row(number, values, problem)

    return Table(source, header, rows(), _closers=[text])


def _open_xlsx(path: Path) -> Table:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types for a bad file
        raise DataError(f"{path}: not a readable .xlsx file ({exc})") from exc
    sheet = wb.worksheets[0]
    it = sheet.iter_rows(values_only=True)
    try:
        header = [str(h).strip() if h is not None else f"column_{i + 1}" for i, h in enumerate(next(it))]
    except StopIteration:
        wb.close()
        raise DataError(f"{path}: the first sheet is empty") from None

    def rows() -> Iterator[Row]:
        for number, cells in enumerate(it, start=2):
            if cells is None or all(c is None or str(c).strip() == "" for c in cells):
                continue
            yield Row(number, {h: ("" if c is None else c) for h, c in zip(header, cells)})

    return Table(str(path), header, rows(), _closers=[wb])


def _open_jsonl(fh: IO[bytes], source: str) -> Table:
    text = _text_stream(fh)
    first_keys: list[str] = []
    pending: list[tuple[int, str]] = []
    for number, line in enumerate(text, start=1):  # find the columns from the first object
        pending.append((number, line))
        if line.strip():
            try:
                obj = json.loads(line)
                if isinstance(obj, dict):
                    first_keys = list(obj)
            except json.JSONDecodeError:
                pass
            break

    def rows() -> Iterator[Row]:
        import itertools

        for number, line in itertools.chain(pending, enumerate(text, start=len(pending) + 1)):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                try:  # the standard parser accepts a little more (NaN) and says where a problem is
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield Row(number, {}, f"invalid JSON: {exc.msg} at column {exc.colno}")
                    continue
            if not isinstance(obj, dict):
                yield Row(number, {"value": obj}, "a JSONL line must be an object")
                continue
            yield Row(number, obj)

    return Table(source, first_keys, rows(), _closers=[text])


def _open_txt(fh: IO[bytes], source: str) -> Table:
    text = _text_stream(fh)

    def rows() -> Iterator[Row]:
        for number, line in enumerate(text, start=1):
            line = line.rstrip("\r\n")
            if line.strip():
                yield Row(number, {"text": line})

    return Table(source, ["text"], rows(), _closers=[text])


def _open_stdin(stream: IO[bytes]) -> Table:
    buffered = stream if hasattr(stream, "peek") else io.BufferedReader(stream)  # type: ignore[arg-type]
    head = buffered.peek(1024)[:1024].lstrip()
    if head.startswith(b"{"):
        return _open_jsonl(buffered, "<stdin>")
    return _open_txt(buffered, "<stdin>")


# ------------------------------------------------------------------------------------------ writers
def cell_value(value: Any) -> Any:
    """How a list or dict field is written in CSV/XLSX: labels joined by ``|``, dicts as JSON text."""
    kind = type(value)
    if kind is str or value is None or kind is float or kind is int:
        return value
    if kind is list and all(type(v) is str for v in value):
        return "|".join(value)
    if isinstance(value, (list, dict)):
        return dumps(value)
    if kind is bool:
        return "true" if value else "false"
    return value


class RowFormatter:
    """Output rows → what the writer appends: text for CSV/TSV/JSONL, cell lists for XLSX.

    Picklable and independent of the open file, so worker processes format their own chunks and the
    writing process only appends.
    """

    def __init__(self, kind: str, columns: list[str]) -> None:
        self.kind = kind
        self.columns = columns

    def format(self, rows: list[dict[str, Any]]) -> str | list[list[Any]]:
        if self.kind == ".jsonl":
            return "".join([dumps(r) + "\n" for r in rows])
        columns, known = self.columns, set(self.columns)
        lines = []
        for r in rows:
            cells = [cell_value(r.get(c, "")) for c in columns]
            if not known.issuperset(r):  # a later JSONL row with keys the first rows lacked: keep them
                cells.append(dumps({k: v for k, v in r.items() if k not in known}))
            lines.append(cells)
        if self.kind == ".xlsx":
            return [[_xlsx_safe(c) for c in cells] for cells in lines]
        buffer = io.StringIO()
        csv.writer(buffer, delimiter="\t" if self.kind == ".tsv" else ",").writerows(lines)
        return buffer.getvalue()


class AtomicWriter:
    """Rows → a file of the type given by its extension (or JSONL on stdout), renamed in on commit."""

    def __init__(self, path: str | Path | None, *, stdout: IO[str] | None = None) -> None:
        self.path = Path(path) if path not in (None, "-") else None
        self.kind = self.path.suffix.lower() if self.path else ".jsonl"
        if self.kind not in SUPPORTED_OUTPUTS:
            raise DataError(f"{path}: unsupported output type {self.kind or '(none)'}; "
                            f"use one of {', '.join(SUPPORTED_OUTPUTS)}")
        self.formatter: RowFormatter | None = None
        self._stdout = stdout
        self._tmp: str | None = None
        self._fh: IO[Any] | None = None
        self._wb: Any = None
        self._ws: Any = None

    def open(self, columns: list[str]) -> RowFormatter:
        """Start the output with these columns (the header); returns the formatter for its rows."""
        self.formatter = RowFormatter(self.kind, columns)
        if self.path is None:
            self._fh = self._stdout or sys.stdout
            return self.formatter
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".part")
        if self.kind == ".xlsx":
            os.close(fd)
            from openpyxl import Workbook

            self._wb = Workbook(write_only=True)
            self._ws = self._wb.create_sheet("results")
            self._ws.append(columns)
        elif self.kind in (".csv", ".tsv"):
            self._fh = os.fdopen(fd, "w", encoding="utf-8-sig", newline="")
            csv.writer(self._fh, delimiter="\t" if self.kind == ".tsv" else ",").writerow(columns)
        else:
            self._fh = os.fdopen(fd, "w", encoding="utf-8")
        return self.formatter

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Format and append rows; the first rows written fix the columns if ``open`` was not called."""
        if not rows:
            return
        if self.formatter is None:
            seen: dict[str, None] = {}
            for r in rows:
                seen.update(dict.fromkeys(r))
            self.open(list(seen))
        assert self.formatter is not None
        self.write_formatted(self.formatter.format(rows))

    def write_formatted(self, payload: str | list[list[Any]]) -> None:
        """Append what ``RowFormatter.format`` made of some rows."""
        if self._ws is not None:
            for cells in payload:
                self._ws.append(cells)
        else:
            self._fh.write(payload)  # type: ignore[union-attr,arg-type]

    def commit(self) -> None:
        if self.formatter is None:
            self.open([])
        if self.path is None:
            self._fh.flush()  # type: ignore[union-attr]
            return
        if self._wb is not None:
            self._wb.save(self._tmp)
        else:
            self._fh.close()  # type: ignore[union-attr]
        os.replace(self._tmp, self.path)  # type: ignore[arg-type]
        self._tmp = None

    def abort(self) -> None:
        if self._fh is not None and self.path is not None:
            self._fh.close()
        if self._tmp and os.path.exists(self._tmp):
            os.unlink(self._tmp)
        self._tmp = None


def _xlsx_safe(value: Any) -> Any:
    """openpyxl refuses control characters; strip them rather than lose the row."""
    if isinstance(value, str):
        return "".join(ch for ch in value if ch >= " " or ch in "\t\n\r")
    return value


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A cell value that a spreadsheet shows as text, never runs (OWASP CSV injection): numbers stay numbers."""
    if isinstance(value, str):
        value = _xlsx_safe(value)
        if value.startswith(_FORMULA_STARTS):
            return "'" + value
    return value


def save_workbook_atomic(wb: Any, path: Path) -> None:
    """Save an openpyxl workbook beside its target and rename it into place (no half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        wb.save(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file beside its target and rename it into place, with the user's normal mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
