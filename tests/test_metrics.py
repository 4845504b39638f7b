"""Metrics agree with scikit-learn and with hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from core.metrics import (
    accuracy,
    auroc,
    label_overlap_relevance,
    macro_f1,
    mean_average_precision,
    ndcg_at_k,
    recall_at_k,
    retrieval_map,
)

RNG = np.random.default_rng(0)


def test_classification_metrics_match_sklearn() -> None:
    scores = RNG.normal(size=(200, 5))
    target = RNG.integers(0, 5, size=200)
    pred = scores.argmax(1)
    assert accuracy(scores, target) == pytest.approx(skm.accuracy_score(target, pred))
    assert macro_f1(scores, target, 5) == pytest.approx(skm.f1_score(target, pred,
                                                                     average="macro"))


def test_multilabel_map_and_auroc_match_sklearn() -> None:
    targets = (RNG.random((120, 6)) < 0.3).astype(int)
    scores = targets * 0.5 + RNG.random((120, 6))
    expected_ap = np.mean([skm.average_precision_score(targets[:, c], scores[:, c])
                           for c in range(6)])
    assert mean_average_precision(scores, targets) == pytest.approx(expected_ap)
    assert auroc(scores, targets) == pytest.approx(skm.roc_auc_score(targets, scores,
                                                                     average="macro"))


def test_ndcg_hand_computed_and_sklearn() -> None:
    # Ranked relevances [3, 2, 0, 1]: DCG@4 = 3 + 2/log2(3) + 0 + 1/log2(5);
    # ideal [3, 2, 1, 0]: 3 + 2/log2(3) + 1/log2(4).
    similarity = torch.tensor([[0.9, 0.8, 0.7, 0.6]])
    relevance = torch.tensor([[3.0, 2.0, 0.0, 1.0]])
    dcg = 3 + 2 / math.log2(3) + 1 / math.log2(5)
    ideal = 3 + 2 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(similarity, relevance, 4) == pytest.approx(dcg / ideal)
    assert ndcg_at_k(similarity, relevance, 2) == pytest.approx(1.0)
    assert ndcg_at_k(similarity, relevance, 100) == pytest.approx(dcg / ideal)  # k clipped
    sim = RNG.random((10, 30))
    rel = RNG.integers(0, 4, size=(10, 30))
    assert ndcg_at_k(sim, rel, 10) == pytest.approx(skm.ndcg_score(rel, sim, k=10))


def test_recall_map_and_label_overlap() -> None:
    similarity = torch.tensor([[0.1, 0.9, 0.5], [0.8, 0.7, 0.6], [0.3, 0.2, 0.1]])
    relevance = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    assert recall_at_k(similarity, relevance, 1) == 0.0
    assert recall_at_k(similarity, relevance, 3) == 1.0
    assert recall_at_k(similarity, relevance, 2) == 0.0
    # Query 1: relevant at rank 3 -> AP 1/3; query 2: rank 3 -> 1/3; query 3 skipped.
    assert retrieval_map(similarity, relevance) == pytest.approx(1 / 3)
    queries = torch.tensor([[1, 1, 0], [0, 0, 1]])
    items = torch.tensor([[1, 0, 0], [1, 1, 1], [0, 0, 0]])
    assert label_overlap_relevance(queries, items).tolist() == [[1, 2, 0], [0, 1, 0]]
    jaccard = label_overlap_relevance(queries, items, normalize=True)
    assert jaccard[0].tolist() == pytest.approx([0.5, 2 / 3, 0.0])
