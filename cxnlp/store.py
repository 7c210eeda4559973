"""Model folders: plain arrays and JSON, so that loading a model can never run code.

A folder holds ``model.npz`` (the numpy arrays prediction needs, read with ``allow_pickle=False``),
``predictor.json`` (everything else prediction needs: labels, featurizer settings, analysts'
corrections) and ``model.json``, the card: version, labels, thresholds, cross-validated metrics, the
recipe, the training data's hash, library versions, and the sha256 of each of the other two files,
checked on load. Every value read is checked (types, shapes, ranges) before a model is built from it,
so a damaged or crafted folder is refused with a reason, not used.

Folders of cxnlp 1.0.0 held a pickle (``model.joblib``); unpickling runs whatever code the file names,
so such a folder is refused, never opened.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cxnlp.errors import ModelError, ModelRootError

if TYPE_CHECKING:
    from cxnlp.runtime import CompiledClassifier

FORMAT = "cxnlp-arrays-1"
ARRAYS_FILE = "model.npz"
PREDICTOR_FILE = "predictor.json"
CARD_FILE = "model.json"
LEGACY_FILE = "model.joblib"  # cxnlp 1.0.0's pickle: refused
# A model's arrays hold a few tens of MB; anything near this is a damaged or hostile file, not a model.
MAX_ARRAY_BYTES = 2 << 30
# Where `cxnlp train` writes when neither --out nor a recipe says otherwise (the shipped recipe's output.dir
# is models/default): its parent, relative to the working directory, is a default model root.
TRAINED_MODELS_DIR = Path("models")

LEGACY_ADVICE = ("cxnlp no longer loads pickled models, because unpickling a file runs whatever code it names. "
                 "Retrain the model with `cxnlp train` (its recipe is in model.json), or convert a model you "
                 "built yourself with `python training/convert_pickle_model.py DIR` from the cxnlp source")


@dataclass
class LoadedModel:
    estimator: "CompiledClassifier"
    card: dict[str, Any]
    path: Path

    @property
    def version(self) -> str:
        return f"{self.card['name']}-{self.card['version']}"

    def warm_up(self) -> None:
        """Load the segmenter and the model's lazy tables now (before forking workers, before serving)."""
        from cxnlp.prediction import predict_texts

        self.estimator.row_of()
        predict_texts(self, ["客服态度很好，发货很快"])


class CardSpec(BaseModel):
    """The card fields cxnlp itself reads, with their types (a card may carry any others)."""

    model_config = ConfigDict(extra="allow")

    name: str
    version: str
    created: str
    categories: list[str]
    sentiments: list[str]
    thresholds: dict[str, float]
    format: str
    files: dict[str, dict[str, str | int]]


REQUIRED_CARD_FIELDS = tuple(name for name, f in CardSpec.model_fields.items() if f.is_required())


