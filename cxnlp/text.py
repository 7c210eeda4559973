"""Text normalization, masking of numbers and personal data, and jieba tokenization with offsets.

``normalize`` maps one character to one character (full-width → half-width, traditional →
simplified, Latin lower-cased, white space and punctuation unified), so an offset into the
normalized text is an offset into the original: evidence spans point at what the customer wrote.
Masking (order numbers, phones, URLs, e-mails → placeholders) happens at tokenization time, where
each placeholder token keeps the span of what it replaced.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import threading
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import NamedTuple

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
_DROP_TOKEN_RE = re.compile("^[\\s" + re.escape("".join(sorted(_DROP_CHARS))) + "]+$")

_PUNCT_MAP = {
    "。": ".", "，": ",", "、": ",", "；": ";", "：": ":", "？": "?", "！": "!",
    "“": '"', "”": '"', "‘": "'", "’": "'", "「": '"', "」": '"', "『": '"', "』": '"',
    "（": "(", "）": ")", "【": "[", "】": "]", "《": "<", "》": ">", "〈": "<", "〉": ">",
    "～": "~", "—": "-", "–": "-", "－": "-", "…": ".", "﹏": "_", "\u3000": " ",
}


@lru_cache(maxsize=1)
def _translation_table() -> dict[int, str]:
    """One-to-one character map; built on first use so importing the module costs nothing."""
    import zhconv

    table: dict[int, str] = {}
    for trad, simp in zhconv.zhconv.getdict("zh-hans").items():
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
    return table


@lru_cache(maxsize=8192)
def normalize(text: str) -> str:
    """Canonical form of a text, with exactly the same length as the input.

    Cached: tokenization, character n-grams and cue phrases each normalize the same text in turn.
    """
    return text.translate(_translation_table())


def mask(text: str) -> str:
    """Normalized text with URLs, e-mails, phone and order/ID numbers replaced by placeholders."""
    return _MASK_RE.sub(lambda m: PLACEHOLDERS[m.lastgroup or "idnum"], normalize(text))


class Token(NamedTuple):
    term: str
    start: int
    end: int


_new_token = tuple.__new__  # builds a Token without NamedTuple's Python-level __new__ (hot path)


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


def tokenize_spans(text: str, *, hmm: bool = True, backend: str = "jieba-rs") -> list[Token]:
    """Tokens of a text with offsets into the original text; placeholders stand for masked spans."""
    tok = jieba_tokenizer(backend)
    norm = normalize(text)
    tokens: list[Token] = []
    pos = 0

    def cut(segment: str, offset: int) -> None:
        pos = offset
        for word in tok.lcut(segment, HMM=hmm):  # the pieces cover the segment, so offsets add up
            end = pos + len(word)
            dropped = (word in _DROP_CHARS or word.isspace()) if len(word) == 1 else _DROP_TOKEN_RE.match(word)
            if not dropped:
                tokens.append(_new_token(Token, (word, pos, end)))
            pos = end

    for m in _MASK_RE.finditer(norm):
        if m.start() > pos:
            cut(norm[pos:m.start()], pos)
        tokens.append(Token(PLACEHOLDERS[m.lastgroup or "idnum"], m.start(), m.end()))
        pos = m.end()
    if pos < len(norm):
        cut(norm[pos:], pos)
    return tokens


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
