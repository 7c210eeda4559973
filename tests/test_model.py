from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from cxnlp.errors import ConfigError, ModelError
from cxnlp.model import FeedbackClassifier
from cxnlp.store import ARRAYS_FILE, CARD_FILE, FORMAT, PREDICTOR_FILE, load_model, save_model

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
    _, words = a.features_.count(["等了很久"])
    assert (1, 2) in set(zip(words.starts.tolist(), words.ends.tolist()))  # 1-character words ("了") survive
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
    np.testing.assert_array_equal(loaded.estimator.predict_sentiment_proba(TEXTS), est.predict_sentiment_proba(TEXTS))
    card = json.loads((tmp_path / CARD_FILE).read_text())
    assert card["format"] == FORMAT and card["library_versions"]["scikit-learn"]
    assert set(card["files"]) == {ARRAYS_FILE, PREDICTOR_FILE} and all(f["sha256"] for f in card["files"].values())


@pytest.mark.parametrize("name", [ARRAYS_FILE, PREDICTOR_FILE])
def test_damaged_model_file_is_refused(tmp_path, name):
    est = small().fit(TEXTS, CATS, SENTS)
    save_model(est.compiled_, tmp_path, _card(est))
    with (tmp_path / name).open("ab") as fh:
        fh.write(b"garbage")
    with pytest.raises(ModelError, match="sha256"):
        load_model(tmp_path)


def test_card_without_required_fields_is_refused(tmp_path):
    (tmp_path / CARD_FILE).write_text('{"name": "x"}')
    with pytest.raises(ModelError, match="lacks required field"):
        load_model(tmp_path)


def test_model_built_with_another_scikit_learn_loads_alike(tmp_path):
    """The folder holds arrays, no scikit-learn objects: the version it was built with does not matter."""
    est = small().fit(TEXTS, CATS, SENTS)
    card = save_model(est.compiled_, tmp_path, {**_card(est), "library_versions": {"scikit-learn": "0.0.1"}})
    assert card["library_versions"]["scikit-learn"] == "0.0.1"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_model(tmp_path)
    np.testing.assert_array_equal(loaded.estimator.predict(["客服很凶"]), est.predict(["客服很凶"]))


def test_a_text_gets_the_same_features_alone_or_in_any_batch():
    """Batches are featurized as one joined text: nothing may leak from one text into its neighbours."""
    est = small().fit(TEXTS, CATS, SENTS)
    texts = TEXTS[:12] + ["", " ", "订单2025110312345678退款三天没到🙄", "態度很差！！！", "a", "b@c.com 好"]
    together = est.compiled_.transform(texts).toarray()
    alone = np.vstack([est.compiled_.transform([t]).toarray() for t in texts])
    np.testing.assert_array_equal(together, alone)
    reordered = est.compiled_.transform(texts[::-1]).toarray()[::-1]
    np.testing.assert_array_equal(together, reordered)


def test_evidence_of_a_text_is_the_same_alone_or_in_a_batch():
    est = small().fit(TEXTS, CATS, SENTS).compiled_
    texts = ["客服态度很差，等了三天没人回复", "前台小姐姐很热情，发货很快", "房间很干净", "催了好几次还没处理，服务员脸色难看"]
    labels = [["attitude", "speed"], ["speed"], [], ["attitude", "speed"]]
    together = est.evidence(texts, labels, est.featurizer.analyze(texts))
    alone = [est.evidence([t], [ls], est.featurizer.analyze([t]))[0] for t, ls in zip(texts, labels)]
    assert together == alone
    assert together[0]["attitude"] and together[0]["speed"] and together[2] == {}
    for text, evidence in zip(texts, together):
        assert all(text[s.start:s.end] == s.term for spans in evidence.values() for s in spans)


def test_evidence_works_for_a_taxonomy_of_more_than_eight_labels():
    """A company may train its own label set; evidence must not assume the shipped four labels."""
    labels = [f"l{k}" for k in range(10)]
    cats = [[labels[i % 10]] for i in range(len(TEXTS))]
    est = small().fit(TEXTS, cats, SENTS).compiled_
    texts = [TEXTS[9], TEXTS[8]]
    asked = [["l9", "l0"], ["l8"]]
    evidence = est.evidence(texts, asked, est.featurizer.analyze(texts))
    assert [sorted(e) for e in evidence] == [["l0", "l9"], ["l8"]]
    assert evidence[0]["l9"] and evidence[1]["l8"]  # each text's own label has words pushing it up
    for text, found in zip(texts, evidence):
        assert all(text[s.start:s.end] == s.term for spans in found.values() for s in spans)


