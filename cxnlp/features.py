"""Feature extraction: word n-grams over jieba tokens (plus curated cue phrases) and character
n-grams, each block hashed, then TF-IDF weighted.

Hashing keeps no vocabulary: the model is small, and evidence needs no reverse vocabulary, because
the terms of a text can be hashed again to find their columns. This is the training-time form; the
prediction-time twin that needs no scikit-learn is ``cxnlp.runtime.HashedTfidfBlock``.
"""
from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.pipeline import FeatureUnion, Pipeline

from cxnlp.analyzers import CHAR_BLOCK, WORD_BLOCK, CharAnalyzer, WordAnalyzer, load_cue_phrases

def _hashed_tfidf(analyzer, n_features_log2: int, sublinear_tf: bool) -> Pipeline:
    return Pipeline([
        ("hash", HashingVectorizer(analyzer=analyzer, n_features=2 ** n_features_log2, alternate_sign=False,
                                   norm=None, dtype=np.float32)),
        ("tfidf", TfidfTransformer(sublinear_tf=sublinear_tf)),
    ])


def make_features(
    *,
    word_ngram_range: tuple[int, int] = (1, 2),
    char_ngram_range: tuple[int, int] = (1, 3),
    n_features_log2: int = 20,
    sublinear_tf: bool = True,
    hmm: bool = True,
    tokenizer: str = "jieba-rs",
    cue_phrases: bool = False,
) -> FeatureUnion:
    """An unfitted union of two blocks, each hashed, TF-IDF weighted and l2-normalized on its own:
    ``word`` (columns 0 … 2**n-1: word n-grams and cue features) and ``char`` (the next 2**n)."""
    word = WordAnalyzer(tuple(word_ngram_range), hmm, tokenizer, load_cue_phrases() if cue_phrases else ())
    return FeatureUnion([
        (WORD_BLOCK, _hashed_tfidf(word, n_features_log2, sublinear_tf)),
        (CHAR_BLOCK, _hashed_tfidf(CharAnalyzer(tuple(char_ngram_range)), n_features_log2, sublinear_tf)),
    ])
