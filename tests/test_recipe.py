"""The shipped recipe is complete and valid, and overrides are checked like the file itself."""
from __future__ import annotations

import inspect

import pytest

from cxnlp.errors import ConfigError
from cxnlp.model import FeedbackClassifier
from cxnlp.recipe import load_recipe
from tests.conftest import ROOT

RECIPE = ROOT / "training" / "default.toml"


def test_default_recipe_spells_out_every_estimator_parameter():
    recipe, root = load_recipe(RECIPE)
    params = set(inspect.signature(FeedbackClassifier.__init__).parameters) - {"self"}
    assert set(recipe.estimator_params()) == params
    assert root == ROOT and recipe.output["dir"] == "models/default"
    assert {s.kind for s in recipe.data} == {"corpus_labels", "labeled", "corpus_sentiment"}


def test_overrides_are_typed_and_validated():
    recipe, _ = load_recipe(RECIPE, ["classifier.category_C=2", "features.word_ngram_range=[1, 3]"])
    assert recipe.classifier.category_C == 2.0 and recipe.features.word_ngram_range == (1, 3)
    with pytest.raises(ConfigError, match="tokenizer"):
        load_recipe(RECIPE, ["features.tokenizer=\"pkuseg\""])
    with pytest.raises(ConfigError, match="must look like"):
        load_recipe(RECIPE, ["classifier.category_C"])


def test_a_recipe_missing_a_setting_is_refused(tmp_path):
    text = RECIPE.read_text(encoding="utf-8").replace("min_df = 2\n", "")
    (tmp_path / "r.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="min_df"):
        load_recipe(tmp_path / "r.toml")