def test_training_and_prediction_score_sentiment_alike():
    """Out-of-fold reports score with the training-side formula; the shipped model with the compiled one
    (whose weights are half precision: the scores agree to within a few thousandths)."""
    from cxnlp.model import _sentiment_scores

    est = small().fit(TEXTS, CATS, SENTS)
    texts = ["客服态度很差，等了三天", "前台很热情", "房间还行吧", "!!!"]
    X = est.features_.transform(texts)[:, est.columns_]
    expected = _sentiment_scores(X, est.sentiment_coef_, est.sentiment_intercept_, est.nb_ratio_)
    compiled = est.compiled_
    np.testing.assert_allclose(compiled.raw_scores(compiled.featurizer.analyze(texts).features)[1], expected,
                               rtol=0, atol=5e-3)


def test_tfidf_matches_scikit_learn():
    """The numpy TF-IDF is scikit-learn's TfidfTransformer(sublinear_tf=True), applied to each block."""
    from sklearn.feature_extraction.text import TfidfTransformer

    est = small().fit(TEXTS, CATS, SENTS)
    featurizer = est.features_
    counts = featurizer.count(TEXTS)[0].tocsr()
    texts = ["订单2025110312345678退款三天没到🙄", "態度很差！！！", "等了很久"]
    new_counts = featurizer.count(texts)[0].tocsr()
    half = 1 << featurizer.n_features_log2
    expected = [TfidfTransformer(sublinear_tf=True).fit(counts[:, block]).transform(new_counts[:, block]).toarray()
                for block in (slice(0, half), slice(half, None))]
    np.testing.assert_allclose(featurizer.transform(texts).toarray(), np.hstack(expected), rtol=1e-5, atol=1e-6)


def test_loading_a_model_imports_neither_scikit_learn_nor_scipy(tmp_path):
    import subprocess
    import sys

    est = small().fit(TEXTS, CATS, SENTS)
    save_model(est.compiled_, tmp_path, _card(est))
    code = ("import sys; from cxnlp.store import load_model; from cxnlp.prediction import predict_texts; "
            f"m = load_model({str(tmp_path)!r}); predict_texts(m, ['客服态度很差']); "
            "print('sklearn' in sys.modules, 'scipy' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False False"  # prediction needs neither (their imports cost start-up time)


HEADS = [{"C": 16.0}, {"C": 1.0}, {"C": 4.0, "naive_bayes": True}, {"C": 4.0, "rows": "ungrouped"}]
# half the rows name a writer (written service feedback), half do not (real reviews): the domain head joins
GROUPS = [f"w{i % 3}" if i % 2 else None for i in range(len(TEXTS))]


def test_several_category_heads_stack_save_and_load_alike(tmp_path):
    """Every head scores every label; the stack reads them all (and the domain head); a saved model gives
    the same probabilities as the fitted one, and its first head still picks the evidence."""
    est = small(category_heads=HEADS, stack_labels=True).fit(TEXTS, CATS, SENTS, groups=GROUPS)
    n_cat = len(est.categories_)
    assert est.category_coef_.shape[1] == len(HEADS) * n_cat == len(est.category_intercept_)
    assert est.calibrators_.shape == (n_cat, 2 * len(HEADS) * n_cat + 2)  # stacked with the domain head
    assert est.cv_report_["category_heads"] == len(HEADS)
    category, _ = est.compiled_.raw_scores(est.compiled_.featurizer.analyze(TEXTS).features)
    # the four heads are folded into two columns per label (and the domain head's score) at compile time
    assert category.shape == (len(TEXTS), 2 * n_cat + 1)
    save_model(est.compiled_, tmp_path, _card(est))
    loaded = load_model(tmp_path).estimator
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), est.predict_proba(TEXTS))
    np.testing.assert_array_equal(loaded.predict_sentiment_proba(TEXTS), est.predict_sentiment_proba(TEXTS))
    assert loaded.explain(TEXTS[0], ["attitude"])["attitude"]


