"""Evidence an analyst can use: content words and cue phrases, never stop words, punctuation, numbers,
placeholders or personal data; at most ``evidence_terms`` distinct terms per label; spans into the text."""
from __future__ import annotations

import csv

from cxnlp.prediction import predict_texts
from cxnlp.runtime import stop_words
from cxnlp.store import load_model
from cxnlp.text import PLACEHOLDERS, tokenize_spans
from tests.conftest import SAMPLES

EXTRA = [
    "客服态度很差，我说了半天他们还是不理我！！",
    "等了三天还没有人回复，我的电话13812345678，邮箱 abc@example.com",
    "他们说会退款，结果到现在都没退？订单号2025110312345678",
    "你们的工作人员一问三不知，还让我自己去查，真是的。。。",
    "请问保修期多久？",
]


def _texts(n: int = 400) -> list[str]:
    with (SAMPLES / "feedback_labeled.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = [r["text"] for r in csv.DictReader(fh)]
    from cxnlp.corpus import train_texts

    reviews = [c.text for c in list(train_texts().values())[:: 50]]  # real reviews, spread over the corpus
    return EXTRA + rows[: n // 2] + reviews[: n // 2]


def test_no_evidence_term_holds_a_stop_word_punctuation_a_number_or_a_placeholder():
    model = load_model()
    texts = _texts()
    assert len(texts) >= 300
    stops, placeholders = stop_words(), set(PLACEHOLDERS.values())
    # the shipped stop list names the words the issue found in evidence
    assert {"说", "了", "我", "还", "他们", "去", "特别"} <= stops
    checked = 0
    for text, pred in zip(texts, predict_texts(model, texts)):
        tokens = tokenize_spans(text)
        for label, spans in pred.evidence.items():
            assert len({s["term"] for s in spans}) <= model.estimator.evidence_terms, (text, label, spans)
            for span in spans:
                term = span["term"]
                assert text[span["start"]:span["end"]] == term
                assert any(ch.isalpha() for ch in term) and not any(ch.isdigit() for ch in term), (text, term)
                inside = [t.term for t in tokens if span["start"] <= t.start and t.end <= span["end"]]
                assert inside and not set(inside) & (stops | placeholders), (text, term, inside)
                checked += 1
    assert checked > 300  # the texts did get evidence to check
