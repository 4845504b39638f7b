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
    confusion_matrix,
    contains_all_labels,
    label_overlap_relevance,
    label_prior_scores,
    label_relevance,
    macro_f1,
    mean_average_precision,
    ndcg_at_k,
    random_average_precision,
    random_ndcg_at_k,
    random_ranking_baseline,
    random_recall_at_k,
    recall_at_k,
    recall_fraction_at_k,
    retrieval_figures,
    retrieval_map,
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_classification_metrics_match_sklearn(rng: np.random.Generator) -> None:
    scores = rng.normal(size=(200, 5))
    target = rng.integers(0, 5, size=200)
    pred = scores.argmax(1)
    assert accuracy(scores, target) == pytest.approx(skm.accuracy_score(target, pred))
    assert accuracy(torch.from_numpy(pred), torch.from_numpy(target)) == pytest.approx(
        skm.accuracy_score(target, pred))
    expected_f1 = skm.f1_score(target, pred, average="macro")
    assert macro_f1(scores, target, 5) == pytest.approx(expected_f1)
    assert macro_f1(torch.from_numpy(pred), target, 5) == pytest.approx(expected_f1)
    np.testing.assert_array_equal(confusion_matrix(pred, target, 5),
                                  skm.confusion_matrix(target, pred, labels=range(5)))
    # A class absent from both target and predictions is ignored, as scikit-learn does.
    skewed = np.where(pred == 4, 0, pred)
    target3 = np.where(target == 4, 1, target)
    assert macro_f1(skewed, target3, 5) == pytest.approx(
        skm.f1_score(target3, skewed, average="macro"))
    with pytest.raises(ValueError, match="differ"):
        accuracy(pred[:10], target)


@pytest.mark.parametrize("levels", [None, 4])
def test_multilabel_map_and_auroc_match_sklearn(rng: np.random.Generator,
                                                levels: int | None) -> None:
    targets = (rng.random((150, 6)) < 0.3).astype(int)
    scores = targets * 0.5 + rng.random((150, 6))
    if levels is not None:  # coarse scores: many ties, which scikit-learn groups
        scores = np.round(scores * levels) / levels
    expected_ap = np.mean([skm.average_precision_score(targets[:, c], scores[:, c])
                           for c in range(6)])
    assert mean_average_precision(scores, targets) == pytest.approx(expected_ap)
    assert mean_average_precision(torch.from_numpy(scores).float(),
                                  torch.from_numpy(targets)) == pytest.approx(expected_ap, 1e-6)
    assert auroc(scores, targets) == pytest.approx(skm.roc_auc_score(targets, scores,
                                                                     average="macro"))
    assert auroc(scores[:, 0], targets[:, 0]) == pytest.approx(
        skm.roc_auc_score(targets[:, 0], scores[:, 0]))


def test_classes_without_positives_or_negatives_are_excluded(rng: np.random.Generator) -> None:
    targets = (rng.random((80, 4)) < 0.4).astype(int)
    targets[:, 1] = 0  # no positive: excluded from mAP and AUROC
    targets[:, 2] = 1  # no negative: excluded from AUROC only
    scores = rng.random((80, 4))
    ap = [skm.average_precision_score(targets[:, c], scores[:, c]) for c in (0, 2, 3)]
    assert mean_average_precision(scores, targets) == pytest.approx(np.mean(ap))
    auc = [skm.roc_auc_score(targets[:, c], scores[:, c]) for c in (0, 3)]
    assert auroc(scores, targets) == pytest.approx(np.mean(auc))


def test_ndcg_hand_computed() -> None:
    # Ranked relevances [3, 2, 0, 1]:
    #   DCG@4  = 3/log2(2) + 2/log2(3) + 0/log2(4) + 1/log2(5) = 4.692536...
    #   IDCG@4 = 3/log2(2) + 2/log2(3) + 1/log2(4) + 0/log2(5) = 4.761859...
    #   nDCG@4 = 0.985442...
    similarity = torch.tensor([[0.9, 0.8, 0.7, 0.6]])
    relevance = torch.tensor([[3.0, 2.0, 0.0, 1.0]])
    dcg = 3 + 2 / math.log2(3) + 1 / math.log2(5)
    ideal = 3 + 2 / math.log2(3) + 1 / math.log2(4)
    assert dcg / ideal == pytest.approx(0.985442, abs=1e-6)
    assert ndcg_at_k(similarity, relevance, 4) == pytest.approx(dcg / ideal)
    assert ndcg_at_k(similarity, relevance, 2) == pytest.approx(1.0)
    # @3: DCG = 3 + 2/log2(3); IDCG = 3 + 2/log2(3) + 1/2.
    assert ndcg_at_k(similarity, relevance, 3) == pytest.approx(
        (3 + 2 / math.log2(3)) / (3.5 + 2 / math.log2(3)))
    assert ndcg_at_k(similarity, relevance, 100) == pytest.approx(dcg / ideal)  # k clipped
    # The same items presented in another order, ranked by similarity: same value.
    assert ndcg_at_k(similarity[:, [3, 1, 0, 2]], relevance[:, [3, 1, 0, 2]], 4) == \
        pytest.approx(dcg / ideal)


