"""Feature extraction: word n-grams over jieba tokens and character n-grams, both TF-IDF.

Both blocks read the raw text; normalization and masking happen inside them, so a fitted
vectorizer carries its own preprocessing into the saved model.
"""
from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion

from cxnlp.text import JiebaTokenizer, mask

WORD_BLOCK = "word"
CHAR_BLOCK = "char"


def make_features(
    *,
    word_ngram_range: tuple[int, int] = (1, 2),
    char_ngram_range: tuple[int, int] = (1, 3),
    min_df: int = 2,
    max_features: int | None = None,
    sublinear_tf: bool = True,
    hmm: bool = True,
) -> FeatureUnion:
    """An unfitted union of the word block (first, used for evidence) and the character block."""
    word = TfidfVectorizer(
        tokenizer=JiebaTokenizer(hmm=hmm), token_pattern=None, lowercase=False,
        ngram_range=tuple(word_ngram_range), min_df=min_df, max_features=max_features,
        sublinear_tf=sublinear_tf, dtype=np.float32,
    )
    char = TfidfVectorizer(
        analyzer="char", preprocessor=mask, lowercase=False,
        ngram_range=tuple(char_ngram_range), min_df=min_df, max_features=max_features,
        sublinear_tf=sublinear_tf, dtype=np.float32,
    )
    return FeatureUnion([(WORD_BLOCK, word), (CHAR_BLOCK, char)])
