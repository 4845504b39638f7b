"""Classification and retrieval metrics over tensors (numpy arrays accepted).

Classification metrics follow scikit-learn's definitions (``accuracy_score``,
``f1_score(average="macro")``, ``average_precision_score``, ``roc_auc_score``) so numbers
can be compared with published ones.

Retrieval metrics take a similarity matrix (Q, N) of queries against items and a
relevance matrix (Q, N): binary or graded. For multi-label items two relevances are
offered (:func:`label_relevance`): *graded* — the number of labels a query and an item
share (``"shared"``, CLOSP's) or their Jaccard index (``"jaccard"``) — for nDCG, and
*binary* — the item carries every label of the query (:func:`contains_all_labels`) — for
Recall@k and mAP, so that a scene sharing one label of two is a miss. Items are ranked by
descending similarity; ties are broken by item index (stable sort), so every metric is
deterministic. Queries without any relevant item are left out of the means.

Every retrieval figure has two baselines here: the expected value under a uniformly
random ranking, computed exactly (:func:`random_ranking_baseline`), and a query-blind
ranking by how common an item's labels are in the training data
(:func:`label_prior_scores`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

ArrayLike = Any  # torch.Tensor, np.ndarray or a nested sequence
_CHUNK_ELEMENTS = 1 << 22  # rows of (Q, N) matrices are ranked in chunks of ~4M entries


def _tensor(x: ArrayLike) -> torch.Tensor:
    return x.detach().cpu() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def _predictions(x: ArrayLike) -> torch.Tensor:
    t = _tensor(x)
    return t.argmax(-1) if t.ndim == 2 else t.long()


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def accuracy(logits_or_pred: ArrayLike, target: ArrayLike) -> float:
    """Fraction of correct predictions.

    Args:
        logits_or_pred: (N,) class indices or (N, C) scores (argmax taken).
        target: (N,) true class indices.

    Returns:
        Accuracy in [0, 1] (NaN for no samples).
    """
    pred, target = _predictions(logits_or_pred), _tensor(target).long()
    if pred.shape != target.shape:
        raise ValueError(f"predictions {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    return float((pred == target).double().mean()) if len(target) else float("nan")


def confusion_matrix(logits_or_pred: ArrayLike, target: ArrayLike, num_classes: int) -> np.ndarray:
    """Confusion counts.

    Args:
        logits_or_pred: (N,) class indices or (N, C) scores (argmax taken).
        target: (N,) true class indices in [0, num_classes).
        num_classes: C.

    Returns:
        (C, C) integer counts; rows are true classes, columns predicted classes.
    """
    pred, target = _predictions(logits_or_pred), _tensor(target).long()
    for name, t in (("predictions", pred), ("target", target)):
        if len(t) and (t.min() < 0 or t.max() >= num_classes):
            raise ValueError(f"{name} hold class indices outside [0, {num_classes})")
    flat = target * num_classes + pred  # (N,)
    return torch.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes).numpy()


def macro_f1(logits_or_pred: ArrayLike, target: ArrayLike, num_classes: int) -> float:
    """Unweighted mean of per-class F1 (scikit-learn's ``f1_score(average="macro")``).

    As scikit-learn does, only classes present in the target or the predictions count.

    Args:
        logits_or_pred: (N,) class indices or (N, C) scores (argmax taken).
        target: (N,) true class indices.
        num_classes: C.

    Returns:
        Macro F1 in [0, 1].
    """
    matrix = confusion_matrix(logits_or_pred, target, num_classes).astype(np.float64)  # (C, C)
    tp = np.diag(matrix)
    support, predicted = matrix.sum(1), matrix.sum(0)
    present = (support + predicted) > 0
    f1 = 2 * tp[present] / (support + predicted)[present]
    return float(f1.mean()) if present.any() else float("nan")


def average_precision(scores: ArrayLike, relevant: ArrayLike, group_ties: bool = True) -> float:
    """Average precision of one ranking.

    Args:
        scores: (N,) scores, higher first.
        relevant: (N,) binary relevance (> 0 is relevant).
        group_ties: Treat equal scores as one threshold, exactly as scikit-learn's
            ``average_precision_score``; if False, ties are ranked by index.

    Returns:
        AP, or NaN when nothing is relevant.
    """
    scores, hits = _tensor(scores).double(), (_tensor(relevant) > 0).double()
    if hits.sum() == 0:
        return float("nan")
    order = torch.argsort(-scores, stable=True)
    ranked, hits = scores[order], hits[order]  # (N,)
    true_positives = hits.cumsum(0)
    if group_ties:
        ends = torch.ones_like(hits, dtype=torch.bool)
        ends[:-1] = ranked[1:] != ranked[:-1]  # last position of each tied group
    else:
        ends = hits > 0
    positions = torch.nonzero(ends).flatten()  # (G,)
    tp = true_positives[positions]
    gains = torch.diff(tp, prepend=tp.new_zeros(1))
    precision = tp / (positions + 1).double()
    return float((gains * precision).sum() / hits.sum())


def mean_average_precision(scores: ArrayLike, targets: ArrayLike) -> float:
    """Multi-label mAP: per-class AP over samples, averaged over classes with a positive.

    Per-class AP is scikit-learn's ``average_precision_score`` (tied scores grouped).

    Args:
        scores: (N, C) scores.
        targets: (N, C) multi-hot labels.

    Returns:
        The mean AP (NaN if no class has a positive).
    """
    scores, targets = _tensor(scores), _tensor(targets)
    if scores.shape != targets.shape:
        raise ValueError(f"scores {tuple(scores.shape)} and targets {tuple(targets.shape)} differ")
    values = [average_precision(scores[:, c], targets[:, c]) for c in range(scores.shape[1])]
    return _mean([v for v in values if not np.isnan(v)])


def _binary_auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney AUROC with average ranks for ties (= scikit-learn's)."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    average_rank = ends - (counts - 1) / 2.0  # 1-based average rank of each distinct value
    rank_sum = average_rank[inverse][positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def auroc(scores: ArrayLike, targets: ArrayLike) -> float:
    """Macro AUROC over classes that have both positives and negatives.

    Ties count half, as in scikit-learn's ``roc_auc_score``; classes with a single label
    kind are excluded from the mean.

    Args:
        scores: (N, C) or (N,) scores.
        targets: Same shape, binary.

    Returns:
        The mean AUROC (NaN if no class qualifies).
    """
    scores = _tensor(scores).double().numpy()
    targets = (_tensor(targets) > 0).numpy()
    if scores.shape != targets.shape:
        raise ValueError(f"scores {scores.shape} and targets {targets.shape} differ")
    if scores.ndim == 1:
        scores, targets = scores[:, None], targets[:, None]  # (N, 1)
    values = [_binary_auroc(scores[:, c], targets[:, c]) for c in range(scores.shape[1])]
    return _mean([v for v in values if not np.isnan(v)])


def label_overlap_relevance(query_labels: ArrayLike, item_labels: ArrayLike,
                            normalize: bool = False) -> torch.Tensor:
    """Graded relevance as CLOSP uses it: the number of labels a query and an item share.

    Args:
        query_labels: (Q, C) multi-hot.
        item_labels: (N, C) multi-hot.
        normalize: Return the Jaccard index |A ∩ B| / |A ∪ B| instead of the count
            (0 where both label sets are empty).

    Returns:
        (Q, N) relevance (float).
    """
    q, n = _label_sets(query_labels, item_labels)
    shared = q @ n.T  # (Q, N)
    if not normalize:
        return shared
    union = q.sum(1, keepdim=True) + n.sum(1)[None, :] - shared  # (Q, N)
    return torch.where(union > 0, shared / union.clamp_min(1.0), torch.zeros_like(shared))


def _label_sets(query_labels: ArrayLike, item_labels: ArrayLike
                ) -> tuple[torch.Tensor, torch.Tensor]:
    q, n = (_tensor(query_labels) > 0).float(), (_tensor(item_labels) > 0).float()
    if q.ndim != 2 or n.ndim != 2 or q.shape[1] != n.shape[1]:
        raise ValueError(f"label matrices must be (Q, C) and (N, C), got {tuple(q.shape)} "
                         f"and {tuple(n.shape)}")
    return q, n


RELEVANCES = ("shared", "jaccard")


def label_relevance(query_labels: ArrayLike, item_labels: ArrayLike,
                    relevance: str = "shared") -> torch.Tensor:
    """Graded relevance of multi-label items to multi-label queries (for nDCG).

    Args:
        query_labels: (Q, C) multi-hot.
        item_labels: (N, C) multi-hot.
        relevance: ``"shared"``: the number of labels the two share (CLOSP's);
            ``"jaccard"``: shared / labels in either (in [0, 1]).

    Returns:
        (Q, N) relevance (float).
    """
    if relevance not in RELEVANCES:
        raise ValueError(f"unknown relevance {relevance!r}; known: {', '.join(RELEVANCES)}")
    return label_overlap_relevance(query_labels, item_labels, normalize=relevance == "jaccard")


def contains_all_labels(query_labels: ArrayLike, item_labels: ArrayLike) -> torch.Tensor:
    """Binary relevance: 1 where the item carries every label of the query (for Recall@k, mAP).

    An item sharing only some of the query's labels is not relevant; a query without any
    label is relevant to nothing.

    Args:
        query_labels: (Q, C) multi-hot.
        item_labels: (N, C) multi-hot.

    Returns:
        (Q, N) float 0/1.
    """
    q, n = _label_sets(query_labels, item_labels)
    shared = q @ n.T  # (Q, N)
    size = q.sum(1, keepdim=True)  # (Q, 1)
    return ((shared == size) & (size > 0)).float()


def label_prior_scores(train_labels: ArrayLike, item_labels: ArrayLike) -> torch.Tensor:
    """A query-blind score per item: the sum of its labels' frequencies in training data.

    With ``p_c`` the fraction of training samples labelled ``c``, an item with label set
    ``S`` scores ``sum_{c in S} p_c`` — the expected number of labels it shares with a
    training caption drawn at random. Ranking every query's items by this score is the
    best a model that ignores the query's text can do on shared-label relevance.

    Args:
        train_labels: (M, C) multi-hot labels of the training samples.
        item_labels: (N, C) multi-hot labels of the ranked items.

    Returns:
        (N,) scores (broadcast against (Q, N) to rank every query the same way).
    """
    train, items = _label_sets(train_labels, item_labels)
    if len(train) == 0:
        raise ValueError("label prior needs at least one training sample")
    return items @ train.mean(0)  # (N,)


def _ranked_relevance(similarity: ArrayLike, relevance: ArrayLike) -> Iterator[torch.Tensor]:
    """Yield relevance re-ordered by descending similarity, a chunk of queries at a time."""
    sim, rel = _tensor(similarity), _tensor(relevance)
    if sim.ndim != 2 or sim.shape != rel.shape:
        raise ValueError(f"similarity {tuple(sim.shape)} and relevance {tuple(rel.shape)} must "
                         "be equal (Q, N) matrices")
    if sim.is_floating_point() and torch.isnan(sim).any():
        raise ValueError("similarity contains NaN")
    step = max(1, _CHUNK_ELEMENTS // max(sim.shape[1], 1))
    for start in range(0, sim.shape[0], step):
        order = torch.argsort(-sim[start:start + step].double(), dim=1, stable=True)  # (q, N)
        yield torch.gather(rel[start:start + step].double(), 1, order)


def _check_k(k: int) -> None:
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k}")


def ndcg_at_k(similarity: ArrayLike, relevance: ArrayLike, k: int) -> float:
    """Mean nDCG@k with graded relevance.

    DCG@k = sum over ranks r = 1..k of relevance_r / log2(r + 1) (gain = relevance),
    normalised by the ideal DCG@k of the same query over all N items. Queries whose ideal
    DCG is zero (no relevant item) are left out of the mean; k larger than N is clipped.
    Unlike scikit-learn's ``ndcg_score``, ties in similarity are ranked by item index
    instead of averaged.

    Args:
        similarity: (Q, N) query-item scores.
        relevance: (Q, N) graded relevance >= 0.
        k: Cut-off.

    Returns:
        The mean nDCG@k in [0, 1] (NaN if no query has a relevant item).
    """
    _check_k(k)
    values = []
    for ranked in _ranked_relevance(similarity, relevance):  # (q, N)
        if (ranked < 0).any():
            raise ValueError("relevance must be >= 0")
        top = min(k, ranked.shape[1])
        discount = 1.0 / torch.log2(torch.arange(2, top + 2, dtype=torch.float64))  # (k,)
        dcg = (ranked[:, :top] * discount).sum(1)  # (q,)
        ideal = (torch.sort(ranked, dim=1, descending=True).values[:, :top] * discount).sum(1)
        keep = ideal > 0
        values.extend((dcg[keep] / ideal[keep]).tolist())
    return _mean(values)


def recall_at_k(similarity: ArrayLike, relevance: ArrayLike, k: int) -> float:
    """Hit rate: fraction of queries with at least one relevant item in the top k.

    This is the Recall@k of cross-modal retrieval papers (CLIP, CLOSP). For the fraction
    of each query's relevant items found in the top k, see :func:`recall_fraction_at_k`.

    Args:
        similarity: (Q, N) scores.
        relevance: (Q, N) binary or graded relevance (> 0 counts as relevant).
        k: Cut-off (clipped to N).

    Returns:
        Recall@k in [0, 1]; queries with no relevant item are left out (NaN if none is left).
    """
    _check_k(k)
    hits = []
    for ranked in _ranked_relevance(similarity, relevance):
        relevant = ranked > 0  # (q, N)
        keep = relevant.any(1)
        hits.extend(relevant[keep, :k].any(1).double().tolist())
    return _mean(hits)


def recall_fraction_at_k(similarity: ArrayLike, relevance: ArrayLike, k: int) -> float:
    """Mean over queries of (relevant items in the top k) / (relevant items in total).

    Args:
        similarity: (Q, N) scores.
        relevance: (Q, N) binary or graded relevance (> 0 counts as relevant).
        k: Cut-off (clipped to N).

    Returns:
        The mean fraction in [0, 1]; queries with no relevant item are left out.
    """
    _check_k(k)
    values = []
    for ranked in _ranked_relevance(similarity, relevance):
        relevant = (ranked > 0).double()  # (q, N)
        total = relevant.sum(1)
        keep = total > 0
        values.extend((relevant[keep, :k].sum(1) / total[keep]).tolist())
    return _mean(values)


def retrieval_map(similarity: ArrayLike, relevance: ArrayLike) -> float:
    """Mean over queries of the average precision of each query's full ranking.

    Args:
        similarity: (Q, N) scores.
        relevance: (Q, N) binary or graded relevance (> 0 counts as relevant).

    Returns:
        mAP in [0, 1]; queries with no relevant item are left out (NaN if none is left).
    """
    values = []
    for ranked in _ranked_relevance(similarity, relevance):
        hits = (ranked > 0).double()  # (q, N)
        total = hits.sum(1)
        precision = hits.cumsum(1) / torch.arange(1, hits.shape[1] + 1, dtype=torch.float64)
        keep = total > 0
        values.extend(((precision * hits).sum(1)[keep] / total[keep]).tolist())
    return _mean(values)


def _discounts(k: int) -> torch.Tensor:
    return 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64))  # (k,)


def random_ndcg_at_k(relevance: ArrayLike, k: int) -> float:
    """Expected nDCG@k of a uniformly random ranking, exactly.

    Every rank holds each item with probability 1 / N, so E[DCG@k] = mean relevance x
    sum_{r<=k} 1 / log2(r + 1); dividing by the (fixed) ideal DCG@k gives each query's
    expected nDCG. Queries without a relevant item are left out, as in :func:`ndcg_at_k`.

    Args:
        relevance: (Q, N) graded relevance >= 0.
        k: Cut-off (clipped to N).

    Returns:
        The mean over queries (NaN if none has a relevant item).
    """
    _check_k(k)
    rel = _tensor(relevance).double()  # (Q, N)
    top = min(k, rel.shape[1])
    discount = _discounts(top)
    ideal = (torch.sort(rel, dim=1, descending=True).values[:, :top] * discount).sum(1)  # (Q,)
    expected = rel.mean(1) * discount.sum()  # (Q,)
    keep = ideal > 0
    return _mean((expected[keep] / ideal[keep]).tolist())


def random_recall_at_k(relevance: ArrayLike, k: int) -> float:
    """Expected Recall@k (hit rate) of a uniformly random ranking, exactly.

    A query with m relevant items among N misses all of them in the top k with
    probability C(N - m, k) / C(N, k) = prod_{i<k} (N - m - i) / (N - i).

    Args:
        relevance: (Q, N) relevance (> 0 counts as relevant).
        k: Cut-off (clipped to N).

    Returns:
        The mean over queries with a relevant item (NaN if none).
    """
    _check_k(k)
    rel = _tensor(relevance) > 0
    n = rel.shape[1]
    top = min(k, n)
    steps = torch.arange(top, dtype=torch.float64)  # (k,)
    values = []
    for m in rel.sum(1).tolist():
        if m > 0:
            miss = ((n - m - steps).clamp_min(0) / (n - steps)).prod()
            values.append(1.0 - float(miss))
    return _mean(values)


def random_average_precision(relevance: ArrayLike) -> float:
    """Expected (retrieval) mAP of a uniformly random ranking, exactly.

    For m relevant items among N, AP = (1/m) sum over relevant i of (1 + relevant items
    ranked above i) / rank_i; with E[1/rank] = H_N / N and each other relevant item above
    i with probability (rank_i - 1) / (N - 1), E[AP] = H_N / N + (m - 1) / (N - 1) x
    (1 - H_N / N) (H_N the N-th harmonic number; 1 when N = 1).

    Args:
        relevance: (Q, N) relevance (> 0 counts as relevant).

    Returns:
        The mean over queries with a relevant item (NaN if none).
    """
    rel = _tensor(relevance) > 0
    n = rel.shape[1]
    harmonic = float((1.0 / torch.arange(1, n + 1, dtype=torch.float64)).sum()) if n else 0.0
    values = []
    for m in rel.sum(1).tolist():
        if m > 0:
            first = harmonic / n
            values.append(1.0 if n == 1 else first + (m - 1) / (n - 1) * (1 - first))
    return _mean(values)


def random_ranking_baseline(graded: ArrayLike, binary: ArrayLike,
                            ndcg_ks: Sequence[int] = (10, 100),
                            recall_ks: Sequence[int] = (1, 10)) -> dict[str, float]:
    """The figures of a uniformly random ranking: the row every retrieval table carries.

    Args:
        graded: (Q, N) graded relevance (nDCG).
        binary: (Q, N) binary relevance (Recall@k, mAP).
        ndcg_ks: nDCG cut-offs.
        recall_ks: Recall cut-offs.

    Returns:
        ``ndcg@k``, ``map`` and ``recall@k`` as their exact expectations.
    """
    result = {f"ndcg@{k}": random_ndcg_at_k(graded, k) for k in ndcg_ks}
    result["map"] = random_average_precision(binary)
    result.update({f"recall@{k}": random_recall_at_k(binary, k) for k in recall_ks})
    return result


def retrieval_figures(similarity: ArrayLike, graded: ArrayLike, binary: ArrayLike,
                      ndcg_ks: Sequence[int] = (10, 100),
                      recall_ks: Sequence[int] = (1, 10)) -> dict[str, float]:
    """nDCG@k on graded relevance, mAP and Recall@k on binary relevance, of one ranking.

    Args:
        similarity: (Q, N) scores (a query-blind (N,) score row is broadcast to every query).
        graded: (Q, N) graded relevance.
        binary: (Q, N) binary relevance.
        ndcg_ks: nDCG cut-offs.
        recall_ks: Recall cut-offs.

    Returns:
        ``ndcg@k``, ``map`` and ``recall@k`` (the keys of :func:`random_ranking_baseline`).
    """
    sim = _tensor(similarity)
    if sim.ndim == 1:
        sim = sim[None, :].expand(_tensor(graded).shape[0], -1)  # (Q, N)
    result = {f"ndcg@{k}": ndcg_at_k(sim, graded, k) for k in ndcg_ks}
    result["map"] = retrieval_map(sim, binary)
    result.update({f"recall@{k}": recall_at_k(sim, binary, k) for k in recall_ks})
    return result
