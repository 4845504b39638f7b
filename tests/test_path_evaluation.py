"""Pathology evaluation on tensors: top-K slide pooling, tile metrics and baselines, retrieval."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, f1_score

from core.baselines import chance_classification, majority_classification
from core.classification import balanced_accuracy, classification_report, per_class_f1
from domains.pathology import cards
from domains.pathology.evaluation import (
    class_prompts,
    retrieval_metrics,
    slide_scores,
    slide_zero_shot,
    tile_baselines,
    tile_zero_shot,
    top_k_pool,
)

CLASSES = cards.tissue_classes()
TUMOUR = cards.tumour_classes()[0]
NORMAL = "normal colon mucosa"


def constructed_slide(tumour_tiles: int, seed: int = 0) -> np.ndarray:
    """(300, 9) tile logits: mostly mucosa / stroma / debris, a few tumour tiles."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 0.5, (300, len(CLASSES)))  # (T, C)
    logits[:180, CLASSES.index(NORMAL)] += 3.0  # 60 % mucosa, 40 % stroma
    logits[180:, CLASSES.index("cancer-associated stroma")] += 3.0
    logits[:, CLASSES.index(TUMOUR)] += 0.5  # every tile looks a little tumour-like
    logits[:tumour_tiles, CLASSES.index(TUMOUR)] += 5.0
    return logits


def test_top_k_pooling_picks_the_tumour_on_a_constructed_slide() -> None:
    slide_classes = [NORMAL, TUMOUR]
    tumour_slide = constructed_slide(tumour_tiles=12)
    # the tumour is a small region: the mean over all tiles calls the slide normal ...
    mean = tumour_slide.mean(0)  # (9,)
    assert mean[CLASSES.index(NORMAL)] > mean[CLASSES.index(TUMOUR)]
    # ... top-K pooling (K below the tumour's tile count) calls it tumour
    scores = slide_scores(tumour_slide, CLASSES, slide_classes, k=10)
    assert scores.sum() == pytest.approx(1.0)
    assert slide_classes[int(scores.argmax())] == TUMOUR and scores[1] > 0.8
    normal_slide = constructed_slide(tumour_tiles=0, seed=1)
    assert slide_classes[int(slide_scores(normal_slide, CLASSES, slide_classes, 10).argmax())] \
        == NORMAL
    # K = all tiles is the mean
    np.testing.assert_allclose(top_k_pool(tumour_slide, 10_000), mean)
    assert top_k_pool(np.array([[0.1, 0.9], [0.7, 0.2], [0.4, 0.5]]), 2).tolist() == \
        pytest.approx([0.55, 0.7])
    with pytest.raises(ValueError, match="K must be"):
        top_k_pool(tumour_slide, 0)
    with pytest.raises(ValueError, match="not among the tile classes"):
        slide_scores(tumour_slide, CLASSES, ["glioma"], 5)


def test_slide_figures_with_baselines() -> None:
    probabilities = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9], [0.2, 0.8]])
    target = np.array([0, 1, 1, 1, 1])
    result = slide_zero_shot(probabilities, target, [NORMAL, TUMOUR])
    assert result["accuracy"] == pytest.approx(0.8)
    assert result["balanced_accuracy"] == pytest.approx((1 + 0.75) / 2)
    assert result["chance"]["balanced_accuracy"] == 0.5
    assert result["majority"]["accuracy"] == pytest.approx(0.8)
    assert result["majority"]["balanced_accuracy"] == pytest.approx(0.5)


def test_tile_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(3)
    target = rng.integers(0, 9, 400)
    target[:5] = 2  # an unbalanced split
    logits = rng.normal(size=(400, 9))
    logits[np.arange(400), target] += rng.normal(1.0, 1.0, 400)  # a noisy classifier
    predicted = logits.argmax(1)
    assert balanced_accuracy(logits, target, 9) == pytest.approx(
        balanced_accuracy_score(target, predicted))
    np.testing.assert_allclose(per_class_f1(logits, target, 9),
                               f1_score(target, predicted, average=None, labels=range(9)))
    report = classification_report(logits, target, CLASSES)
    assert report["macro_f1"] == pytest.approx(f1_score(target, predicted, average="macro"))
    assert np.array(report["confusion"]).sum() == 400 and report["samples"] == 400
    # tiles of unknown class (-1) are left out
    with_unknown = np.concatenate([target, [-1, -1]])
    extra = np.concatenate([logits, rng.normal(size=(2, 9))])
    assert tile_zero_shot(extra, with_unknown, CLASSES)["balanced_accuracy"] == \
        pytest.approx(report["balanced_accuracy"])


def test_baselines() -> None:
    assert chance_classification(9) == {"accuracy": 1 / 9, "balanced_accuracy": 1 / 9}
    target = np.array([0, 0, 0, 1, 2, 2])
    majority = majority_classification(target, 3)
    assert majority == {"accuracy": 0.5, "balanced_accuracy": pytest.approx(1 / 3), "class": 0}
    # the majority of another (training) split: class 2 here
    other = majority_classification(target, 3, reference=np.array([2, 2, 1]))
    assert other["class"] == 2 and other["accuracy"] == pytest.approx(2 / 6)
    baselines = tile_baselines(np.array([0, 0, 1, -1]), 9, reference=np.array([1, -1, -1, -1]))
    assert baselines["majority"]["class"] == 1
    assert baselines["majority"]["accuracy"] == pytest.approx(1 / 3)
    own = tile_baselines(np.array([0, 0, 1]), 9, reference=np.array([-1, -1]))
    assert own["majority"]["class"] == 0 and own["majority"]["accuracy"] == pytest.approx(2 / 3)


def test_retrieval_hits_are_same_class_tiles() -> None:
    torch.manual_seed(0)
    target = np.array([0, 0, 1, 1, 2, -1])
    features = torch.nn.functional.normalize(torch.randn(6, 16), dim=1)
    perfect = retrieval_metrics(features, features, target, ks=(1, 5))
    assert perfect["caption_to_tile_recall@1"] == 1.0
    assert perfect["own_caption_to_tile_recall@1"] == 1.0
    assert perfect["own_random_recall@1"] == pytest.approx(1 / 6)
    # random hit rate: classes 0 and 1 have 2 relevant of 6, class 2 and unknown 1 of 6
    assert perfect["random_recall@1"] == pytest.approx((4 * 2 / 6 + 2 * 1 / 6) / 6)
    swapped = retrieval_metrics(features, features[[1, 0, 3, 2, 4, 5]], target, ks=(1,))
    assert swapped["caption_to_tile_recall@1"] == 1.0  # same class still hits
    assert swapped["own_caption_to_tile_recall@1"] == pytest.approx(2 / 6)


def test_prompts_come_from_the_card() -> None:
    single = class_prompts("TUM", "single")
    assert single == [cards.prompt_templates()[0].format(TUMOUR)]
    ensemble = class_prompts("TUM")
    templates = cards.prompt_templates()
    assert len(ensemble) == len(templates) * (1 + len(set(cards.synonyms(TUMOUR))))
    assert any(s in p for p in ensemble for s in cards.synonyms(TUMOUR))
    assert class_prompts(TUMOUR, "descriptions") == cards.descriptions(TUMOUR)
    assert class_prompts("signet ring cells", "descriptions") == \
        [t.format("signet ring cells") for t in templates]
    with pytest.raises(ValueError, match="prompt kind"):
        class_prompts(TUMOUR, "poems")
