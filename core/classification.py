"""Single-label classification figures beyond :mod:`core.metrics`: balanced accuracy, per-class F1.

Definitions follow scikit-learn (``balanced_accuracy_score``: the mean recall over the
classes present in the target; ``f1_score(average=None)``), computed from
:func:`core.metrics.confusion_matrix` so that every figure of a report comes from one
confusion matrix. :func:`classification_report` gathers what a zero-shot table shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from core.metrics import ArrayLike, accuracy, confusion_matrix, macro_f1


def balanced_accuracy(logits_or_pred: ArrayLike, target: ArrayLike, num_classes: int) -> float:
    """Mean over the classes present in ``target`` of the recall of that class.

    Args:
        logits_or_pred: (N,) class indices or (N, C) scores (argmax taken).
        target: (N,) true class indices.
        num_classes: C.

    Returns:
        Balanced accuracy in [0, 1] (NaN for no samples); 1 / C for a constant prediction.
    """
    matrix = confusion_matrix(logits_or_pred, target, num_classes).astype(np.float64)  # (C, C)
    support = matrix.sum(1)
    present = support > 0
    if not present.any():
        return float("nan")
    return float((np.diag(matrix)[present] / support[present]).mean())


def per_class_f1(logits_or_pred: ArrayLike, target: ArrayLike, num_classes: int) -> np.ndarray:
    """(C,) F1 of each class (0 where a class is neither true nor predicted, as scikit-learn).

    Args:
        logits_or_pred: (N,) class indices or (N, C) scores (argmax taken).
        target: (N,) true class indices.
        num_classes: C.
    """
    matrix = confusion_matrix(logits_or_pred, target, num_classes).astype(np.float64)  # (C, C)
    denominator = matrix.sum(1) + matrix.sum(0)
    return np.where(denominator > 0, 2 * np.diag(matrix) / np.maximum(denominator, 1), 0.0)


def classification_report(logits_or_pred: ArrayLike, target: ArrayLike,
                          classes: Sequence[str]) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro F1, per-class F1 and the confusion matrix.

    Args:
        logits_or_pred: (N,) class indices or (N, C) scores (argmax taken).
        target: (N,) true class indices into ``classes``.
        classes: The C class names.

    Returns:
        ``accuracy``, ``balanced_accuracy``, ``macro_f1``, ``per_class_f1`` (class -> F1),
        ``confusion`` (C x C counts as lists, rows true), ``samples``.
    """
    count = len(classes)
    f1 = per_class_f1(logits_or_pred, target, count)
    return {"accuracy": accuracy(logits_or_pred, target),
            "balanced_accuracy": balanced_accuracy(logits_or_pred, target, count),
            "macro_f1": macro_f1(logits_or_pred, target, count),
            "per_class_f1": {c: float(v) for c, v in zip(classes, f1, strict=True)},
            "confusion": confusion_matrix(logits_or_pred, target, count).tolist(),
            "samples": int(len(np.asarray(target)))}
