"""Bytes to text: what kind of file a byte stream is, which encoding it is in, and its lines decoded
strictly in that encoding.

The encoding is decided from all of a file (a GBK export whose first megabytes are ASCII is still
found), and bytes are never replaced: a line that does not decode is recorded for the reader to turn
into an error row, so one damaged byte costs one row and never the whole file.
"""
from __future__ import annotations

import codecs
import io
import re
from collections import Counter
from collections.abc import Iterator
from functools import lru_cache
from itertools import chain
from typing import IO, Any

from cxnlp.errors import DataError

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"%PDF-", "a PDF document"), (b"\x1f\x8b", "a gzip archive"), (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"), (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office file (.xls/.doc)"),
    (b"SQLite format 3\x00", "a SQLite database"), (b"\x7fELF", "a program (ELF)"), (b"MZ", "a Windows program"),
)
_TEXT_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def sniff_binary(head: bytes, zip_names: list[str] | None = None) -> str | None:
    """What a non-text file looks like ("an Excel workbook (.xlsx)", "a PNG image" …), or None for text.

    ``zip_names`` are the member names when the file is a ZIP archive (to tell workbooks apart).
    """
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        names = zip_names or []
        if any(n.startswith("xl/") for n in names):
            return "an Excel workbook (.xlsx)"
        if any(n.startswith("word/") for n in names):
            return "a Word document (.docx)"
        return "a ZIP archive"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    if not head.startswith(_TEXT_BOMS) and _many_nuls(head[:8192]):
        return "a binary file (it holds NUL bytes)"
    return None


def _many_nuls(head: bytes) -> bool:
    """NUL bytes enough for a binary file (or UTF-16 without a BOM): more than one, and at least one
    byte in a hundred. A stray NUL in a text export costs its row (``DecodedLines``), not the file."""
    nuls = head.count(b"\x00")
    return nuls > 1 and nuls * 100 >= len(head)


BLOCK_BYTES = 1 << 20
_JUDGE_SAMPLE_BYTES = 256 * 1024


def _blocks(fh: IO[bytes], size: int = BLOCK_BYTES) -> Iterator[bytes]:
    """The stream in blocks that end at a line break (b"\\n" is never inside a UTF-8 or GB18030 character)."""
    carry = b""
    while True:
        data = fh.read(size)
        if not data:
            if carry:
                yield carry
            return
        data = carry + data
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            carry = data
            continue
        carry = data[cut:]
        yield data[:cut]


def _bom_encoding(head: bytes) -> str | None:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


@lru_cache(maxsize=1)
def _gb2312_level1() -> str:
    """The 3,755 most used Simplified Chinese characters (GB2312 level 1)."""
    return "".join(bytes([hi, lo]).decode("gb2312") for hi in range(0xB0, 0xD8) for lo in range(0xA1, 0xFF)
                   if (hi, lo) < (0xD7, 0xFA))


@lru_cache(maxsize=1)
def _common_han_pattern() -> re.Pattern[str]:
    """GB2312 level 1 as one character class."""
    return re.compile("[" + _gb2312_level1() + "]")


@lru_cache(maxsize=1)
def _common_chinese() -> frozenset[str]:
    """The most used Chinese characters in either script: GB2312 level 1 (3,755 Simplified) and Big5's
    常用字 (5,401 Traditional, bytes A440–C67E)."""
    big5 = set()
    for hi in range(0xA4, 0xC7):
        for lo in (*range(0x40, 0x7F), *range(0xA1, 0xFF)):
            if (hi, lo) <= (0xC6, 0x7E):
                try:
                    big5.add(bytes([hi, lo]).decode("big5"))
                except UnicodeDecodeError:
                    pass
    return frozenset(_gb2312_level1()) | big5


_PLAIN = re.compile(r"[\x00-\x7f\u3000-\u303f\uff00-\uffef]")
# What Chinese text holds beside its characters, in either script, judged neither way: Latin (with
# pinyin's tone marks), Greek, Cyrillic, kana and bopomofo (a GBK file's names, units and product
# names), punctuation (“”…—), ℃, №, Ⅳ, arrows, maths, box drawing, ①, ■, ★, CJK punctuation,
# vertical and full-width forms. A reading is judged on its Chinese characters and private-use ones.
_NEUTRAL = re.compile(r"[\x00-\u024f\u02b0-\u02ff\u0370-\u04ff\u2000-\u27bf\u3000-\u312f\u31f0-\u31ff"
                      r"\ufe10-\ufe6f\uff00-\uffef]")
