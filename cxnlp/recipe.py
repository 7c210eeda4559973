"""The training recipe: a TOML file validated against this schema, with dotted overrides.

Every default of the shipped model is spelled out in ``training/default.toml``; this schema has no
defaults for the recipe's sections, so a recipe file is complete or it is refused.
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cxnlp.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelMeta(_Strict):
    name: str
    version: str
    description: str = ""


class DataSource(_Strict):
    kind: Literal["labeled", "corpus_labels", "corpus_sentiment", "ledger"]
    path: str | None = None
    weight: float = Field(gt=0)
    calibrate: bool = True
    """Whether these rows' out-of-fold scores set the decision thresholds (true for real customer text)."""
    limit: int | None = None


class FeaturesRecipe(_Strict):
    word_ngram_range: tuple[int, int]
    char_ngram_range: tuple[int, int]
    n_features_log2: int
    min_df: int
    sublinear_tf: bool
    hmm: bool
    tokenizer: Literal["jieba-rs", "jieba"]
    cue_phrases: bool
    # Recipes of models made before these settings existed leave them out: the defaults are what those did.
    clause_features: bool = False


class CategoryHeadRecipe(_Strict):
    """One linear scorer of every category; the stacked calibration reads all heads' scores."""

    C: float = Field(gt=0)
    naive_bayes: bool = False
    """Scale each feature by its naive-Bayes log-count ratio for the label before the fit (NB-LR)."""
    rows: Literal["all", "grouped", "ungrouped"] = "all"
    """Train on every category row, on rows that name a writer (written service feedback), or on the rest."""


class ClassifierRecipe(_Strict):
    category_C: float
    # Recipes of models made before several heads existed leave this out: one head of category_C.
    category_heads: list[CategoryHeadRecipe] = []
    polarity_C: float
    sentiment_C: float
    tol: float
    class_weight: Literal["balanced"] | None
    neutral_class_weight: Literal["balanced"] | None = None
    # Recipes of models made before the other-text polarity pair leave these out: one polarity pair for all text.
    other_text_polarity_weight: float | None = Field(default=None, ge=0, le=1)
    other_text_polarity_columns: Literal["word", "all"] = "word"
    cv_folds: int
    stack_labels: bool = False
    max_predicted_ratio: float = 0.0
    # Recipes of models made before per-domain thresholds leave this out: one threshold per label.
    domain_thresholds: bool = False
    min_confidence: float
    evidence_terms: int
    random_state: int
    n_jobs: int


class EvaluationRecipe(_Strict):
    """The writer-held-out cross-validation that `cxnlp train` runs for the model card."""

    cross_validate: bool
    group_by: str
    folds: int = Field(ge=2)


class Recipe(_Strict):
    model: ModelMeta
    data: list[DataSource]
    features: FeaturesRecipe
    classifier: ClassifierRecipe
    output: dict[str, str]
    evaluation: EvaluationRecipe | None = None

    def estimator_params(self) -> dict[str, Any]:
        return {**self.features.model_dump(), **self.classifier.model_dump()}


def _set_dotted(tree: dict[str, Any], dotted: str, raw: str) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    try:
        value: Any = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    node[keys[-1]] = value


def apply_overrides(recipe: Recipe, overrides: list[str]) -> Recipe:
    """A copy of ``recipe`` with ``section.key=value`` overrides applied and validated."""
    tree = recipe.model_dump()
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        key, raw = item.split("=", 1)
        _set_dotted(tree, key.strip(), raw.strip())
    try:
        return Recipe.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(f"invalid override(s) {overrides}:\n{exc}") from exc


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> tuple[Recipe, Path]:
    """Parse a recipe; ``overrides`` are ``section.key=value`` strings. Paths resolve from the repo root."""
    path = Path(path)
    try:
        tree = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read recipe ({exc})") from exc
    try:
        recipe = apply_overrides(Recipe.model_validate(tree), overrides or [])
    except ValidationError as exc:
        raise ConfigError(f"{path}: invalid recipe:\n{exc}") from exc
    root = path.resolve().parent.parent if path.resolve().parent.name == "training" else path.resolve().parent
    return recipe, root
