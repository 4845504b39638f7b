"""Classification and retrieval metrics over tensors (numpy arrays accepted).

Retrieval metrics take a similarity matrix (Q, N) of queries against items and a
relevance matrix (Q, N): binary or graded (CLOSP's relevance is the number of
labels a scene shares with the query, :func:`label_overlap_relevance`). Ties in
similarity are broken by item index (stable sort).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

ArrayLike = Any


def _tensor(x: ArrayLike) -> torch.Tensor:
    return x.detach().cpu() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def _predictions(x: ArrayLike) -> torch.Tensor:
    t = _tensor(x)
    return t.argmax(-1) if t.ndim == 2 else t.long()


def accuracy(pred_or_scores: ArrayLike, target: ArrayLike) -> float:
    """Fraction of correct predictions.

    Args:
        pred_or_scores: (N,) class indices or (N, C) scores (argmax taken).
        target: (N,) true class indices.

    Returns:
        Accuracy in [0, 1].
    """
    pred, target = _predictions(pred_or_scores), _tensor(target).long()
    return float((pred == target).float().mean())


def confusion_matrix(pred_or_scores: ArrayLike, target: ArrayLike, num_classes: int) -> np.ndarray:
    """(C, C) counts; rows are true classes, columns predicted classes."""
    pred, target = _predictions(pred_or_scores), _tensor(target).long()
    flat = target * num_classes + pred
    return torch.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes).numpy()


def macro_f1(pred_or_scores: ArrayLike, target: ArrayLike, num_classes: int) -> float:
    """Unweighted mean of per-class F1 over classes present in target or prediction."""
    matrix = confusion_matrix(pred_or_scores, target, num_classes).astype(float)
    tp = np.diag(matrix)
    support, predicted = matrix.sum(1), matrix.sum(0)
    present = (support + predicted) > 0
    f1 = np.where(present, 2 * tp / np.maximum(support + predicted, 1e-12), 0.0)
    return float(f1[present].mean()) if present.any() else 0.0


def average_precision(scores: ArrayLike, relevant: ArrayLike) -> float:
    """Average precision of one ranking (as scikit-learn's, ties by index).

    Args:
        scores: (N,) scores, higher first.
        relevant: (N,) binary relevance.

    Returns:
        AP, or NaN when nothing is relevant.
    """
    scores, relevant = _tensor(scores).double(), _tensor(relevant).double() > 0
    if not relevant.any():
        return float("nan")
    order = torch.argsort(-scores, stable=True)
    hits = relevant[order].double()  # (N,)
    precision = hits.cumsum(0) / torch.arange(1, len(hits) + 1, dtype=torch.float64)
    return float((precision * hits).sum() / hits.sum())


def mean_average_precision(scores: ArrayLike, targets: ArrayLike) -> float:
    """Multi-label mAP: per-class AP over samples, averaged over classes with positives.

    Args:
        scores: (N, C) scores.
        targets: (N, C) multi-hot labels.

    Returns:
        The mean AP.
    """
    scores, targets = _tensor(scores), _tensor(targets)
    values = [average_precision(scores[:, c], targets[:, c]) for c in range(scores.shape[1])]
    values = [v for v in values if not np.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def auroc(scores: ArrayLike, targets: ArrayLike) -> float:
    """Macro AUROC over classes that have both positives and negatives (ties count half).

    Args:
        scores: (N, C) or (N,) scores.
        targets: Same shape, binary.

    Returns:
        The mean AUROC.
    """
    scores, targets = _tensor(scores).double(), _tensor(targets) > 0
    if scores.ndim == 1:
        scores, targets = scores[:, None], targets[:, None]
    values = []
    for c in range(scores.shape[1]):
        pos, neg = scores[targets[:, c], c], scores[~targets[:, c], c]
        if len(pos) and len(neg):
            greater = (pos[:, None] > neg[None, :]).double().mean()
            equal = (pos[:, None] == neg[None, :]).double().mean()
            values.append(float(greater + 0.5 * equal))
    return float(np.mean(values)) if values else float("nan")


def label_overlap_relevance(query_labels: ArrayLike, item_labels: ArrayLike,
                            normalize: bool = False) -> torch.Tensor:
    """Graded relevance as CLOSP uses it: labels shared by a query and an item.

    Args:
        query_labels: (Q, C) multi-hot.
        item_labels: (N, C) multi-hot.
        normalize: Return the Jaccard index instead of the count.

    Returns:
        (Q, N) relevance.
    """
    q, n = _tensor(query_labels).float(), _tensor(item_labels).float()
    shared = q @ n.T  # (Q, N)
    if not normalize:
        return shared
    union = q.sum(1, keepdim=True) + n.sum(1)[None, :] - shared
    return shared / union.clamp_min(1e-12)


def _ranked_relevance(similarity: ArrayLike, relevance: ArrayLike) -> torch.Tensor:
    sim, rel = _tensor(similarity).double(), _tensor(relevance).double()
    if sim.shape != rel.shape:
        raise ValueError(f"similarity {tuple(sim.shape)} and relevance {tuple(rel.shape)} differ")
    order = torch.argsort(-sim, dim=1, stable=True)  # (Q, N)
    return torch.gather(rel, 1, order)


def ndcg_at_k(similarity: ArrayLike, relevance: ArrayLike, k: int) -> float:
    """Mean nDCG@k with graded relevance (gain = relevance, discount log2(rank + 1)).

    Queries with no relevant item are left out of the mean; k is clipped to N.

    Args:
        similarity: (Q, N) query-item scores.
        relevance: (Q, N) graded relevance >= 0.
        k: Cut-off.

    Returns:
        The mean nDCG@k.
    """
    ranked = _ranked_relevance(similarity, relevance)  # (Q, N)
    k = min(k, ranked.shape[1])
    discount = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64))  # (k,)
    dcg = (ranked[:, :k] * discount).sum(1)
    ideal = (torch.sort(_tensor(relevance).double(), dim=1, descending=True).values[:, :k]
             * discount).sum(1)
    keep = ideal > 0
    return float((dcg[keep] / ideal[keep]).mean()) if keep.any() else float("nan")


def recall_at_k(similarity: ArrayLike, relevance: ArrayLike, k: int) -> float:
    """Fraction of queries with at least one relevant item in the top k.

    Args:
        similarity: (Q, N) scores.
        relevance: (Q, N) relevance (> 0 counts as relevant).
        k: Cut-off.

    Returns:
        Recall@k (queries with no relevant item left out).
    """
    ranked = _ranked_relevance(similarity, relevance) > 0
    keep = ranked.any(1)
    return float(ranked[keep, :k].any(1).double().mean()) if keep.any() else float("nan")


def retrieval_map(similarity: ArrayLike, relevance: ArrayLike) -> float:
    """Mean over queries of the average precision of the ranking (relevance > 0 relevant)."""
    sim, rel = _tensor(similarity), _tensor(relevance)
    values = [average_precision(sim[i], rel[i] > 0) for i in range(sim.shape[0])]
    values = [v for v in values if not np.isnan(v)]
    return float(np.mean(values)) if values else float("nan")