def test_ndcg_ties_zero_queries_and_sklearn(rng: np.random.Generator) -> None:
    # Tied similarity: ranked by index, so relevance [0, 1] -> DCG 1/log2(3), IDCG 1.
    assert ndcg_at_k([[0.5, 0.5]], [[0.0, 1.0]], 2) == pytest.approx(1 / math.log2(3))
    # A query with no relevant item is left out of the mean.
    assert ndcg_at_k([[0.9, 0.1], [0.9, 0.1]], [[1.0, 0.0], [0.0, 0.0]], 2) == 1.0
    assert math.isnan(ndcg_at_k([[0.9, 0.1]], [[0.0, 0.0]], 2))
    sim = rng.random((12, 40))
    rel = rng.integers(0, 4, size=(12, 40))
    for k in (1, 5, 10, 40):
        assert ndcg_at_k(sim, rel, k) == pytest.approx(skm.ndcg_score(rel, sim, k=k))
    with pytest.raises(ValueError, match=">= 0"):
        ndcg_at_k(sim, -rel, 5)
    with pytest.raises(ValueError, match="positive integer"):
        ndcg_at_k(sim, rel, 0)
    with pytest.raises(ValueError, match="must be equal"):
        ndcg_at_k(sim, rel[:, :5], 3)


def test_recall_at_k_hand_computed() -> None:
    similarity = torch.tensor([[0.1, 0.9, 0.5], [0.8, 0.7, 0.6], [0.3, 0.2, 0.1]])
    relevance = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 1.0], [0.0, 0.0, 0.0]])
    # Query 0 ranks items [1, 2, 0]: its relevant item at rank 3. Query 1 ranks [0, 1, 2]:
    # relevant items at ranks 2 and 3. Query 2 has nothing relevant and is left out.
    assert recall_at_k(similarity, relevance, 1) == 0.0
    assert recall_at_k(similarity, relevance, 2) == 0.5
    assert recall_at_k(similarity, relevance, 3) == 1.0
    assert recall_at_k(similarity, relevance, 50) == 1.0
    assert recall_fraction_at_k(similarity, relevance, 2) == pytest.approx((0 + 1 / 2) / 2)
    assert recall_fraction_at_k(similarity, relevance, 3) == 1.0
    # Ties ranked by index: item 0 comes first.
    assert recall_at_k([[0.5, 0.5]], [[1, 0]], 1) == 1.0
    assert recall_at_k([[0.5, 0.5]], [[0, 1]], 1) == 0.0


def test_retrieval_map_hand_computed_and_sklearn(rng: np.random.Generator) -> None:
    similarity = torch.tensor([[0.1, 0.9, 0.5], [0.8, 0.7, 0.6], [0.3, 0.2, 0.1]])
    relevance = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 1.0], [0.0, 0.0, 0.0]])
    # Query 0: relevant at rank 3 -> AP 1/3. Query 1: ranks 2, 3 -> (1/2 + 2/3) / 2.
    assert retrieval_map(similarity, relevance) == pytest.approx((1 / 3 + 7 / 12) / 2)
    sim = rng.random((8, 50))
    rel = rng.integers(0, 3, size=(8, 50))
    expected = np.mean([skm.average_precision_score(rel[i] > 0, sim[i]) for i in range(8)])
    assert retrieval_map(sim, rel) == pytest.approx(expected)


def test_label_overlap_relevance() -> None:
    queries = torch.tensor([[1, 1, 0], [0, 0, 1]])
    items = np.array([[1, 0, 0], [1, 1, 1], [0, 0, 0]])
    assert label_overlap_relevance(queries, items).tolist() == [[1, 2, 0], [0, 1, 0]]
    jaccard = label_overlap_relevance(queries, items, normalize=True)
    np.testing.assert_allclose(jaccard.numpy(), [[0.5, 2 / 3, 0.0], [0.0, 1 / 3, 0.0]], rtol=1e-6)
    empty = label_overlap_relevance([[0, 0, 0]], items[2:], normalize=True)
    assert empty.tolist() == [[0.0]]
    with pytest.raises(ValueError, match=r"\(Q, C\)"):
        label_overlap_relevance(queries, items[:, :2])


