from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from cxnlp.errors import ConfigError, ModelError
from cxnlp.model import FeedbackClassifier
from cxnlp.store import CARD_FILE, MODEL_FILE, load_model, save_model

TEXTS = [
    "客服态度很差，爱答不理", "前台小姐姐很热情", "服务员脸色难看还骂人", "师傅很有礼貌",
    "等了三天没人回复", "发货很快，第二天就到了", "催了好几次还没处理", "秒回，效率高",
    "房间很干净", "价格有点贵", "书的内容不错", "电脑运行速度快",
] * 3
CATS = [["attitude"]] * 4 + [["speed"]] * 4 + [[]] * 4
CATS = CATS * 3
SENTS = ["negative", "positive", "negative", "positive", "negative", "positive", "negative", "positive",
         "positive", "negative", "positive", "positive"] * 3


def small(**params) -> FeedbackClassifier:
    return FeedbackClassifier(cv_folds=3, n_features_log2=16, **params)


def test_init_only_stores_parameters():
    est = small(category_C=2.0)
    assert clone(est).get_params() == est.get_params()
    assert not [k for k in vars(est) if k.endswith("_")]


def test_bad_parameter_is_refused_at_fit_with_its_name():
    est = small(category_C=-1)  # the constructor accepts it, as scikit-learn estimators do
    with pytest.raises(ConfigError, match="category_C"):
        est.fit(TEXTS, CATS, SENTS)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "predict_sentiment_proba"])
def test_not_fitted_error_before_fit(method):
    with pytest.raises(NotFittedError):
        getattr(small(), method)(["你好"])


def test_fit_is_deterministic_and_learns_short_words():
    a = small().fit(TEXTS, CATS, SENTS)
    b = small().fit(TEXTS, CATS, SENTS)
    np.testing.assert_allclose(a.predict_proba(TEXTS), b.predict_proba(TEXTS))
    assert "了" in a.features_.transformer_list[0][1].named_steps["hash"].analyzer("等了很久")  # 1-character words survive
    assert a.categories_ == ("attitude", "speed")
    assert set(a.cv_report_["categories"]) == {"attitude", "speed"}
    assert 0.05 <= a.thresholds_.min() and a.thresholds_.max() <= 0.95


def test_rows_without_category_labels_train_only_sentiment():
    cats = [c if i % 2 == 0 else None for i, c in enumerate(CATS)]
    est = small().fit(TEXTS, cats, SENTS)
    assert est.cv_report_["n_category_rows"] == sum(c is not None for c in cats)


def test_evidence_points_at_the_words(tmp_path):
    est = small().fit(TEXTS, CATS, SENTS)
    text = "这个客服态度很差"
    spans = est.explain(text, ["attitude"])["attitude"]
    assert spans and all(text[s.start:s.end] == s.term for s in spans)


def _card(est):
    return {"name": "t", "version": "0", "categories": list(est.categories_),
            "sentiments": ["negative", "neutral", "positive"], "thresholds": {}}


def test_save_load_gives_identical_probabilities(tmp_path):
    est = small().fit(TEXTS, CATS, SENTS)
    save_model(est.compiled_, tmp_path, _card(est))
    loaded = load_model(tmp_path)
    np.testing.assert_array_equal(loaded.estimator.predict_proba(TEXTS), est.predict_proba(TEXTS))
    card = json.loads((tmp_path / CARD_FILE).read_text())
    assert card["model_sha256"] and card["library_versions"]["scikit-learn"]


def test_damaged_model_file_is_refused(tmp_path):
    est = small().fit(TEXTS, CATS, SENTS)
    save_model(est.compiled_, tmp_path, _card(est))
    with (tmp_path / MODEL_FILE).open("ab") as fh:
        fh.write(b"garbage")
    with pytest.raises(ModelError, match="sha256"):
        load_model(tmp_path)


def test_card_without_required_fields_is_refused(tmp_path):
    (tmp_path / CARD_FILE).write_text('{"name": "x"}')
    with pytest.raises(ModelError, match="lacks required field"):
        load_model(tmp_path)


def test_scikit_learn_version_mismatch_warns_not_crashes(tmp_path):
    est = small().fit(TEXTS, CATS, SENTS)
    card = save_model(est.compiled_, tmp_path, {**_card(est), "library_versions": {"scikit-learn": "0.0.1"}})
    assert card["library_versions"]["scikit-learn"] == "0.0.1"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_model(tmp_path)
    assert any("scikit-learn 0.0.1" in str(w.message) for w in caught)
    assert loaded.estimator.predict(["客服很凶"]).shape == (1, 2)


def test_compiled_features_match_scikit_learn():
    """The prediction-time featurizer (numpy + mmh3) reproduces the training-time one (scikit-learn)."""
    est = small().fit(TEXTS, CATS, SENTS)
    texts = TEXTS[:12] + ["", "订单2025110312345678退款三天没到🙄", "態度很差！！！"]
    np.testing.assert_allclose(est.features_.transform(texts).toarray(), est.compiled_.transform(texts).toarray(),
                               rtol=1e-5, atol=1e-6)


def test_loading_a_model_does_not_import_scikit_learn(tmp_path):
    import subprocess
    import sys

    est = small().fit(TEXTS, CATS, SENTS)
    save_model(est.compiled_, tmp_path, _card(est))
    code = ("import sys; from cxnlp.store import load_model; from cxnlp.prediction import predict_texts; "
            f"m = load_model({str(tmp_path)!r}); predict_texts(m, ['客服态度很差']); "
            "print('sklearn' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
