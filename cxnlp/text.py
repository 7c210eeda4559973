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


# Personal data masked before a text is stored (the ledger keeps what customers wrote, minus who they are).
_PII_RE = re.compile(
    r"(?P<email>[\w.+-]+@[\w-]+(?:\.[\w-]+)+)"
    r"|(?P<idcard>(?<!\d)\d{6}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?!\d))"
    r"|(?P<bankcard>(?:卡号?|账号|帐号)[:：\s]*\d[\d -]{13,24}\d(?!\d)|(?<!\d)\d{4}(?:[ -]\d{4}){3}(?:[ -]?\d{1,3})?(?!\d))"
    r"|(?P<mobile>(?<!\d)(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?!\d))"
    r"|(?P<landline>(?<!\d)0\d{2,3}-\d{7,8}(?!\d))"
)


def mask_personal_data(text: str) -> str:
    """Text with phone, ID-card and bank-card numbers and e-mails partly starred (138****5678)."""
    def star(m: re.Match[str]) -> str:
        s, kind = m.group(0), m.lastgroup
        if kind == "email":
            name, _, domain = s.partition("@")
            return name[:1] + "***@" + domain
        digits = [i for i, ch in enumerate(s) if ch.isdigit() or ch in "Xx"]
        keep_head, keep_tail = {"mobile": (3, 4), "landline": (4, 2), "idcard": (4, 2), "bankcard": (4, 4)}[kind or "mobile"]
        hidden = set(digits[keep_head:len(digits) - keep_tail])
        return "".join("*" if i in hidden else ch for i, ch in enumerate(s))

    return _PII_RE.sub(star, text)