# Below this many characters beyond ASCII and punctuation, a reading's plausibility is not judged.
_MIN_EVIDENCE = 10
# A right reading of Chinese has nearly all its other characters common: 0.88 or more for every one of
# 3,000 rows of the project's data in GBK (Simplified, Traditional, Cantonese); Big5 bytes read as
# GB18030 give 0.68 at most (median 0.28: private-use codes, rare characters) over 1,100 rows.
_PLAUSIBLE_SHARE = 0.8
_TRADITIONAL = ("big5", "cp950", "big5hkscs")


def _chinese_share(text: str) -> tuple[float, int]:
    """The share of common Chinese characters among a text's Chinese and private-use characters (what
    Big5 bytes are misread as in GB18030), and how many such characters there are."""
    common_set = _common_chinese()
    common = rare = 0
    for ch, n in Counter(_NEUTRAL.sub("", text)).items():
        if ch in common_set:
            common += n
        elif "\ue000" <= ch <= "\uf8ff" or _decodes(ch.encode("gb18030"), "gbk"):  # not emoji, not Thai
            rare += n
    return (common / (common + rare) if common + rare else 1.0), common + rare


def _common_han(text: str) -> int:
    """How plausible a reading is: its most used Chinese characters, less its other unusual characters
    (ASCII and CJK punctuation count neither way). A wrong reading of Chinese bytes yields rare ones."""
    common = len(_common_han_pattern().findall(text))
    unusual = len(text) - common - len(_PLAIN.findall(text))
    return common - unusual


