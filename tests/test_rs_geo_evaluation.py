"""GeoCLOSP as published (text-only, fused index) and place queries against the fair
baselines (distance re-ranking, bbox filter), on hand-built embeddings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from domains.remote_sensing import cards
from domains.remote_sensing.embed import EmbeddedScenes
from domains.remote_sensing.geo_evaluation import (
    DISTANCE_WEIGHTS,
    FUSION_WEIGHTS,
    bbox_filter,
    choose_fusion_weight,
    choose_place_baselines,
    crisis_baselines,
    distance_rerank,
    fuse,
    haversine_km,
    in_box,
    place_baselines,
    text_only_retrieval,
)

FLOOD_PLACE = (90.0, 23.0)
ELSEWHERE = (10.0, 50.0)
FLOOD = len(cards.land_cover_classes()) + cards.crisis_tags().index("flooded area")


class FakeModel:
    """Text: crisis tags along axis 0, plus axis 1 (the delta's location) as a trained
    GeoCLOSP text would; land-cover captions along axis 3. Location: east of 60°E along
    axis 1, elsewhere axis 2."""

    def __init__(self, with_location: bool = True) -> None:
        self.towers = {"text": None, **({"location": None} if with_location else {})}

    def encode(self, modality: str, x) -> torch.Tensor:
        if modality == "text":
            rows = [[1.0, 0.7, 0.0, 0.0] if "area" in t else [0.0, 0.0, 0.0, 1.0] for t in x]
            return F.normalize(torch.tensor(rows), dim=1)
        east = (torch.as_tensor(x)[:, 0] > 60).float()  # (N,)
        zero = torch.zeros_like(east)
        return F.normalize(torch.stack([zero, east, 1 - east, zero], 1), dim=1)


def _scenes(model: FakeModel) -> EmbeddedScenes:
    """Ten flooded scenes in the delta (image score 0.6) and ten look-alikes far away (0.85)."""
    n = 20
    flooded = torch.arange(n) < 10
    image = torch.where(flooded, 0.6, 0.85)[:, None]  # (N, 1)
    features = torch.cat([image, torch.zeros(n, 2), torch.sqrt(1 - image**2)], 1)  # (N, 4)
    coords = torch.where(flooded[:, None], torch.tensor(FLOOD_PLACE), torch.tensor(ELSEWHERE))
    labels = torch.zeros(n, len(cards.label_vocabulary()))
    labels[flooded, FLOOD] = 1
    labels[:, 0] = 1  # every scene has water
    location = model.encode("location", coords) if "location" in model.towers else None
    return EmbeddedScenes("s2", features, location, labels, torch.zeros(n, dtype=torch.long),
                          coords, [str(i) for i in range(n)], [""] * n, np.arange(n))


def test_fusion_is_a_normalised_weighted_sum() -> None:
    image = F.normalize(torch.tensor([[1.0, 0.0], [0.6, 0.8]]), dim=1)
    location = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    assert torch.equal(fuse(image, location, 0.0), image)
    assert torch.allclose(fuse(image, location, 1.0), location)
    half = fuse(image, location, 0.5)
    assert torch.allclose(half[0], F.normalize(torch.tensor([1.0, 1.0]), dim=0))
    assert torch.allclose(half.norm(dim=1), torch.ones(2))


def test_text_only_fusion_weight_is_chosen_on_validation_and_lifts_crisis() -> None:
    model = FakeModel()
    scenes = [_scenes(model)]
    labels = torch.zeros(1, len(cards.label_vocabulary()))
    labels[0, 0] = 1
    queries = (["water"], labels)
    weight = choose_fusion_weight(model, scenes, queries, ["flooded area"])
    assert weight in FUSION_WEIGHTS and weight > 0
    # Image alone: 0.6 (event) vs 0.85 (look-alikes). Fused: the text's location component
    # (0.7 / |(1, 0.7)|) meets the event scenes' location; look-alikes gain nothing.
    features = model.encode("text", ["water"])
    image_only = text_only_retrieval(model, scenes, features, labels, ["flooded area"], 0.0)
    fused = text_only_retrieval(model, scenes, features, labels, ["flooded area"], weight)
    assert image_only["crisis"]["ndcg@10"] < 0.1
    assert fused["crisis"]["ndcg@10"] == 1.0
    assert fused["fusion_weight"] == weight
    assert fused["crisis"]["per_query"]["flooded area"]["relevant"] == 10
    # Every scene has water: land-cover retrieval is perfect either way.
    assert fused["mixed"]["ndcg@10"] == pytest.approx(1.0)
    assert choose_fusion_weight(FakeModel(with_location=False), scenes, queries, []) == 0.0


def test_haversine_and_box_in_km() -> None:
    places = torch.tensor([[0.0, 0.0]])
    points = torch.tensor([[0.0, 1.0], [180.0, 0.0], [2.3522, 48.8566]])
    distance = haversine_km(places, points)[0]
    assert distance[0].item() == pytest.approx(111.195, abs=0.01)
    assert distance[1].item() == pytest.approx(math.pi * 6371.0088, rel=1e-9)
    paris, london = torch.tensor([[2.3522, 48.8566]]), torch.tensor([[-0.1276, 51.5072]])
    paris_london = haversine_km(paris, london)
    assert paris_london.item() == pytest.approx(343.5, abs=1.0)
    # 100 km is 0.8993 degrees of latitude; east-west degrees shrink by cos(60°) = 0.5.
    place = torch.tensor([[10.0, 60.0]])
    points = torch.tensor([[10.0, 60.89], [10.0, 60.91], [11.79, 60.0], [11.81, 60.0]])
    assert in_box(place, points, 100.0)[0].tolist() == [True, False, True, False]
    wrap = in_box(torch.tensor([[179.9, 0.0]]), torch.tensor([[-179.9, 0.0]]), 50.0)
    assert wrap.item()  # 0.2 degrees across the antimeridian is 22 km


def test_baseline_scores_keep_order_within_groups() -> None:
    text = torch.tensor([[0.9, 0.2, -0.5, 0.4]])
    inside = torch.tensor([[False, True, True, False]])
    order = torch.argsort(-bbox_filter(text, inside), dim=1).tolist()
    assert order == [[1, 2, 0, 3]]  # inside by text, then outside by text
    distance = torch.tensor([[2000.0, 0.0, 0.0, 0.0]])
    reranked = distance_rerank(text, distance, 0.5)
    assert reranked[0].tolist() == pytest.approx([-0.1, 0.2, -0.5, 0.4])


def test_place_baselines_are_chosen_on_validation_and_use_the_place() -> None:
    model = FakeModel(with_location=False)  # CLOSP: no location tower
    scenes = [_scenes(model)]
    queries = [("flooded area", FLOOD_PLACE)]
    choices = choose_place_baselines(model, scenes, queries)
    # Look-alikes lead by 0.25 of cosine and lie ~7900 km away: the smallest lambda with
    # lambda * 7.9 > 0.25 is 0.05; a 100 km box already holds every event scene.
    assert choices == {"distance_weight": 0.05, "bbox_half_size_km": 100.0}
    assert DISTANCE_WEIGHTS.index(0.05) > 0
    found = place_baselines(model, scenes, queries, **choices)
    assert found["distance"]["ndcg@10"] == 1.0 and found["bbox"]["ndcg@10"] == 1.0
    assert found["distance"]["distance_weight"] == 0.05
    assert found["bbox"]["half_size_km"] == 100.0
    weak = place_baselines(model, scenes, queries, distance_weight=0.01, bbox_half_size_km=100.0)
    assert weak["distance"]["ndcg@10"] < 0.1  # 0.079 of cosine does not close a 0.25 gap


def test_crisis_baselines_random_and_label_prior() -> None:
    scenes = [_scenes(FakeModel())]
    train = torch.zeros(4, len(cards.label_vocabulary()))
    train[:, 0] = 1
    train[0, FLOOD] = 1  # flooded scenes are rare in training
    rows = crisis_baselines(scenes, ["flooded area"], train)
    assert rows["random"]["recall@1"] == pytest.approx(0.5)  # 10 relevant of 20
    # Missing all ten in the top ten: C(10, 10) / C(20, 10).
    assert rows["random"]["recall@10"] == pytest.approx(1 - 1 / math.comb(20, 10))
    # The prior puts the scenes with an extra (crisis) label first: a perfect ranking here.
    assert rows["label_prior"]["ndcg@10"] == 1.0
    assert "label_prior" not in crisis_baselines(scenes, ["flooded area"], None)