def test_heads_are_scored_as_they_were_fitted():
    """A naive-Bayes head's scaling folds into its weights, and a head restricted to some rows learns from
    those alone; the compiled model, its heads folded into two columns per label, gives the probabilities of
    the stacked calibration over every head's own score (up to half-precision weights)."""
    from cxnlp.model import _fit_scores
    from cxnlp.runtime import calibrated

    est = small(category_heads=HEADS, stack_labels=True).fit(TEXTS, CATS, SENTS, groups=GROUPS)
    X = est.features_.transform(TEXTS)[:, est.columns_]
    y = np.array([c == ["attitude"] for c in CATS], dtype=int)
    n_cat = len(est.categories_)
    j = est.categories_.index("attitude")
    reviews = np.array([g is None for g in GROUPS])
    heads = X @ est.category_coef_.astype(np.float64) + est.category_intercept_
    for h, (nb, rows) in enumerate([(True, np.arange(len(TEXTS))), (False, np.flatnonzero(reviews))], start=2):
        coef, b = _fit_scores(4.0, "balanced", est.tol, X, y, np.ones(len(TEXTS)), rows, None, nb)
        np.testing.assert_allclose(heads[:, h * n_cat + j], X @ coef + b, atol=1e-4)
    # the review-only head differs from the all-rows head of the same C
    assert not np.allclose(heads[:, 3 * n_cat + j], heads[:, 2 * n_cat + j])
    domain = X @ est.domain_coef_[0].astype(np.float64) + est.domain_coef_[1]
    unfolded = calibrated(np.column_stack([heads, domain]), est.calibrators_, len(HEADS) * n_cat)
    np.testing.assert_allclose(est.predict_proba(TEXTS), unfolded, atol=2e-3)


def test_folded_heads_give_the_stacked_probabilities():
    """fold_heads is exact (before half precision): with and without the domain head."""
    from cxnlp.model import fold_heads
    from cxnlp.runtime import calibrated

    rng = np.random.RandomState(0)
    n_cat, n_heads, n_feat = 3, 4, 50
    X = rng.rand(20, n_feat)
    W, i = rng.randn(n_feat, n_heads * n_cat), rng.randn(n_heads * n_cat)
    for width in (2 * n_heads * n_cat + 2, n_heads * n_cat + 1):
        C = rng.randn(n_cat, width)
        domain = rng.randn(20, 1) if width > n_heads * n_cat + 1 else np.zeros((20, 0))
        coef, intercept, calibrators = fold_heads(W, i, C, n_cat)
        assert coef.shape[1] == (2 * n_cat if domain.shape[1] else n_cat)
        before = calibrated(np.column_stack([X @ W + i, domain]), C, n_heads * n_cat)
        after = calibrated(np.column_stack([X @ coef.astype(np.float64) + intercept, domain]), calibrators, len(intercept))
        np.testing.assert_allclose(after, before, atol=1e-5)


def test_several_heads_need_stacked_labels_and_sound_settings():
    with pytest.raises(ConfigError, match="stack_labels"):
        small(category_heads=HEADS, stack_labels=False).fit(TEXTS, CATS, SENTS, groups=GROUPS)
    with pytest.raises(ConfigError, match="category head"):
        small(category_heads=[{"C": 1.0, "rows": "some"}], stack_labels=True).fit(TEXTS, CATS, SENTS)


def test_fit_decisions_sets_a_threshold_per_domain():
    """With the domain head, each label gets one cut on text read as service feedback and one on the rest,
    each the F1-best (capped) cut of its own rows; a label too rare on one side keeps the shared cut there."""
    from cxnlp.model import MIN_DOMAIN_POSITIVES, _best_f1_threshold, fit_decisions
    from cxnlp.runtime import calibrated, decision_thresholds

    rng = np.random.RandomState(0)
    n = 2000
    service = rng.rand(n) < 0.5
    Y = np.column_stack([rng.rand(n) < 0.3, rng.rand(n) < np.where(service, 0.2, 0.004)]).astype(int)
    # label 1 is rare in reviews and its scores there are weaker: the review cut must be its own
    S = np.column_stack([Y[:, 0] * 2.0 + rng.randn(n), Y[:, 1] * np.where(service, 3.0, 1.0) + rng.randn(n),
                         np.where(service, 4.0, -4.0) + rng.randn(n)])
    common = dict(n_scores=2, domain=True, stack_labels=True, max_predicted_ratio=1.5)
    calibrators, shared = fit_decisions(S, Y, service, **common)
    assert shared.shape == (2,)
    calibrators2, split = fit_decisions(S, Y, service, domain_thresholds=True, **common)
    np.testing.assert_array_equal(calibrators2, calibrators)  # the calibration does not change
    assert split.shape == (2, 2)
    proba = calibrated(S, calibrators, 2)
    read_as_service = S[:, 2] >= 0
    for side, rows in enumerate((read_as_service, ~read_as_service)):
        assert split[side, 0] == _best_f1_threshold(proba[rows, 0], Y[rows, 0], 1.5)
    assert split[0, 1] == _best_f1_threshold(proba[read_as_service, 1], Y[read_as_service, 1], 1.5)
    assert Y[~read_as_service, 1].sum() < MIN_DOMAIN_POSITIVES and split[1, 1] == shared[1]
    # each text is cut by its own side's row
    t = decision_thresholds(split, S)
    np.testing.assert_array_equal(t[read_as_service], np.broadcast_to(split[0], (read_as_service.sum(), 2)))
    np.testing.assert_array_equal(t[~read_as_service], np.broadcast_to(split[1], ((~read_as_service).sum(), 2)))
    np.testing.assert_array_equal(decision_thresholds(shared, S), np.broadcast_to(shared, (n, 2)))
    # the F1 on each side is at least that of the shared cut (it is the best cut there)
    from sklearn.metrics import f1_score

    for side, rows in enumerate((read_as_service, ~read_as_service)):
        assert f1_score(Y[rows, 0], proba[rows, 0] >= split[side, 0]) >= f1_score(Y[rows, 0], proba[rows, 0] >= shared[0])


