"""Reading the files analysts export (CSV/TSV/XLSX/JSONL/TXT, or stdin) and writing results atomically.

Readers stream rows in chunks with their row numbers as a person sees them: for CSV, TSV and XLSX
the header is row 1, so the first data row is row 2; for JSONL and TXT the row is the line number.
A row that cannot be parsed is still yielded, with ``problem`` set, so callers report it and go on.
Text is decoded strictly in one encoding, decided from the whole file (a BOM, else UTF-8, else GB18030,
else charset-normalizer's judgement) or given (``cxnlp.decoding``); a row whose bytes do not decode
becomes such a problem row, never a guess. Every sheet of a workbook is read unless one is named.

Writers put everything in a temporary file beside the target (with the mode a new file gets) and rename
it into place on ``commit``: an interrupted run leaves no half-written output. Every CSV/TSV/XLSX cell
goes through ``spreadsheet_safe`` so no customer text runs as a formula.
"""
from __future__ import annotations

import codecs
import csv
import io
import json

import orjson
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from itertools import chain
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cxnlp.decoding import DecodedLines, decoded_file, decoded_stream, is_wide, sniff_binary
from cxnlp.errors import DataError, InputTooLarge

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
    sheet: str | None = None  # the worksheet, when a workbook's several sheets are read

    @property
    def where(self) -> str:
        """Where a person finds the row: ``row 5``, or ``sheet 回访 row 5``."""
        return f"row {self.number}" if self.sheet is None else f"sheet {self.sheet} row {self.number}"


@dataclass
class Table:
    """An open input: its columns (as far as known), the chosen text column, and a row stream."""

    source: str
    columns: list[str]
    rows: Iterator[Row]
    text_column: str | None = None
    _closers: list[Any] = field(default_factory=list)
    encoding: str | None = None  # of a text file, as detected or given
    sheets: list[str] = field(default_factory=list)  # of a workbook, the ones read
    skipped_sheets: dict[str, str] = field(default_factory=dict)  # sheet → why it was not read
    notes: list[str] = field(default_factory=list)  # what the run's summary must say about the reading

    def describe(self) -> str:
        """What was read, for the run's summary: the encoding, or the sheets (and those skipped)."""
        if self.encoding is not None:
            return f"encoding {self.encoding}" + "".join(f"; {note}" for note in self.notes)
        if not self.sheets and not self.skipped_sheets:
            return ""
        skipped = "".join(f"; skipped sheet {name} ({why})" for name, why in self.skipped_sheets.items())
        return f"sheets {', '.join(self.sheets) or 'none'}{skipped}" + "".join(f"; {note}" for note in self.notes)

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


