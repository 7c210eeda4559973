"""Model folders hold arrays and JSON only: nothing a folder contains can run code when it is loaded."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cxnlp.errors import ModelError, ModelRootError
from cxnlp.prediction import predict_texts
from cxnlp.runtime import correction_key
from cxnlp.store import (ARRAYS_FILE, CARD_FILE, PREDICTOR_FILE, check_model_dir, default_model_dir, file_sha256,
                         load_model, model_roots, save_model)

ROOT = Path(__file__).resolve().parent.parent


class _Payload:
    """Unpickling this creates ``marker``: the proof that a loader ran code from a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def crafted_pickle_folder(tmp_path: Path) -> tuple[Path, Path]:
    """A folder as cxnlp 1.0.0 wrote it (model.joblib + a card with its sha256), whose pickle runs code."""
    folder, marker = tmp_path / "evil", tmp_path / "pwned"
    folder.mkdir()
    (folder / "model.joblib").write_bytes(pickle.dumps(_Payload(marker)))
    card = json.loads((default_model_dir() / CARD_FILE).read_text(encoding="utf-8"))
    for key in ("format", "files"):
        card.pop(key, None)
    card["model_sha256"] = file_sha256(folder / "model.joblib")
    (folder / CARD_FILE).write_text(json.dumps(card), encoding="utf-8")
    return folder, marker


def test_the_crafted_pickle_really_runs_code_when_unpickled(tmp_path):
    """The test payload works: the tests below are meaningful."""
    folder, marker = crafted_pickle_folder(tmp_path)
    pickle.loads((folder / "model.joblib").read_bytes())
    assert marker.exists()


def test_load_refuses_a_pickled_model_folder_without_opening_it(tmp_path):
    folder, marker = crafted_pickle_folder(tmp_path)
    with pytest.raises(ModelError, match="no longer loads pickled models") as caught:
        load_model(folder)
    assert "cxnlp train" in str(caught.value)  # the message says what to do
    assert not marker.exists()


def test_load_refuses_a_pickle_without_card(tmp_path):
    folder, marker = crafted_pickle_folder(tmp_path)
    (folder / CARD_FILE).unlink()
    with pytest.raises(ModelError, match="no longer loads pickled models"):
        load_model(folder)
    assert not marker.exists()


