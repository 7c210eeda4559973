"""Text normalization, masking of numbers and personal data, and jieba tokenization with offsets.

``normalize`` maps one character to one character (full-width → half-width, traditional →
simplified, Latin lower-cased, white space and punctuation unified), so an offset into the
normalized text is an offset into the original: evidence spans point at what the customer wrote.
Masking (order numbers, phones, URLs, e-mails → placeholders) happens at tokenization time, where
each placeholder token keeps the span of what it replaced. The ``*_batch`` functions do all of this for
many texts at once (one look-up pass, one segmenter call), which is what featurization uses.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import tempfile
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import compress, repeat
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np

USER_DICT = "userdict.txt"

# Placeholders are ASCII words, which jieba keeps whole, and which no customer text uses.
PLACEHOLDERS = {"url": "urlx", "email": "emailx", "phone": "phonex", "idnum": "idnumx"}

_MASK_RE = re.compile(
    r"(?P<url>(?:https?://|www\.)[^\s\u4e00-\u9fff]+)"
    r"|(?P<email>[\w.+-]+@[\w-]+(?:\.[\w-]+)+)"
    r"|(?P<phone>(?<![\dA-Za-z])(?:1[3-9]\d[\d*]{4}\d{4}|0\d{2,3}-?\d{7,8}|400-?\d{3}-?\d{4})(?!\d))"
    r"|(?P<idnum>(?<![A-Za-z0-9])(?:[A-Za-z]{1,4}[-_]?)?\d[\d\-]{6,}\d(?![A-Za-z0-9])|\d{5,})"
)
# Tokens made only of white space and these punctuation marks carry nothing and are dropped.
_DROP_CHARS = frozenset(",.;:、\"'()[]<>~-_/\\|*=+^`·…")

_PUNCT_MAP = {
    "。": ".", "，": ",", "、": ",", "；": ";", "：": ":", "？": "?", "！": "!",
    "“": '"', "”": '"', "‘": "'", "’": "'", "「": '"', "」": '"', "『": '"', "』": '"',
    "（": "(", "）": ")", "【": "[", "】": "]", "《": "<", "》": ">", "〈": "<", "〉": ">",
    "～": "~", "—": "-", "–": "-", "－": "-", "…": ".", "﹏": "_", "\u3000": " ",
}


def _zhconv_simplified() -> dict[str, str]:
    """zhconv's traditional → simplified table (its "zh-hans" dictionary), read from zhconv's data file
    without importing zhconv, whose import pulls in pkg_resources: a tenth of a second of start-up."""
    spec = importlib.util.find_spec("zhconv")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("zhconv is not installed: pip install zhconv")
    return json.loads((Path(spec.submodule_search_locations[0]) / "zhcdict.json").read_bytes())["zh2Hans"]


@lru_cache(maxsize=1)
def _translation_table() -> dict[int, str]:
    """One-to-one character map; built on first use so importing the module costs nothing."""
    table: dict[int, str] = {}
    for trad, simp in _zhconv_simplified().items():
        if len(trad) == 1 and len(simp) == 1 and trad != simp:
            table[ord(trad)] = simp
    for code in range(0xFF01, 0xFF5F):  # full-width ASCII block
        table[code] = chr(code - 0xFEE0)
    for src, dst in _PUNCT_MAP.items():
        table[ord(src)] = dst
    for code in range(ord("A"), ord("Z") + 1):
        table[code] = chr(code + 32)
    for code in range(ord("Ａ"), ord("Ｚ") + 1):
        table[code] = chr(code - 0xFEE0 + 32)
    for ws in "\t\n\r\x0b\x0c\xa0\u2002\u2003\u2009\u200b\u3000":
        table[ord(ws)] = " "
    for code in range(0xD800, 0xE000):  # lone surrogates (from a bad decode) cannot be segmented
        table[code] = "\ufffd"
    return table


def normalize(text: str) -> str:
    """Canonical form of a text, with exactly the same length as the input (``normalize_batch`` is the
    same map for many texts at once)."""
    return text.translate(_translation_table())


def mask(text: str) -> str:
    """Normalized text with URLs, e-mails, phone and order/ID numbers replaced by placeholders."""
    batch = normalize_batch([text])
    return masked_text(batch, mask_spans(batch))


class Token(NamedTuple):
    term: str
    start: int
    end: int


def default_cache_dir() -> Path:
    """A writable folder for jieba's dictionary cache: ``CXNLP_CACHE_DIR``, ``~/.cache/cxnlp``, or the temp dir."""
    from cxnlp.settings import get_settings

    configured = get_settings().cache_dir
    for path in ([configured] if configured else []) + [Path.home() / ".cache" / "cxnlp"]:
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / f".probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
            return path
        except OSError:
            continue
    return Path(tempfile.gettempdir())


