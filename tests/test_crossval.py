"""Writer-held-out cross-validation, thresholds capped on calibration rows, stacked labels, clause features."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cxnlp.crossval import category_metrics, cross_validate, format_cv_report
from cxnlp.dataset import LabeledData
from cxnlp.errors import DataError
from cxnlp.folds import fold_ids
from cxnlp.model import FeedbackClassifier, _best_f1_threshold
from cxnlp.recipe import load_recipe
from cxnlp.store import load_model, save_model
from tests.conftest import ROOT

ATT = ["客服态度很差，爱答不理", "前台小姐姐很热情", "服务员脸色难看还骂人", "师傅很有礼貌"]
SPD = ["等了三天没人回复", "发货很快，第二天就到了", "催了好几次还没处理", "秒回，效率高"]
NONE = ["房间很干净", "价格有点贵", "书的内容不错", "电脑运行速度快"]


def _data(n_writers: int = 6) -> LabeledData:
    data = LabeledData()
    for w in range(n_writers):
        for k, (texts, cats) in enumerate(((ATT, ["attitude"]), (SPD, ["speed"]), (NONE, []))):
            for i, text in enumerate(texts):
                data.add(f"{text}{'！' * w}", cats, "negative" if i % 2 == 0 else "positive", 1.0, "w.csv",
                         info={"writer": f"w{w}", "channel": "chat" if i % 2 else "app", "industry": "hotel"})
    for text in NONE:  # a few rows without a writer (as real reviews are)
        data.add(text + "。", [], "positive", 1.0, "reviews.jsonl")
    return data


def test_folds_hold_out_whole_writers_and_spread_the_rest():
    groups = [f"w{i % 7}" for i in range(70)] + [None] * 30
    fold = fold_ids(groups, 5, random_state=0)
    for w in {g for g in groups if g}:
        assert len({fold[i] for i, g in enumerate(groups) if g == w}) == 1  # a writer sits in one fold
    assert set(fold[70:].tolist()) == set(range(5))  # rows without a writer land in every fold
    np.testing.assert_array_equal(fold, fold_ids(groups, 5, random_state=0))


def test_too_few_writers_to_hold_out_count_as_ungrouped():
    fold = fold_ids(["a"] * 10 + ["b"] * 10, 5)
    assert len(set(fold[:10].tolist())) > 1


def test_threshold_never_predicts_more_than_the_cap():
    # 3 positives ranked first, then 20 negatives, then 7 positives, then 70 negatives: the best F1
    # (0.5) takes the first 30 rows, three times as many as carry the label
    proba = np.array([0.9] * 3 + [0.6] * 20 + [0.5] * 7 + [0.1] * 70)
    y = np.array([1] * 3 + [0] * 20 + [1] * 7 + [0] * 70)
    free = _best_f1_threshold(proba, y)
    capped = _best_f1_threshold(proba, y, 1.5)
    assert (proba >= free).sum() > 1.5 * y.sum()  # without the cap the label fires far too often
    assert (proba >= capped).sum() <= 1.5 * y.sum()


def test_fit_caps_each_label_on_its_calibration_rows():
    data = _data()
    est = FeedbackClassifier(cv_folds=3, n_features_log2=16, max_predicted_ratio=1.5).fit(
        data.texts, data.categories, data.sentiments, groups=[i.get("writer") for i in data.info])
    for label, m in est.cv_report_["categories"].items():
        assert m["predicted"] <= 1.5 * m["support"], label
    assert est.cv_report_["grouped_rows"] == 72


def test_stacked_labels_save_load_and_predict_alike(tmp_path):
    data = _data()
    params = {"cv_folds": 3, "n_features_log2": 16, "stack_labels": True, "clause_features": True}
    card = {"name": "t", "version": "0", "categories": ["attitude", "speed"],
            "sentiments": ["negative", "neutral", "positive"], "thresholds": {}}
    texts = ["客服态度很差，等了三天", "房间很干净"]
    # without writers: the labels' scores are stacked; with writers and other rows: a domain head joins
    for groups, width in ((None, 3), ([i.get("writer") for i in data.info], 6)):
        est = FeedbackClassifier(**params).fit(data.texts, data.categories, data.sentiments, groups=groups)
        assert est.calibrators_.shape == (2, width)
        folder = tmp_path / str(width)
        save_model(est.compiled_, folder, card)
        loaded = load_model(folder)
        np.testing.assert_allclose(loaded.estimator.predict_proba(texts), est.predict_proba(texts), rtol=1e-5)
        assert loaded.estimator.featurizer.clause_features
        assert (loaded.estimator.domain_intercept_ is not None) == (width == 6)


def test_clause_features_mark_who_did_what_in_the_same_clause():
    from cxnlp.features import CLAUSE_PREFIX, TextFeaturizer, string_hashes, ngram_columns, _WORD_SEED

    feat = TextFeaturizer(n_features_log2=16, clause_features=True)
    names = [f"{CLAUSE_PREFIX}staff+attitude", f"{CLAUSE_PREFIX}attitude"]
    cols, _, _, _ = ngram_columns(string_hashes(names), np.arange(2), (1, 1), _WORD_SEED, 16)
    counts, _ = feat.count(["客服态度很差", "东西不错，但是态度一般，客服在忙", "客服很忙"])
    rows = counts.tocsr().toarray()
    assert rows[0, cols[0]] == 1 and rows[0, cols[1]] == 0     # staff and behaviour in one clause
    assert rows[1, cols[0]] == 0 and rows[1, cols[1]] == 1     # behaviour in a clause of its own
    assert rows[2, cols].sum() == 0                           # staff alone is no behaviour
    off = TextFeaturizer(n_features_log2=16).count(["客服态度很差"])[0].tocsr().toarray()
    assert off[0, cols].sum() == 0


def test_cross_validation_reports_written_and_reviews_by_channel():
    recipe, _ = load_recipe(ROOT / "training" / "default.toml",
                            ["classifier.cv_folds=3", "features.n_features_log2=16", "classifier.n_jobs=1"])
    report = cross_validate(_data(), recipe, folds=3)
    written = report["written"]
    assert written["overall"]["n"] == 72 and report["reviews"]["overall"]["n"] == 4
    assert set(written["by_channel"]) == {"app", "chat"}
    assert {"precision", "recall", "f1", "support", "predicted"} <= set(written["overall"]["categories"]["speed"])
    assert 0 <= written["overall"]["exact_match"] <= 1 and "sentiment" in written["overall"]
    json.dumps(report)
    assert "writers held out" in format_cv_report(report)


def test_cross_validation_needs_the_group_column():
    data = LabeledData()
    for t in ATT + SPD:
        data.add(t, [], "negative", 1.0, "x")
    recipe, _ = load_recipe(ROOT / "training" / "default.toml")
    with pytest.raises(DataError, match="writer"):
        cross_validate(data, recipe)


def test_category_metrics_count_exact_label_sets():
    m = category_metrics([["a"], ["a", "b"], []], [["a"], ["a"], []], ["a", "b"])
    assert m["exact_match"] == round(2 / 3, 4) and m["categories"]["b"]["recall"] == 0.0
    assert m["categories"]["a"]["f1"] == 1.0 and m["macro_f1"] == 0.5


def test_evaluate_cross_validate_on_the_command_line(tmp_path):
    import csv

    from typer.testing import CliRunner

    from cxnlp.cli import app

    data = _data()
    path = tmp_path / "labeled.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["text", "categories", "sentiment", "writer", "channel", "industry"])
        for text, cats, sent, info in zip(data.texts, data.categories, data.sentiments, data.info):
            if info:
                out.writerow([text, "|".join(cats or []), sent, info["writer"], info["channel"], info["industry"]])
    report = tmp_path / "cv.json"
    result = CliRunner().invoke(app, [
        "evaluate", "--cross-validate", "--config", str(ROOT / "training" / "default.toml"), "--data", str(path),
        "--folds", "3", "--set", "classifier.cv_folds=3", "--set", "features.n_features_log2=16",
        "--json", str(report)])
    assert result.exit_code == 0, result.output
    assert "service feedback (writers held out): n=72" in result.output
    assert json.loads(report.read_text(encoding="utf-8"))["written"]["overall"]["n"] == 72
    refused = CliRunner().invoke(app, ["evaluate", "--data", str(path), "--config", "x.toml"])
    assert refused.exit_code == 2