def test_a_model_with_thresholds_per_domain_decides_each_text_by_its_side(tmp_path, monkeypatch):
    """thresholds_ has a row for service feedback and one for other text; prediction, the CLI/HTTP records,
    the confidence and a saved model all cut each text by the row its domain head picks."""
    import cxnlp.model
    from cxnlp.prediction import predict_texts
    from cxnlp.runtime import decision_thresholds
    from cxnlp.store import LoadedModel

    monkeypatch.setattr(cxnlp.model, "MIN_DOMAIN_POSITIVES", 2)  # the tiny data set has a few per side
    est = small(category_heads=HEADS, stack_labels=True, domain_thresholds=True, max_predicted_ratio=1.5).fit(
        TEXTS, CATS, SENTS, groups=GROUPS)
    assert est.thresholds_.shape == (2, len(est.categories_))
    compiled = est.compiled_
    scores = compiled.score_texts(TEXTS)
    category, _ = compiled.raw_scores(compiled.featurizer.analyze(TEXTS).features)
    expected = scores.category >= decision_thresholds(est.thresholds_, category)
    np.testing.assert_array_equal(est.predict(TEXTS), expected.astype(int))
    card = _card(est)
    save_model(compiled, tmp_path, card)
    loaded = load_model(tmp_path)
    np.testing.assert_array_equal(loaded.estimator.thresholds_, est.thresholds_)
    np.testing.assert_array_equal(loaded.estimator.predict(TEXTS), expected.astype(int))
    records = predict_texts(loaded, TEXTS, explain=False)
    assert [r.categories for r in records] == [[c for c, on in zip(est.categories_, row) if on] for row in expected]
    conf = compiled.confidence(scores.category, scores.sentiment, scores.thresholds)
    assert [r.confidence for r in records] == np.round(conf, 4).tolist()
    with pytest.raises(ValueError, match="per-domain"):
        compiled.confidence(scores.category, scores.sentiment)
    assert isinstance(loaded, LoadedModel)
    assert "threshold_other_text" in est.cv_report_["categories"]["attitude"]


@pytest.mark.parametrize("change", ["two rows without a domain head", "a threshold outside 0..1"])
def test_malformed_thresholds_are_refused(tmp_path, change):
    from cxnlp.store import file_sha256

    est = small().fit(TEXTS, CATS, SENTS)
    save_model(est.compiled_, tmp_path, _card(est))
    arrays = dict(np.load(tmp_path / ARRAYS_FILE))
    if change == "two rows without a domain head":
        arrays["thresholds_"] = np.vstack([arrays["thresholds_"]] * 2)
    else:
        arrays["thresholds_"] = arrays["thresholds_"] + 7.0
    np.savez(tmp_path / ARRAYS_FILE, **arrays)
    card = json.loads((tmp_path / CARD_FILE).read_text())
    card["files"][ARRAYS_FILE]["sha256"] = file_sha256(tmp_path / ARRAYS_FILE)  # a consistent, wrong folder
    (tmp_path / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelError, match="thresholds_"):
        load_model(tmp_path)


def test_evaluation_report_names_both_cuts_of_a_model_with_thresholds_per_domain(tmp_path):
    from cxnlp.dataset import read_labeled_file
    from cxnlp.training import evaluate_model, format_report

    shipped = load_model()
    path = tmp_path / "few.csv"
    path.write_text("text,categories,sentiment\n客服态度很差,attitude,negative\n等了三天没人回复,speed,negative\n",
                    encoding="utf-8")
    report = evaluate_model(shipped, read_labeled_file(path))
    other = shipped.card["thresholds_other_text"]
    assert {label: m["threshold_other_text"] for label, m in report["categories"].items()} == other
    text = format_report(report)
    assert f"{shipped.card['thresholds']['expertise']:.3f} / {other['expertise']:.3f} other text" in text


