"""Classification baselines every figure of a report stands beside: chance and majority class.

- :func:`chance_classification` — a uniformly random guess over C classes (expected
  accuracy and balanced accuracy 1 / C);
- :func:`majority_classification` — always the most common class of a reference label
  set (the training split's, or the evaluated split's own — the best constant guess):
  its accuracy is that class's share, its balanced accuracy 1 / (classes present).

(The random-ranking baselines of retrieval are :func:`core.metrics.random_recall_at_k` and
its neighbours.)
"""

from __future__ import annotations

from typing import Any

import numpy as np


def chance_classification(num_classes: int) -> dict[str, float]:
    """Expected accuracy and balanced accuracy of a uniform random guess over C classes."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return {"accuracy": 1.0 / num_classes, "balanced_accuracy": 1.0 / num_classes}


def majority_classification(target: np.ndarray, num_classes: int,
                            reference: np.ndarray | None = None) -> dict[str, Any]:
    """Accuracy and balanced accuracy of always predicting the most common class.

    Args:
        target: (N,) true class indices of the evaluated samples.
        num_classes: C.
        reference: (M,) class indices the majority is taken from (default: ``target``).

    Returns:
        ``accuracy``, ``balanced_accuracy`` and the ``class`` index predicted.
    """
    target = np.asarray(target, dtype=np.int64)
    reference = target if reference is None else np.asarray(reference, dtype=np.int64)
    if len(reference) == 0 or len(target) == 0:
        return {"accuracy": float("nan"), "balanced_accuracy": float("nan"), "class": -1}
    majority = int(np.bincount(reference, minlength=num_classes).argmax())
    present = np.unique(target)
    return {"accuracy": float((target == majority).mean()),
            "balanced_accuracy": float((present == majority).any()) / len(present),
            "class": majority}