def user_dict_path() -> Path:
    return Path(str(resources.files("cxnlp") / "data" / USER_DICT))


def user_dict_sha256() -> str:
    return hashlib.sha256(user_dict_path().read_bytes()).hexdigest()


TOKENIZER_BACKENDS = ("jieba-rs", "jieba")
_JIEBA_LOCK = threading.Lock()
_JIEBA: dict[str, object] = {}


class _RustSegmenter:
    """jieba's algorithm and dictionary in Rust (the ``rjieba`` binding of jieba-rs), about ten times
    faster than the Python original; offsets come from the lengths of the consecutive pieces."""

    def __init__(self) -> None:
        import rjieba

        self._jieba = rjieba.Jieba()
        for line in user_dict_path().read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if parts:
                self._jieba.add_word(parts[0], int(parts[1]) if len(parts) > 1 else None,
                                     parts[2] if len(parts) > 2 else None)

    def lcut(self, text: str, HMM: bool = True) -> list[str]:  # noqa: N803 - jieba's own name and keyword
        """The pieces of ``text`` in order (together they are the whole text), as ``jieba.lcut``."""
        return self._jieba.cut(text, HMM)


def _python_segmenter():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tok = jieba.Tokenizer()
    tok.tmp_dir = str(default_cache_dir())
    tok.initialize()
    tok.load_userdict(str(user_dict_path()))
    return tok


def jieba_tokenizer(backend: str = "jieba-rs"):
    """The process's one segmenter for ``backend`` with the domain user dictionary, created on first use.

    ``jieba-rs`` is the fast default; ``jieba`` is the pure-Python original, whose dictionary cache is
    written to a writable folder (a read-only home never breaks start-up). Neither touches the global
    ``jieba.dt``, so the user dictionary does not leak into other code.
    """
    tok = _JIEBA.get(backend)
    if tok is not None:
        return tok
    if backend not in TOKENIZER_BACKENDS:
        raise ValueError(f"unknown tokenizer backend {backend!r}; expected one of {', '.join(TOKENIZER_BACKENDS)}")
    with _JIEBA_LOCK:
        tok = _JIEBA.get(backend)
        if tok is None:
            tok = _RustSegmenter() if backend == "jieba-rs" else _python_segmenter()
            _JIEBA[backend] = tok
    return tok


@dataclass
class TokenTable:
    """The tokens of a batch of texts as parallel arrays, in text order: each token's term, the row
    (text) it belongs to, and its span in that text. One segmenter call covers the whole batch."""

    terms: list[str]
    rows: np.ndarray    # int64, non-decreasing
    starts: np.ndarray  # int64 offsets into the token's own text
    ends: np.ndarray

    def tokens_of(self, row: int) -> list[Token]:
        lo, hi = np.searchsorted(self.rows, [row, row + 1])
        return [Token(self.terms[k], int(self.starts[k]), int(self.ends[k])) for k in range(lo, hi)]


# Characters a dropped token may consist of: the punctuation above and every white-space character.
_STRIP_CHARS = "".join(sorted(_DROP_CHARS)) + "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
_SEPARATOR = "\n"  # normalization maps every "\n" to a space, so no text contains it; jieba splits on it


@lru_cache(maxsize=1)
def _translation_array() -> np.ndarray:
    """``_translation_table`` as a look-up array over all code points (4 MB, shared by forked workers)."""
    lut = np.arange(0x110000, dtype=np.uint32)
    for code, dst in _translation_table().items():
        lut[code] = ord(dst)
    return lut


