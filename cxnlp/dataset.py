"""Labeled training data: analysts' files and the hand-labeled public corpus, with every bad row reported.

A labeled file has columns ``text``, ``categories`` (labels joined by ``|``, empty for none) and
``sentiment``; other columns are ignored. Corpus labels name texts by id and are joined to the texts
of the installed corpus here, TRAIN part only.
"""
from __future__ import annotations

import difflib
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cxnlp.corpus import train_texts
from cxnlp.errors import DataError
from cxnlp.io import list_for_message, open_table, shorten
from cxnlp.taxonomy import CATEGORY_NAMES_ZH, parse_categories, parse_sentiment

MIN_EXAMPLES_PER_LABEL = 30
# Columns of a labeled file kept with each row (not features): who wrote it and where it comes from, so
# that evaluation can hold out whole writers and report per channel and industry.
INFO_COLUMNS = ("writer", "industry", "channel")


@dataclass
class LabeledData:
    """Parallel lists; ``categories[i]`` / ``sentiments[i]`` are None where a row carries no such label."""

    texts: list[str] = field(default_factory=list)
    categories: list[list[str] | None] = field(default_factory=list)
    sentiments: list[str | None] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    calibrate: list[bool] = field(default_factory=list)  # rows whose scores set thresholds (real text)
    polarities: list[str | None] = field(default_factory=list)  # the writer's own rating, where known
    info: list[dict[str, str]] = field(default_factory=list)  # INFO_COLUMNS values a row carries
    errors: list[str] = field(default_factory=list)  # "file: row N: why"

    def add(self, text: str, cats: list[str] | None, sentiment: str | None, weight: float, source: str,
            calibrate: bool = True, polarity: str | None = None, info: dict[str, str] | None = None) -> None:
        self.info.append(info or {})
        self.calibrate.append(calibrate)
        self.polarities.append(polarity)
        self.texts.append(text)
        self.categories.append(cats)
        self.sentiments.append(sentiment)
        self.weights.append(weight)
        self.sources.append(source)

    def extend(self, other: "LabeledData") -> None:
        for name in ("texts", "categories", "sentiments", "weights", "sources", "calibrate", "polarities",
                     "info", "errors"):
            getattr(self, name).extend(getattr(other, name))

    def __len__(self) -> int:
        return len(self.texts)

    def label_counts(self) -> Counter:
        return Counter(label for c in self.categories if c is not None for label in c)

    def warnings(self) -> list[str]:
        counts = self.label_counts()
        return [f"label {label!r} has only {n} examples (fewer than {MIN_EXAMPLES_PER_LABEL}): its scores "
                f"will be unreliable" for label, n in sorted(counts.items()) if n < MIN_EXAMPLES_PER_LABEL]

    def sha256(self) -> str:
        """Hash of the training rows as the model saw them (order included)."""
        digest = hashlib.sha256()
        for t, c, s, w in zip(self.texts, self.categories, self.sentiments, self.weights):
            digest.update(json.dumps([t, c, s, w], ensure_ascii=False).encode("utf-8"))
        return digest.hexdigest()


def read_labeled_file(path: str | Path, *, weight: float = 1.0, require_sentiment: bool = True) -> LabeledData:
    """Rows of an analyst's labeled CSV/XLSX/JSONL file; bad rows go to ``errors`` with their row number.

    A rare label that is a near spelling of a common one (``atitude`` beside 300 ``attitude``) is taken
    for a typo: its rows are reported and skipped rather than trained as a label of their own.
    """
    data = LabeledData()
    parsed: list[tuple[str, str, list[str], str | None, dict[str, str]]] = []  # where, text, labels, info
    with open_table(path, "text", need_text=True) as table:
        if "categories" not in table.columns and table.columns:
            raise DataError(f"{path}: a labeled file needs a 'categories' column; columns are: "
                            f"{list_for_message(table.columns)}")
        for row in table.rows:
            where = f"{path}: {row.where}"
            if row.problem:  # unreadable, or its cells cannot be trusted (a formula read as empty)
                data.errors.append(f"{where}: {row.problem}")
                continue
            text = row.values.get("text")
            if text is None or not str(text).strip():
                data.errors.append(f"{where}: empty text")
                continue
            try:
                cats = parse_categories(row.values.get("categories"))
                raw_sent = row.values.get("sentiment")
                if raw_sent in (None, "") and not require_sentiment:
                    sentiment = None
                else:
                    sentiment = parse_sentiment(raw_sent)
            except DataError as exc:
                data.errors.append(f"{where}: {shorten(str(exc), 300)}")
                continue
            info = {k: str(row.values[k]).strip() for k in INFO_COLUMNS if str(row.values.get(k) or "").strip()}
            parsed.append((where, str(text).strip(), cats, sentiment, info))
    typos = label_typos(Counter(label for _, _, cats, _, _ in parsed for label in cats))
    for where, text, cats, sentiment, info in parsed:
        wrong = [label for label in cats if label in typos]
        if wrong:
            data.errors.append(f"{where}: " + "; ".join(
                f"category label {shorten(label, 60)!r} looks like a typo of {typos[label]!r}" for label in wrong)
                + " (row skipped)")
            continue
        data.add(text, cats, sentiment, weight, str(path), info=info)
    return data


def label_typos(counts: Counter) -> dict[str, str]:
    """Rare labels that are near spellings of common ones (or of their Chinese names) → the common one.

    Rare: fewer than MIN_EXAMPLES_PER_LABEL rows and a tenth of the common label's. Near: same letters
    in another case, or difflib similarity at least 0.75. A company's own rare label that resembles no
    common one is kept (it gets the few-examples warning instead).
    """
    common = [label for label, n in counts.items() if n >= MIN_EXAMPLES_PER_LABEL]
    typos: dict[str, str] = {}
    for label, n in counts.items():
        if n >= MIN_EXAMPLES_PER_LABEL:
            continue
        for other in common:
            if n * 10 > counts[other]:
                continue
            spellings = [other, CATEGORY_NAMES_ZH.get(other, other)]
            if label.lower() in (s.lower() for s in spellings) or difflib.get_close_matches(
                    label.lower(), [s.lower() for s in spellings], n=1, cutoff=0.75):
                typos[label] = other
                break
    return typos


def read_corpus_labels(path: str | Path, *, weight: float = 1.0) -> LabeledData:
    """Hand labels of corpus TRAIN texts (``{"id", "categories", "sentiment"}``), joined to their texts."""
    texts = train_texts()
    data = LabeledData()
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}: row {number}"
        try:
            obj = json.loads(line)
            item = texts.get(obj["id"])
            if item is None:
                raise DataError(f"id {obj['id']!r} is not a TRAIN text of the installed corpus")
            data.add(item.text, parse_categories(obj.get("categories")), parse_sentiment(obj.get("sentiment")),
                     weight, str(path), polarity=item.polarity)
        except (DataError, KeyError, json.JSONDecodeError) as exc:
            data.errors.append(f"{where}: {exc}")
    return data


def read_corpus_sentiment(*, exclude: set[str], weight: float = 1.0, limit: int | None = None) -> LabeledData:
    """Corpus TRAIN texts not hand-labeled, with the polarity of the file they came from (no categories)."""
    data = LabeledData()
    items = [c for c in train_texts().values() if c.id not in exclude]
    for item in items[:limit] if limit else items:
        data.add(item.text, None, item.polarity, weight, "corpus:polarity")
    return data
