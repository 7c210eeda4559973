"""Shared fixtures: a small model trained once per test session from the project's labeled data."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs the property tests on fixed examples (a red build then means a change, not a draw), and no
# test has a per-example deadline: the machines are shared and their speed drifts.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

from cxnlp.dataset import read_labeled_file
from cxnlp.recipe import load_recipe
from cxnlp.store import LoadedModel
from cxnlp.training import train_model

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data_samples"
EXAMPLES = SAMPLES / "examples"


def small_training_file(tmp_dir: Path, n: int = 900) -> Path:
    """``n`` rows spread evenly over the written labeled data (every writer, industry and channel), as an
    analyst's own CSV."""
    import csv

    src = SAMPLES / "feedback_labeled.csv"
    out = tmp_dir / "labeled.csv"
    with src.open(encoding="utf-8-sig", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    step = max(1, len(rows) // n)
    with out.open("w", encoding="utf-8", newline="") as dst:
        csv.writer(dst).writerows([header, *rows[::step][:n]])
    return out


@pytest.fixture(scope="session")
def small_model(tmp_path_factory) -> LoadedModel:
    tmp = tmp_path_factory.mktemp("small_model")
    data = read_labeled_file(small_training_file(tmp))
    recipe, _ = load_recipe(ROOT / "training" / "default.toml",
                            ["classifier.cv_folds=3", "features.n_features_log2=18", "evaluation.cross_validate=false"])
    model, _ = train_model(data, recipe, tmp / "model")
    return model
