"""CLOSP evaluation on embedded scenes: zero-shot land cover, text->image retrieval,
cross-sensor retrieval and location-dependent (crisis) retrieval.

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


def crisis_retrieval(model: ContrastiveModel, scenes: list[EmbeddedScenes],
                     fusion_weight: float) -> dict[str, Any]:
    """Crisis-event queries over the mixed archive; relevant = scenes tagged with the crisis.

    GeoCLOSP ranks scenes by their image embedding fused with their location embedding.

    Args:
        model: The model (text tower for the queries).
        scenes: Embedded scenes of each sensor (one archive).
        fusion_weight: Weight of the location embedding (0: image only).

    Returns:
        nDCG@10, nDCG@100 and mAP averaged over the crisis queries, and per query.
    """
    tags = cards.crisis_tags()
    offset = len(cards.land_cover_classes())
    items = torch.cat([s.fused(fusion_weight) for s in scenes])
    labels = torch.cat([s.labels for s in scenes])
    queries = model.encode("text", tags).cpu()
    similarity = queries @ items.T
    relevance = labels[:, offset : offset + len(tags)].T  # (T, N)
    per_query = {}
    for i, tag in enumerate(tags):
        sim, rel = similarity[i : i + 1], relevance[i : i + 1]
        per_query[tag] = {"ndcg@10": metrics.ndcg_at_k(sim, rel, 10),
                          "map": metrics.retrieval_map(sim, rel), "relevant": int(rel.sum())}
    return {"ndcg@10": metrics.ndcg_at_k(similarity, relevance, 10),
            "ndcg@100": metrics.ndcg_at_k(similarity, relevance, 100),
            "map": metrics.retrieval_map(similarity, relevance), "per_query": per_query}


@torch.no_grad()
def evaluate_model(model: ContrastiveModel, scenes: dict[str, EmbeddedScenes],
                   queries: tuple[list[str], torch.Tensor],
                   fusion_weight: float = 1.0) -> dict[str, Any]:
    """Every evaluation the model's towers allow, on its embedded test scenes.

    Args:
        model: The trained model.
        scenes: Sensor -> embedded test scenes.
        queries: Land-cover query texts and their (Q, 12) labels (the same for every
            model compared, see :func:`land_cover_queries`).
        fusion_weight: Location fusion weight for location-dependent queries (GeoCLOSP).

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
    if len(scenes) > 1:
        items = torch.cat([s.features for s in scenes.values()])
        labels = torch.cat([s.labels for s in scenes.values()])
        result["retrieval"]["mixed"] = text_to_image(query_features, query_labels, items, labels)
    if "s1" in scenes and "s2" in scenes:
        result["cross_sensor"] = {"s1->s2": cross_sensor(scenes["s1"], scenes["s2"]),
                                  "s2->s1": cross_sensor(scenes["s2"], scenes["s1"])}
    result["crisis"] = crisis_retrieval(model, list(scenes.values()), 0.0)
    if "location" in model.towers:
        result["crisis_fused"] = crisis_retrieval(model, list(scenes.values()), fusion_weight)
        items = torch.cat([s.fused(fusion_weight) for s in scenes.values()])
        labels = torch.cat([s.labels for s in scenes.values()])
        result["retrieval"]["mixed_fused"] = text_to_image(query_features, query_labels, items,
                                                           labels)
    result["queries"] = len(texts)
    return result