class FeaturizerSpec(BaseModel):
    """The ``TextFeaturizer`` settings a model was trained with (its ``idf_`` is an array)."""

    model_config = ConfigDict(extra="forbid")

    word_ngram_range: tuple[int, int]
    char_ngram_range: tuple[int, int]
    n_features_log2: int = Field(ge=10, le=24)
    sublinear_tf: bool
    hmm: bool
    tokenizer: str
    cue_phrases: bool
    clause_features: bool = False  # absent from folders made before clause features existed

    @field_validator("word_ngram_range", "char_ngram_range")
    @classmethod
    def _ngram_range(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= value[0] <= value[1] <= 8:
            raise ValueError("must be (min, max) with 1 <= min <= max <= 8")
        return value

    @field_validator("tokenizer")
    @classmethod
    def _tokenizer(cls, value: str) -> str:
        from cxnlp.text import TOKENIZER_BACKENDS

        if value not in TOKENIZER_BACKENDS:
            raise ValueError(f"must be one of {', '.join(TOKENIZER_BACKENDS)}")
        return value


class PredictorSpec(BaseModel):
    """``predictor.json``: what prediction needs besides the arrays."""

    model_config = ConfigDict(extra="forbid")

    categories: list[str] = Field(min_length=1)
    sentiments: list[str]
    min_confidence: float = Field(ge=0.0, le=1.0)
    evidence_terms: int = Field(ge=0, le=100)
    featurizer: FeaturizerSpec
    # text key → (categories, sentiment), as an analyst corrected it
    corrections: dict[str, tuple[list[str], str]] = {}

    @field_validator("categories")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("category names must be distinct")
        return value

    @field_validator("sentiments")
    @classmethod
    def _sentiments(cls, value: list[str]) -> list[str]:
        from cxnlp.taxonomy import SENTIMENTS

        if tuple(value) != SENTIMENTS:
            raise ValueError(f"must be {list(SENTIMENTS)}")
        return value


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist in ("cxnlp", "scikit-learn", "jieba", "numpy", "scipy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "unknown"
    return versions


def default_model_dir() -> Path:
    """The shipped model: inside the installed package, or ``models/default`` of a checkout."""
    packaged = Path(str(resources.files("cxnlp"))) / "default_model"
    if (packaged / CARD_FILE).exists():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / "models" / "default"
    if (checkout / CARD_FILE).exists():
        return checkout
    raise ModelError("no default model found: pass --model DIR or set CXNLP_MODEL_DIR")


def model_roots(configured: str | None = None) -> list[Path]:
    """The folders a running service may load models from (``CXNLP_MODEL_ROOT``, several separated by
    ``os.pathsep``); by default the shipped model's folder and ``./models``, where `cxnlp train` writes."""
    if configured and configured.strip():
        return [Path(p).expanduser().resolve() for p in configured.split(os.pathsep) if p.strip()]
    roots = [TRAINED_MODELS_DIR.resolve()]
    try:
        roots.insert(0, default_model_dir().resolve())
    except ModelError:
        pass
    return roots


def check_model_dir(requested: Path | str, roots: Sequence[Path]) -> Path:
    """The real folder ``requested`` names (symlinks and ``..`` resolved), if it lies under one of ``roots``."""
    try:
        real = Path(requested).expanduser().resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, a NUL byte, an unknown ~user
        reason = str(exc).encode("utf-8", "backslashreplace").decode("utf-8")  # a lone surrogate stays printable
        raise ModelError(f"{str(requested)[:200]!r} cannot be resolved to a folder: {reason}") from exc
    for root in roots:
        root = Path(root).resolve()
        if real == root or real.is_relative_to(root):
            return real
    shown = str(requested) if len(str(requested)) <= 200 else str(requested)[:200] + "…"
    raise ModelRootError(f"{shown} is outside the model root(s) ({os.pathsep.join(map(str, roots))}); "
                         "only folders under them can be loaded here (setting CXNLP_MODEL_ROOT)")


def save_model(estimator: "CompiledClassifier", out_dir: Path, card: dict[str, Any]) -> dict[str, Any]:
    """Write the folder so readers see whole files: each goes to a temporary, then is renamed in, the card last."""
    arrays, predictor = _export(estimator)
    out_dir.mkdir(parents=True, exist_ok=True)
    temporaries: list[str] = []
    try:
        # zlib (deflate) keeps the folder small (11 MB instead of 23) and decompresses in a few tens of ms
        tmp_arrays = _temporary(out_dir, ARRAYS_FILE, temporaries)
        with open(tmp_arrays, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        tmp_predictor = _temporary(out_dir, PREDICTOR_FILE, temporaries)
        Path(tmp_predictor).write_text(json.dumps(predictor, ensure_ascii=False) + "\n", encoding="utf-8")
        files = {name: {"sha256": file_sha256(Path(tmp)), "bytes": Path(tmp).stat().st_size}
                 for name, tmp in ((ARRAYS_FILE, tmp_arrays), (PREDICTOR_FILE, tmp_predictor))}
        card = {k: v for k, v in card.items() if k not in ("model_sha256", "model_bytes")}
        card = {**card, "format": FORMAT, "files": files}
        card.setdefault("created", datetime.now(timezone.utc).isoformat(timespec="seconds"))
        card.setdefault("library_versions", library_versions())
        for name, tmp in ((ARRAYS_FILE, tmp_arrays), (PREDICTOR_FILE, tmp_predictor)):
            os.chmod(tmp, 0o644)  # mkstemp makes it private; a model folder is meant to be shared
            os.replace(tmp, out_dir / name)
        _write_text_atomic(out_dir / CARD_FILE, json.dumps(card, ensure_ascii=False, indent=2) + "\n")
        (out_dir / LEGACY_FILE).unlink(missing_ok=True)  # a pickle left from 1.0.0 is no part of the new model
    finally:
        for tmp in temporaries:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return card


def read_card(model_dir: Path | str) -> dict[str, Any]:
    """The card of a model folder in the current format (a 1.0.0 pickle folder is refused, not opened)."""
    folder = Path(model_dir)
    path = folder / CARD_FILE
    if not folder.is_dir():
        raise ModelError(f"{folder} is not a model folder: " + ("not a folder" if folder.exists() else "no such folder"))
    if not path.exists():
        if (folder / LEGACY_FILE).exists():
            raise ModelError(f"{folder} holds a pickled model ({LEGACY_FILE}) and no card. {LEGACY_ADVICE}")
        raise ModelError(f"{folder} is not a model folder: {CARD_FILE} is missing")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path} cannot be read: {exc}") from exc
    if not isinstance(card, dict):
        raise ModelError(f"{path} is not a model card (a JSON object)")
    if card.get("format") != FORMAT:
        if "model_sha256" in card or (folder / LEGACY_FILE).exists():
            raise ModelError(f"{folder} is a model folder of cxnlp 1.0.0 ({LEGACY_FILE}, a pickle). {LEGACY_ADVICE}")
        if "format" in card:
            raise ModelError(f"{path}: unknown model format {str(card['format'])[:40]!r}; this cxnlp reads {FORMAT}")
    missing = [f for f in REQUIRED_CARD_FIELDS if f not in card]
    if missing:
        raise ModelError(f"{path} lacks required field(s): {', '.join(missing)}")
    try:
        CardSpec.model_validate(card)
    except ValidationError as exc:
        raise ModelError(f"{path} is not a valid model card: {_problems(exc)}") from exc
    return card


def load_model(model_dir: Path | str | None = None) -> LoadedModel:
    """Load and check a model folder (default: the shipped model). Nothing in it can run code."""
    folder = Path(model_dir) if model_dir else default_model_dir()
    card = read_card(folder)
    files = card["files"]
    if set(files) != {ARRAYS_FILE, PREDICTOR_FILE}:
        raise ModelError(f"{folder / CARD_FILE}: 'files' must list exactly {ARRAYS_FILE} and {PREDICTOR_FILE}")
    for name, meta in files.items():
        path = folder / name
        if not path.is_file():
            raise ModelError(f"{folder} is not a complete model folder: {name} is missing")
        try:
            digest = file_sha256(path)
        except OSError as exc:
            raise ModelError(f"{path} cannot be read: {exc}") from exc
        if digest != meta.get("sha256"):
            raise ModelError(f"{path} does not match the sha256 in its card: the file is damaged or was replaced")
    predictor = _read_predictor(folder / PREDICTOR_FILE)
    if card["categories"] != predictor.categories:
        raise ModelError(f"{folder}: the card's categories {card['categories']} differ from the model's "
                         f"{predictor.categories}")
    estimator = _build(predictor, _read_arrays(folder / ARRAYS_FILE), folder)
    return LoadedModel(estimator=estimator, card=card, path=folder)


# ---------------------------------------------------------------------------------------------- format
def _export(est: "CompiledClassifier") -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A CompiledClassifier as (arrays, JSON-able settings): exactly what ``_build`` needs, dtypes kept."""
    feat = est.featurizer
    arrays = {"idf_": feat.idf_, "columns_": est.columns_, "coef_": est.coef_, "nb_ratio_": est.nb_ratio_,
              "thresholds_": est.thresholds_, "calibrators_": est.calibrators_,
              "category_intercept_": est.category_intercept_, "sentiment_intercept_": est.sentiment_intercept_,
              **({"domain_intercept_": est.domain_intercept_} if est.domain_intercept_ is not None else {}),
              **({"other_polarity_intercept_": est.other_polarity_intercept_, "other_nb_ratio_": est.other_nb_ratio_}
                 if est.other_polarity_intercept_ is not None else {})}
    predictor = {
        "categories": list(est.categories_), "sentiments": list(est.sentiments_),
        "min_confidence": float(est.min_confidence), "evidence_terms": int(est.evidence_terms),
        "featurizer": {name: getattr(feat, name) for name in FeaturizerSpec.model_fields},
        "corrections": {key: [list(cats), sentiment] for key, (cats, sentiment) in (est.corrections or {}).items()},
    }
    return {name: np.asarray(a) for name, a in arrays.items()}, predictor


def _read_predictor(path: Path) -> PredictorSpec:
    try:
        return PredictorSpec.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise ModelError(f"{path} is not a valid predictor file: {_problems(exc)}") from exc
    except OSError as exc:
        raise ModelError(f"{path} cannot be read: {exc}") from exc


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '(file)'}: {e['msg']}" for e in exc.errors()[:5])


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of the .npz, refusing object arrays (they would need pickle) and oversized members."""
    try:
        with zipfile.ZipFile(path) as zf:
            if sum(info.file_size for info in zf.infolist()) > MAX_ARRAY_BYTES:
                raise ModelError(f"{path} unpacks to more than {MAX_ARRAY_BYTES >> 30} GiB: not a model")
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except ModelError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ModelError(f"{path} cannot be read as plain arrays ({type(exc).__name__}: {exc})") from exc


def _build(spec: PredictorSpec, arrays: dict[str, np.ndarray], folder: Path) -> "CompiledClassifier":
    """The CompiledClassifier of a folder, once every array has the dtype kind, shape and range it must."""
    from cxnlp.features import TextFeaturizer
    from cxnlp.runtime import CompiledClassifier

    n_cat, n_features = len(spec.categories), 2 << spec.featurizer.n_features_log2
    calibrators = arrays.get("calibrators_")
    intercepts = arrays.get("category_intercept_")
    # one intercept per (head, category): as many heads as that holds whole sets of categories
    n_scores = len(intercepts) if isinstance(intercepts, np.ndarray) and intercepts.ndim == 1 and n_cat and \
        len(intercepts) % n_cat == 0 else n_cat
    # (a, b) per label (Platt, one head); a weight per head's score of each label and an intercept (stacked
    # labels); or, stacked with a domain head, a weight per input of runtime.stack_inputs and an intercept
    widths = (2, n_scores + 1, 2 * n_scores + 2)
    calibrator_width = calibrators.shape[1] if isinstance(calibrators, np.ndarray) and calibrators.ndim == 2 and \
        calibrators.shape[1] in widths else 2
    domain = calibrator_width == 2 * n_scores + 2 and n_cat > 0
    # one threshold per label; or, with the domain head, a row for service feedback and one for other text
    thresholds = arrays.get("thresholds_")
    threshold_shape = (2, n_cat) if domain and isinstance(thresholds, np.ndarray) and thresholds.ndim == 2 else (n_cat,)
    columns = arrays.get("columns_")
    n_kept = len(columns) if isinstance(columns, np.ndarray) and columns.ndim == 1 else -1
    # a polarity pair for other text than service feedback: two more weight columns, mixed by the domain head
    other = domain and "other_polarity_intercept_" in arrays
    if "other_polarity_intercept_" in arrays and not domain:
        raise ModelError(f"{folder / ARRAYS_FILE}: an other-text polarity pair needs the domain head that mixes it in")
    expected = {"idf_": ((n_features,), "f"), "columns_": ((n_kept,), "iu"),
                "coef_": ((n_kept + 1, n_scores + 3 + domain + 2 * other), "f"),
                "nb_ratio_": ((n_kept + 1,), "f"), "thresholds_": (threshold_shape, "f"),
                "calibrators_": ((n_cat, calibrator_width), "f"),
                "category_intercept_": ((n_scores,), "f"), "sentiment_intercept_": ((3,), "f"),
                **({"domain_intercept_": ((1,), "f")} if domain else {}),
                **({"other_polarity_intercept_": ((2,), "f"), "other_nb_ratio_": ((n_kept + 1,), "f")} if other else {})}
    for name, (shape, kinds) in expected.items():
        a = arrays.get(name)
        if a is None:
            raise ModelError(f"{folder / ARRAYS_FILE} lacks the array {name!r}")
        if a.dtype.kind not in kinds or a.shape != shape:
            raise ModelError(f"{folder / ARRAYS_FILE}: {name} is {a.dtype}{list(a.shape)}, expected "
                             f"{'an integer' if kinds == 'iu' else 'a float'} array of shape {list(shape)}")
        if kinds == "f" and not np.isfinite(a).all():
            raise ModelError(f"{folder / ARRAYS_FILE}: {name} holds values that are not finite numbers")
    if not ((arrays["thresholds_"] >= 0) & (arrays["thresholds_"] <= 1)).all():
        raise ModelError(f"{folder / ARRAYS_FILE}: thresholds_ must be probabilities within 0..1")
    if n_kept and not (columns[0] >= 0 and columns[-1] < n_features and (np.diff(columns) > 0).all()):
        raise ModelError(f"{folder / ARRAYS_FILE}: columns_ must be increasing feature columns below {n_features}")
    featurizer = TextFeaturizer(**spec.featurizer.model_dump())
    featurizer.idf_ = arrays["idf_"]
    return CompiledClassifier(
        featurizer=featurizer, categories_=tuple(spec.categories), thresholds_=arrays["thresholds_"],
        calibrators_=arrays["calibrators_"], columns_=arrays["columns_"], coef_=arrays["coef_"],
        nb_ratio_=arrays["nb_ratio_"], category_intercept_=arrays["category_intercept_"],
        sentiment_intercept_=arrays["sentiment_intercept_"], min_confidence=spec.min_confidence,
        domain_intercept_=arrays.get("domain_intercept_") if domain else None,
        other_polarity_intercept_=arrays["other_polarity_intercept_"] if other else None,
        other_nb_ratio_=arrays["other_nb_ratio_"] if other else None,
        evidence_terms=spec.evidence_terms, sentiments_=tuple(spec.sentiments),
        corrections={key: (tuple(cats), sentiment) for key, (cats, sentiment) in spec.corrections.items()},
    )


def _temporary(folder: Path, name: str, registry: list[str]) -> str:
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}-")
    os.close(fd)
    registry.append(tmp)
    return tmp


def _write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