def test_cli_refuses_a_pickled_model_folder(tmp_path):
    folder, marker = crafted_pickle_folder(tmp_path)
    env = {**os.environ, "CXNLP_MODEL_DIR": str(folder)}
    for extra in (["--model", str(folder)], []):  # --model DIR, and CXNLP_MODEL_DIR
        done = subprocess.run([sys.executable, "-m", "cxnlp", "classify", "-", *extra], input="客服态度很差",
                              capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
        assert done.returncode == 1 and "no longer loads pickled models" in done.stderr.replace("\n", " ")
        assert "Traceback" not in done.stderr
    assert not marker.exists()


def test_an_object_array_in_the_npz_is_refused_not_unpickled(tmp_path, small_model):
    folder = tmp_path / "m"
    shutil.copytree(small_model.path, folder)
    marker = tmp_path / "pwned"
    with np.load(folder / ARRAYS_FILE) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["coef_"] = np.array([_Payload(marker)], dtype=object)
    with (folder / ARRAYS_FILE).open("wb") as fh:
        np.savez(fh, **arrays)  # numpy pickles object arrays when saving
    card = json.loads((folder / CARD_FILE).read_text())
    card["files"][ARRAYS_FILE]["sha256"] = file_sha256(folder / ARRAYS_FILE)
    (folder / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelError, match="plain arrays"):
        load_model(folder)
    assert not marker.exists()


def _rewrite(folder: Path, *, arrays: dict | None = None, predictor: dict | None = None) -> None:
    """Replace the arrays and/or the predictor settings, with a card whose sha256 matches them."""
    if arrays is not None:
        with (folder / ARRAYS_FILE).open("wb") as fh:
            np.savez_compressed(fh, **arrays)
    if predictor is not None:
        (folder / PREDICTOR_FILE).write_text(json.dumps(predictor))
    card = json.loads((folder / CARD_FILE).read_text())
    for name in (ARRAYS_FILE, PREDICTOR_FILE):
        card["files"][name]["sha256"] = file_sha256(folder / name)
    (folder / CARD_FILE).write_text(json.dumps(card))


@pytest.mark.parametrize("damage,reason", [
    (lambda a, p: a.pop("coef_"), "lacks the array 'coef_'"),
    (lambda a, p: a.update(coef_=a["coef_"][:-1]), "coef_ is float16"),
    (lambda a, p: a.update(columns_=a["columns_"] + 2 ** 30), "columns_ must be"),
    (lambda a, p: a.update(thresholds_=np.full_like(a["thresholds_"], np.nan)), "not finite"),
    (lambda a, p: p["featurizer"].update(tokenizer="os.system"), "featurizer.tokenizer"),
    (lambda a, p: p["featurizer"].update(n_features_log2=40), "n_features_log2"),
    (lambda a, p: p.update(categories=["only-one"]), "categories"),
])
def test_damaged_or_crafted_contents_are_refused_with_the_reason(tmp_path, small_model, damage, reason):
    folder = tmp_path / "m"
    shutil.copytree(small_model.path, folder)
    with np.load(folder / ARRAYS_FILE) as npz:
        arrays = {name: npz[name] for name in npz.files}
    predictor = json.loads((folder / PREDICTOR_FILE).read_text())
    damage(arrays, predictor)
    _rewrite(folder, arrays=arrays, predictor=predictor)
    with pytest.raises(ModelError, match=reason):
        load_model(folder)


@pytest.mark.parametrize("setup,reason", [
    (lambda f: shutil.rmtree(f), "no such folder"),
    (lambda f: (f / CARD_FILE).unlink(), "model.json is missing"),
    (lambda f: (f / ARRAYS_FILE).unlink(), "model.npz is missing"),
    (lambda f: (f / CARD_FILE).write_text("{not json"), "cannot be read"),
    (lambda f: (f / CARD_FILE).write_text('{"format": "cxnlp-arrays-9"}'), "unknown model format"),
])
def test_incomplete_folders_are_refused_with_the_reason(tmp_path, small_model, setup, reason):
    folder = tmp_path / "m"
    shutil.copytree(small_model.path, folder)
    setup(folder)
    with pytest.raises(ModelError, match=reason):
        load_model(folder)


def test_corrections_survive_the_round_trip(tmp_path, small_model):
    est = small_model.estimator
    text = "这家店的灯有点暗"
    saved = dict(est.corrections)
    est.corrections = {correction_key(text): (("process",), "neutral")}
    try:
        save_model(est, tmp_path, dict(small_model.card))
    finally:
        est.corrections = saved
    loaded = load_model(tmp_path)
    [p] = predict_texts(loaded, [text])
    assert p.categories == ["process"] and p.sentiment == "neutral"


def test_shipped_model_is_in_the_current_format():
    folder = default_model_dir()
    assert not (folder / "model.joblib").exists()
    model = load_model(folder)
    [p] = predict_texts(model, ["客服态度特别差，还挂我电话"])
    assert "attitude" in p.categories and p.sentiment == "negative"


def test_model_roots_confine_requested_folders(tmp_path):
    root = tmp_path / "models"
    (root / "v2").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (root / "link").symlink_to(tmp_path / "elsewhere")
    roots = model_roots(str(root))
    assert check_model_dir(root / "v2", roots) == (root / "v2").resolve()
    for outside in (tmp_path / "elsewhere", root / ".." / "elsewhere", root / "link", "/etc"):
        with pytest.raises(ModelRootError, match="outside the model root"):
            check_model_dir(outside, roots)


def test_default_model_roots_are_the_shipped_and_trained_folders():
    roots = model_roots(None)
    assert default_model_dir().resolve() in roots and Path("models").resolve() in roots


def test_training_into_a_pickle_folder_replaces_the_pickle(tmp_path, small_model):
    """Retraining is the way out of the old format: the new model is written and the pickle removed."""
    folder, marker = crafted_pickle_folder(tmp_path)
    save_model(small_model.estimator, folder, dict(small_model.card))
    assert not (folder / "model.joblib").exists()
    assert load_model(folder).version == small_model.version and not marker.exists()