def shorten(value: Any, limit: int = 200) -> str:
    """A value as it goes into a message: at most ``limit`` characters, with how much was left out."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…({len(text) - limit} more characters)"


def list_for_message(items: list[Any], limit: int = 200) -> str:
    """Names joined by commas for a message, cut near ``limit`` characters with how many were left out."""
    shown: list[str] = []
    used = 0
    for item in items:
        name = shorten(str(item), 60)
        if shown and used + len(name) + 2 > limit:
            break
        shown.append(name)
        used += len(name) + 2
    rest = len(items) - len(shown)
    return ", ".join(shown) + (f" …({rest} more)" if rest else "")


def _zip_names(path: Path) -> list[str]:
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            return zf.namelist()[:200]
    except (zipfile.BadZipFile, OSError):
        return []


def _refuse_binary(head: bytes, source: str, kind: str, path: Path | None, encoding: str | None) -> None:
    if encoding is not None and is_wide(encoding):
        return
    names = _zip_names(path) if path is not None and head.startswith(b"PK") else None
    what = sniff_binary(head, names)
    if what is None:
        return
    hint = "; rename it to .xlsx" if what.startswith("an Excel workbook") else \
        "; if it is UTF-16 text without a byte-order mark, pass --encoding utf-16-le" if "NUL" in what else ""
    raise DataError(f"{source}: looks like {what}, not a {kind} text file{hint}")


def choose_text_column(columns: list[str], wanted: str | None, source: str) -> str:
    if wanted:
        if wanted not in columns:
            raise DataError(f"{source}: no column {shorten(wanted, 80)!r}; columns are: {list_for_message(columns)}")
        return wanted
    lowered = {str(c).strip().lower(): c for c in columns}
    for name in TEXT_COLUMN_CANDIDATES:
        if name in lowered:
            return lowered[name]
    raise DataError(f"{source}: cannot tell which column holds the text; pass --text-column. "
                    f"Columns are: {list_for_message(columns)}")


def open_table(path: str | Path, text_column: str | None = None, *, need_text: bool = True,
               stdin: IO[bytes] | None = None, encoding: str | None = None, sheet: str | None = None,
               max_cells: int | None = None) -> Table:
    """Open an input file (or ``-`` for stdin) and choose its text column.

    ``encoding`` overrides detection; ``sheet`` names the one worksheet of a workbook to read (all are
    read otherwise). ``max_cells`` refuses a larger input with ``InputTooLarge``: a workbook before it
    is parsed (its sheets' cells are counted in their XML), a text file as soon as it passes the limit.
    """
    source = str(path)
    if encoding is not None:
        try:
            encoding = codecs.lookup(encoding).name
        except LookupError:
            raise DataError(f"unknown encoding {shorten(encoding, 60)!r}") from None
    if source == "-":
        table = _open_stdin(stdin or sys.stdin.buffer, encoding)
    else:
        p = Path(path)
        if not p.exists():
            raise DataError(f"{shorten(source, 200)}: no such file")
        if p.is_dir():
            raise DataError(f"{shorten(source, 200)}: is a folder, not a file")
        suffix = p.suffix.lower()
        if suffix == ".xlsx":
            if encoding is not None:
                raise DataError(f"{source}: --encoding applies to text files; an .xlsx workbook carries its own")
            if max_cells is not None:
                _check_workbook_cells(p, max_cells)
            table = _open_xlsx(p, sheet)
        elif suffix in (".csv", ".tsv", ".jsonl", ".txt"):
            if sheet is not None:
                raise DataError(f"{source}: --sheet applies to .xlsx workbooks only")
            fh = p.open("rb")
            try:
                _refuse_binary(fh.read(8192), source, suffix, p, encoding)
                fh.seek(0)
                try:
                    lines = decoded_file(fh, encoding)
                except DataError as exc:
                    raise DataError(f"{shorten(source, 200)}: {exc}") from None
                if suffix in (".csv", ".tsv"):
                    table = _open_delimited(lines, source, "\t" if suffix == ".tsv" else None)
                elif suffix == ".jsonl":
                    table = _open_jsonl(lines, source)
                else:
                    table = _open_txt(lines, source)
            except BaseException:
                fh.close()
                raise
            table._closers.append(fh)
        else:
            raise DataError(f"{shorten(source, 200)}: unsupported input type {shorten(suffix, 20) or '(none)'}; "
                            f"use one of {', '.join(SUPPORTED_INPUTS)}")
    if need_text:
        table.text_column = choose_text_column(table.columns, text_column, source) if table.columns or text_column \
            else (text_column or "text")
    if max_cells is not None and table.encoding is not None:
        table.rows = _capped(table.rows, max_cells, max(1, len(table.columns)), source)
    return table


def _capped(rows: Iterator[Row], max_cells: int, width: int, source: str) -> Iterator[Row]:
    for count, row in enumerate(rows, start=1):
        if count * width > max_cells:
            raise InputTooLarge(f"{shorten(source, 200)}: more than {max_cells:,} cells (over {count - 1:,} rows of "
                                f"{width} columns); split it into smaller files")
        yield row


# A record longer than this many physical lines whose long field reads like rows of the file is an
# unclosed quote that swallowed the rows after it (a customer's own multi-line text does not hold
# the file's delimiters on most of its lines).
MAX_RECORD_LINES = 20


def _unclosed_quote(cells: list[str], delimiter: str, columns: int, start: int, end: int) -> str | None:
    """The problem of a record read from lines ``start``..``end`` when it is an unclosed quote, else None."""
    if end - start + 1 <= MAX_RECORD_LINES:
        return None
    longest = max(cells, key=lambda c: c.count("\n"), default="")
    inner = longest.split("\n")[1:]
    if len(inner) < MAX_RECORD_LINES:
        return None
    if columns > 1 and sum(line.count(delimiter) >= columns - 1 for line in inner) * 2 < len(inner):
        return None
    return (f'an unclosed quote (") starts on line {start} and runs to line {end}: '
            f"{end - start + 1} lines were read as one field (close or remove that quote and run again)")


def _open_delimited(lines: DecodedLines, source: str, delimiter: str | None) -> Table:
    it = iter(lines)
    first_line = next(it, None)
    if first_line is None:
        raise DataError(f"{source}: the file is empty")
    header_problem = lines.take_bad()
    if header_problem:
        hint = "" if header_problem.startswith("a NUL") else "; use --encoding"
        raise DataError(f"{source}: the header (row 1): {header_problem.replace('; the row was not read', '')}{hint}")
    if delimiter is None:
        delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    reader = csv.reader(chain([first_line], it), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"{source}: the file is empty") from None
    except csv.Error as exc:
        raise DataError(f"{source}: unreadable CSV header: {exc}") from None
    header = [h.strip() or f"column_{i + 1}" for i, h in enumerate(header)]

    def rows() -> Iterator[Row]:
        number = 1
        while True:
            start = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                number += 1
                lines.take_bad()
                yield Row(number, {}, f"unreadable CSV row: {exc}")
                continue
            number += 1
            undecodable = lines.take_bad()
            if undecodable:
                yield Row(number, {}, undecodable)
                continue
            swallowed = _unclosed_quote(cells, delimiter, len(header), start, reader.line_num)
            if swallowed:
                table.notes.append(f"row {number}: {swallowed}")
                yield Row(number, {}, swallowed)
                continue
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

    table = Table(source, header, rows(), encoding=lines.encoding)
    return table


def _open_xlsx(path: Path, sheet: str | None) -> Table:
    from openpyxl import load_workbook

    with path.open("rb") as fh:
        head = fh.read(8192)
    if not head.startswith(b"PK"):
        what = sniff_binary(head) or "a text file (CSV?)"
        hint = "; rename it to .csv" if what.startswith("a text") else ""
        raise DataError(f"{path}: not an Excel workbook: it looks like {what}{hint}")
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types for a bad file
        what = sniff_binary(head, _zip_names(path))
        raise DataError(f"{path}: not a readable .xlsx file" + (f" (it looks like {what})" if what and
                        not what.startswith("an Excel") else f" ({shorten(str(exc), 200)})")) from exc
    if sheet is not None and sheet not in wb.sheetnames:
        wb.close()
        raise DataError(f"{path}: no sheet {shorten(sheet, 80)!r}; sheets are: {list_for_message(wb.sheetnames)}")
    headers: dict[str, list[str]] = {}
    empty: list[str] = []
    for name in [sheet] if sheet is not None else wb.sheetnames:
        first = next(wb[name].iter_rows(max_row=1, values_only=True), None)
        if first is None or all(c is None or str(c).strip() == "" for c in first):
            empty.append(name)
            continue
        headers[name] = [str(h).strip() if h is not None else f"column_{i + 1}" for i, h in enumerate(first)]
    if not headers:
        wb.close()
        raise DataError(f"{path}: " + (f"sheet {sheet!r} is empty" if sheet is not None else "every sheet is empty"))
    several = len(headers) > 1
    columns: dict[str, None] = {"sheet": None} if several else {}
    for header in headers.values():
        columns.update(dict.fromkeys(header))
    table = Table(str(path), list(columns), iter(()), sheets=list(headers),
                  skipped_sheets={name: "empty" for name in empty})
    unsaved = {name: _unsaved_formulas(path, wb[name]) for name in headers}
    for name, cells in unsaved.items():
        if cells:
            rows_named = list_for_message(sorted(cells), 60)
            table.notes.append(f"{'' if not several else f'sheet {name}: '}{sum(map(len, cells.values()))} formula "
                               f"cells without a saved value (rows {rows_named}): open and save the file in Excel")

    def rows() -> Iterator[Row]:
        for name, header in headers.items():
            if table.text_column is not None and table.text_column not in header:
                table.skipped_sheets[name] = f"no column {table.text_column!r}"
                table.sheets.remove(name)
                continue
            it = wb[name].iter_rows(values_only=True)
            next(it, None)
            for number, cells in enumerate(it, start=2):
                if cells is None or all(c is None or str(c).strip() == "" for c in cells):
                    continue
                values = {h: ("" if c is None else c) for h, c in zip(header, cells)}
                formulas = unsaved[name].get(number)
                problem = None if formulas is None else (
                    f"formula without a saved value in {list_for_message(formulas, 60)} (read as empty): "
                    "open and save the file in Excel, then run again")
                yield Row(number, {"sheet": name, **values} if several else values, problem,
                          sheet=name if several else None)

    table.rows = rows()
    table._closers.append(wb)
    return table


_XML_FORMULA = re.compile(rb"<(?:\w+:)?f[\s>/]")
# A cell with its body; the body never runs past the next cell's start, so a cell left open (a
# crafted file) costs one look ahead, not one per cell after it.
_XML_CELL = re.compile(rb"<(?:\w+:)?c\b([^>]*?)(?<!/)>((?:[^<]|<(?!(?:\w+:)?c[\s/>]))*?)</(?:\w+:)?c>", re.S)
_XML_REF = re.compile(rb'\br="([A-Z]{1,3})([0-9]+)"')
_XML_VALUE = re.compile(rb"<(?:\w+:)?v>[^<]")
_XML_STR = re.compile(rb'\bt="str"')


# A piece of sheet XML is cut at a row's edge; a "row" longer than this (none that Excel writes; a crafted
# file may have one) is handed on as it is, so the work and memory stay bounded by the piece.
_MAX_PIECE = 8 << 20


def _sheet_xml(zf: Any, part: str) -> Iterator[bytes]:
    """A worksheet's XML in pieces of about a megabyte that end at a row's edge, so no cell is cut."""
    carry = b""
    with zf.open(part) as fh:
        while True:
            chunk = fh.read(1 << 20)
            data = carry + chunk
            cut = data.rfind(b"row>") + 4 if chunk else len(data)  # after </row> or <row>
            if cut < 4:
                cut = 0 if len(data) < _MAX_PIECE else len(data)
            carry, data = data[cut:], data[:cut]
            if data:
                yield data
            if not chunk:
                return


# A cell's start tag, whatever its namespace prefix and whatever space follows its name.
_XML_CELL_START = re.compile(rb"<(?:[^\s<>/:]+:)?c[\s/>]")


def _worksheet_parts(zf: Any) -> list[str]:
    """The worksheet parts openpyxl reads: those the workbook's relationships name, wherever they are in
    the archive. Every XML part when the workbook cannot be resolved (``_open_xlsx`` says why)."""
    try:
        from openpyxl.packaging.manifest import Manifest
        from openpyxl.reader.excel import _find_workbook_part
        from openpyxl.reader.workbook import WorkbookParser
        from openpyxl.xml.constants import ARC_CONTENT_TYPES
        from openpyxl.xml.functions import fromstring

        package = Manifest.from_tree(fromstring(zf.read(ARC_CONTENT_TYPES)))
        parser = WorkbookParser(zf, _find_workbook_part(package).PartName[1:])
        parser.parse()
        names = set(zf.namelist())
        return [rel.target for _, rel in parser.find_sheets() if rel.target in names]
    except Exception:  # noqa: BLE001 - a broken workbook: count everything that may be a sheet
        return [n for n in zf.namelist() if n.lower().endswith(".xml")]


def _check_workbook_cells(path: Path, max_cells: int) -> None:
    """Count the cells of every worksheet in its XML (no parse) and stop past ``max_cells``: a workbook
    of a million rows would otherwise cost a minute of parsing before anything could refuse it."""
    import zipfile

    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return  # not a workbook: ``_open_xlsx`` says what it is
    cells = 0
    with zf:
        for part in _worksheet_parts(zf):
            for data in _sheet_xml(zf, part):
                cells += sum(1 for _ in _XML_CELL_START.finditer(data))
                if cells > max_cells:
                    raise InputTooLarge(f"{path}: more than {max_cells:,} cells; split the workbook into smaller "
                                        "files")


def _unsaved_formulas(path: Path, ws: Any) -> dict[int, list[str]]:
    """Formula cells with no value saved, by row: the cell's references, e.g. ``{3: ["B3"]}``.

    openpyxl reads the value Excel saved beside a formula; a file written by a program that computes
    none (a script, openpyxl itself) has only the formula, which reads as empty. The sheet's XML is
    scanned for them (a file without formulas costs a read of the XML, not a parse)."""
    import zipfile

    part = getattr(ws, "_worksheet_path", None)
    if part is None:
        return {}
    found: dict[int, list[str]] = {}
    with zipfile.ZipFile(path) as zf:
        for data in _sheet_xml(zf, part):
            if (b"<f" in data or b":f" in data) and _XML_FORMULA.search(data):
                for cell in _XML_CELL.finditer(data):
                    attrs, body = cell.groups()
                    if not _XML_FORMULA.search(body) or _XML_VALUE.search(body) or _XML_STR.search(attrs):
                        continue  # no formula, a saved value, or a saved empty text
                    ref = _XML_REF.search(attrs)
                    if ref is not None:
                        found.setdefault(int(ref[2]), []).append((ref[1] + ref[2]).decode("ascii"))
    return found


def _open_jsonl(lines: DecodedLines, source: str) -> Table:
    it = iter(lines)
    first_keys: list[str] = []
    pending: list[tuple[str, str | None]] = []
    for line in it:  # find the columns from the first object
        pending.append((line, lines.take_bad()))
        if line.strip():
            try:
                obj = json.loads(line)
                if isinstance(obj, dict):
                    first_keys = list(obj)
            except (ValueError, RecursionError):  # the row says what is wrong with it
                pass
            break

    def rows() -> Iterator[Row]:
        import itertools

        later = ((line, lines.take_bad()) for line in it)
        for number, (line, undecodable) in enumerate(itertools.chain(pending, later), start=1):
            if undecodable:
                yield Row(number, {}, undecodable)
                continue
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
                except (ValueError, RecursionError) as exc:  # a number of 4,300+ digits; 1,000 levels
                    yield Row(number, {}, "invalid JSON: " + ("nested too deeply" if isinstance(exc, RecursionError)
                                                              else "a number too long to read"))
                    continue
            if not isinstance(obj, dict):
                yield Row(number, {"value": obj}, "a JSONL line must be an object")
                continue
            if line.count("[") + line.count("{") > MAX_JSON_DEPTH and _deeper_than(obj, MAX_JSON_DEPTH):
                yield Row(number, {}, f"invalid JSON: nested more than {MAX_JSON_DEPTH} levels deep")
                continue
            repeated = _repeated_key(line, obj)
            if repeated is not None:
                yield Row(number, {}, f"the key {shorten(repeated, 60)!r} appears twice in one object; "
                                      "which value is meant cannot be told")
                continue
            yield Row(number, obj)

    return Table(source, first_keys, rows(), encoding=lines.encoding)


# Deepest nesting a JSONL row may have: the writers (orjson) refuse 255 levels and the standard parser
# about 1,000; no feedback export nests its fields more than a few.
MAX_JSON_DEPTH = 100


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and objects in ``value`` nest more than ``limit`` levels (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if type(item) is dict or type(item) is list:
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in (item.values() if type(item) is dict else item))
    return False


class _RepeatedKey(ValueError):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)
    return obj


def _keys_in(value: Any) -> int:
    """How many keys the objects in ``value`` hold, nested ones too (walked without recursion)."""
    keys, stack = 0, [value]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            keys += len(item)
            stack.extend(v for v in item.values() if type(v) is dict or type(v) is list)
        elif type(item) is list:
            stack.extend(v for v in item if type(v) is dict or type(v) is list)
    return keys


def _no_space_after_quote(line: str) -> bool:
    return '" ' not in line and '"\t' not in line and '"\r' not in line


def _repeated_key(line: str, obj: dict[str, Any]) -> str | None:
    """A key written twice in one object of a JSONL line (parsers keep the last silently), or None.

    Every key has its own ``:`` outside strings, after its closing quote and any white space: a line with
    as many ``:`` as its object has keys, or (no quote followed by white space) as many ``":`` as its
    objects hold keys, nested ones too, repeats none. The usual line (nested, or with times such as
    "10:00" in its values) costs a count; others are parsed again keeping the pairs."""
    if line.count(":") == len(obj) or (_no_space_after_quote(line) and line.count('":') == _keys_in(obj)):
        return None
    try:
        json.loads(line, object_pairs_hook=_unique_pairs)
    except _RepeatedKey as exc:
        return str(exc.args[0])
    return None


def _open_txt(lines: DecodedLines, source: str) -> Table:
    def rows() -> Iterator[Row]:
        for number, line in enumerate(lines, start=1):
            undecodable = lines.take_bad()
            if undecodable:
                yield Row(number, {}, undecodable)
                continue
            line = line.rstrip("\r\n")
            if line.strip():
                yield Row(number, {"text": line})

    return Table(source, ["text"], rows(), encoding=lines.encoding)


def _open_stdin(stream: IO[bytes], encoding: str | None) -> Table:
    buffered = stream if hasattr(stream, "peek") else io.BufferedReader(stream)  # type: ignore[arg-type]
    head = buffered.peek(8192)[:8192]
    _refuse_binary(head, "<stdin>", "JSONL or plain", None, encoding)
    try:
        lines = decoded_stream(buffered, encoding)
    except DataError as exc:
        raise DataError(f"<stdin>: {exc}") from None
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return _open_jsonl(lines, "<stdin>")
    return _open_txt(lines, "<stdin>")


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


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
XLSX_CELL_LIMIT = 32767  # characters Excel keeps in one cell


def spreadsheet_safe(value: Any) -> Any:
    """A cell that a spreadsheet would run as a formula (it starts with = + - @, tab or CR) made text by a
    leading ``'``, as OWASP advises against CSV injection. Every CSV/TSV/XLSX cell the project writes
    goes through here."""
    if type(value) is str and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def from_spreadsheet(value: Any) -> Any:
    """A cell read back from a sheet this project wrote: the ``'`` that ``spreadsheet_safe`` added removed."""
    if isinstance(value, str) and value.startswith("'") and value[1:2] and value[1:].startswith(_FORMULA_STARTS):
        return value[1:]
    return value


def xlsx_cell(value: Any) -> Any:
    """A value as an XLSX cell: formulas neutralised, control characters openpyxl refuses dropped."""
    return _xlsx_safe(spreadsheet_safe(value))


def cut_for_xlsx(value: str) -> str:
    """A value over Excel's cell limit, cut to it with a visible note of how long it was."""
    note = f"…[cut: {len(value):,} characters, an XLSX cell holds {XLSX_CELL_LIMIT:,}]"
    return value[:XLSX_CELL_LIMIT - len(note)] + note


class RowFormatter:
    """Output rows → what the writer appends: text for CSV/TSV/JSONL, cell lists for XLSX.

    Picklable and independent of the open file, so worker processes format their own chunks and the
    writing process only appends. Cells are neutralised for spreadsheets (``spreadsheet_safe``); an
    XLSX cell over Excel's limit is cut with a note in the cell and in the row's ``error`` column.
    """

    def __init__(self, kind: str, columns: list[str]) -> None:
        self.kind = kind
        self.columns = columns

    def header(self) -> list[Any]:
        return [xlsx_cell(c) if self.kind == ".xlsx" else spreadsheet_safe(c) for c in self.columns]

    def format(self, rows: list[dict[str, Any]]) -> str | list[list[Any]]:
        return self.format_counted(rows)[0]

    def format_counted(self, rows: list[dict[str, Any]]) -> tuple[str | list[list[Any]], int]:
        """The payload and how many XLSX cells had to be cut."""
        if self.kind == ".jsonl":
            return "".join([dumps(r) + "\n" for r in rows]), 0
        columns, known = self.columns, set(self.columns)
        lines = []
        for r in rows:
            cells = [spreadsheet_safe(cell_value(r.get(c, ""))) for c in columns]
            if not known.issuperset(r):  # a later JSONL row with keys the first rows lacked: keep them
                cells.append(spreadsheet_safe(dumps({k: v for k, v in r.items() if k not in known})))
            lines.append(cells)
        if self.kind == ".xlsx":
            return self._xlsx(lines)
        buffer = io.StringIO()
        csv.writer(buffer, delimiter="\t" if self.kind == ".tsv" else ",").writerows(lines)
        return buffer.getvalue(), 0

    def _xlsx(self, lines: list[list[Any]]) -> tuple[list[list[Any]], int]:
        error_at = self.columns.index("error") if "error" in self.columns else None
        cut = 0
        out = []
        for cells in lines:
            cells = [_xlsx_safe(c) for c in cells]
            long = [i for i, c in enumerate(cells) if type(c) is str and len(c) > XLSX_CELL_LIMIT]
            if long:
                cut += len(long)
                for i in long:
                    cells[i] = cut_for_xlsx(cells[i])
                if error_at is not None:
                    names = ", ".join(str(self.columns[i]) if i < len(self.columns) else "(extra)" for i in long)
                    note = f"cell {names} cut to fit XLSX (CSV and JSONL keep the whole text)"
                    previous = cells[error_at]
                    cells[error_at] = f"{previous}; {note}" if previous not in (None, "") else note
            out.append(cells)
        return out, cut


def cannot_write(path: Path, exc: OSError) -> DataError:
    """The one-line error for an output that cannot be written, naming the target (not the temp file)."""
    return DataError(f"{shorten(str(path), 200)}: cannot write the output there ({exc.strerror or exc})")


def temp_beside(path: Path) -> tuple[int, str]:
    """A temporary file in ``path``'s folder, to be renamed onto it, with the mode a new file would get
    (the user's umask; an existing target's own mode). mkstemp alone makes it 0600. A folder that cannot
    hold it (missing and not creatable, read-only, /proc) is a ``DataError`` naming ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as exc:
        raise cannot_write(path, exc) from None
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.fchmod(fd, mode)
    return fd, tmp


class AtomicWriter:
    """Rows → a file of the type given by its extension (or JSONL on stdout), renamed in on commit."""

    def __init__(self, path: str | Path | None, *, stdout: IO[str] | None = None) -> None:
        self.path = Path(path) if path not in (None, "-") else None
        self.kind = self.path.suffix.lower() if self.path else ".jsonl"
        if self.kind not in SUPPORTED_OUTPUTS:
            raise DataError(f"{shorten(str(path), 200)}: unsupported output type {shorten(self.kind, 20) or '(none)'}; "
                            f"use one of {', '.join(SUPPORTED_OUTPUTS)}")
        self.formatter: RowFormatter | None = None
        self.cut_cells = 0  # XLSX cells cut to Excel's limit (by ``write``; batch runs count their own)
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
        fd, self._tmp = temp_beside(self.path)
        if self.kind == ".xlsx":
            os.close(fd)
            from openpyxl import Workbook

            self._wb = Workbook(write_only=True)
            self._ws = self._wb.create_sheet("results")
            self._ws.append(self.formatter.header())
        elif self.kind in (".csv", ".tsv"):
            self._fh = os.fdopen(fd, "w", encoding="utf-8-sig", newline="")
            csv.writer(self._fh, delimiter="\t" if self.kind == ".tsv" else ",").writerow(self.formatter.header())
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
        payload, cut = self.formatter.format_counted(rows)
        self.cut_cells += cut
        self.write_formatted(payload)

    def write_formatted(self, payload: str | list[list[Any]]) -> None:
        """Append what ``RowFormatter.format`` made of some rows."""
        try:
            if self._ws is not None:
                for cells in payload:
                    self._ws.append(cells)
            else:
                self._fh.write(payload)  # type: ignore[union-attr,arg-type]
        except OSError as exc:  # a disk that fills up mid-run: callers abort, which removes the temp file
            if self.path is None:
                raise
            raise cannot_write(self.path, exc) from None

    def commit(self) -> None:
        if self.formatter is None:
            self.open([])
        if self.path is None:
            self._fh.flush()  # type: ignore[union-attr]
            return
        try:
            if self._wb is not None:
                self._wb.save(self._tmp)
            else:
                self._fh.close()  # type: ignore[union-attr]
            os.replace(self._tmp, self.path)  # type: ignore[arg-type]
        except OSError as exc:  # a full disk, a target that is a folder: callers abort, which removes the temp file
            raise cannot_write(self.path, exc) from None
        self._tmp = None

    def abort(self) -> None:
        if self._fh is not None and self.path is not None:
            self._fh.close()
        if self._ws is not None:
            _discard_write_only(self._ws)
            self._ws = self._wb = None
        if self._tmp and os.path.exists(self._tmp):
            os.unlink(self._tmp)
        self._tmp = None


def _discard_write_only(ws: Any) -> None:
    """Close an unsaved write-only worksheet and delete the scratch file openpyxl streams it to (left to
    garbage collection, it prints an error and keeps the file until exit)."""
    writer = getattr(ws, "_writer", None)
    for step in (getattr(ws, "_rows", None), writer):
        try:
            if step is not None:
                step.close()
        except Exception:  # noqa: BLE001 - a half-written sheet may refuse to close cleanly; it is discarded
            pass
    scratch = getattr(writer, "out", None)
    if isinstance(scratch, str) and os.path.exists(scratch):
        os.unlink(scratch)


def _xlsx_safe(value: Any) -> Any:
    """openpyxl refuses control characters; strip them rather than lose the row."""
    if isinstance(value, str):
        return "".join(ch for ch in value if ch >= " " or ch in "\t\n\r")
    return value


def xlsx_row(cells: list[Any]) -> list[Any]:
    """Cells for an openpyxl row: formulas neutralised, control characters dropped, each within Excel's
    limit (a longer one is cut with a note saying so)."""
    cells = [xlsx_cell(c) for c in cells]
    return [cut_for_xlsx(c) if isinstance(c, str) and len(c) > XLSX_CELL_LIMIT else c for c in cells]


def save_workbook_atomic(wb: Any, path: Path) -> None:
    """Save an openpyxl workbook beside its target and rename it into place (no half-written file)."""
    fd, tmp = temp_beside(path)
    os.close(fd)
    try:
        wb.save(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise cannot_write(path, exc) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file beside its target and rename it into place (no half-written file)."""
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise cannot_write(path, exc) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