class _Judge:
    """Counts, over non-ASCII lines, which decode as UTF-8 and which as GB18030, then decides.

    The whole file is seen, so a GBK file whose first megabytes are ASCII is still found, and one bad
    byte in a UTF-8 file makes one bad row instead of turning the whole file into GBK.
    """

    def __init__(self) -> None:
        self.utf8 = 0  # non-ASCII lines that are valid UTF-8
        self.not_utf8 = 0
        self.damaged_utf8 = 0  # of the lines that are not UTF-8, those mostly UTF-8 but for a few bytes
        self.not_gb18030 = 0  # of the lines that are not UTF-8, those not GB18030 either (nor damaged UTF-8)
        self.sample: list[bytes] = []  # some lines that are not UTF-8, for the judge
        self._sample_bytes = 0
        # Short GBK text can be valid UTF-8 too (一 is D2 BB, which UTF-8 reads as Cyrillic һ), and short
        # UTF-8 text valid GB18030 (不错 reads 涓嶉敊): while every UTF-8 block also reads as GB18030, count
        # the common Chinese characters each reading gives.
        self.both = True
        self.han_utf8 = self.han_gb18030 = 0
        self.gb_sample: list[bytes] = []  # some lines that are not UTF-8 but GB18030, to check the reading
        self._gb_sample_bytes = 0

    def _keep_gb(self, lines: list[bytes]) -> None:
        for line in lines:
            if self._gb_sample_bytes >= _JUDGE_SAMPLE_BYTES:
                return
            self.gb_sample.append(line)
            self._gb_sample_bytes += len(line)

    def feed(self, block: bytes) -> None:
        if block.isascii():
            return
        try:
            as_utf8 = block.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            self.utf8 += sum(1 for line in block.split(b"\n") if not line.isascii())
            if self.both:
                try:
                    as_gb18030 = block.decode("gb18030")  # real UTF-8 Chinese fails at its first character
                except UnicodeDecodeError:
                    self.both = False
                else:
                    self.han_utf8 += _common_han(as_utf8)
                    self.han_gb18030 += _common_han(as_gb18030)
            return
        if _decodes(block, "gb18030"):  # the usual GBK export: no need to look line by line
            lines = [line for line in block.split(b"\n") if not line.isascii()]
            self.not_utf8 += len(lines)
            if self._gb_sample_bytes < _JUDGE_SAMPLE_BYTES:
                self._keep_gb(lines)
            return
        # some line does not decode: look at each
        for line in block.splitlines():
            if line.isascii():
                continue
            try:
                line.decode("utf-8")
                self.utf8 += 1
                continue
            except UnicodeDecodeError:
                self.not_utf8 += 1
            if _decodes(line, "gb18030"):
                self._keep_gb([line])
                continue
            if _mostly_utf8(line):
                self.damaged_utf8 += 1
                continue
            self.not_gb18030 += 1
            if self._sample_bytes < _JUDGE_SAMPLE_BYTES:
                self.sample.append(line)
                self._sample_bytes += len(line)

    def decide(self) -> str:
        """utf-8 unless most non-ASCII lines are not; then gb18030 if it reads them all as Chinese, Big5
        if that does, else the judge. Raises ``DataError`` for a file every Chinese reading garbles."""
        others = self.not_utf8 - self.damaged_utf8
        if self.not_utf8 == 0 and self.both and self.han_gb18030 > self.han_utf8:
            return "gb18030"
        if others == 0 or self.utf8 + self.damaged_utf8 > others:
            return "utf-8"
        if self.not_gb18030 == 0:
            return self._gb18030_or_big5()
        if self.sample:
            best = _judged(b"\n".join(self.sample))
            if best is not None and all(_decodes(line, best) for line in self.sample):
                return best
        return "utf-8" if self.not_utf8 <= self.not_gb18030 + self.damaged_utf8 else "gb18030"

    def _gb18030_or_big5(self) -> str:
        """Nearly every Big5 byte pair is also valid GB18030, as rare characters: a GB18030 reading whose
        characters are mostly rare is checked against Big5 (Traditional Chinese) before it is taken."""
        sample = b"\n".join(self.gb_sample)
        share, evidence = _chinese_share(sample.decode("gb18030"))
        if evidence < _MIN_EVIDENCE or share >= _PLAUSIBLE_SHARE:
            return "gb18030"
        for encoding in _TRADITIONAL:
            if _decodes(sample, encoding) and _chinese_share(sample.decode(encoding))[0] >= _PLAUSIBLE_SHARE:
                return encoding
        guess = _judged(sample)
        raise DataError("the text is not UTF-8, and read as GB18030 or Big5 it is mostly rare characters "
                        f"({share:.0%} common Chinese): say its encoding with --encoding "
                        + (f"{guess} if it is {guess} (a guess)" if guess else "NAME"))


def _judged(sample: bytes) -> str | None:
    """charset-normalizer's best encoding for some lines, never UTF-16/32 (their NUL bytes are seen
    before: lines of a narrow file that happen to have an even length are no UTF-16)."""
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    return None if best is None or is_wide(best.encoding) else best.encoding


def _mostly_utf8(line: bytes) -> bool:
    """A line with more well-formed UTF-8 characters beyond ASCII than bad bytes: UTF-8 with damage."""
    text = line.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    good = sum(1 for ch in text if ch > "\x7f") - bad
    return good > 0 and good >= bad


def is_wide(encoding: str) -> bool:
    """UTF-16/32: line breaks are more than one byte, so these are decoded as one stream."""
    return codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
        return True
    except (UnicodeDecodeError, LookupError):
        return False


def detect_encoding(data: bytes | IO[bytes]) -> str:
    """The encoding of all of ``data`` (bytes or a binary file, read to its end): a BOM's, else
    strict UTF-8, else GB18030 (a superset of GBK), else what charset-normalizer judges best."""
    if isinstance(data, (bytes, bytearray)):
        data = io.BytesIO(bytes(data))
    head = data.read(4)
    bom = _bom_encoding(head)
    if bom:
        return bom
    judge = _Judge()
    for block in _blocks(_Prefixed(head, data)):
        judge.feed(block)
    return judge.decide()