def codepoints(text: str) -> np.ndarray:
    """The code points of a string as uint32 (lone surrogates included, as Python keeps them)."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


@dataclass
class NormalizedBatch:
    """Many texts normalized at once and joined by a separator that no normalized text contains
    (normalization maps every "\\n" to a space); ``starts`` says where each text begins."""

    text: str
    codepoints: np.ndarray  # uint32, of ``text``
    starts: np.ndarray      # int64


def normalize_batch(texts: Sequence[str]) -> NormalizedBatch:
    """``normalize`` for many texts in one pass of array look-ups instead of one call per text."""
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    starts = np.zeros(len(texts), dtype=np.int64)
    np.cumsum(lengths[:-1] + 1, out=starts[1:])
    cps = codepoints(_SEPARATOR.join(texts))
    cps = _translation_array()[cps]
    cps[(starts + lengths)[:-1]] = ord(_SEPARATOR)
    return NormalizedBatch(cps.tobytes().decode("utf-32-le", "surrogatepass"), cps, starts)


@lru_cache(maxsize=1)
def _mask_hint_chars() -> np.ndarray:
    """Characters without which no text holds a masked span: digits, "@", and "h", "w" (of http, www)."""
    hint = np.zeros(0x110000, dtype=bool)
    hint[[ord(ch) for ch in "0123456789@hw"]] = True
    return hint


def mask_spans(batch: NormalizedBatch) -> list[tuple[int, int, str]]:
    """(start, end, placeholder) of every masked span in the joined text, in order.

    Masked things (URLs, e-mails, phone and order numbers) are written in printable ASCII, so the
    pattern runs only over runs of printable ASCII that hold a digit, "@", "h" or "w": a few
    characters per text instead of all of them.
    """
    cps = batch.codepoints
    hinted = _mask_hint_chars()[cps]
    if not hinted.any():
        return []
    printable = (cps >= 0x21) & (cps <= 0x7E)
    edges = np.diff(printable.astype(np.int8), prepend=0, append=0)
    run_starts, run_ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    runs = np.unique(np.searchsorted(run_starts, np.flatnonzero(hinted), side="right") - 1)
    text, spans = batch.text, []
    for start, end in zip(run_starts[runs].tolist(), run_ends[runs].tolist()):
        spans.extend((m.start(), m.end(), PLACEHOLDERS[m.lastgroup or "idnum"])
                     for m in _MASK_RE.finditer(text, start, end))
    return spans


def masked_text(batch: NormalizedBatch, spans: list[tuple[int, int, str]]) -> str:
    """The joined text with each masked span replaced by its placeholder (``mask`` for a batch)."""
    parts, pos = [], 0
    for start, end, placeholder in spans:
        parts.append(batch.text[pos:start])
        parts.append(placeholder)
        pos = end
    parts.append(batch.text[pos:])
    return "".join(parts)


def tokenize_batch(texts: Sequence[str], *, hmm: bool = True, backend: str = "jieba-rs",
                   batch: NormalizedBatch | None = None, spans: list[tuple[int, int, str]] | None = None
                   ) -> TokenTable:
    """Tokens of many texts, with offsets into each original text; placeholders stand for masked spans.

    The texts are normalized, joined and segmented in one call (jieba never joins words across the
    separator, so the tokens are those of each text alone); white space and punctuation are dropped.
    ``batch`` and ``spans`` are ``normalize_batch(texts)`` and its ``mask_spans`` when the caller has them.
    """
    tok = jieba_tokenizer(backend)
    batch = batch if batch is not None else normalize_batch(texts)
    spans = spans if spans is not None else mask_spans(batch)
    text, text_starts = batch.text, batch.starts
    pieces: list[str] = []
    masked_at: list[int] = []    # indices in ``pieces`` of placeholders
    masked_len: list[int] = []   # and the length of the span each replaced
    pos = 0
    for start, end, placeholder in spans:
        if start > pos:
            pieces.extend(tok.lcut(text[pos:start], HMM=hmm))
        masked_at.append(len(pieces))
        masked_len.append(end - start)
        pieces.append(placeholder)
        pos = end
    if pos < len(text):
        pieces.extend(tok.lcut(text[pos:], HMM=hmm))
    lengths = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
    lengths[masked_at] = masked_len  # the pieces cover the text, so offsets add up
    ends = np.cumsum(lengths)
    keep = np.fromiter(map(bool, map(str.strip, pieces, repeat(_STRIP_CHARS))), dtype=bool, count=len(pieces))
    ends = ends[keep]
    starts = ends - lengths[keep]
    rows = np.searchsorted(text_starts, starts, side="right") - 1
    offset = text_starts[rows]
    return TokenTable(list(compress(pieces, keep)), rows, starts - offset, ends - offset)


def tokenize_spans(text: str, *, hmm: bool = True, backend: str = "jieba-rs") -> list[Token]:
    """Tokens of one text with offsets into the original text; placeholders stand for masked spans."""
    return tokenize_batch([text], hmm=hmm, backend=backend).tokens_of(0)


# Personal data masked before a text is stored, logged or exported (the ledger keeps what customers
# wrote, minus who they are). Each kind is a pattern over the normalized text (full-width digits and ＠
# are ASCII there, traditional keywords simplified, Latin lower-case), an optional check of what it
# matched (ID cards by their GB 11643 check digit or birth date, bank cards by Luhn), and how much of
# the value stays readable. Kinds are tried in order and a span already masked is never matched again.
_NOT_BEFORE = r"(?<![0-9a-z])"
_NOT_AFTER = r"(?![0-9a-z])"
_KEY_GAP = r"\s*(?:[:=#]\s*)?(?:是|为)?\s*"


@dataclass(frozen=True)
class _PiiKind:
    name: str
    pattern: re.Pattern[str]   # the value to star is the group "v"
    keep: tuple[int, int]      # letters/digits left readable at the head and tail of the value
    check: object = None       # a function of the value's letters/digits that must hold, or None


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isalnum())


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10x98765432"


def _valid_date(year: int, month: int, day: int) -> bool:
    from datetime import date

    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _is_id18(v: str, checked: bool = True) -> bool:
    """An 18-character resident ID: region, a real birth date, and (``checked``) the GB 11643 check character."""
    if len(v) != 18 or not v[:17].isdigit() or v[0] not in "12345678":
        return False
    if not (1900 <= int(v[6:10]) <= 2099 and _valid_date(int(v[6:10]), int(v[10:12]), int(v[12:14]))):
        return False
    return not checked or _ID_CHECK[sum(int(d) * w for d, w in zip(v[:17], _ID_WEIGHTS)) % 11] == v[17]


def _is_id15(v: str) -> bool:
    """A 15-digit resident ID of the old form (no check digit): region and a real 19yy birth date."""
    return len(v) == 15 and v.isdigit() and v[0] in "12345678" and _valid_date(1900 + int(v[6:8]), int(v[8:10]), int(v[10:12]))


def _is_luhn_card(v: str) -> bool:
    """16–19 digits with a valid Luhn check digit (every bank card number)."""
    if not (16 <= len(v) <= 19 and v.isdigit()) or v[0] == "0":
        return False
    total = 0
    for i, ch in enumerate(reversed(v)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


_PII_KINDS: tuple[_PiiKind, ...] = (
    _PiiKind("email", re.compile(r"(?<![a-z0-9_%+-])(?<![a-z0-9]\.)(?P<v>[a-z0-9][a-z0-9._%+-]*)@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}"
                                 r"(?![a-z0-9-])"), (1, 0)),
    _PiiKind("qq", re.compile(r"(?<![a-z])(?:qq|扣扣)(?:号码|号)?" + _KEY_GAP + r"(?P<v>[1-9]\d{4,11})(?!\d)"), (0, 0)),
    _PiiKind("wechat", re.compile(r"(?<![a-z])(?:微信|威信|薇信|v信|wechat|weixin|vx|wx)(?:\s*(?:号码|号|id))?" + _KEY_GAP
                                  + r"(?P<v>[a-z][-_a-z0-9]{5,19})(?![-_a-z0-9])"), (0, 0)),
    # after a word that names it, an ID number needs only a real birth date (customers mistype the check digit)
    _PiiKind("idcard", re.compile(r"(?:身份证|证件|身份)(?:号码|号)?" + _KEY_GAP + r"(?P<v>\d{6}[ -]?\d{4}[ -]?\d{4}[ -]?\d{3}[0-9x]"
                                  r"|\d{6}[ -]?\d{6}[ -]?\d{3})" + _NOT_AFTER), (4, 2),
             lambda v: _is_id18(v, checked=False) or _is_id15(v)),
    _PiiKind("idcard", re.compile(_NOT_BEFORE + r"(?P<v>\d{6}[ -]?\d{4}[ -]?\d{4}[ -]?\d{3}[0-9x])" + _NOT_AFTER),
             (4, 2), lambda v: _is_id18(v)),
    _PiiKind("idcard", re.compile(_NOT_BEFORE + r"(?P<v>\d{6}[ -]?\d{6}[ -]?\d{3})" + _NOT_AFTER), (4, 2),
             lambda v: _is_id15(v)),
    _PiiKind("bankcard", re.compile(r"(?:卡号?|账号|帐号)[:\s]*(?P<v>\d[\d -]{13,24}\d)(?!\d)"), (4, 4)),
    _PiiKind("bankcard", re.compile(_NOT_BEFORE + r"(?P<v>\d{4}(?:[ -]?\d{4}){3}(?:[ -]?\d{1,3})?)" + _NOT_AFTER), (4, 4),
             lambda v: _is_luhn_card(v)),
    _PiiKind("mobile", re.compile(r"(?<![0-9])(?<![0-9][ .-])(?:(?:\+|00)?86[ .-]?|\(\+?86\)[ ]?)?(?P<v>1[3-9]\d[ .-]?\d{4}[ .-]?\d{4})(?!\d)"),
             (3, 4)),
    _PiiKind("landline", re.compile(r"(?<![0-9])(?<![0-9][ .-])(?:\(0\d{2,3}\)|0\d{2,3})[ -]?(?P<v>[1-9]\d{2,3}[ -]?\d{4})(?!\d)"), (0, 2)),
)
# Texts without any of these (normalized) hold no personal data: most texts skip the patterns.
_PII_HINT = re.compile(r"[0-9@]|身份|证件|微信|威信|薇信|v信|wechat|weixin|vx|wx|qq|扣扣")


def _is_format_char(ch: str) -> bool:
    """An invisible format character (Unicode category Cf: zero-width space/joiners, direction marks,
    word joiner, BOM, soft hyphen ...), which a writer can slip into a number to hide it from the patterns.
    None is printable, so a printable text holds none (the usual case: no character is looked at)."""
    return unicodedata.category(ch) == "Cf"


# A single space between two digits: "1 3 8 1 2 3 4 5 6 7 8" is a phone number written digit by digit.
_DIGIT_SPACE = re.compile(r"(?<=[0-9]) (?=[0-9])")


def _pii_views(norm: str) -> list[tuple[str, list[int] | None]]:
    """The texts the patterns run over, each with the offset in ``norm`` of each of its characters
    (None: the text is ``norm`` itself). Besides ``norm``: ``norm`` without format characters, and
    that without single spaces between digits, so numbers split by either are still found; a span
    found there covers the characters removed inside it, and masking keeps the length."""
    views: list[tuple[str, list[int] | None]] = [(norm, None)]
    hidden = not norm.isprintable() and any(map(_is_format_char, norm))
    if not hidden and not _DIGIT_SPACE.search(norm):
        return views
    index = list(range(len(norm)))
    if hidden:
        keep = [i for i in index if not _is_format_char(norm[i])]
        index = keep
        views.append(("".join(norm[i] for i in keep), keep))
    text = views[-1][0]
    if _DIGIT_SPACE.search(text):
        drop = {m.start() for m in _DIGIT_SPACE.finditer(text)}
        keep = [index[j] for j in range(len(text)) if j not in drop]
        views.append(("".join(norm[i] for i in keep), keep))
    return views


def personal_data_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of the value of every piece of personal data in ``text``, in order.

    Offsets are into ``text`` itself (normalization keeps length). Only the value is spanned, not
    the words around it ("QQ号", "+86", an area code in brackets stay readable).
    """
    norm = normalize(text)
    views = _pii_views(norm)
    if not any(_PII_HINT.search(view) for view, _ in views[-1:]):
        return []
    spans: list[tuple[int, int, str]] = []
    for kind in _PII_KINDS:
        for view, index in reversed(views):  # the most joined first: its spans are the longest
            for m in kind.pattern.finditer(view):
                start, end = m.span("v")
                if kind.check is not None and not kind.check(_digits(m.group("v"))):
                    continue
                if index is not None:
                    start, end = index[start], index[end - 1] + 1
                if any(start < e and s < end for s, e, _ in spans):
                    continue
                spans.append((start, end, kind.name))
    return sorted(spans)


_KEEP = {kind.name: kind.keep for kind in _PII_KINDS}
MASK_CHAR = "*"


def mask_personal_data(text: str, spans: Sequence[tuple[int, int, str]] | None = None) -> str:
    """Text with every piece of personal data starred character for character (138****5678,
    z****@qq.com, QQ号********): the masked text has the same length as the original, so an offset into
    one is an offset into the other, and nothing but the letters and digits of the values changes.
    ``spans`` are ``personal_data_spans(text)`` when the caller has them."""
    spans = personal_data_spans(text) if spans is None else spans
    if not spans:
        return text
    chars = list(text)
    for start, end, name in spans:
        head, tail = _KEEP[name]
        alnum = [i for i in range(start, end) if chars[i].isalnum()]
        for i in alnum[head:len(alnum) - tail]:
            chars[i] = MASK_CHAR
    return "".join(chars)
