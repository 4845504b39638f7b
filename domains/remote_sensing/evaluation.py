"""CLOSP evaluation on embedded scenes: zero-shot land cover, text->image retrieval,
cross-sensor retrieval and location-dependent (crisis) retrieval.

Definitions (the docs use the same ones):

- *Zero-shot* scores each scene against the 9 Dynamic World classes with the prompts of
  :func:`captions.default_zero_shot` (what :class:`~domains.remote_sensing.classifier.
  LandCoverClassifier` uses by default) and, separately, with the held-out phrasings of
  :func:`captions.held_out_zero_shot` (names and templates never used in training).
  Accuracy is on the dominant class; beside it stand the majority-class accuracy (always
  answering the evaluated scenes' most frequent dominant class) and chance (1 / 9).
- *Text -> image retrieval* asks one query per frequent land-cover label set of the test
  scenes (:func:`land_cover_queries`), phrased as in training (CLOSP's label list) and as
  a held-out phrasing of the same labels (:func:`held_out_queries`). nDCG@k uses graded
  relevance: the number of labels query and scene share (``relevance="jaccard"``: their
  Jaccard index). Recall@k and mAP use binary relevance: the scene carries *every* label
  of the query (a scene with one of two labels is a miss).
- Every retrieval table has two baseline rows: *random* (the exact expected value under a
  uniformly random ranking) and *label prior* (a text-blind ranking of the scenes by the
  summed training-split frequency of their labels, :func:`core.metrics.label_prior_scores`).

Zero-shot accuracy is also reported on the subsets real products make hard
(:func:`zero_shot_subsets`): S2 test scenes that are cloudy (``cloud_fraction`` >=
:data:`CLOUDY_THRESHOLD`) beside the clear ones, and the S1 test scenes brought to
single-look speckle (ENL 1) beside the default; each beside its majority-class and chance
accuracy. Crisis queries and GeoCLOSP's two settings are in
:mod:`~domains.remote_sensing.geo_evaluation`.

Every function takes embeddings (:class:`EmbeddedScenes`) and returns plain dicts
of floats, so figures are reproducible and easy to store as JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from core import metrics
from core.model import ContrastiveModel
from core.zero_shot import build_zero_shot_classifier
from domains.remote_sensing import captions, cards
from domains.remote_sensing.embed import EmbeddedScenes
from domains.remote_sensing.geo_evaluation import (
    PROXIMITY_WEIGHTS,
    Query,
    choose_proximity_weight,
    crisis_baselines,
    crisis_queries,
    crisis_retrieval,
    place_baselines,
    text_only_retrieval,
)

# The crisis functions moved to geo_evaluation; importing them from here keeps working.
__all__ = ["CLOUDY_THRESHOLD", "K_VALUES", "PROXIMITY_WEIGHTS", "RELEVANCE", "SINGLE_LOOK_ENL",
           "choose_proximity_weight", "crisis_queries", "crisis_retrieval", "cross_sensor",
           "evaluate_model", "held_out_queries", "land_cover_queries", "majority_accuracy",
           "phrase_queries", "retrieval_baselines", "text_to_image", "zero_shot_land_cover",
           "zero_shot_subsets"]

K_VALUES = (10, 100, 1000)
MAX_QUERIES = 300
#: S2 scenes with at least this fraction under cloud (SCL 8/9/10) form the cloudy subset:
#: a tenth of the scene hides enough surface to matter, and the synthetic archive puts
#: about a fifth of its scenes there (partly and heavily cloudy regimes).
CLOUDY_THRESHOLD = 0.1
#: Equivalent number of looks of the heavily speckled S1 evaluation (single look).
SINGLE_LOOK_ENL = 1.0
#: Graded relevance of the retrieval nDCG (see :func:`core.metrics.label_relevance`).
RELEVANCE = "shared"

Prompts = tuple[list[str], list[str], dict[str, list[str]]]  # classes, templates, synonyms


def zero_shot_land_cover(model: ContrastiveModel, scenes: EmbeddedScenes,
                         prompts: Prompts | None = None) -> dict[str, Any]:
    """Zero-shot classification over the 9 Dynamic World classes.

    Args:
        model: The model (its ``text`` tower embeds the prompts).
        scenes: Embedded scenes of one sensor.
        prompts: (class names in Dynamic World order, templates, synonyms); default
            :func:`captions.default_zero_shot` (the classifier's defaults).

    Returns:
        Dominant-class accuracy, macro-F1, multi-label mAP, the confusion matrix, the
        scene count ``n``, and the majority-class and chance accuracy of the same scenes.
    """
    classes, templates, synonyms = prompts or captions.default_zero_shot()
    n_classes = len(cards.land_cover_classes())
    if len(classes) != n_classes:
        raise ValueError(f"zero-shot prompts name {len(classes)} classes, need {n_classes} "
                         "(Dynamic World order)")
    classifier = build_zero_shot_classifier(model, classes, templates, synonyms or None)
    scores = scenes.features @ classifier.cpu()  # (N, 9)
    keep = scenes.dominant >= 0
    target = scenes.dominant[keep]
    return {
        "accuracy": metrics.accuracy(scores[keep], target),
        "macro_f1": metrics.macro_f1(scores[keep], target, n_classes),
        "map": metrics.mean_average_precision(scores, scenes.labels[:, :n_classes]),
        "confusion": metrics.confusion_matrix(scores[keep], target, n_classes).tolist(),
        "n": int(keep.sum()),
        "majority_accuracy": majority_accuracy(scenes.dominant),
        "chance_accuracy": 1.0 / n_classes,
    }


def majority_accuracy(dominant: torch.Tensor) -> float | None:
    """Accuracy of always answering the most frequent dominant class (None for no scene)."""
    known = dominant[dominant >= 0]
    if len(known) == 0:
        return None
    return float(torch.bincount(known).max()) / len(known)


def _subset_zero_shot(model: ContrastiveModel, scenes: EmbeddedScenes) -> dict[str, Any]:
    """Dominant-class accuracy of one subset, with its size, majority and chance figures."""
    n_classes = len(cards.land_cover_classes())
    n = int((scenes.dominant >= 0).sum())
    figures: dict[str, Any] = {"accuracy": None, "macro_f1": None, "n": n,
                               "majority_accuracy": majority_accuracy(scenes.dominant),
                               "chance_accuracy": 1.0 / n_classes}
    if n:
        zero_shot = zero_shot_land_cover(model, scenes)
        figures.update(accuracy=zero_shot["accuracy"], macro_f1=zero_shot["macro_f1"])
    return figures


def zero_shot_subsets(model: ContrastiveModel, scenes: dict[str, EmbeddedScenes],
                      single_look: EmbeddedScenes | None = None) -> dict[str, Any]:
    """Zero-shot dominant-class accuracy on the clear, cloudy and single-look subsets.

    Args:
        model: The model.
        scenes: Sensor -> embedded test scenes (S2 carry ``cloud_fraction``; where it is
            unknown the clear / cloudy subsets are left out).
        single_look: The S1 test scenes embedded after :class:`~domains.remote_sensing.
            augment.SpeckleToLooks` brought them to ENL 1 (``None``: left out).

    Returns:
        Subset name (``s2_all``, ``s2_clear``, ``s2_cloudy``, ``s1_default``, ``s1_enl1``)
        -> accuracy, macro-F1, scene count ``n``, majority-class and chance accuracy.
    """
    subsets: dict[str, Any] = {}
    s2 = scenes.get("s2")
    if s2 is not None:
        subsets["s2_all"] = _subset_zero_shot(model, s2)
        cloud = np.asarray(s2.cloud_fraction, dtype=float)
        known = np.isfinite(cloud)
        if known.any():
            subsets["s2_clear"] = _subset_zero_shot(
                model, s2.select(known & (cloud < CLOUDY_THRESHOLD)))
            subsets["s2_cloudy"] = _subset_zero_shot(
                model, s2.select(known & (cloud >= CLOUDY_THRESHOLD)))
    if "s1" in scenes:
        subsets["s1_default"] = _subset_zero_shot(model, scenes["s1"])
        if single_look is not None:
            subsets["s1_enl1"] = _subset_zero_shot(model, single_look)
    return subsets


def land_cover_queries(*scene_sets: EmbeddedScenes) -> tuple[list[str], torch.Tensor]:
    """Text queries for retrieval: the most frequent land-cover label sets of the scenes.

    Returns:
        Query captions in the training phrasing (:func:`captions.training_query`) and their
        (Q, 12) multi-hot labels (no crisis tags).
    """
    vocabulary = cards.label_vocabulary()
    n_classes = len(cards.land_cover_classes())
    labels = torch.cat([s.labels[:, :n_classes] for s in scene_sets])  # (N, 9)
    unique, counts = torch.unique(labels, dim=0, return_counts=True)
    order = torch.argsort(-counts, stable=True)[:MAX_QUERIES]
    unique = unique[order]
    unique = unique[unique.sum(1) > 0]
    padded = torch.zeros(len(unique), len(vocabulary))
    padded[:, :n_classes] = unique
    return phrase_queries(padded, captions.training_query), padded


def phrase_queries(labels: torch.Tensor, phrasing: Callable[[Sequence[str]], str]) -> list[str]:
    """One query text per (Q, 12) label row, phrased by ``phrasing`` (label names -> text)."""
    vocabulary = cards.label_vocabulary()
    return [phrasing([vocabulary[i] for i in torch.nonzero(row).flatten().tolist()])
            for row in labels]


def held_out_queries(labels: torch.Tensor) -> list[str]:
    """The held-out phrasing (:func:`captions.held_out_query`) of each query's label set."""
    return phrase_queries(labels, captions.held_out_query)


def text_to_image(query_features: torch.Tensor, query_labels: torch.Tensor,
                  item_features: torch.Tensor, item_labels: torch.Tensor,
                  relevance: str = RELEVANCE) -> dict[str, float]:
    """nDCG@10/100/1000 (graded), mAP and Recall@1/10 (contains all labels) of text queries.

    Args:
        query_features: (Q, D) query embeddings.
        query_labels: (Q, 12) their labels.
        item_features: (N, D) scene embeddings.
        item_labels: (N, 12) scene labels.
        relevance: Graded relevance of nDCG, ``"shared"`` or ``"jaccard"``.

    Returns:
        ``ndcg@k``, ``map``, ``recall@1``, ``recall@10``.
    """
    similarity = query_features @ item_features.T  # (Q, N)
    return metrics.retrieval_figures(
        similarity, metrics.label_relevance(query_labels, item_labels, relevance),
        metrics.contains_all_labels(query_labels, item_labels), ndcg_ks=K_VALUES)


def retrieval_baselines(query_labels: torch.Tensor, item_labels: torch.Tensor,
                        train_labels: torch.Tensor | None,
                        relevance: str = RELEVANCE) -> dict[str, dict[str, float]]:
    """The random-ranking and label-prior rows of a text -> image table (same keys).

    Args:
        query_labels: (Q, 12) query labels.
        item_labels: (N, 12) scene labels.
        train_labels: (M, 12) labels of the training split (``None``: no label-prior row).
        relevance: Graded relevance of nDCG.

    Returns:
        ``random`` (exact expectation) and, with training labels, ``label_prior``.
    """
    graded = metrics.label_relevance(query_labels, item_labels, relevance)
    binary = metrics.contains_all_labels(query_labels, item_labels)
    rows = {"random": metrics.random_ranking_baseline(graded, binary, K_VALUES)}
    if train_labels is not None and len(train_labels):
        prior = metrics.label_prior_scores(train_labels, item_labels)  # (N,)
        rows["label_prior"] = metrics.retrieval_figures(prior, graded, binary, K_VALUES)
    return rows


def cross_sensor(source: EmbeddedScenes, target: EmbeddedScenes,
                 train_labels: torch.Tensor | None = None) -> dict[str, Any]:
    """Image->image retrieval across sensors on the paired subset.

    Recall@k counts the same place seen by the other sensor; nDCG@10 grades by shared
    labels. ``random`` and ``label_prior`` give the same figures for a random ranking and
    for a ranking by the target scenes' training label frequency (source-blind).
    """
    source = source.select(np.asarray([p != "" for p in source.pair_ids]))
    target = target.select(np.asarray([p != "" for p in target.pair_ids]))
    if len(source.ids) == 0 or len(target.ids) == 0:
        return {}
    similarity = source.features @ target.features.T  # (S, T)
    same = torch.tensor([[float(a == b) for b in target.pair_ids] for a in source.pair_ids])
    relevance = metrics.label_relevance(source.labels, target.labels, RELEVANCE)

    def figures(sim: torch.Tensor) -> dict[str, float]:
        return {"recall@1": metrics.recall_at_k(sim, same, 1),
                "recall@10": metrics.recall_at_k(sim, same, 10),
                "ndcg@10": metrics.ndcg_at_k(sim, relevance, 10)}

    result: dict[str, Any] = {**figures(similarity), "n": len(source.ids)}
    result["random"] = {"recall@1": metrics.random_recall_at_k(same, 1),
                        "recall@10": metrics.random_recall_at_k(same, 10),
                        "ndcg@10": metrics.random_ndcg_at_k(relevance, 10)}
    if train_labels is not None and len(train_labels):
        prior = metrics.label_prior_scores(train_labels, target.labels)
        result["label_prior"] = figures(prior[None, :].expand_as(similarity))
    return result


def _retrieval(result: dict[str, Any], query_features: torch.Tensor,
               held_out_features: torch.Tensor | None, query_labels: torch.Tensor,
               archive: str, items: torch.Tensor, labels: torch.Tensor,
               train_labels: torch.Tensor | None) -> None:
    """Fill one archive's retrieval, held-out retrieval and baseline rows."""
    result["retrieval"][archive] = text_to_image(query_features, query_labels, items, labels)
    if held_out_features is not None:
        result["retrieval_held_out"][archive] = text_to_image(held_out_features, query_labels,
                                                              items, labels)
    result["retrieval_baselines"][archive] = retrieval_baselines(query_labels, labels,
                                                                 train_labels)


def _crisis(model: ContrastiveModel, scenes: list[EmbeddedScenes], crisis: list[Query],
            choices: dict[str, float], query_features: torch.Tensor,
            query_labels: torch.Tensor, train_labels: torch.Tensor | None) -> dict[str, Any]:
    """Crisis figures: text-only, GeoCLOSP's settings and the place baselines."""
    tags = [tag for tag, _ in crisis]
    result: dict[str, Any] = {"crisis": crisis_retrieval(model, scenes, crisis),
                              "crisis_baselines": crisis_baselines(scenes, tags, train_labels)}
    if "location" in model.towers:
        weight = choices.get("proximity_weight", 0.0)
        result["crisis_fused"] = {**crisis_retrieval(model, scenes, crisis, weight),
                                  "proximity_weight": weight}
        result["text_only"] = text_only_retrieval(model, scenes, query_features, query_labels,
                                                  tags, choices.get("fusion_weight", 0.0))
    if "distance_weight" in choices and "bbox_half_size_km" in choices:
        found = place_baselines(model, scenes, crisis, choices["distance_weight"],
                                choices["bbox_half_size_km"])
        result["crisis_distance"], result["crisis_bbox"] = found["distance"], found["bbox"]
    return result


@torch.no_grad()
def evaluate_model(model: ContrastiveModel, scenes: dict[str, EmbeddedScenes],
                   queries: tuple[list[str], torch.Tensor],
                   crisis: list[Query] | None = None,
                   choices: dict[str, float] | None = None,
                   single_look: EmbeddedScenes | None = None,
                   held_out: list[str] | None = None,
                   train_labels: torch.Tensor | None = None) -> dict[str, Any]:
    """Every evaluation the model's towers allow, on its embedded test scenes.

    Args:
        model: The trained model.
        scenes: Sensor -> embedded test scenes.
        queries: Land-cover query texts and their (Q, 12) labels (the same for every
            model compared, see :func:`land_cover_queries`).
        crisis: Location-dependent queries (see :func:`crisis_queries`); none: skipped.
        choices: Settings chosen on the validation split: ``proximity_weight`` and
            ``fusion_weight`` (GeoCLOSP), ``distance_weight`` and ``bbox_half_size_km``
            (the place baselines; without them the baselines are left out).
        single_look: The S1 test scenes at ENL 1 (see :func:`zero_shot_subsets`).
        held_out: Held-out phrasings of the same queries (:func:`held_out_queries`).
        train_labels: (M, 12) training-split labels for the label-prior rows.

    Returns:
        Nested dict of metrics.
    """
    result: dict[str, Any] = {"zero_shot": {}, "zero_shot_held_out": {}, "retrieval": {},
                              "retrieval_held_out": {}, "retrieval_baselines": {}}
    texts, query_labels = queries
    query_features = model.encode("text", texts).cpu()
    held_out_features = model.encode("text", held_out).cpu() if held_out else None
    held_out_prompts = captions.held_out_zero_shot()
    for sensor, embedded in scenes.items():
        result["zero_shot"][sensor] = zero_shot_land_cover(model, embedded)
        result["zero_shot_held_out"][sensor] = zero_shot_land_cover(model, embedded,
                                                                    held_out_prompts)
        _retrieval(result, query_features, held_out_features, query_labels, sensor,
                   embedded.features, embedded.labels, train_labels)
    result["zero_shot_subsets"] = zero_shot_subsets(model, scenes, single_look)
    if len(scenes) > 1:
        _retrieval(result, query_features, held_out_features, query_labels, "mixed",
                   torch.cat([s.features for s in scenes.values()]),
                   torch.cat([s.labels for s in scenes.values()]), train_labels)
    if "s1" in scenes and "s2" in scenes:
        result["cross_sensor"] = {
            "s1->s2": cross_sensor(scenes["s1"], scenes["s2"], train_labels),
            "s2->s1": cross_sensor(scenes["s2"], scenes["s1"], train_labels)}
    if crisis:
        result.update(_crisis(model, list(scenes.values()), crisis, choices or {},
                              query_features, query_labels, train_labels))
    result["queries"] = len(texts)
    return result
