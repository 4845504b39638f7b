"""GeoCLOSP evaluated as published (text-only queries) and with place queries, beside the
fair baselines a CLOSP user has.

Two settings, each compared with what a user without GeoCLOSP would do:

- **Text-only queries** (the paper's setting). The location tower is aligned to the image
  (the model's ``(s2, location)`` / ``(s1, location)`` pairs); every scene is indexed by
  the fusion ``normalize((1 - w) * image + w * location)`` of its image embedding and the
  location embedding of its own coordinates, and queries are plain text — crisis tags
  ("flooded area") and land-cover captions, never a place. The fusion weight ``w`` is
  chosen on the validation split (:data:`FUSION_WEIGHTS`, mean of crisis and land-cover
  nDCG@10). GeoCLOSP fused is compared with CLOSP (image) and with GeoCLOSP's own image
  embedding.
- **Place queries**: each crisis tag asked about its event's centre. GeoCLOSP adds
  ``w_p`` x the similarity of the place's and the scene's location embeddings to the
  text-image similarity (:func:`crisis_retrieval`). The baselines rank by text-image
  similarity and use the same place the way a search user would (the scene index has
  ``--near`` and ``--bbox``): *distance re-ranking*
  ``text_sim - lambda * haversine_km / DISTANCE_SCALE_KM`` and a *bbox filter* (scenes
  whose centre lies within ``h`` km north-south and east-west of the place first, by text
  similarity, then the rest). ``w_p``, ``lambda`` and ``h`` are each chosen on the
  validation split by crisis nDCG@10 from a small grid; ties go to the smallest value.

Relevant scenes are those tagged with the crisis (binary relevance), so nDCG, mAP and
Recall@k share it. Every table also carries the random-ranking and label-prior rows
(:mod:`core.metrics`). This module adds the CLOSP-specific rankings on top of the
generic metrics; it never reads a data module (scenes arrive embedded).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from core import metrics
from core.model import ContrastiveModel
from domains.remote_sensing import cards
from domains.remote_sensing.embed import EmbeddedScenes

Query = tuple[str, tuple[float, float]]  # (crisis tag, (lon, lat) of its event)

#: Candidate weights of GeoCLOSP's place term (place queries), chosen on validation.
PROXIMITY_WEIGHTS = (0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
#: Candidate location weights of the text-only scene fusion, chosen on validation.
FUSION_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
#: Distance unit of the re-ranking baseline: lambda = 1 costs one unit of cosine per 1000 km.
DISTANCE_SCALE_KM = 1000.0
#: Candidate lambdas of the distance re-ranking baseline, chosen on validation.
DISTANCE_WEIGHTS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
#: Candidate half-sizes (km) of the bbox-filter baseline, chosen on validation.
BBOX_HALF_SIZES_KM = (100.0, 250.0, 500.0, 1000.0)
EARTH_RADIUS_KM = 6371.0088
_KM_PER_DEGREE = math.pi * EARTH_RADIUS_KM / 180.0


def crisis_queries(layout: str) -> list[Query]:
    """Location-dependent queries: (crisis tag, (lon, lat) of the event) per known event.

    Only the synthetic archive records where its events happened (``synthetic.yaml``);
    real layouts get none.
    """
    if layout != "synthetic":
        return []
    events = cards.card("synthetic")["events"]
    return [(e["tag"], ((e["box"][0] + e["box"][2]) / 2, (e["box"][1] + e["box"][3]) / 2))
            for e in events]


def crisis_relevance(scenes: Sequence[EmbeddedScenes], tags: Sequence[str]) -> torch.Tensor:
    """(Q, N) binary relevance: the scene carries the query's crisis tag."""
    offset = len(cards.land_cover_classes())
    known = cards.crisis_tags()
    labels = torch.cat([s.labels for s in scenes])  # (N, 12)
    return labels[:, [offset + known.index(t) for t in tags]].T.float()  # (Q, N)


def fuse(image: torch.Tensor, location: torch.Tensor, weight: float) -> torch.Tensor:
    """GeoCLOSP's scene embedding: ``normalize((1 - w) * image + w * location)``, (N, D)."""
    return F.normalize((1.0 - weight) * image + weight * location, dim=-1)