def test_recall_counts_a_scene_with_one_of_two_labels_as_a_miss() -> None:
    query = [[1, 1, 0]]  # "trees. water"
    items = [[1, 0, 0], [1, 1, 1], [0, 0, 1]]  # trees only; trees, water and crops; crops
    binary = contains_all_labels(query, items)
    assert binary.tolist() == [[0.0, 1.0, 0.0]]
    similarity = [[0.9, 0.5, 0.1]]  # the half-matching scene ranks first
    assert recall_at_k(similarity, binary, 1) == 0.0
    assert recall_at_k(similarity, binary, 2) == 1.0
    # nDCG keeps graded relevance: the partial match still earns a gain.
    graded = label_relevance(query, items, "shared")
    assert graded.tolist() == [[1.0, 2.0, 0.0]]
    assert ndcg_at_k(similarity, graded, 1) == pytest.approx(0.5)
    jaccard = label_relevance(query, items, "jaccard")
    np.testing.assert_allclose(jaccard.numpy(), [[0.5, 2 / 3, 0.0]], rtol=1e-6)
    assert contains_all_labels([[0, 0, 0]], items).sum() == 0  # an empty query matches nothing
    with pytest.raises(ValueError, match="unknown relevance"):
        label_relevance(query, items, "overlap")


def _permutation_mean(metric, relevance: np.ndarray, rng: np.random.Generator,
                      draws: int = 4000, **kwargs) -> float:
    """The metric averaged over uniformly random rankings (random scores per draw).

    The draws are stacked as extra queries: the metric's mean over queries is then the
    mean over draws.
    """
    tiled = np.tile(relevance, (draws, 1))  # (draws * Q, N)
    return metric(rng.random(tiled.shape), tiled, **kwargs)


def test_random_ranking_baseline_matches_permutations(rng: np.random.Generator) -> None:
    graded = rng.integers(0, 4, size=(3, 30)).astype(float)
    graded[2] = 0  # a query without a relevant item is left out, as in the metrics
    graded[2, 5] = 1
    binary = (graded >= 2).astype(float)
    for k in (1, 5, 10):
        assert random_ndcg_at_k(graded, k) == pytest.approx(
            _permutation_mean(ndcg_at_k, graded, rng, k=k), abs=0.01)
        assert random_recall_at_k(binary, k) == pytest.approx(
            _permutation_mean(recall_at_k, binary, rng, k=k), abs=0.015)
    assert random_average_precision(binary) == pytest.approx(
        _permutation_mean(retrieval_map, binary, rng), abs=0.01)
    baseline = random_ranking_baseline(graded, binary, ndcg_ks=(10,), recall_ks=(10,))
    assert set(baseline) == {"ndcg@10", "map", "recall@10"}


def test_random_ranking_edge_cases() -> None:
    every = np.ones((2, 7))
    assert random_ndcg_at_k(every * 3, 4) == pytest.approx(1.0)  # all relevant: any order is ideal
    assert random_recall_at_k(every, 1) == 1.0
    assert random_average_precision(every) == pytest.approx(1.0)
    one = np.zeros((1, 4))
    one[0, 2] = 1
    assert random_recall_at_k(one, 1) == pytest.approx(0.25)
    assert random_recall_at_k(one, 10) == 1.0
    assert random_average_precision(one) == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)
    assert np.isnan(random_ndcg_at_k(np.zeros((2, 5)), 3))


def test_label_prior_ranks_scenes_by_training_label_frequency() -> None:
    train = [[1, 0, 0], [1, 1, 0], [1, 0, 0], [0, 0, 1]]  # p = 0.75, 0.25, 0.25
    items = [[0, 0, 1], [1, 0, 0], [1, 1, 0], [0, 0, 0]]
    np.testing.assert_allclose(label_prior_scores(train, items).numpy(), [0.25, 0.75, 1.0, 0.0])
    query = [[0, 1, 0]]
    figures = retrieval_figures(label_prior_scores(train, items), label_relevance(query, items),
                                contains_all_labels(query, items), ndcg_ks=(1,), recall_ks=(1,))
    assert figures == {"ndcg@1": 1.0, "map": 1.0, "recall@1": 1.0}
    with pytest.raises(ValueError, match="at least one training"):
        label_prior_scores(np.zeros((0, 3)), items)