class _Prefixed(io.RawIOBase):
    """Bytes already read, then the rest of a stream."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        super().__init__()
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        if self._head:
            cut = len(self._head) if size is None or size < 0 else size
            out, self._head = self._head[:cut], self._head[cut:]
            return out
        return self._rest.read(size)

    def readinto(self, buffer: Any) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class DecodedLines:
    """The lines of a byte stream decoded strictly in one encoding; a line that does not decode is not
    guessed at or replaced: it is recorded in ``bad`` (line number, problem) for the reader to make its
    row an error row, and handed on decoded with U+FFFD so the row's structure survives. A line holding
    a NUL character is recorded the same way. A byte-order mark inside the text (U+FEFF, left where two
    exports were pasted together) is dropped: it is invisible and no customer wrote it."""

    def __init__(self, fh: IO[bytes], encoding: str, blocks: Iterator[bytes] | None = None) -> None:
        self.encoding = encoding
        self.line = 0
        self.bad: list[tuple[int, str]] = []
        self._fh = fh
        self._blocks = blocks  # the stream's blocks when some were already read to detect the encoding

    def take_bad(self) -> str | None:
        """The problem of the lines read since the last call, if one did not decode or held a NUL."""
        if not self.bad:
            return None
        problem = self.bad[0][1]
        self.bad.clear()
        return problem

    def _undecodable(self, why: str) -> None:
        self.bad.append((self.line, f"not valid {self.encoding} text ({why}); the row was not read"))

    def _checked(self, line: str) -> str:
        """``line`` without U+FEFF, its NUL (if any) recorded as the line's problem."""
        if "\ufeff" in line:
            line = line.replace("\ufeff", "")
        if "\x00" in line:
            self.bad.append((self.line, f"a NUL byte at character {line.index(chr(0)) + 1} of line {self.line}; "
                                        "the row was not read"))
        return line

    def __iter__(self) -> Iterator[str]:
        if is_wide(self.encoding):
            yield from self._wide()
            return
        codec = self.encoding
        first = True
        for block in self._blocks if self._blocks is not None else _blocks(self._fh):
            if first and codec == "utf-8-sig" and block.startswith(codecs.BOM_UTF8):
                block = block[3:]
            first = False
            try:
                text = block.decode(codec)
            except UnicodeDecodeError:
                for raw in block.splitlines(keepends=True):
                    self.line += 1
                    try:
                        yield self._checked(raw.decode(codec))
                    except UnicodeDecodeError as exc:
                        self._undecodable(f"byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the line")
                        yield raw.decode(codec, errors="replace")
                continue
            if "\ufeff" in text or "\x00" in text:  # rare: look at each line
                for line in io.StringIO(text, newline=""):
                    self.line += 1
                    yield self._checked(line)
                continue
            for line in io.StringIO(text, newline=""):
                self.line += 1
                yield line

    def _wide(self) -> Iterator[str]:
        raw = self._fh if hasattr(self._fh, "read1") else io.BufferedReader(self._fh)  # type: ignore[arg-type]
        text = io.TextIOWrapper(raw, encoding=self.encoding, errors="strict", newline="")  # type: ignore[arg-type]
        try:
            for line in text:
                self.line += 1
                yield self._checked(line)
        except UnicodeDecodeError as exc:
            raise DataError(f"not valid {self.encoding} text after line {self.line}: {exc.reason}") from None


def decoded_file(fh: IO[bytes], encoding: str | None) -> DecodedLines:
    """Lines of a seekable file in the given encoding, or in the one detected from all of it."""
    if encoding is None:
        encoding = detect_encoding(fh)
        fh.seek(0)
    return DecodedLines(fh, encoding)


def decoded_stream(stream: IO[bytes], encoding: str | None) -> DecodedLines:
    """Lines of a stream read once (stdin): the encoding is decided on the first block that is not
    ASCII and kept for the rest; later lines that do not decode become error rows."""
    head = stream.read(4)
    rest = _Prefixed(head, stream)
    if encoding is None:
        encoding = _bom_encoding(head)
    if encoding is None:
        judge = _Judge()
        blocks = _blocks(rest)
        seen: list[bytes] = []
        for block in blocks:
            seen.append(block)
            judge.feed(block)
            if not block.isascii():
                break
        return DecodedLines(rest, judge.decide(), blocks=chain(seen, blocks))
    return DecodedLines(rest, encoding)