def scene_features(scenes: Sequence[EmbeddedScenes], fusion_weight: float = 0.0
                   ) -> torch.Tensor:
    """(N, D) index features of the scenes: image, or fused with location when w > 0."""
    image = torch.cat([s.features for s in scenes])
    if fusion_weight == 0.0:
        return image
    if any(s.location is None for s in scenes):
        raise ValueError("a fusion weight needs location embeddings (a GeoCLOSP model)")
    return fuse(image, torch.cat([s.location for s in scenes]), fusion_weight)


def haversine_km(places: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Great-circle distances (Q, N) in km between (Q, 2) and (N, 2) (lon, lat) degrees."""
    lon1, lat1 = torch.deg2rad(places.double()).unbind(-1)
    lon2, lat2 = torch.deg2rad(points.double()).unbind(-1)
    dlat = lat2[None, :] - lat1[:, None]  # (Q, N)
    dlon = lon2[None, :] - lon1[:, None]
    a = (torch.sin(dlat / 2) ** 2
         + torch.cos(lat1)[:, None] * torch.cos(lat2)[None, :] * torch.sin(dlon / 2) ** 2)
    return 2 * EARTH_RADIUS_KM * torch.asin(a.clamp(0, 1).sqrt())


def in_box(places: torch.Tensor, points: torch.Tensor, half_size_km: float) -> torch.Tensor:
    """(Q, N) bool: the point lies within ``half_size_km`` north-south and east-west.

    The box is measured in km on the ground around each place (east-west degrees shrink by
    cos(latitude) of the place); longitudes wrap at the antimeridian.
    """
    places, points = places.double(), points.double()
    dlat_km = (points[None, :, 1] - places[:, None, 1]).abs() * _KM_PER_DEGREE  # (Q, N)
    dlon = (points[None, :, 0] - places[:, None, 0] + 180.0) % 360.0 - 180.0
    scale = torch.cos(torch.deg2rad(places[:, 1])).clamp_min(1e-6)[:, None]  # (Q, 1)
    dlon_km = dlon.abs() * _KM_PER_DEGREE * scale
    return (dlat_km <= half_size_km) & (dlon_km <= half_size_km)


def distance_rerank(text_sim: torch.Tensor, distance_km: torch.Tensor, weight: float
                    ) -> torch.Tensor:
    """The distance baseline's scores: ``text_sim - weight * distance / DISTANCE_SCALE_KM``."""
    return text_sim.double() - weight * distance_km / DISTANCE_SCALE_KM


def bbox_filter(text_sim: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """The bbox baseline's scores: scenes inside first (by text similarity), then the rest.

    Cosine similarities lie in [-1, 1], so adding 3 to those inside ranks every one of
    them above every scene outside without changing either group's order.
    """
    return text_sim.double() + 3.0 * inside.double()


def _choose(grid: Sequence[float], score: Callable[[float], float]) -> float:
    """The grid value with the best score (NaN counts as worst; ties: the earliest)."""
    best, best_score = grid[0], -math.inf
    for value in grid:
        found = score(value)
        if not math.isnan(found) and found > best_score:
            best, best_score = value, found
    return best


def _ranking(similarity: torch.Tensor, relevance: torch.Tensor) -> dict[str, float]:
    return metrics.retrieval_figures(similarity, relevance, relevance)


def _with_per_query(similarity: torch.Tensor, relevance: torch.Tensor,
                    tags: Sequence[str]) -> dict[str, Any]:
    """Mean figures and, per query, nDCG@10, mAP and the number of relevant scenes."""
    result: dict[str, Any] = _ranking(similarity, relevance)
    result["per_query"] = {
        tag: {"ndcg@10": metrics.ndcg_at_k(similarity[i:i + 1], relevance[i:i + 1], 10),
              "map": metrics.retrieval_map(similarity[i:i + 1], relevance[i:i + 1]),
              "relevant": int(relevance[i].sum())}
        for i, tag in enumerate(tags)}
    return result


def _place_similarities(model: ContrastiveModel, scenes: Sequence[EmbeddedScenes],
                        queries: Sequence[Query]
                        ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Text-image (Q, N) and place-scene location (Q, N) similarities, and relevance (Q, N)."""
    texts = [tag for tag, _ in queries]
    text_sim = model.encode("text", texts).cpu() @ scene_features(scenes).T  # (Q, N)
    place_sim = None
    if "location" in model.towers:
        places = torch.tensor([point for _, point in queries], dtype=torch.float32)  # (Q, 2)
        scene_places = torch.cat([s.location for s in scenes])  # (N, D)
        place_sim = model.encode("location", places).cpu() @ scene_places.T  # (Q, N)
    return text_sim, place_sim, crisis_relevance(scenes, texts)


def crisis_retrieval(model: ContrastiveModel, scenes: Sequence[EmbeddedScenes],
                     queries: Sequence[Query], proximity_weight: float = 0.0
                     ) -> dict[str, Any]:
    """Crisis queries over the mixed archive; relevant = scenes tagged with the crisis.

    A model without a location tower (or ``proximity_weight`` 0) ranks by text-image
    similarity alone; GeoCLOSP's place mode adds ``proximity_weight`` x the similarity of
    the query place's and the scene's location embeddings.

    Args:
        model: The model (text tower for the queries, location tower if any).
        scenes: Embedded scenes of each sensor (one archive).
        queries: (tag, (lon, lat)) pairs, see :func:`crisis_queries`.
        proximity_weight: Weight of the place term.

    Returns:
        nDCG@10/@100, mAP, Recall@1/@10 over the queries, and per query.
    """
    text_sim, place_sim, relevance = _place_similarities(model, scenes, queries)
    similarity = text_sim if place_sim is None else text_sim + proximity_weight * place_sim
    return _with_per_query(similarity, relevance, [tag for tag, _ in queries])


def choose_proximity_weight(model: ContrastiveModel, val_scenes: Sequence[EmbeddedScenes],
                            queries: Sequence[Query]) -> float:
    """The place weight with the best crisis nDCG@10 on the validation split (0: no tower)."""
    text_sim, place_sim, relevance = _place_similarities(model, val_scenes, queries)
    if place_sim is None:
        return 0.0
    return _choose(PROXIMITY_WEIGHTS,
                   lambda w: metrics.ndcg_at_k(text_sim + w * place_sim, relevance, 10))


def _scene_points(scenes: Sequence[EmbeddedScenes]) -> torch.Tensor:
    return torch.cat([s.coords for s in scenes]).double()  # (N, 2) lon, lat


def _places(queries: Sequence[Query]) -> torch.Tensor:
    return torch.tensor([point for _, point in queries], dtype=torch.float64)  # (Q, 2)


def choose_place_baselines(model: ContrastiveModel, val_scenes: Sequence[EmbeddedScenes],
                           queries: Sequence[Query]) -> dict[str, float]:
    """The distance weight and bbox half-size with the best validation crisis nDCG@10."""
    text_sim, _, relevance = _place_similarities(model, val_scenes, queries)
    places, points = _places(queries), _scene_points(val_scenes)
    distance = haversine_km(places, points)  # (Q, N)
    weight = _choose(DISTANCE_WEIGHTS, lambda lam: metrics.ndcg_at_k(
        distance_rerank(text_sim, distance, lam), relevance, 10))
    half = _choose(BBOX_HALF_SIZES_KM, lambda h: metrics.ndcg_at_k(
        bbox_filter(text_sim, in_box(places, points, h)), relevance, 10))
    return {"distance_weight": weight, "bbox_half_size_km": half}


def place_baselines(model: ContrastiveModel, scenes: Sequence[EmbeddedScenes],
                    queries: Sequence[Query], distance_weight: float,
                    bbox_half_size_km: float) -> dict[str, Any]:
    """The model's text ranking with the query's place used as a search user would.

    Returns:
        ``distance`` (re-ranked by haversine distance) and ``bbox`` (filtered to a box
        around the place), each with its figures, per-query figures and its setting.
    """
    text_sim, _, relevance = _place_similarities(model, scenes, queries)
    places, points = _places(queries), _scene_points(scenes)
    tags = [tag for tag, _ in queries]
    distance = _with_per_query(
        distance_rerank(text_sim, haversine_km(places, points), distance_weight), relevance, tags)
    distance.update(distance_weight=distance_weight, scale_km=DISTANCE_SCALE_KM)
    bbox = _with_per_query(bbox_filter(text_sim, in_box(places, points, bbox_half_size_km)),
                           relevance, tags)
    bbox["half_size_km"] = bbox_half_size_km
    return {"distance": distance, "bbox": bbox}


def crisis_baselines(scenes: Sequence[EmbeddedScenes], tags: Sequence[str],
                     train_labels: torch.Tensor | None) -> dict[str, Any]:
    """Random-ranking and label-prior rows of the crisis queries (query- and place-blind)."""
    relevance = crisis_relevance(scenes, tags)
    rows: dict[str, Any] = {"random": metrics.random_ranking_baseline(relevance, relevance)}
    if train_labels is not None and len(train_labels):
        prior = metrics.label_prior_scores(train_labels, torch.cat([s.labels for s in scenes]))
        rows["label_prior"] = _ranking(prior, relevance)
    return rows


def choose_fusion_weight(model: ContrastiveModel, val_scenes: Sequence[EmbeddedScenes],
                         queries: tuple[list[str], torch.Tensor],
                         crisis: Sequence[str]) -> float:
    """The text-only fusion weight with the best validation nDCG@10 (0 without a tower).

    The score of a weight is the mean of land-cover mixed nDCG@10 (graded, shared labels)
    and crisis nDCG@10, both with place-free text queries over the fused scene index.

    Args:
        model: The model.
        val_scenes: Embedded validation scenes (with location embeddings).
        queries: Land-cover query texts and (Q, 12) labels of the validation scenes.
        crisis: Crisis tags asked without a place.

    Returns:
        The chosen weight from :data:`FUSION_WEIGHTS` (0 means image alone).
    """
    if "location" not in model.towers or any(s.location is None for s in val_scenes):
        return 0.0
    texts, labels = queries
    item_labels = torch.cat([s.labels for s in val_scenes])
    tasks = [(model.encode("text", list(texts)).cpu(),
              metrics.label_relevance(labels, item_labels))]  # (Q, D), (Q, N)
    if crisis:
        tasks.append((model.encode("text", list(crisis)).cpu(),
                      crisis_relevance(val_scenes, crisis)))

    def score(weight: float) -> float:
        items = scene_features(val_scenes, weight)  # (N, D)
        found = [metrics.ndcg_at_k(text @ items.T, rel, 10) for text, rel in tasks]
        kept = [v for v in found if not math.isnan(v)]
        return sum(kept) / len(kept) if kept else float("nan")

    return _choose(FUSION_WEIGHTS, score)


def text_only_retrieval(model: ContrastiveModel, scenes: Sequence[EmbeddedScenes],
                        query_features: torch.Tensor, query_labels: torch.Tensor,
                        crisis: Sequence[str], fusion_weight: float) -> dict[str, Any]:
    """GeoCLOSP as published: text queries (no place) over fused scene embeddings.

    Args:
        model: A GeoCLOSP model.
        scenes: Embedded test scenes of every sensor (with location embeddings).
        query_features: (Q, D) land-cover query embeddings.
        query_labels: (Q, 12) their labels.
        crisis: Crisis tags (queries without a place).
        fusion_weight: ``w`` of :func:`fuse` (chosen on validation).

    Returns:
        ``mixed`` land-cover figures, ``crisis`` figures and the ``fusion_weight``.
    """
    items = scene_features(scenes, fusion_weight)  # (N, D)
    item_labels = torch.cat([s.labels for s in scenes])
    result: dict[str, Any] = {"fusion_weight": fusion_weight, "mixed": metrics.retrieval_figures(
        query_features @ items.T, metrics.label_relevance(query_labels, item_labels),
        metrics.contains_all_labels(query_labels, item_labels))}
    if crisis:
        similarity = model.encode("text", list(crisis)).cpu() @ items.T  # (Q, N)
        result["crisis"] = _with_per_query(similarity, crisis_relevance(scenes, crisis), crisis)
    return result
