"""How rows are split into cross-validation folds: whole groups (writers) held out together.

A model that has seen a writer's style scores that writer's other texts too kindly, so every row that
names a group goes to the same fold as the rest of its group (scikit-learn's ``GroupKFold``: groups
spread so that folds are about equally large). Rows without a group (real reviews, each written by
someone else) are spread over the folds at random. Training's own out-of-fold scores (calibration,
thresholds) and the library's cross-validation use the same rule.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import GroupKFold


def fold_ids(groups: Sequence[str | None], n_splits: int, random_state: int = 0) -> np.ndarray:
    """The fold (0 … n_splits-1) of each row. Grouped rows are held out with their whole group when
    there are at least ``n_splits`` groups; otherwise (too few to hold out) they count as ungrouped."""
    n = len(groups)
    fold = np.empty(n, dtype=np.int64)
    named = np.array([bool(g) for g in groups], dtype=bool)
    keys = np.array([g or "" for g in groups], dtype=object)
    if named.any() and len(set(keys[named])) < n_splits:
        named[:] = False
    rng = np.random.RandomState(random_state)
    loose = rng.permutation(np.flatnonzero(~named))
    fold[loose] = np.arange(len(loose)) % n_splits
    if named.any():
        rows = np.flatnonzero(named)
        for k, (_, test) in enumerate(GroupKFold(n_splits=n_splits).split(rows, groups=keys[rows].astype(str))):
            fold[rows[test]] = k
    return fold


def grouped_folds(groups: Sequence[str | None], n_splits: int, random_state: int = 0
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, test rows) of each fold, as ``fold_ids`` assigns them."""
    fold = fold_ids(groups, n_splits, random_state)
    return [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(n_splits)]