@pytest.mark.parametrize("params, name", [({"other_text_polarity_weight": 2.0}, "other_text_polarity_weight"),
                                          ({"other_text_polarity_columns": "chars"}, "other_text_polarity_columns")])
def test_bad_other_text_polarity_settings_are_refused(params, name):
    with pytest.raises(ConfigError, match=name):
        small(stack_labels=True, **params).fit(TEXTS, CATS, SENTS, groups=GROUPS)


def test_other_text_polarity_pair_is_mixed_in_by_the_domain_head(tmp_path):
    """With a domain head, a second polarity pair (written rows weighted down) joins: P(positive) is
    d · first pair + (1 − d) · other-text pair, d the domain head's P(service feedback); training, the compiled
    model and a saved one agree."""
    from cxnlp.model import _polarity_scores, _sentiment_scores

    est = small(stack_labels=True, other_text_polarity_weight=0.25, other_text_polarity_columns="all").fit(
        TEXTS, CATS, SENTS, groups=GROUPS)
    plain = small(stack_labels=True).fit(TEXTS, CATS, SENTS, groups=GROUPS)
    assert est.other_polarity_ is not None and plain.other_polarity_ is None
    assert est.cv_report_["sentiment"]["other_text_polarity"] is True
    assert est.compiled_.coef_.shape[1] == plain.compiled_.coef_.shape[1] + 2
    texts = ["客服态度很差，等了三天", "前台很热情", "书的内容不错", "电脑运行速度快", "!!!"]
    X = est.features_.transform(texts)[:, est.columns_]
    first = _sentiment_scores(X, est.sentiment_coef_, est.sentiment_intercept_, est.nb_ratio_)
    other = _polarity_scores(X, *est.other_polarity_)
    d = 1 / (1 + np.exp(-(X @ est.domain_coef_[0].astype(np.float64) + est.domain_coef_[1])))
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    p_pos = d * sig(first[:, :2]).mean(axis=1) + (1 - d) * sig(other).mean(axis=1)
    q = sig(first[:, 2])
    expected = np.column_stack([(1 - q) * (1 - p_pos), q, (1 - q) * p_pos])
    got = est.predict_sentiment_proba(texts)
    np.testing.assert_allclose(got, expected, atol=2e-3)
    # the other-text pair moves what the model says (it is not the first pair under another name)
    assert not np.allclose(sig(other).mean(axis=1), sig(first[:, :2]).mean(axis=1), atol=1e-2)
    save_model(est.compiled_, tmp_path, _card(est))
    loaded = load_model(tmp_path).estimator
    np.testing.assert_array_equal(loaded.predict_sentiment_proba(texts), got)
    np.testing.assert_array_equal(loaded.predict_proba(texts), est.predict_proba(texts))


def test_other_text_polarity_needs_a_domain_head():
    """Without text of both kinds there is no domain head to mix the pairs: one pair, as before."""
    est = small(stack_labels=True, other_text_polarity_weight=0.25).fit(TEXTS, CATS, SENTS)
    assert est.other_polarity_ is None and est.cv_report_["sentiment"]["other_text_polarity"] is False
    assert est.compiled_.other_polarity_intercept_ is None


@pytest.mark.parametrize("change", ["without a domain head", "a ratio array of the wrong length"])
def test_malformed_other_text_polarity_arrays_are_refused(tmp_path, change):
    from cxnlp.store import file_sha256

    if change == "without a domain head":
        est = small().fit(TEXTS, CATS, SENTS)
        save_model(est.compiled_, tmp_path, _card(est))
        arrays = dict(np.load(tmp_path / ARRAYS_FILE))
        arrays["other_polarity_intercept_"] = np.zeros(2, dtype=np.float32)
        arrays["other_nb_ratio_"] = np.zeros_like(arrays["nb_ratio_"])
        match = "domain head"
    else:
        est = small(stack_labels=True, other_text_polarity_weight=0.25).fit(TEXTS, CATS, SENTS, groups=GROUPS)
        save_model(est.compiled_, tmp_path, _card(est))
        arrays = dict(np.load(tmp_path / ARRAYS_FILE))
        arrays["other_nb_ratio_"] = arrays["other_nb_ratio_"][:-1]
        match = "other_nb_ratio_"
    np.savez(tmp_path / ARRAYS_FILE, **arrays)
    card = json.loads((tmp_path / CARD_FILE).read_text())
    card["files"][ARRAYS_FILE]["sha256"] = file_sha256(tmp_path / ARRAYS_FILE)  # a consistent, wrong folder
    (tmp_path / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelError, match=match):
        load_model(tmp_path)
