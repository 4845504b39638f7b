"""CLOSP evaluation on embedded scenes: zero-shot land cover, text->image retrieval,
cross-sensor retrieval and location-dependent (crisis) retrieval.

Zero-shot accuracy is also reported on the subsets real products make hard
(:func:`zero_shot_subsets`): S2 test scenes that are cloudy (``cloud_fraction`` >=
:data:`CLOUDY_THRESHOLD`) beside the clear ones, and the S1 test scenes brought to
single-look speckle (ENL 1) beside the default; each beside its majority-class and chance
accuracy.

Every function takes embeddings (:class:`EmbeddedScenes`) and returns plain dicts
of floats, so figures are reproducible and easy to store as JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from core import metrics
from core.model import ContrastiveModel
from core.zero_shot import build_zero_shot_classifier
from domains.remote_sensing import cards
from domains.remote_sensing.embed import EmbeddedScenes

K_VALUES = (10, 100, 1000)
MAX_QUERIES = 300
#: S2 scenes with at least this fraction under cloud (SCL 8/9/10) form the cloudy subset:
#: a tenth of the scene hides enough surface to matter, and the synthetic archive puts
#: about a fifth of its scenes there (partly and heavily cloudy regimes).
CLOUDY_THRESHOLD = 0.1
#: Equivalent number of looks of the heavily speckled S1 evaluation (single look).
SINGLE_LOOK_ENL = 1.0


def zero_shot_land_cover(model: ContrastiveModel, scenes: EmbeddedScenes,
                         templates: list[str] | None = None) -> dict[str, Any]:
    """Zero-shot classification over the 9 Dynamic World classes from plain names.

    Args:
        model: The model (its ``text`` tower embeds the prompts).
        scenes: Embedded scenes of one sensor.
        templates: Prompt templates (default: the captions card's).

    Returns:
        Dominant-class accuracy, macro-F1, multi-label mAP and the confusion matrix.
    """
    classes = cards.land_cover_classes()
    templates = templates or cards.zero_shot_templates()
    classifier = build_zero_shot_classifier(model, classes, templates)
    scores = scenes.features @ classifier.cpu()  # (N, 9)
    keep = scenes.dominant >= 0
    target = scenes.dominant[keep]
    return {
        "accuracy": metrics.accuracy(scores[keep], target),
        "macro_f1": metrics.macro_f1(scores[keep], target, len(classes)),
        "map": metrics.mean_average_precision(scores, scenes.labels[:, : len(classes)]),
        "confusion": metrics.confusion_matrix(scores[keep], target, len(classes)).tolist(),
        "n": int(keep.sum()),
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
        Query captions and their (Q, 12) multi-hot labels (no crisis tags).
    """
    vocabulary = cards.label_vocabulary()
    n_classes = len(cards.land_cover_classes())
    labels = torch.cat([s.labels[:, :n_classes] for s in scene_sets])  # (N, 9)
    unique, counts = torch.unique(labels, dim=0, return_counts=True)
    order = torch.argsort(-counts, stable=True)[:MAX_QUERIES]
    unique = unique[order]
    unique = unique[unique.sum(1) > 0]
    texts = [cards.caption_for([vocabulary[i] for i in torch.nonzero(row).flatten().tolist()])
             for row in unique]
    padded = torch.zeros(len(unique), len(vocabulary))
    padded[:, :n_classes] = unique
    return texts, padded


def text_to_image(query_features: torch.Tensor, query_labels: torch.Tensor,
                  item_features: torch.Tensor, item_labels: torch.Tensor) -> dict[str, float]:
    """nDCG@k (graded by label overlap), mAP and Recall@k of text queries over items."""
    similarity = query_features @ item_features.T  # (Q, N)
    relevance = metrics.label_overlap_relevance(query_labels, item_labels)  # (Q, N)
    result = {f"ndcg@{k}": metrics.ndcg_at_k(similarity, relevance, k) for k in K_VALUES}
    result["map"] = metrics.retrieval_map(similarity, relevance)
    for k in (1, 10):
        result[f"recall@{k}"] = metrics.recall_at_k(similarity, relevance, k)
    return result


def cross_sensor(source: EmbeddedScenes, target: EmbeddedScenes) -> dict[str, float]:
    """Image->image retrieval across sensors on the paired subset.

    Recall@k counts the same place seen by the other sensor; nDCG@10 grades by labels.
    """
    source = source.select(np.asarray([p != "" for p in source.pair_ids]))
    target = target.select(np.asarray([p != "" for p in target.pair_ids]))
    if len(source.ids) == 0 or len(target.ids) == 0:
        return {}
    similarity = source.features @ target.features.T
    same = torch.tensor([[float(a == b) for b in target.pair_ids] for a in source.pair_ids])
    relevance = metrics.label_overlap_relevance(source.labels, target.labels)
    return {"recall@1": metrics.recall_at_k(similarity, same, 1),
            "recall@10": metrics.recall_at_k(similarity, same, 10),
            "ndcg@10": metrics.ndcg_at_k(similarity, relevance, 10), "n": len(source.ids)}


#: Candidate weights of the location-proximity term, chosen on the validation split.
PROXIMITY_WEIGHTS = (0.05, 0.1, 0.2, 0.3, 0.5, 1.0)


def crisis_queries(layout: str) -> list[tuple[str, tuple[float, float]]]:
    """Location-dependent queries: (crisis tag, (lon, lat) of the event) per known event.

    Only the synthetic archive records where its events happened (``synthetic.yaml``);
    real layouts get none.
    """
    if layout != "synthetic":
        return []
    events = cards.card("synthetic")["events"]
    return [(e["tag"], ((e["box"][0] + e["box"][2]) / 2, (e["box"][1] + e["box"][3]) / 2))
            for e in events]


def crisis_retrieval(model: ContrastiveModel, scenes: list[EmbeddedScenes],
                     queries: list[tuple[str, tuple[float, float]]],
                     proximity_weight: float = 0.0) -> dict[str, Any]:
    """Crisis-event queries over the mixed archive; relevant = scenes tagged with the crisis.

    Each query is a crisis tag ("flooded area") and the place it is asked about. A model
    without a location tower ranks by text-image similarity alone; GeoCLOSP adds
    ``proximity_weight`` x the similarity of the query place's and the scene's location
    embeddings (image and location fused at retrieval time).

    Args:
        model: The model (text tower for the queries, location tower if any).
        scenes: Embedded scenes of each sensor (one archive).
        queries: (tag, (lon, lat)) pairs, see :func:`crisis_queries`.
        proximity_weight: Weight of the location term (0: image only).

    Returns:
        nDCG@10, nDCG@100 and mAP averaged over the queries, and per query.
    """
    text_sim, place_sim, relevance = _crisis_similarities(model, scenes, queries)
    similarity = text_sim if place_sim is None else text_sim + proximity_weight * place_sim
    per_query = {}
    for i, (tag, _) in enumerate(queries):
        sim, rel = similarity[i : i + 1], relevance[i : i + 1]
        per_query[tag] = {"ndcg@10": metrics.ndcg_at_k(sim, rel, 10),
                          "map": metrics.retrieval_map(sim, rel), "relevant": int(rel.sum())}
    return {"ndcg@10": metrics.ndcg_at_k(similarity, relevance, 10),
            "ndcg@100": metrics.ndcg_at_k(similarity, relevance, 100),
            "map": metrics.retrieval_map(similarity, relevance), "per_query": per_query}


def _crisis_similarities(
    model: ContrastiveModel, scenes: list[EmbeddedScenes],
    queries: list[tuple[str, tuple[float, float]]],
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Text-image (Q, N) and place-scene location (Q, N) similarities, and relevance (Q, N)."""
    tags = cards.crisis_tags()
    offset = len(cards.land_cover_classes())
    items = torch.cat([s.features for s in scenes])  # (N, D)
    labels = torch.cat([s.labels for s in scenes])  # (N, 12)
    texts = [tag for tag, _ in queries]
    text_sim = model.encode("text", texts).cpu() @ items.T  # (Q, N)
    place_sim = None
    if "location" in model.towers:
        places = torch.tensor([point for _, point in queries], dtype=torch.float32)  # (Q, 2)
        scene_places = torch.cat([s.location for s in scenes])  # (N, D)
        place_sim = model.encode("location", places).cpu() @ scene_places.T  # (Q, N)
    relevance = labels[:, [offset + tags.index(t) for t in texts]].T  # (Q, N)
    return text_sim, place_sim, relevance


def choose_proximity_weight(model: ContrastiveModel, val_scenes: list[EmbeddedScenes],
                            queries: list[tuple[str, tuple[float, float]]]) -> float:
    """The location weight with the best crisis nDCG@10 on the validation split."""
    text_sim, place_sim, relevance = _crisis_similarities(model, val_scenes, queries)
    if place_sim is None:
        return 0.0
    scores = {w: metrics.ndcg_at_k(text_sim + w * place_sim, relevance, 10)
              for w in PROXIMITY_WEIGHTS}
    return max(scores, key=lambda w: (scores[w], -w))


@torch.no_grad()
def evaluate_model(model: ContrastiveModel, scenes: dict[str, EmbeddedScenes],
                   queries: tuple[list[str], torch.Tensor],
                   crisis: list[tuple[str, tuple[float, float]]] | None = None,
                   proximity_weight: float = 0.0,
                   single_look: EmbeddedScenes | None = None) -> dict[str, Any]:
    """Every evaluation the model's towers allow, on its embedded test scenes.

    Args:
        model: The trained model.
        scenes: Sensor -> embedded test scenes.
        queries: Land-cover query texts and their (Q, 12) labels (the same for every
            model compared, see :func:`land_cover_queries`).
        crisis: Location-dependent queries (see :func:`crisis_queries`); none: skipped.
        proximity_weight: Location weight of GeoCLOSP's crisis ranking (chosen on the
            validation split by :func:`choose_proximity_weight`).
        single_look: The S1 test scenes at ENL 1 (see :func:`zero_shot_subsets`).

    Returns:
        Nested dict of metrics.
    """
    result: dict[str, Any] = {"zero_shot": {}, "retrieval": {}}
    texts, query_labels = queries
    query_features = model.encode("text", texts).cpu()
    for sensor, embedded in scenes.items():
        result["zero_shot"][sensor] = zero_shot_land_cover(model, embedded)
        result["retrieval"][sensor] = text_to_image(query_features, query_labels,
                                                    embedded.features, embedded.labels)
    result["zero_shot_subsets"] = zero_shot_subsets(model, scenes, single_look)
    if len(scenes) > 1:
        items = torch.cat([s.features for s in scenes.values()])
        labels = torch.cat([s.labels for s in scenes.values()])
        result["retrieval"]["mixed"] = text_to_image(query_features, query_labels, items, labels)
    if "s1" in scenes and "s2" in scenes:
        result["cross_sensor"] = {"s1->s2": cross_sensor(scenes["s1"], scenes["s2"]),
                                  "s2->s1": cross_sensor(scenes["s2"], scenes["s1"])}
    if crisis:
        result["crisis"] = crisis_retrieval(model, list(scenes.values()), crisis)
        if "location" in model.towers:
            result["crisis_fused"] = crisis_retrieval(model, list(scenes.values()), crisis,
                                                      proximity_weight)
            result["crisis_fused"]["proximity_weight"] = proximity_weight
    result["queries"] = len(texts)
    return result
